//! Fetch sessions (KIP-227): Ringlet declines them, correctly.
//!
//! A broker may refuse to create incremental fetch sessions; it says so by
//! answering every full fetch with `session_id = 0`, after which clients keep
//! sending full requests. What must still be right is the handling of requests
//! that refer to a session: per the KIP (and Kafka's `FetchManager.newContext`)
//!
//! | session_epoch | session_id | meaning                     | Ringlet                          |
//! |---------------|------------|-----------------------------|----------------------------------|
//! | -1 (FINAL)    | any        | close session, full fetch   | sessionless full fetch           |
//! | 0 (INITIAL)   | any        | (re)create session, full    | full fetch, decline: id 0        |
//! | > 0 or < -1   | any        | incremental fetch           | FETCH_SESSION_ID_NOT_FOUND       |
//!
//! Because no session is ever created, every incremental request names a
//! session this broker does not know. Requests before v7 carry no session
//! fields; kafka-protocol decodes them with the defaults (id 0, epoch -1), which
//! is a sessionless full fetch.

/// Session id used in responses: 0 means "no session was created".
pub const NO_SESSION_ID: i32 = 0;
const INITIAL_EPOCH: i32 = 0;
const FINAL_EPOCH: i32 = -1;

/// How to serve a fetch, decided from its session fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionDecision {
    /// Serve every partition in the request; answer with `session_id = 0`.
    FullFetch,
    /// Answer only with this top-level error, no partitions, `session_id = 0`.
    SessionIdNotFound,
}

/// Decides how to serve a fetch with these session fields (see the module table).
pub fn decide(session_id: i32, session_epoch: i32) -> SessionDecision {
    let _ = session_id; // no session exists, so the id never changes the outcome
    match session_epoch {
        INITIAL_EPOCH | FINAL_EPOCH => SessionDecision::FullFetch,
        _ => SessionDecision::SessionIdNotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_requests_are_served_sessionless() {
        assert_eq!(decide(0, -1), SessionDecision::FullFetch);
        assert_eq!(decide(0, 0), SessionDecision::FullFetch);
        // A client closing or resetting a session we never gave out: still a full fetch.
        assert_eq!(decide(1234, -1), SessionDecision::FullFetch);
        assert_eq!(decide(1234, 0), SessionDecision::FullFetch);
    }

    #[test]
    fn incremental_requests_name_an_unknown_session() {
        assert_eq!(decide(1234, 1), SessionDecision::SessionIdNotFound);
        assert_eq!(decide(0, 7), SessionDecision::SessionIdNotFound);
        assert_eq!(decide(99, -2), SessionDecision::SessionIdNotFound);
    }
}

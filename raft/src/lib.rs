//! Pure Raft. See crate docs.

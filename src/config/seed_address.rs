//! A seed's `HOST:PORT` as the operator gave it, and where it resolves now. A StatefulSet's
//! pods are named before they run: a peer's name may not resolve when this broker starts, and
//! a pod that is rescheduled comes back under the same name at a new address. So names are
//! not resolved once at start: `seed_resolver` keeps every seed's address current on its own
//! thread (`getaddrinfo` blocks, and shards must not), and the shards read the latest
//! address without waiting. An IP literal needs no resolver: it is its own address.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// One seed's address: the text it was given as and the last address that text resolved
/// to. Clones share the resolved address (every shard holds a clone of the config).
#[derive(Debug, Clone)]
pub struct SeedAddress {
    text: Arc<str>,
    resolved: Arc<Mutex<Option<SocketAddr>>>,
    /// Set when a connection to the peer fails: the resolver looks the name up again soon.
    stale: Arc<AtomicBool>,
}

impl PartialEq for SeedAddress {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for SeedAddress {}

impl SeedAddress {
    /// Checks the syntax (`HOST:PORT`, `[IPV6]:PORT`) without resolving anything; an IP
    /// literal is resolved at once.
    pub fn parse(text: &str) -> Result<SeedAddress, String> {
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| "it has no :PORT".to_string())?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err("its host is empty".into());
        }
        if host.contains(char::is_whitespace) {
            return Err("its host contains white space".into());
        }
        port.parse::<u16>()
            .map_err(|_| format!("its port {port:?} is not a number from 0 to 65535"))?;
        let literal = text.parse::<SocketAddr>().ok();
        Ok(SeedAddress {
            text: text.into(),
            resolved: Arc::new(Mutex::new(literal)),
            stale: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The address as given.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Where the seed was last found (`None` while its name has not resolved yet).
    pub fn current(&self) -> Option<SocketAddr> {
        *self.lock()
    }

    /// An IP literal: nothing to resolve.
    pub fn is_literal(&self) -> bool {
        self.text.parse::<SocketAddr>().is_ok()
    }

    /// A connection to this seed failed: look its name up again.
    pub fn mark_stale(&self) {
        self.stale.store(true, Ordering::Relaxed);
    }

    /// Whether a failure was reported since the last call (and clears it).
    pub(super) fn take_stale(&self) -> bool {
        self.stale.swap(false, Ordering::Relaxed)
    }

    /// Resolves the name now (blocking: only the resolver thread calls this) and stores the
    /// first address; the address, or why there is none.
    pub(super) fn resolve_now(&self) -> Result<SocketAddr, String> {
        let found = self
            .text
            .to_socket_addrs()
            .map_err(|err| err.to_string())?
            .next()
            .ok_or_else(|| "it resolves to no address".to_string())?;
        *self.lock() = Some(found);
        Ok(found)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<SocketAddr>> {
        // A panic elsewhere cannot leave an Option<SocketAddr> half-written.
        self.resolved
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_resolve_at_once_and_names_wait_for_the_resolver() {
        let literal = SeedAddress::parse("127.0.0.1:9192").expect("literal");
        assert_eq!(literal.current(), Some("127.0.0.1:9192".parse().unwrap()));
        assert!(literal.is_literal());
        let v6 = SeedAddress::parse("[::1]:9192").expect("v6 literal");
        assert_eq!(v6.current(), Some("[::1]:9192".parse().unwrap()));
        let name = SeedAddress::parse("ringlet-0.ringlet.svc:9192").expect("name");
        assert_eq!(
            name.current(),
            None,
            "not resolved before the resolver runs"
        );
        assert!(!name.is_literal());
        let localhost = SeedAddress::parse("localhost:9192").expect("localhost");
        assert_eq!(localhost.resolve_now().map(|a| a.port()), Ok(9192));
        assert_eq!(localhost.current().map(|a| a.port()), Some(9192));
    }

    #[test]
    fn bad_syntax_says_what_is_wrong() {
        for (text, reason) in [
            ("host", "no :PORT"),
            (":9192", "host is empty"),
            ("host:port", "not a number"),
            ("host:70000", "not a number"),
            ("a b:1", "white space"),
        ] {
            let err = SeedAddress::parse(text).expect_err(text);
            assert!(err.contains(reason), "{text}: {err}");
        }
    }

    #[test]
    fn a_failure_marks_the_seed_stale_once() {
        let seed = SeedAddress::parse("127.0.0.1:1").expect("literal");
        assert!(!seed.take_stale());
        seed.clone().mark_stale();
        assert!(seed.take_stale(), "clones share the flag");
        assert!(!seed.take_stale());
    }
}

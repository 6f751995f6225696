//! Keeps the seeds' addresses current (see `seed_address`), on one thread of its own:
//!
//! - a name that does not resolve yet is retried with a backoff capped at [`MAX_BACKOFF`],
//!   logged when it first fails and then every [`WARN_EVERY`] while it keeps failing: the
//!   broker serves meanwhile, and joins the cluster once its peers' names answer;
//! - a resolved name is looked up again every [`REFRESH_EVERY`], and at once (at most every
//!   [`MIN_RETRY`]) when a connection to that peer fails, so a peer that came back at a new
//!   address is found again.
//!
//! IP literals are never looked up.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::cluster::Seed;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const MIN_RETRY: Duration = Duration::from_secs(1);
const REFRESH_EVERY: Duration = Duration::from_secs(30);
const WARN_EVERY: Duration = Duration::from_secs(30);
/// How often the thread checks for stale seeds.
const POLL: Duration = Duration::from_millis(100);

/// Starts the resolver thread for the seeds given by name (none: no thread).
pub fn spawn(seeds: &[Seed]) -> std::io::Result<()> {
    let named: Vec<Tracked> = seeds
        .iter()
        .filter(|seed| !seed.address.is_literal())
        .map(|seed| Tracked::new(seed.clone()))
        .collect();
    if named.is_empty() {
        return Ok(());
    }
    std::thread::Builder::new()
        .name("ringlet-seeds".into())
        .spawn(move || run(named))
        .map(drop)
}

fn run(mut seeds: Vec<Tracked>) {
    loop {
        let now = Instant::now();
        for seed in &mut seeds {
            if seed.due(now) {
                seed.resolve(now);
            }
        }
        std::thread::sleep(POLL);
    }
}

/// One named seed and when to look it up next.
struct Tracked {
    seed: Seed,
    next_at: Instant,
    last_attempt: Option<Instant>,
    backoff: Duration,
    failing_since: Option<Instant>,
    warned_at: Option<Instant>,
    last_found: Option<SocketAddr>,
}

impl Tracked {
    fn new(seed: Seed) -> Tracked {
        Tracked {
            seed,
            next_at: Instant::now(),
            last_attempt: None,
            backoff: FIRST_BACKOFF,
            failing_since: None,
            warned_at: None,
            last_found: None,
        }
    }

    fn due(&mut self, now: Instant) -> bool {
        let retried_recently = self
            .last_attempt
            .is_some_and(|at| now.duration_since(at) < MIN_RETRY);
        if !retried_recently && self.seed.address.take_stale() {
            return true;
        }
        now >= self.next_at
    }

    fn resolve(&mut self, now: Instant) {
        self.last_attempt = Some(now);
        match self.seed.address.resolve_now() {
            Ok(found) => self.found(found, now),
            Err(reason) => self.failed(&reason, now),
        }
    }

    fn found(&mut self, found: SocketAddr, now: Instant) {
        if self.last_found != Some(found) {
            tracing::info!(
                node = self.seed.node_id,
                seed = self.seed.address.text(),
                address = %found,
                "seed resolved"
            );
        }
        self.last_found = Some(found);
        self.failing_since = None;
        self.warned_at = None;
        self.backoff = FIRST_BACKOFF;
        self.next_at = now + REFRESH_EVERY;
    }

    fn failed(&mut self, reason: &str, now: Instant) {
        let since = *self.failing_since.get_or_insert(now);
        let warn_due = self
            .warned_at
            .is_none_or(|at| now.duration_since(at) >= WARN_EVERY);
        if warn_due {
            self.warned_at = Some(now);
            tracing::warn!(
                node = self.seed.node_id,
                seed = self.seed.address.text(),
                failing_for_s = now.duration_since(since).as_secs(),
                kept = ?self.last_found,
                reason,
                "seed does not resolve; retrying"
            );
        }
        // A name that stops resolving keeps its last address: the peer may still be there.
        self.next_at = now + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }
}

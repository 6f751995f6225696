//! The leader's view of one follower: how much of the log it has, and how
//! many appends may be in flight to it (flow control for a far-behind follower).

use std::collections::VecDeque;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressState {
    /// Unknown match point: one append at a time, backtracking on rejection.
    Probe,
    /// Known match point: stream appends optimistically, up to the in-flight bound.
    Replicate,
}

#[derive(Debug, Clone)]
pub struct Progress {
    pub matched: u64,
    pub next: u64,
    pub state: ProgressState,
    /// In Probe: an append is outstanding; wait for its answer or a heartbeat answer.
    pub paused: bool,
    /// Last index of each append in flight, oldest first.
    pub inflight: VecDeque<u64>,
    pub max_inflight: usize,
    /// Heard from since the last check-quorum round.
    pub recent_active: bool,
    /// The follower's commit index as it last reported it.
    pub commit_acked: u64,
    /// The follower acknowledged us as leader of the current term and has
    /// everything; its heartbeats may shrink to the group id.
    pub light_ok: bool,
}

impl Progress {
    pub fn new(next: u64, max_inflight: usize) -> Self {
        Self {
            matched: 0,
            next,
            state: ProgressState::Probe,
            paused: false,
            inflight: VecDeque::new(),
            max_inflight,
            recent_active: false,
            commit_acked: 0,
            light_ok: false,
        }
    }

    pub fn is_paused(&self) -> bool {
        match self.state {
            ProgressState::Probe => self.paused,
            ProgressState::Replicate => self.inflight.len() >= self.max_inflight,
        }
    }

    pub fn become_probe(&mut self) {
        self.state = ProgressState::Probe;
        self.next = self.matched + 1;
        self.paused = false;
        self.inflight.clear();
    }

    pub fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.next = self.matched + 1;
        self.paused = false;
        self.inflight.clear();
    }

    /// An append up to `last` was sent.
    pub fn sent(&mut self, last: Option<u64>) {
        match self.state {
            ProgressState::Probe => self.paused = true,
            ProgressState::Replicate => {
                if let Some(last) = last {
                    self.next = last + 1;
                    self.inflight.push_back(last);
                }
            }
        }
    }

    /// A successful append response for `index`; false if it told us nothing new.
    pub fn maybe_update(&mut self, index: u64) -> bool {
        let updated = index > self.matched;
        if updated {
            self.matched = index;
            self.paused = false;
        }
        self.next = self.next.max(index + 1);
        while self.inflight.front().is_some_and(|&last| last <= index) {
            self.inflight.pop_front();
        }
        updated
    }

    /// A rejection of the append after `rejected`; `probe_from` is where the
    /// leader's fast backtracking says the logs may match. False if stale.
    pub fn maybe_decrease_to(&mut self, rejected: u64, probe_from: u64) -> bool {
        match self.state {
            ProgressState::Replicate => {
                if rejected <= self.matched {
                    return false;
                }
                self.become_probe();
                self.next = (probe_from + 1).max(self.matched + 1);
                true
            }
            ProgressState::Probe => {
                if self.next == 0 || self.next - 1 != rejected {
                    return false;
                }
                self.next = (probe_from + 1).min(rejected).max(self.matched + 1).max(1);
                self.paused = false;
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicate_bounds_inflight_appends() {
        let mut p = Progress::new(1, 2);
        p.become_replicate();
        p.sent(Some(5));
        assert!(!p.is_paused());
        p.sent(Some(9));
        assert!(p.is_paused(), "two appends in flight with a bound of two");
        assert!(p.maybe_update(5));
        assert!(!p.is_paused());
        assert_eq!(p.next, 10);
    }

    #[test]
    fn stale_rejection_is_ignored() {
        let mut p = Progress::new(11, 8);
        p.paused = true;
        assert!(!p.maybe_decrease_to(7, 3), "rejection of an older probe");
        assert!(p.maybe_decrease_to(10, 3));
        assert_eq!(p.next, 4);
        assert!(!p.paused);
    }
}

//! A connection's produce requests are applied in the order it sent them.
//!
//! Each request runs as its own task (so request N+1 is decoded and validated while request N
//! waits for its fsync), and a request's partitions live on several shards. Without a gate,
//! request N+1 could reach an owning shard before request N did, or overtake it there while
//! N's append yielded, and a producer that never retried would find its records out of order
//! (idempotent producers would get OUT_OF_ORDER_SEQUENCE_NUMBER). Kafka applies a
//! connection's requests one at a time.
//!
//! The gate is Redpanda's two-stage produce: a request's *dispatch* stage (its batches handed
//! to the owning shards' logs, offsets assigned, or proposed to their Raft groups in order)
//! must finish before the next produce request of the connection starts its own; the second
//! stage (waiting until the batches are durable or replicated) overlaps freely. The turns form
//! a chain of latches: each produce request waits for its predecessor's latch and sets its
//! own once dispatched. Other APIs take no turn.

use std::cell::RefCell;

use ringlet_shard::sync::Latch;

/// The chain of produce turns of one connection (shard-local).
#[derive(Default)]
pub struct ProduceOrder {
    last: RefCell<Latch>,
}

impl ProduceOrder {
    pub fn new() -> Self {
        let first = Latch::new();
        first.set();
        Self {
            last: RefCell::new(first),
        }
    }

    /// The next produce request's turn, in the order the connection received them.
    pub fn next_turn(&self) -> ProduceTurn {
        let mine = Latch::new();
        let previous = self.last.replace(mine.clone());
        ProduceTurn { previous, mine }
    }
}

/// One produce request's place in its connection's order. Dropping it (the request ended,
/// failed or was cancelled) releases the next request.
pub struct ProduceTurn {
    previous: Latch,
    mine: Latch,
}

impl ProduceTurn {
    /// Completes once every earlier produce request of the connection has dispatched.
    pub async fn wait_for_previous(&self) {
        self.previous.wait().await;
    }

    /// This request's batches are in their logs (or Raft queues): the next may start.
    pub fn dispatched(&self) {
        self.mine.set();
    }
}

impl Drop for ProduceTurn {
    fn drop(&mut self) {
        self.mine.set();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_turn_is_free_and_each_waits_for_its_predecessor() {
        let order = ProduceOrder::new();
        let first = order.next_turn();
        let second = order.next_turn();
        let third = order.next_turn();
        assert!(first.previous.is_set());
        assert!(!second.previous.is_set());
        first.dispatched();
        assert!(second.previous.is_set());
        assert!(!third.previous.is_set());
        drop(second);
        assert!(third.previous.is_set());
    }
}

//! Rebuilding a partition's producer state when its log opens, and keeping snapshots.
//!
//! Recovery = the snapshot (if usable and not beyond the recovered log end) + a replay of
//! the batch headers from the snapshot offset (or the log start) to the log end: data
//! batches with a producer id update their producer as an append would (no checks, like
//! Kafka's replay), control batches end transactions. After a kill -9 the snapshot may be
//! old or missing; the replay covers the rest, so the state always matches the log.

use std::rc::Rc;

use ringlet_io::log::PartitionLog;
use ringlet_io::LogError;
use ringlet_protocol::record_batch::{parse_header, split_batches, RecordBatchHeader};

use super::producer_state::{IncomingBatch, ProducerStates};
use super::producer_state_snapshot as snapshot;
use super::txn_markers::parse_marker;
use super::Partition;

/// Bytes read per step of the replay.
const REPLAY_READ_BYTES: usize = 1 << 20;

/// The producer state of `log` as of its end.
pub async fn recover(log: &Rc<PartitionLog>) -> Result<ProducerStates, LogError> {
    let log_start = log.log_start_offset();
    let log_end = log.log_end_offset();
    let (mut offset, mut states) = match snapshot::load(log.dir()) {
        Some((offset, states)) if offset <= log_end => (offset.max(log_start), states),
        Some((offset, _)) => {
            tracing::info!(
                dir = %log.dir().display(),
                offset,
                log_end,
                "producer snapshot is beyond the log end; replaying the whole log"
            );
            (log_start, ProducerStates::default())
        }
        None => (log_start, ProducerStates::default()),
    };
    let replay_from = offset;
    while offset < log_end {
        let read = log.read(offset, REPLAY_READ_BYTES).await?;
        if read.data.is_empty() || read.next_offset <= offset {
            break;
        }
        replay(&mut states, &read.data);
        offset = read.next_offset;
    }
    states.forget_below(log_start);
    tracing::debug!(
        dir = %log.dir().display(),
        replay_from,
        log_end,
        "producer state recovered"
    );
    Ok(states)
}

/// Applies the headers of whole batches in `data` to `states`.
fn replay(states: &mut ProducerStates, data: &[u8]) {
    apply_producer_batches(states, &producer_batches(data));
}

/// The producer-relevant part of one stored batch: its header and, for a control batch,
/// the marker it carries.
#[derive(Debug, Clone)]
pub struct ProducerBatch {
    header: RecordBatchHeader,
    base_offset: i64,
    /// A transaction marker's `(commit, coordinator_epoch)`.
    pub marker: Option<(bool, i32)>,
}

/// The batches in `data` that carry a producer id, at their headers' offsets (batches read
/// back from the log).
fn producer_batches(data: &[u8]) -> Vec<ProducerBatch> {
    let Ok(ranges) = split_batches(data) else {
        tracing::warn!("producer state replay: unreadable batches skipped");
        return Vec::new();
    };
    ranges
        .into_iter()
        .filter_map(|range| {
            let batch = &data[range];
            let header = parse_header(batch).ok()?;
            ProducerBatch::of(&header, batch, header.base_offset)
        })
        .collect()
}

impl ProducerBatch {
    /// The producer-relevant part of `batch` (with its parsed `header`) at `base_offset`;
    /// `None` without a producer id, or for a control batch that is not a marker.
    pub fn of(header: &RecordBatchHeader, batch: &[u8], base_offset: i64) -> Option<Self> {
        if header.producer_id < 0 {
            return None;
        }
        let marker = if header.is_control() {
            Some(parse_marker(header, batch)?)
        } else {
            None
        };
        Some(ProducerBatch {
            header: *header,
            base_offset,
            marker,
        })
    }
}

/// Updates `states` as the appends of `batches` would (no checks, like Kafka's replay).
pub fn apply_producer_batches(states: &mut ProducerStates, batches: &[ProducerBatch]) {
    for ProducerBatch {
        header,
        base_offset,
        marker,
    } in batches
    {
        if let Some((commit, coordinator_epoch)) = marker {
            states.apply_marker(
                header.producer_id,
                header.producer_epoch,
                *commit,
                *coordinator_epoch,
                *base_offset,
                header.max_timestamp,
            );
        } else if let Some(incoming) = IncomingBatch::from_header(header) {
            states.apply(&incoming, *base_offset);
        }
    }
}

impl Partition {
    /// Removes the producer snapshot of a replica that is about to cut its log or restart it
    /// empty (the snapshot may count batches that are going away). Before the cut, so that a
    /// crash in between replays the whole log on open.
    pub fn forget_producer_snapshot(&self) -> Result<(), crate::error::BrokerError> {
        // Until the replay, no snapshot: the state may count batches the cut removes.
        self.producers_replay_pending();
        snapshot::remove(self.log().dir())?;
        self.snapshot_offset().set(-1);
        Ok(())
    }

    /// Replaces the producer state with a replay of the whole log (after
    /// [`Self::forget_producer_snapshot`] and the cut).
    pub async fn rebuild_producers(&self) -> Result<(), LogError> {
        let states = recover(self.log()).await?;
        *self.producers().borrow_mut() = states;
        self.producers_caught_up();
        Ok(())
    }

    /// Writes this partition's producer snapshot as of where its state ends (skipped when
    /// no producer ever wrote here, nothing was appended since the last one, or a replica's
    /// state awaits a replay).
    pub fn store_producer_snapshot(&self) {
        let states = self.producers().borrow();
        if states.entries().next().is_none() && states.aborted().entries().is_empty() {
            return;
        }
        let Some(offset) = self.producers_end() else {
            return;
        };
        if offset == self.snapshot_offset().get() {
            return;
        }
        match snapshot::store(self.log().dir(), &states, offset) {
            Ok(()) => self.snapshot_offset().set(offset),
            Err(err) => tracing::warn!(
                topic = self.topic(),
                partition = self.index(),
                error = %err,
                "cannot write producer snapshot"
            ),
        }
    }

    /// Forgets expired producers (`producer.id.expiration.ms`) and aborted-index entries
    /// below the log start.
    pub fn expire_producers(&self, now_ms: i64, expiration_ms: i64) {
        let log_start = self.log().log_start_offset();
        let mut states = self.producers().borrow_mut();
        let expired = states.expire(now_ms, expiration_ms);
        states.forget_below(log_start);
        if expired > 0 {
            tracing::debug!(
                topic = self.topic(),
                partition = self.index(),
                expired,
                "expired producers"
            );
        }
    }
}

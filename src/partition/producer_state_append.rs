//! Appends that go through the producer state: client batches and transaction markers.
//!
//! The shard is single-threaded but appends are async, so ordering is kept like this: the
//! batch is checked against the producer state and the state is updated with the offsets
//! the log will give it (`PartitionLog::next_offset`) with no await in between, and the
//! log assigns those offsets on the first poll of its append, which follows at once. So
//! the next batch of the same producer, even one that arrives while this one is still
//! being written, is checked against a state that already includes this one.

use bytes::BytesMut;
use ringlet_protocol::record_batch::parse_header;

use super::ops::storage_error;
use super::producer_state::{Checked, IncomingBatch};
use super::txn_markers::{control_batch, TxnMarker};
use super::{Appended, Partition};
use crate::error::BrokerError;

impl Partition {
    /// Appends one validated client batch: idempotent and transactional batches are checked
    /// against the producer state first; a duplicate gets its original offsets back and is
    /// not appended again.
    pub async fn append_produced(
        &self,
        records: BytesMut,
        now_ms: i64,
    ) -> Result<Appended, BrokerError> {
        let header =
            parse_header(&records).map_err(|err| BrokerError::CorruptMessage(err.to_string()))?;
        let Some(batch) = IncomingBatch::from_header(&header) else {
            return self
                .append(records, now_ms, false)
                .await
                .map_err(storage_error);
        };
        let first_offset = self.log().next_offset();
        let previous = {
            let mut producers = self.producers().borrow_mut();
            match producers.check(&batch)? {
                Checked::Duplicate(meta) => {
                    return Ok(Appended {
                        base_offset: meta.first_offset,
                        last_offset: meta.last_offset,
                        log_append_time_ms: -1,
                        log_start_offset: self.log().log_start_offset(),
                    })
                }
                Checked::Append => producers.apply(&batch, first_offset),
            }
        };
        match self.append(records, now_ms, false).await {
            Ok(appended) => {
                assert_eq!(
                    appended.base_offset, first_offset,
                    "the log assigned other offsets than the producer state recorded"
                );
                Ok(appended)
            }
            Err(err) => {
                self.producers()
                    .borrow_mut()
                    .undo(batch.producer_id, previous, first_offset);
                Err(storage_error(err))
            }
        }
    }

    /// Appends a COMMIT/ABORT marker for `marker`'s producer; returns the marker's offset
    /// (readable, not yet durable: the caller waits with `log().wait_durable`). Ends the
    /// producer's open transaction here.
    pub async fn append_marker(&self, marker: TxnMarker, now_ms: i64) -> Result<i64, BrokerError> {
        let offset = self.log().next_offset();
        {
            let mut producers = self.producers().borrow_mut();
            producers.check_marker(
                marker.producer_id,
                marker.producer_epoch,
                marker.coordinator_epoch,
            )?;
            producers.apply_marker(
                marker.producer_id,
                marker.producer_epoch,
                marker.commit,
                marker.coordinator_epoch,
                offset,
                now_ms,
            );
        }
        let batch = control_batch(&marker, now_ms);
        let appended = self
            .append(batch, now_ms, false)
            .await
            .map_err(storage_error)?;
        assert_eq!(
            appended.base_offset, offset,
            "the log assigned the marker another offset than the producer state recorded"
        );
        Ok(offset)
    }
}

//! Sans-io Kafka wire layer.

pub mod record_batch;

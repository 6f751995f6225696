//! The ordering probe: one librdkafka producer pipelining many requests over many partitions,
//! then every partition read back and checked to hold its records in send order.
//!
//! Record `i` goes to partition `i % partitions` with value `i`, so a partition's values must
//! rise strictly. The producer never retries (plain mode) or relies on the broker to keep its
//! sequences (idempotent and transactional modes): an out-of-order append shows up either as a
//! falling value on read-back or as a failed delivery (OUT_OF_ORDER_SEQUENCE_NUMBER).

use std::time::Duration;

use rdkafka::producer::{BaseRecord, Producer};

use super::kafka::{
    consume_to_high_watermarks, flush_and_check_all_acked, recording_producer, send_with_retry,
    CLIENT_TIMEOUT,
};

/// How the probe's producer is configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeMode {
    /// acks=1, idempotence off, no retries: only the broker can reorder.
    Plain,
    /// enable.idempotence=true (acks=all).
    Idempotent,
    /// A transactional producer committing every `records / 8` records.
    Transactional,
}

/// The probe's load.
pub struct Probe<'a> {
    pub bootstrap: &'a str,
    pub topic: &'a str,
    pub partitions: i32,
    pub records: usize,
    pub mode: ProbeMode,
}

impl Probe<'_> {
    /// Produces, reads back and asserts the order; panics with the first few violations.
    pub fn run(&self) {
        self.produce();
        let violations = self.read_back_violations();
        assert!(
            violations.is_empty(),
            "{:?} probe: {} records out of send order on {}, first: {:?}",
            self.mode,
            violations.len(),
            self.topic,
            &violations[..violations.len().min(5)]
        );
    }

    fn producer_settings(&self) -> Vec<(&'static str, String)> {
        let mut settings = vec![
            ("max.in.flight.requests.per.connection", "5".to_string()),
            ("linger.ms", "5".to_string()),
        ];
        match self.mode {
            ProbeMode::Plain => {
                settings.push(("acks", "1".into()));
                settings.push(("retries", "0".into()));
            }
            ProbeMode::Idempotent => settings.push(("enable.idempotence", "true".into())),
            ProbeMode::Transactional => {
                let id = format!("{}-txn", self.topic);
                settings.push(("transactional.id", id));
                settings.push(("enable.idempotence", "true".into()));
                settings.push(("transaction.timeout.ms", "300000".into()));
            }
        }
        settings
    }

    fn produce(&self) {
        let settings = self.producer_settings();
        let extra: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (producer, context) = recording_producer(self.bootstrap, &extra);
        let transactional = self.mode == ProbeMode::Transactional;
        let per_transaction = (self.records / 8).max(1);
        if transactional {
            producer
                .init_transactions(CLIENT_TIMEOUT)
                .expect("init_transactions");
        }
        for index in 0..self.records {
            if transactional && index % per_transaction == 0 {
                if index > 0 {
                    producer
                        .commit_transaction(CLIENT_TIMEOUT)
                        .expect("commit_transaction");
                }
                producer.begin_transaction().expect("begin_transaction");
            }
            let value = index.to_string();
            let partition = (index % self.partitions as usize) as i32;
            let record = BaseRecord::with_opaque_to(self.topic, index)
                .partition(partition)
                .payload(value.as_bytes());
            send_with_retry(&producer, record);
            producer.poll(Duration::ZERO);
        }
        if transactional {
            producer
                .commit_transaction(CLIENT_TIMEOUT)
                .expect("commit_transaction");
        }
        flush_and_check_all_acked(&producer, &context, self.records);
    }

    /// `(partition, offset, value, previous value)` of every record whose value is not above
    /// the one before it in its partition, plus a count check.
    fn read_back_violations(&self) -> Vec<(i32, i64, usize, usize)> {
        let by_partition = consume_to_high_watermarks(self.bootstrap, self.topic, self.partitions);
        let mut violations = Vec::new();
        let mut total = 0;
        for (partition, messages) in &by_partition {
            let mut previous: Option<usize> = None;
            for message in messages {
                use rdkafka::Message;
                let value: usize = message
                    .payload_view::<str>()
                    .and_then(Result::ok)
                    .and_then(|text| text.parse().ok())
                    .expect("a probe record's value is its index");
                if let Some(before) = previous.filter(|before| value <= *before) {
                    violations.push((*partition, message.offset(), value, before));
                }
                previous = Some(value);
            }
            total += messages.len();
        }
        assert_eq!(
            total, self.records,
            "every acknowledged record read back once"
        );
        violations
    }
}

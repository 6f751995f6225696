//! The broker's one error type and the ONE place that maps it to a Kafka error code.
//!
//! Handlers return `BrokerError` for a topic/partition/resource and put
//! [`BrokerError::code`] (and, where the response has one, `to_string()` as the message)
//! into the response body. Only framing/decoding failures close a connection; those are
//! handled in `server/connection.rs` and never become a `BrokerError`.

use kafka_protocol::ResponseError;
use ringlet_shard::BusError;

use crate::config::config_def::ConfigError;

/// Why a broker operation failed, with enough context to log it.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("This server does not host this topic-partition.")]
    UnknownTopicOrPartition,
    #[error("This server does not host this topic ID.")]
    UnknownTopicId,
    #[error("{0}")]
    InvalidTopic(String),
    #[error("Topic '{0}' already exists.")]
    TopicAlreadyExists(String),
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("{0}")]
    InvalidReplicationFactor(String),
    #[error("{0}")]
    InvalidReplicaAssignment(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidConfig(String),
    #[error("{0}")]
    PolicyViolation(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("Invalid required acks value {0}: must be -1, 0 or 1")]
    InvalidRequiredAcks(i16),
    #[error("{0}")]
    CorruptMessage(String),
    #[error("{0}")]
    InvalidRecord(String),
    /// INVALID_RECORD naming the refused records: `(batch_index, message)` each, for
    /// ProduceResponse v8+ `record_errors`.
    #[error("{message}")]
    RecordErrors {
        message: String,
        record_errors: Vec<(i32, String)>,
    },
    #[error("{0}")]
    MessageTooLarge(String),
    #[error("{0}")]
    RecordListTooLarge(String),
    #[error("The requested offset is not within the range of offsets maintained by the server.")]
    OffsetOutOfRange,
    #[error("The leader epoch in the request is older than the epoch on the broker.")]
    FencedLeaderEpoch,
    #[error("The leader epoch in the request is newer than the epoch on the broker.")]
    UnknownLeaderEpoch,
    #[error("The fetch session ID was not found.")]
    FetchSessionIdNotFound,
    #[error("The fetch session epoch is invalid.")]
    InvalidFetchSessionEpoch,
    #[error("This server is not the leader for that topic-partition.")]
    NotLeaderOrFollower,
    #[error("Messages are rejected since there are fewer in-sync replicas than required: {0}")]
    NotEnoughReplicas(String),
    #[error("The request timed out: {0}")]
    RequestTimedOut(String),
    #[error("This is not the correct controller for this cluster: {0}")]
    NotController(String),
    #[error("The topic was deleted or re-created while the request was in flight.")]
    StaleTopic,
    #[error("The version of API is not supported.")]
    UnsupportedVersion,
    #[error("The broker is shutting down.")]
    ShuttingDown,
    #[error("{0}")]
    OutOfOrderSequence(String),
    #[error("{0}")]
    InvalidProducerEpoch(String),
    #[error("{0}")]
    InvalidTxnState(String),
    #[error("{0}")]
    TransactionCoordinatorFenced(String),
    #[error("The coordinator is not available.")]
    CoordinatorNotAvailable,
    /// This node does not lead the coordinator's internal partition (clients look the
    /// coordinator up again).
    #[error("This is not the correct coordinator.")]
    NotCoordinator,
    /// This node leads the partition but has not caught up with its log yet.
    #[error("The coordinator is loading and hence can't process requests.")]
    CoordinatorLoadInProgress,
    #[error("cross-shard call failed: {0}")]
    Bus(#[from] BusError),
    #[error("storage error: {0}")]
    Storage(String),
    #[error("metadata store error: {0}")]
    Metadata(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// The broker could not start (bad environment, runtime failure); never sent to clients.
    #[error("{0}")]
    Startup(String),
}

impl BrokerError {
    /// An invariant of the broker did not hold (a bug, logged; the client sees
    /// UNKNOWN_SERVER_ERROR).
    pub fn internal(context: impl Into<String>) -> Self {
        BrokerError::Internal(context.into())
    }

    /// The Kafka error code for this error: the ONE mapping in the broker.
    pub fn code(&self) -> ResponseError {
        use BrokerError as E;
        use ResponseError as K;
        match self {
            E::UnknownTopicOrPartition => K::UnknownTopicOrPartition,
            E::UnknownTopicId => K::UnknownTopicId,
            E::InvalidTopic(_) => K::InvalidTopicException,
            E::TopicAlreadyExists(_) => K::TopicAlreadyExists,
            E::InvalidPartitions(_) => K::InvalidPartitions,
            E::InvalidReplicationFactor(_) => K::InvalidReplicationFactor,
            E::InvalidReplicaAssignment(_) => K::InvalidReplicaAssignment,
            E::InvalidRequest(_) => K::InvalidRequest,
            E::InvalidConfig(_) => K::InvalidConfig,
            E::PolicyViolation(_) => K::PolicyViolation,
            E::Config(err) if err.is_invalid_request() => K::InvalidRequest,
            E::Config(_) => K::InvalidConfig,
            E::InvalidRequiredAcks(_) => K::InvalidRequiredAcks,
            E::CorruptMessage(_) => K::CorruptMessage,
            E::InvalidRecord(_) | E::RecordErrors { .. } => K::InvalidRecord,
            E::MessageTooLarge(_) => K::MessageTooLarge,
            E::RecordListTooLarge(_) => K::RecordListTooLarge,
            E::OffsetOutOfRange => K::OffsetOutOfRange,
            E::FencedLeaderEpoch => K::FencedLeaderEpoch,
            E::UnknownLeaderEpoch => K::UnknownLeaderEpoch,
            E::FetchSessionIdNotFound => K::FetchSessionIdNotFound,
            E::InvalidFetchSessionEpoch => K::InvalidFetchSessionEpoch,
            // Retriable: the client refreshes metadata and tries again.
            E::NotLeaderOrFollower | E::StaleTopic | E::ShuttingDown | E::Bus(_) => {
                K::NotLeaderOrFollower
            }
            E::NotEnoughReplicas(_) => K::NotEnoughReplicas,
            E::RequestTimedOut(_) => K::RequestTimedOut,
            E::NotController(_) => K::NotController,
            E::UnsupportedVersion => K::UnsupportedVersion,
            E::OutOfOrderSequence(_) => K::OutOfOrderSequenceNumber,
            E::InvalidProducerEpoch(_) => K::InvalidProducerEpoch,
            E::InvalidTxnState(_) => K::InvalidTxnState,
            E::TransactionCoordinatorFenced(_) => K::TransactionCoordinatorFenced,
            E::CoordinatorNotAvailable => K::CoordinatorNotAvailable,
            E::NotCoordinator => K::NotCoordinator,
            E::CoordinatorLoadInProgress => K::CoordinatorLoadInProgress,
            E::Storage(_) => K::KafkaStorageError,
            E::Metadata(_) | E::Internal(_) | E::Startup(_) => K::UnknownServerError,
        }
    }

    /// The i16 wire value of [`BrokerError::code`].
    pub fn code_i16(&self) -> i16 {
        self.code().code()
    }
}

/// The wire code of an outcome: 0 for success.
pub fn code_of<T>(outcome: &Result<T, BrokerError>) -> i16 {
    outcome.as_ref().err().map_or(0, BrokerError::code_i16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_kafka() {
        assert_eq!(BrokerError::UnknownTopicOrPartition.code_i16(), 3);
        assert_eq!(BrokerError::InvalidTopic("x".into()).code_i16(), 17);
        assert_eq!(BrokerError::TopicAlreadyExists("x".into()).code_i16(), 36);
        assert_eq!(BrokerError::NotLeaderOrFollower.code_i16(), 6);
        assert_eq!(BrokerError::UnknownTopicId.code_i16(), 100);
        assert_eq!(
            BrokerError::Config(ConfigError::DuplicateKey("a".into())).code_i16(),
            42
        );
        assert_eq!(
            BrokerError::Config(ConfigError::UnknownName("a".into())).code_i16(),
            40
        );
        assert_eq!(code_of(&Ok::<(), BrokerError>(())), 0);
        assert_eq!(BrokerError::OutOfOrderSequence("x".into()).code_i16(), 45);
        assert_eq!(BrokerError::InvalidProducerEpoch("x".into()).code_i16(), 47);
        assert_eq!(BrokerError::InvalidTxnState("x".into()).code_i16(), 48);
        assert_eq!(
            BrokerError::TransactionCoordinatorFenced("x".into()).code_i16(),
            52
        );
        assert_eq!(BrokerError::CoordinatorNotAvailable.code_i16(), 15);
        assert_eq!(BrokerError::NotEnoughReplicas("x".into()).code_i16(), 19);
        assert_eq!(BrokerError::RequestTimedOut("x".into()).code_i16(), 7);
        assert_eq!(BrokerError::NotController("x".into()).code_i16(), 41);
    }
}

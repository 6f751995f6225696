//! What brokers ask the controller leader over the internal RPC (`crate::rpc` Request
//! frames), and its answers; also the one request brokers send each other's partition
//! leaders, a transaction coordinator's markers. JSON: the control plane is low-rate and JSON keeps it readable
//! in a packet capture.

use serde::{Deserialize, Serialize};

use super::leaders::LeaderReport;
use super::metadata_stm::{BrokerRegistration, MetadataCommand};
use crate::error::BrokerError;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControllerRequest {
    /// Append a command to the metadata log; answered once applied.
    Propose(MetadataCommand),
    /// Create a topic, its replicas placed by the controller leader on the brokers it
    /// knows to be alive (the leader has the freshest view of liveness).
    CreateTopic {
        name: String,
        topic_id: String,
        configs: super::topic_table::TopicConfigs,
        partitions: i32,
        replication_factor: i32,
    },
    /// Grow a topic to `new_total` partitions, placed like `CreateTopic`.
    CreatePartitions { name: String, new_total: i32 },
    /// A broker is alive; it reports the leadership of its replicas.
    Heartbeat {
        registration: BrokerRegistration,
        reports: Vec<LeaderReport>,
        /// Non-voters (observers) keep their metadata from the commands the leader hands
        /// them after this index; voters have the log themselves and send `None`.
        observer_applied: Option<u64>,
    },
    /// To a partition leader, from a transaction coordinator: write `marker` to these of
    /// its partitions (Kafka's WriteTxnMarkers between brokers).
    WriteTxnMarkers {
        marker: crate::partition::txn_markers::TxnMarker,
        partitions: Vec<(String, i32)>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControllerResponse {
    /// The command was applied (`None`) or refused by the state machine (a Kafka error).
    Proposed(Option<WireError>),
    /// Ask the controller leader instead (`None`: no leader known yet).
    NotLeader { leader: Option<i32> },
    Heartbeat {
        /// Brokers whose session is alive (not fenced).
        alive: Vec<i32>,
        /// Every broker's leadership reports, merged.
        reports: Vec<LeaderReport>,
        /// For observers: committed metadata commands `(index, encoded command)`.
        commands: Vec<(u64, Vec<u8>)>,
        /// The last metadata command the leader has applied: a broker that has applied this
        /// far has caught up with the cluster's metadata (see `node::note_metadata_progress`).
        #[serde(default)]
        metadata_applied: u64,
    },
    /// Per partition of a `WriteTxnMarkers`, in its order: written (`None`) or why not.
    TxnMarkers(Vec<Option<WireError>>),
}

/// A Kafka error code and message travelling between brokers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    pub code: i16,
    pub message: String,
}

impl WireError {
    pub fn from_error(err: &BrokerError) -> Self {
        WireError {
            code: err.code_i16(),
            message: err.to_string(),
        }
    }

    /// The broker error with this code (the codes the controller's state machine answers).
    pub fn into_error(self) -> BrokerError {
        let WireError { code, message } = self;
        match code {
            3 => BrokerError::UnknownTopicOrPartition,
            6 => BrokerError::NotLeaderOrFollower,
            7 => BrokerError::RequestTimedOut(message),
            17 => BrokerError::InvalidTopic(message),
            36 => BrokerError::TopicAlreadyExists(strip_topic_exists(&message)),
            37 => BrokerError::InvalidPartitions(message),
            38 => BrokerError::InvalidReplicationFactor(message),
            39 => BrokerError::InvalidReplicaAssignment(message),
            40 => BrokerError::InvalidConfig(message),
            41 => BrokerError::NotController(message),
            42 => BrokerError::InvalidRequest(message),
            _ => BrokerError::Metadata(format!("controller error {code}: {message}")),
        }
    }
}

/// `Topic 'x' already exists.` -> `x` (the error re-adds the wording).
fn strip_topic_exists(message: &str) -> String {
    message
        .strip_prefix("Topic '")
        .and_then(|rest| rest.strip_suffix("' already exists."))
        .unwrap_or(message)
        .to_string()
}

pub fn encode<T: Serialize>(value: &T) -> bytes::Bytes {
    bytes::Bytes::from(serde_json::to_vec(value).unwrap_or_default())
}

pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, BrokerError> {
    serde_json::from_slice(bytes)
        .map_err(|err| BrokerError::Metadata(format!("bad controller message: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_survive_the_trip() {
        let sent = BrokerError::TopicAlreadyExists("orders".into());
        let back = WireError::from_error(&sent).into_error();
        assert_eq!(back.to_string(), sent.to_string());
        assert_eq!(back.code_i16(), 36);
        let refused = BrokerError::InvalidReplicationFactor("too big".into());
        assert_eq!(WireError::from_error(&refused).into_error().code_i16(), 38);
        assert!(decode::<ControllerResponse>(b"garbage").is_err());
    }
}

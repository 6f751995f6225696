//! The broker's own configuration, resolved from flags, `RINGLET_*` environment variables,
//! an optional TOML file and defaults, in that order of precedence (flag > env > file >
//! default). Clap resolves flag > env; [`BrokerConfig::resolve`] lays that over the file.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cli::StartArgs;
use crate::coordinator::{CoordinatorArgs, CoordinatorConfig};
use crate::error::BrokerError;

pub const DEFAULT_DATA_DIR: &str = "./data";
pub const DEFAULT_LISTEN: &str = "0.0.0.0:9092";
pub const DEFAULT_NODE_ID: i32 = 1;
pub const DEFAULT_NUM_PARTITIONS: i32 = 1;
/// Kafka's `compression.type`: batches are stored in the codec the producer chose.
pub const DEFAULT_COMPRESSION_TYPE: &str = "producer";
/// Kafka's `socket.request.max.bytes`.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 100 * 1024 * 1024;
/// Kafka's `message.max.bytes` (the broker default of the topic's `max.message.bytes`).
pub const DEFAULT_MESSAGE_MAX_BYTES: usize = 1024 * 1024 + 12;
/// Kafka's `max.connections` is unlimited; a finite default protects file descriptors.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Requests one connection may have in flight (decoded, not yet answered).
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;
/// Kafka's `producer.id.expiration.ms`: a producer without an open transaction is forgotten
/// by a partition this long after its last write.
pub const DEFAULT_PRODUCER_ID_EXPIRATION_MS: i64 = 86_400_000;
/// Kafka's `log.retention.check.interval.ms` default (five minutes), in the flag's unit.
pub const DEFAULT_LOG_RETENTION_CHECK_INTERVAL_MS: u64 =
    crate::partition::RETENTION_CHECK_INTERVAL.as_millis() as u64;

/// Where clients should connect (Metadata's broker host and port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertised {
    pub host: String,
    pub port: u16,
}

/// The resolved broker configuration, shared read-only by all shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub advertise: Advertised,
    pub shards: usize,
    pub node_id: i32,
    pub num_partitions: i32,
    pub auto_create_topics: bool,
    pub max_request_bytes: usize,
    pub message_max_bytes: usize,
    pub max_connections: usize,
    pub max_in_flight_per_connection: usize,
    /// Group coordinator settings (`[groups]` in the file).
    pub coordinator: CoordinatorConfig,
    pub producer_id_expiration_ms: i64,
    /// Kafka `log.retention.check.interval.ms`.
    pub log_retention_check_interval: Duration,
    /// Budget of each shard's batch caches (`ringlet_io::log::set_shard_cache_budget_bytes`).
    pub log_cache_bytes_per_shard: usize,
    /// `None`: a single node (no `--seeds`).
    pub cluster: Option<super::cluster::ClusterConfig>,
    /// Kafka `default.replication.factor`.
    pub default_replication_factor: i16,
    /// Kafka `min.insync.replicas` (the broker default of the topic config).
    pub min_insync_replicas: i32,
    /// Kafka `compression.type` (the broker default of the topic config), validated.
    pub compression_type: String,
}

/// The optional TOML file: the same settings as the flags, in snake_case.
#[derive(Debug, Default, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub advertise: Option<String>,
    pub shards: Option<usize>,
    pub node_id: Option<i32>,
    pub num_partitions: Option<i32>,
    pub auto_create_topics: Option<bool>,
    pub max_request_bytes: Option<usize>,
    pub message_max_bytes: Option<usize>,
    pub max_connections: Option<usize>,
    pub max_in_flight_per_connection: Option<usize>,
    pub groups: Option<CoordinatorArgs>,
    pub producer_id_expiration_ms: Option<i64>,
    pub log_retention_check_interval_ms: Option<u64>,
    pub log_cache_bytes_per_shard: Option<usize>,
    pub rpc_listen: Option<String>,
    pub seeds: Option<String>,
    pub rack: Option<String>,
    pub default_replication_factor: Option<i16>,
    pub min_insync_replicas: Option<i32>,
    pub compression_type: Option<String>,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<Self, BrokerError> {
        let text = std::fs::read_to_string(path).map_err(|err| {
            BrokerError::InvalidConfig(format!("cannot read {}: {err}", path.display()))
        })?;
        Self::parse(&text)
            .map_err(|err| BrokerError::InvalidConfig(format!("{}: {err}", path.display())))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|err| err.to_string())
    }
}

impl BrokerConfig {
    /// Flags/env (already merged by clap) over the file over defaults; then validated.
    pub fn resolve(args: &StartArgs, file: &FileConfig) -> Result<Self, BrokerError> {
        let listen_text = pick(
            args.listen.clone(),
            file.listen.clone(),
            DEFAULT_LISTEN.into(),
        );
        let listen = parse_listen(&listen_text)?;
        let advertise = match args.advertise.clone().or_else(|| file.advertise.clone()) {
            Some(text) => parse_advertise(&text)?,
            None => default_advertise(listen),
        };
        let default_shards = ringlet_shard::runtime::default_shard_count();
        let node_id = pick(args.node_id, file.node_id, DEFAULT_NODE_ID);
        let cluster = super::cluster::ClusterConfig::resolve(
            args.rpc_listen.clone().or_else(|| file.rpc_listen.clone()),
            args.seeds.clone().or_else(|| file.seeds.clone()),
            args.rack.clone().or_else(|| file.rack.clone()),
        )?;
        let config = BrokerConfig {
            data_dir: pick(
                args.data_dir.clone(),
                file.data_dir.clone(),
                DEFAULT_DATA_DIR.into(),
            ),
            listen,
            advertise,
            shards: pick(args.shards, file.shards, default_shards),
            node_id,
            num_partitions: pick(
                args.num_partitions,
                file.num_partitions,
                DEFAULT_NUM_PARTITIONS,
            ),
            auto_create_topics: pick(args.auto_create_topics, file.auto_create_topics, true),
            max_request_bytes: pick(
                args.max_request_bytes,
                file.max_request_bytes,
                DEFAULT_MAX_REQUEST_BYTES,
            ),
            message_max_bytes: pick(
                args.message_max_bytes,
                file.message_max_bytes,
                DEFAULT_MESSAGE_MAX_BYTES,
            ),
            max_connections: pick(
                args.max_connections,
                file.max_connections,
                DEFAULT_MAX_CONNECTIONS,
            ),
            max_in_flight_per_connection: pick(
                args.max_in_flight_per_connection,
                file.max_in_flight_per_connection,
                DEFAULT_MAX_IN_FLIGHT,
            ),
            coordinator: CoordinatorConfig::resolve(&args.groups, file.groups.as_ref())?,
            producer_id_expiration_ms: pick(
                args.producer_id_expiration_ms,
                file.producer_id_expiration_ms,
                DEFAULT_PRODUCER_ID_EXPIRATION_MS,
            ),
            log_retention_check_interval: Duration::from_millis(pick(
                args.log_retention_check_interval_ms,
                file.log_retention_check_interval_ms,
                DEFAULT_LOG_RETENTION_CHECK_INTERVAL_MS,
            )),
            log_cache_bytes_per_shard: pick(
                args.log_cache_bytes_per_shard,
                file.log_cache_bytes_per_shard,
                ringlet_io::log::DEFAULT_SHARD_CACHE_BUDGET_BYTES,
            ),
            cluster,
            default_replication_factor: pick(
                args.default_replication_factor,
                file.default_replication_factor,
                1,
            ),
            min_insync_replicas: pick(args.min_insync_replicas, file.min_insync_replicas, 1),
            compression_type: super::topic_config::validate_override(
                super::topic_config::COMPRESSION_TYPE,
                Some(&pick(
                    args.compression_type.clone(),
                    file.compression_type.clone(),
                    DEFAULT_COMPRESSION_TYPE.into(),
                )),
            )
            .map_err(|err| BrokerError::InvalidConfig(format!("compression-type: {err}")))?,
        };
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), BrokerError> {
        let fail = |msg: String| Err(BrokerError::InvalidConfig(msg));
        if self.shards == 0 || self.shards > 1024 {
            return fail(format!("shards must be in 1..=1024, got {}", self.shards));
        }
        if self.node_id < 0 {
            return fail(format!("node-id must be >= 0, got {}", self.node_id));
        }
        if self.num_partitions < 1 {
            return fail(format!(
                "num-partitions must be >= 1, got {}",
                self.num_partitions
            ));
        }
        if self.max_request_bytes < 1024 || self.max_request_bytes > i32::MAX as usize {
            return fail(format!(
                "max-request-bytes must be in 1024..=2147483647, got {}",
                self.max_request_bytes
            ));
        }
        if self.message_max_bytes == 0 || self.message_max_bytes > i32::MAX as usize {
            return fail(format!(
                "message-max-bytes must be in 1..=2147483647, got {}",
                self.message_max_bytes
            ));
        }
        if self.max_connections == 0 {
            return fail("max-connections must be >= 1".into());
        }
        if self.max_in_flight_per_connection == 0 {
            return fail("max-in-flight-per-connection must be >= 1".into());
        }
        if self.default_replication_factor < 1 {
            return fail(format!(
                "default-replication-factor must be >= 1, got {}",
                self.default_replication_factor
            ));
        }
        if self.min_insync_replicas < 1 {
            return fail(format!(
                "min-insync-replicas must be >= 1, got {}",
                self.min_insync_replicas
            ));
        }
        if self.log_retention_check_interval.is_zero() {
            return fail("log-retention-check-interval-ms must be >= 1".into());
        }
        if self.producer_id_expiration_ms < 1 {
            return fail(format!(
                "producer-id-expiration-ms must be >= 1, got {}",
                self.producer_id_expiration_ms
            ));
        }
        Ok(())
    }

    /// `data_dir/meta`: the topic table, the cluster id.
    pub fn meta_dir(&self) -> PathBuf {
        self.data_dir.join("meta")
    }
}

/// Flag or environment (merged by clap) over the file over the default.
pub(crate) fn pick<T>(flag_or_env: Option<T>, file: Option<T>, default: T) -> T {
    flag_or_env.or(file).unwrap_or(default)
}

fn parse_listen(text: &str) -> Result<SocketAddr, BrokerError> {
    let mut addrs = text.to_socket_addrs().map_err(|err| {
        BrokerError::InvalidConfig(format!("listen address {text:?} is not HOST:PORT: {err}"))
    })?;
    addrs.next().ok_or_else(|| {
        BrokerError::InvalidConfig(format!("listen address {text:?} resolves to nothing"))
    })
}

fn parse_advertise(text: &str) -> Result<Advertised, BrokerError> {
    let invalid =
        || BrokerError::InvalidConfig(format!("advertise address {text:?} is not HOST:PORT"));
    let (host, port) = text.rsplit_once(':').ok_or_else(invalid)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().map_err(|_| invalid())?;
    if host.is_empty() || port == 0 {
        return Err(invalid());
    }
    Ok(Advertised {
        host: host.to_string(),
        port,
    })
}

/// The listen address, except that a wildcard (0.0.0.0 or ::) is not an address a client
/// can connect to: then advertise 127.0.0.1 (a local single-node broker, the common case;
/// set --advertise for clients on other machines).
pub fn default_advertise(listen: SocketAddr) -> Advertised {
    let ip = if listen.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        listen.ip()
    };
    Advertised {
        host: ip.to_string(),
        port: listen.port(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(argv: &[&str]) -> StartArgs {
        let mut full = vec!["ringlet", "start"];
        full.extend_from_slice(argv);
        match crate::cli::Cli::try_parse_from(full)
            .expect("parses")
            .command
        {
            crate::cli::Command::Start(args) => args,
        }
    }

    #[test]
    fn defaults_when_nothing_is_given() {
        let config = BrokerConfig::resolve(&args(&[]), &FileConfig::default()).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.listen, "0.0.0.0:9092".parse().unwrap());
        assert_eq!(
            config.advertise,
            Advertised {
                host: "127.0.0.1".into(),
                port: 9092
            }
        );
        assert_eq!(config.num_partitions, 1);
        assert!(config.auto_create_topics);
        assert_eq!(config.max_request_bytes, 100 * 1024 * 1024);
        assert!(config.shards >= 1);
    }

    #[test]
    fn node_id_zero_joins_a_cluster_and_a_negative_id_is_named() {
        let zero = args(&[
            "--node-id",
            "0",
            "--rpc-listen",
            "127.0.0.1:9192",
            "--seeds",
            "0@127.0.0.1:9192,1@127.0.0.1:9193,2@127.0.0.1:9194",
        ]);
        let config = BrokerConfig::resolve(&zero, &FileConfig::default()).expect("node 0 joins");
        assert_eq!(config.node_id, 0);
        let cluster = config.cluster.expect("a cluster");
        assert!(cluster.is_voter(0));
        let negative = args(&["--node-id=-1"]);
        match BrokerConfig::resolve(&negative, &FileConfig::default()) {
            Err(BrokerError::InvalidConfig(message)) => {
                assert_eq!(message, "node-id must be >= 0, got -1")
            }
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn flag_beats_file_and_file_beats_default() {
        let file = FileConfig::parse(
            "num_partitions = 3\nnode_id = 7\nlisten = \"127.0.0.1:19092\"\nauto_create_topics = false\n",
        )
        .unwrap();
        let config = BrokerConfig::resolve(&args(&["--num-partitions", "5"]), &file).unwrap();
        assert_eq!(config.num_partitions, 5, "flag wins over file");
        assert_eq!(config.node_id, 7, "file wins over default");
        assert!(!config.auto_create_topics);
        assert_eq!(
            config.advertise,
            Advertised {
                host: "127.0.0.1".into(),
                port: 19092
            }
        );
    }

    #[test]
    fn group_settings_come_from_flags_and_the_groups_table() {
        let file =
            FileConfig::parse("[groups]\noffsets_topic_num_partitions = 4\ngroup_max_size = 9\n")
                .unwrap();
        let argv = [
            "--group-initial-rebalance-delay-ms",
            "0",
            "--group-max-size",
            "5",
        ];
        let config = BrokerConfig::resolve(&args(&argv), &file).unwrap();
        assert_eq!(config.coordinator.offsets_topic_partitions, 4);
        assert_eq!(config.coordinator.group.initial_rebalance_delay_ms, 0);
        assert_eq!(config.coordinator.group.max_size, 5, "flag wins over file");
        assert!(FileConfig::parse("[groups]\ngroup_max_sise = 9\n").is_err());
    }

    #[test]
    fn log_cache_budget_comes_from_the_flag_or_the_file() {
        let default = BrokerConfig::resolve(&args(&[]), &FileConfig::default()).unwrap();
        assert_eq!(default.log_cache_bytes_per_shard, 256 << 20);
        let file = FileConfig::parse("log_cache_bytes_per_shard = 1000\n").unwrap();
        let from_file = BrokerConfig::resolve(&args(&[]), &file).unwrap();
        assert_eq!(from_file.log_cache_bytes_per_shard, 1000);
        let argv = ["--log-cache-bytes-per-shard", "0"];
        let from_flag = BrokerConfig::resolve(&args(&argv), &file).unwrap();
        assert_eq!(
            from_flag.log_cache_bytes_per_shard, 0,
            "flag wins over file"
        );
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        assert!(FileConfig::parse("num_partitons = 3").is_err());
    }

    #[test]
    fn advertise_parses_host_and_port() {
        let config = BrokerConfig::resolve(
            &args(&["--advertise", "kafka.example:29092"]),
            &FileConfig::default(),
        )
        .unwrap();
        assert_eq!(
            config.advertise,
            Advertised {
                host: "kafka.example".into(),
                port: 29092
            }
        );
        assert!(
            BrokerConfig::resolve(&args(&["--advertise", "nohost"]), &FileConfig::default())
                .is_err()
        );
        assert!(
            BrokerConfig::resolve(&args(&["--advertise", "h:0"]), &FileConfig::default()).is_err()
        );
    }

    #[test]
    fn invalid_values_are_refused() {
        assert!(BrokerConfig::resolve(&args(&["--shards", "0"]), &FileConfig::default()).is_err());
        assert!(
            BrokerConfig::resolve(&args(&["--num-partitions", "0"]), &FileConfig::default())
                .is_err()
        );
        assert!(
            BrokerConfig::resolve(&args(&["--listen", "nonsense"]), &FileConfig::default())
                .is_err()
        );
    }
}

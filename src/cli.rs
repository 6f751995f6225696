//! Command line: `ringlet start [OPTIONS]`. Every option can also come from a `RINGLET_*`
//! environment variable or from the `--config` TOML file (same names in snake_case);
//! precedence is flag > environment > file > default.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "ringlet",
    version,
    about = "Ringlet: a Kafka-compatible streaming broker, thread-per-core on io_uring",
    long_about = "Ringlet: a Kafka-compatible streaming broker, thread-per-core on io_uring.\n\n\
                  Unmodified Kafka clients connect to it. Logging goes to stderr and is \
                  filtered with RUST_LOG (default: info)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the broker until SIGINT or SIGTERM.
    Start(StartArgs),
}

/// `ringlet start` options. `None` means "not given as a flag or environment variable".
#[derive(Debug, Default, Clone, Args)]
pub struct StartArgs {
    /// TOML file with any of the options below (snake_case keys, e.g. `data_dir = "/var/lib/ringlet"`).
    #[arg(long, env = "RINGLET_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Directory for partition logs and metadata [default: ./data].
    #[arg(long, env = "RINGLET_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Address to accept Kafka clients on [default: 0.0.0.0:9092].
    #[arg(long, env = "RINGLET_LISTEN", value_name = "HOST:PORT")]
    pub listen: Option<String>,

    /// Address given to clients in Metadata responses [default: the listen address, or
    /// 127.0.0.1:PORT when listening on 0.0.0.0 or ::]. Set it when clients run elsewhere.
    #[arg(long, env = "RINGLET_ADVERTISE", value_name = "HOST:PORT")]
    pub advertise: Option<String>,

    /// Number of shards (one thread pinned per CPU) [default: all available CPUs].
    #[arg(long, env = "RINGLET_SHARDS", value_name = "N")]
    pub shards: Option<usize>,

    /// This broker's node id (Kafka `node.id`), 0 or more [default: 1].
    #[arg(long, env = "RINGLET_NODE_ID", value_name = "N")]
    pub node_id: Option<i32>,

    /// Partitions of automatically created topics and of CreateTopics with -1 (Kafka
    /// `num.partitions`) [default: 1].
    #[arg(long, env = "RINGLET_NUM_PARTITIONS", value_name = "N")]
    pub num_partitions: Option<i32>,

    /// Create unknown topics when a client asks for their metadata (Kafka
    /// `auto.create.topics.enable`) [default: true].
    #[arg(long, env = "RINGLET_AUTO_CREATE_TOPICS", value_name = "BOOL", action = clap::ArgAction::Set)]
    pub auto_create_topics: Option<bool>,

    /// Largest request a client may send, in bytes; larger ones close the connection (Kafka
    /// `socket.request.max.bytes`) [default: 104857600].
    #[arg(long, env = "RINGLET_MAX_REQUEST_BYTES", value_name = "BYTES")]
    pub max_request_bytes: Option<usize>,

    /// Largest record batch a topic accepts unless its `max.message.bytes` says otherwise
    /// (Kafka `message.max.bytes`) [default: 1048588].
    #[arg(long, env = "RINGLET_MESSAGE_MAX_BYTES", value_name = "BYTES")]
    pub message_max_bytes: Option<usize>,

    /// Most client connections open at once across all shards; more are closed at accept
    /// [default: 10000].
    #[arg(long, env = "RINGLET_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,

    /// Most requests one connection may have in flight (pipelining) [default: 64].
    #[arg(long, env = "RINGLET_MAX_IN_FLIGHT_PER_CONNECTION", value_name = "N")]
    pub max_in_flight_per_connection: Option<usize>,

    #[command(flatten)]
    pub groups: crate::coordinator::CoordinatorArgs,
    /// How long a partition remembers an idempotent producer without an open transaction
    /// after its last write (Kafka `producer.id.expiration.ms`) [default: 86400000].
    #[arg(long, env = "RINGLET_PRODUCER_ID_EXPIRATION_MS", value_name = "MS")]
    pub producer_id_expiration_ms: Option<i64>,

    /// How often each shard applies `retention.ms` / `retention.bytes` (Kafka
    /// `log.retention.check.interval.ms`) [default: 300000].
    #[arg(
        long,
        env = "RINGLET_LOG_RETENTION_CHECK_INTERVAL_MS",
        value_name = "MS"
    )]
    pub log_retention_check_interval_ms: Option<u64>,

    /// Bytes of recently written record batches each shard keeps in memory for fetches
    /// (shared by the shard's partitions; least recently written go first) [default: 268435456].
    #[arg(long, env = "RINGLET_LOG_CACHE_BYTES_PER_SHARD", value_name = "BYTES")]
    pub log_cache_bytes_per_shard: Option<usize>,

    /// Address other brokers connect to (Raft and controller traffic). Required with --seeds.
    #[arg(long, env = "RINGLET_RPC_LISTEN", value_name = "HOST:PORT")]
    pub rpc_listen: Option<String>,

    /// The controller voters' internal addresses, `ID@HOST:PORT,...` with ids 0 or more
    /// (KRaft's `controller.quorum.voters`). Without it the broker runs alone, unreplicated.
    #[arg(long, env = "RINGLET_SEEDS", value_name = "ID@HOST:PORT,...")]
    pub seeds: Option<String>,

    /// This broker's rack (Kafka `broker.rack`): replicas of a partition spread across racks.
    #[arg(long, env = "RINGLET_RACK", value_name = "RACK")]
    pub rack: Option<String>,

    /// Replication factor of topics created with -1 and of auto-created topics (Kafka
    /// `default.replication.factor`) [default: 1].
    #[arg(long, env = "RINGLET_DEFAULT_REPLICATION_FACTOR", value_name = "N")]
    pub default_replication_factor: Option<i16>,

    /// Fewest in-sync replicas for an acks=all write unless a topic's `min.insync.replicas`
    /// says otherwise (Kafka `min.insync.replicas`) [default: 1].
    #[arg(long, env = "RINGLET_MIN_INSYNC_REPLICAS", value_name = "N")]
    pub min_insync_replicas: Option<i32>,

    /// Codec of every topic that does not set `compression.type`: `producer` keeps batches as
    /// produced; `uncompressed`, `gzip`, `snappy`, `lz4` or `zstd` recompresses batches in any
    /// other codec (Kafka `compression.type`) [default: producer].
    #[arg(long, env = "RINGLET_COMPRESSION_TYPE", value_name = "CODEC")]
    pub compression_type: Option<String>,
}

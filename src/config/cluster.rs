//! Multi-broker settings: `--rpc-listen`, `--seeds`, `--rack` and the replication defaults.
//!
//! A broker started without `--seeds` is a single node (no controller, no replication: every
//! topic is local). With `--seeds ID@HOST:PORT,...` it joins a cluster whose controller voters
//! (Raft group 0) are the seeds; a broker whose id is among them is a voter itself. The seeds'
//! addresses are the voters' internal (`--rpc-listen`) addresses, as KRaft's
//! `controller.quorum.voters` are.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use super::seed_address::SeedAddress;
use crate::error::BrokerError;

/// Kafka's `broker.session.timeout.ms` (KRaft): a broker silent this long is fenced.
pub const DEFAULT_BROKER_SESSION_TIMEOUT_MS: u64 = 9_000;
/// Kafka's `broker.heartbeat.interval.ms` (KRaft).
pub const DEFAULT_BROKER_HEARTBEAT_INTERVAL_MS: u64 = 2_000;
/// One Raft tick. Elections start after 10-20 ticks without a leader (1-2 s), leaders
/// heartbeat every 2 ticks.
pub const DEFAULT_RAFT_TICK_MS: u64 = 100;

/// One controller voter: its node id and internal address (a name is resolved by
/// `seed_resolver`, on its own thread, for as long as the broker runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    pub node_id: i32,
    pub address: SeedAddress,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// Where this broker accepts other brokers' connections.
    pub rpc_listen: SocketAddr,
    /// The controller voters.
    pub seeds: Vec<Seed>,
    /// Kafka `broker.rack`.
    pub rack: Option<String>,
    pub broker_session_timeout: Duration,
    pub broker_heartbeat_interval: Duration,
    pub raft_tick: Duration,
}

impl ClusterConfig {
    /// `None` without seeds (a single node). `rpc_listen` is required with seeds. Any node id
    /// `BrokerConfig` accepts (>= 0, as Kafka's) may join.
    pub fn resolve(
        rpc_listen: Option<String>,
        seeds: Option<String>,
        rack: Option<String>,
    ) -> Result<Option<Self>, BrokerError> {
        let Some(seeds) = seeds.filter(|s| !s.trim().is_empty()) else {
            return Ok(None);
        };
        let seeds = parse_seeds(&seeds)?;
        let rpc_listen = rpc_listen.ok_or_else(|| {
            BrokerError::InvalidConfig("--seeds needs --rpc-listen HOST:PORT".into())
        })?;
        let rpc_listen = resolve_addr("rpc-listen", &rpc_listen)?;
        Ok(Some(ClusterConfig {
            rpc_listen,
            seeds,
            rack: rack.filter(|r| !r.is_empty()),
            broker_session_timeout: Duration::from_millis(DEFAULT_BROKER_SESSION_TIMEOUT_MS),
            broker_heartbeat_interval: Duration::from_millis(DEFAULT_BROKER_HEARTBEAT_INTERVAL_MS),
            raft_tick: Duration::from_millis(DEFAULT_RAFT_TICK_MS),
        }))
    }

    /// The voters' node ids.
    pub fn voter_ids(&self) -> Vec<i32> {
        self.seeds.iter().map(|seed| seed.node_id).collect()
    }

    pub fn is_voter(&self, node_id: i32) -> bool {
        self.seeds.iter().any(|seed| seed.node_id == node_id)
    }

    /// The cluster id every member reports: derived from the voter ids, so the brokers of
    /// one cluster agree without a formatting step (KRaft's `kafka-storage format`).
    pub fn cluster_id(&self) -> String {
        let mut ids = self.voter_ids();
        ids.sort_unstable();
        let text = format!("ringlet-cluster:{ids:?}");
        let low = crc32c::crc32c(text.as_bytes());
        let high = crc32c::crc32c_append(low, b"high");
        let mut bytes = [0u8; 16];
        for (i, chunk) in bytes.chunks_mut(4).enumerate() {
            let word = crc32c::crc32c_append(if i % 2 == 0 { low } else { high }, &[i as u8]);
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        crate::cluster::topic_store::base64url_no_pad(&bytes)
    }
}

/// `0@127.0.0.1:9192,1@127.0.0.1:9193`: ids unique and >= 0 (Kafka's broker ids start at 0).
pub fn parse_seeds(text: &str) -> Result<Vec<Seed>, BrokerError> {
    let mut seeds: Vec<Seed> = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let seed = parse_seed(part)?;
        if seeds.iter().any(|known| known.node_id == seed.node_id) {
            return Err(BrokerError::InvalidConfig(format!(
                "seed id {} is given twice",
                seed.node_id
            )));
        }
        seeds.push(seed);
    }
    if seeds.is_empty() {
        return Err(BrokerError::InvalidConfig("--seeds lists no voter".into()));
    }
    Ok(seeds)
}

/// One `ID@HOST:PORT`; each error names the part that is wrong.
fn parse_seed(part: &str) -> Result<Seed, BrokerError> {
    let invalid = |reason: String| BrokerError::InvalidConfig(reason);
    let (id, addr) = part.split_once('@').ok_or_else(|| {
        invalid(format!(
            "seed '{part}' is not ID@HOST:PORT (e.g. 0@10.0.0.1:9192)"
        ))
    })?;
    let node_id: i32 = id
        .trim()
        .parse()
        .map_err(|_| invalid(format!("node id '{id}' in seed '{part}' is not a number")))?;
    if node_id < 0 {
        return Err(invalid(format!(
            "node id {node_id} in seed '{part}' must be >= 0"
        )));
    }
    let address = SeedAddress::parse(addr).map_err(|reason| {
        invalid(format!(
            "seed '{part}': address '{addr}' is not HOST:PORT: {reason}"
        ))
    })?;
    Ok(Seed { node_id, address })
}

fn resolve_addr(what: &str, text: &str) -> Result<SocketAddr, BrokerError> {
    let invalid = |reason: String| {
        BrokerError::InvalidConfig(format!(
            "{what}: address '{text}' is not HOST:PORT: {reason}"
        ))
    };
    text.to_socket_addrs()
        .map_err(|err| invalid(err.to_string()))?
        .next()
        .ok_or_else(|| invalid("resolves to nothing".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse_and_bad_ones_are_refused() {
        let seeds = parse_seeds("1@127.0.0.1:9192, 2@127.0.0.1:9193").unwrap();
        assert_eq!(seeds.len(), 2);
        assert_eq!(seeds[1].node_id, 2);
        assert_eq!(
            seeds[1].address.current(),
            Some("127.0.0.1:9193".parse().unwrap())
        );
        let named = parse_seeds("1@ringlet-0.ringlet:9192").unwrap();
        assert_eq!(named[0].address.text(), "ringlet-0.ringlet:9192");
        for bad in [
            "",
            "1",
            "x@127.0.0.1:1",
            "1@a:b",
            "1@127.0.0.1:1,1@127.0.0.1:2",
        ] {
            assert!(parse_seeds(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn node_id_zero_is_a_seed_as_in_kafka() {
        let seeds = parse_seeds("0@127.0.0.1:9192,1@127.0.0.1:9193,2@127.0.0.1:9194").unwrap();
        let ids: Vec<i32> = seeds.iter().map(|seed| seed.node_id).collect();
        assert_eq!(ids, vec![0, 1, 2]);
    }

    fn refusal(seeds: &str) -> String {
        match parse_seeds(seeds) {
            Err(BrokerError::InvalidConfig(message)) => message,
            other => panic!("{seeds:?}: expected InvalidConfig, got {other:?}"),
        }
    }

    #[test]
    fn each_refusal_says_what_is_wrong() {
        assert_eq!(
            refusal("-1@127.0.0.1:9192"),
            "node id -1 in seed '-1@127.0.0.1:9192' must be >= 0"
        );
        assert_eq!(
            refusal("x"),
            "seed 'x' is not ID@HOST:PORT (e.g. 0@10.0.0.1:9192)"
        );
        assert_eq!(
            refusal("one@127.0.0.1:9192"),
            "node id 'one' in seed 'one@127.0.0.1:9192' is not a number"
        );
        assert_eq!(
            refusal("0@127.0.0.1:1,0@127.0.0.1:2"),
            "seed id 0 is given twice"
        );
        assert!(refusal("0@127.0.0.1")
            .starts_with("seed '0@127.0.0.1': address '127.0.0.1' is not HOST:PORT"));
        assert_eq!(refusal(" , "), "--seeds lists no voter");
    }

    #[test]
    fn no_seeds_is_a_single_node_and_seeds_need_rpc_listen() {
        assert_eq!(ClusterConfig::resolve(None, None, None).unwrap(), None);
        assert!(ClusterConfig::resolve(None, Some("1@127.0.0.1:1".into()), None).is_err());
        let config = ClusterConfig::resolve(
            Some("127.0.0.1:9193".into()),
            Some("1@127.0.0.1:9192,2@127.0.0.1:9193".into()),
            Some("rack-a".into()),
        )
        .unwrap()
        .unwrap();
        assert!(config.is_voter(2) && !config.is_voter(3) && !config.is_voter(0));
        assert_eq!(config.rack.as_deref(), Some("rack-a"));
        let other_order = ClusterConfig::resolve(
            Some("127.0.0.1:9192".into()),
            Some("2@127.0.0.1:7,1@127.0.0.1:8".into()),
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            config.cluster_id(),
            other_order.cluster_id(),
            "same voters, same id"
        );
        assert_eq!(config.cluster_id().len(), 22);
    }
}

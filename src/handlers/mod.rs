//! The API registry: ONE table that drives both request dispatch and the ApiVersions
//! response, so the two cannot disagree (redpanda `handlers/`).
//!
//! # Adding a handler
//!
//! Write `src/handlers/<api>.rs` with:
//!
//! ```ignore
//! pub const API_KEY: ApiKey = ApiKey::Xxx;
//! pub const MIN_VERSION: i16 = ..;
//! pub const MAX_VERSION: i16 = ..;
//! pub async fn handle(ctx: &RequestContext, request: XxxRequest) -> R
//! ```
//!
//! where `R` is any of `XxxResponse`, `Option<XxxResponse>` (None = send no response, e.g.
//! Produce acks=0), `Result<XxxResponse, BrokerError>` or `Result<Option<XxxResponse>,
//! BrokerError>`. Put per-topic/partition errors in the response body
//! (`BrokerError::code`); return `Err` only when no response can be built at all (the
//! connection is then closed with the error logged). `ctx.state` is the shard's
//! `Rc<ShardState>`, `ctx.api_version` the version to answer at.
//!
//! Then add ONE line `module => RequestKindVariant,` to the `handlers!` table below.
//! A compile-time check makes sure the module's `API_KEY` is the one of its request type and
//! that its version range lies within what kafka-protocol can decode.

use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};

use crate::error::BrokerError;
use crate::server::RequestContext;

/// The broker and broker-logger config resources (a helper of the config APIs).
pub mod broker_resources;
/// Metadata's view of a cluster (a helper of `metadata`, not an API of its own).
pub mod metadata_cluster;

/// A served API and its version range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRange {
    pub api_key: ApiKey,
    pub min_version: i16,
    pub max_version: i16,
}

/// What a handler may return; see the module docs.
pub trait IntoReply<T> {
    fn into_reply(self) -> Result<Option<T>, BrokerError>;
}

impl<T> IntoReply<T> for T {
    fn into_reply(self) -> Result<Option<T>, BrokerError> {
        Ok(Some(self))
    }
}

impl<T> IntoReply<T> for Option<T> {
    fn into_reply(self) -> Result<Option<T>, BrokerError> {
        Ok(self)
    }
}

impl<T> IntoReply<T> for Result<T, BrokerError> {
    fn into_reply(self) -> Result<Option<T>, BrokerError> {
        self.map(Some)
    }
}

impl<T> IntoReply<T> for Result<Option<T>, BrokerError> {
    fn into_reply(self) -> Result<Option<T>, BrokerError> {
        self
    }
}

macro_rules! handlers {
    ($($module:ident => $variant:ident,)*) => {
        $(pub mod $module;)*

        /// Every API this broker serves, in table order.
        pub const REGISTRY: &[ApiRange] = &[$(ApiRange {
            api_key: $module::API_KEY,
            min_version: $module::MIN_VERSION,
            max_version: $module::MAX_VERSION,
        },)*];

        $(const _: () = {
            assert!(
                $module::API_KEY as i16 == ApiKey::$variant as i16,
                concat!(stringify!($module), "::API_KEY is not the key of ", stringify!($variant))
            );
            assert!($module::MIN_VERSION <= $module::MAX_VERSION);
        };)*

        /// Runs the handler registered for `body`.
        pub(crate) async fn dispatch(
            ctx: &RequestContext,
            body: RequestKind,
        ) -> Result<Option<ResponseKind>, BrokerError> {
            match body {
                $(RequestKind::$variant(request) => {
                    IntoReply::into_reply($module::handle(ctx, request).await)
                        .map(|reply| reply.map(ResponseKind::$variant))
                })*
                // Unreachable: decode_request only lets registered keys through.
                _ => Err(BrokerError::internal("request for an API without a handler")),
            }
        }
    };
}

handlers! {
    api_versions => ApiVersions,
    metadata => Metadata,
    describe_cluster => DescribeCluster,
    create_topics => CreateTopics,
    delete_topics => DeleteTopics,
    create_partitions => CreatePartitions,
    describe_configs => DescribeConfigs,
    alter_configs => AlterConfigs,
    incremental_alter_configs => IncrementalAlterConfigs,
    produce => Produce,
    fetch => Fetch,
    list_offsets => ListOffsets,
    delete_records => DeleteRecords,
    offset_for_leader_epoch => OffsetForLeaderEpoch,
    find_coordinator => FindCoordinator,
    join_group => JoinGroup,
    sync_group => SyncGroup,
    heartbeat => Heartbeat,
    leave_group => LeaveGroup,
    offset_commit => OffsetCommit,
    offset_fetch => OffsetFetch,
    describe_groups => DescribeGroups,
    list_groups => ListGroups,
    delete_groups => DeleteGroups,
    offset_delete => OffsetDelete,
    init_producer_id => InitProducerId,
    write_txn_markers => WriteTxnMarkers,
    describe_producers => DescribeProducers,
    add_partitions_to_txn => AddPartitionsToTxn,
    add_offsets_to_txn => AddOffsetsToTxn,
    end_txn => EndTxn,
    txn_offset_commit => TxnOffsetCommit,
    describe_transactions => DescribeTransactions,
    list_transactions => ListTransactions,
}

/// Lookups over [`REGISTRY`] for the connection and ApiVersions.
pub mod registry {
    use super::{ApiKey, REGISTRY};

    /// The served version range of `api_key`, or `None` when it is not served.
    pub fn supported(api_key: ApiKey) -> Option<(i16, i16)> {
        REGISTRY
            .iter()
            .find(|entry| entry.api_key == api_key)
            .map(|entry| (entry.min_version, entry.max_version))
    }

    /// Every served `(key, min, max)`.
    pub fn ranges() -> Vec<(ApiKey, i16, i16)> {
        REGISTRY
            .iter()
            .map(|entry| (entry.api_key, entry.min_version, entry.max_version))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_key_is_registered_once() {
        let keys: HashSet<i16> = REGISTRY.iter().map(|e| e.api_key as i16).collect();
        assert_eq!(keys.len(), REGISTRY.len());
    }

    #[test]
    fn version_ranges_are_decodable_by_kafka_protocol() {
        for entry in REGISTRY {
            let valid = entry.api_key.valid_versions();
            assert!(
                valid.min <= entry.min_version && entry.max_version <= valid.max,
                "{:?} serves {}..={} but kafka-protocol decodes {}..={}",
                entry.api_key,
                entry.min_version,
                entry.max_version,
                valid.min,
                valid.max
            );
        }
    }

    #[test]
    fn the_basics_are_served() {
        for key in [ApiKey::ApiVersions, ApiKey::Metadata] {
            assert!(registry::supported(key).is_some(), "{key:?}");
        }
        assert_eq!(registry::supported(ApiKey::ApiVersions), Some((0, 4)));
    }
}

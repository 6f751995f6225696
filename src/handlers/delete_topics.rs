//! DeleteTopics (API key 20), v1-v6.
//!
//! v1-v5 name topics (`topic_names`); v6 names each topic by name *or* by topic id (`topics`).
//! A name that does not exist is UNKNOWN_TOPIC_OR_PARTITION, an id that does not exist is
//! UNKNOWN_TOPIC_ID, and the internal topics (`__consumer_offsets`, `__transaction_state`) are
//! protected: deleting one would lose every group's offsets, so it is INVALID_TOPIC_EXCEPTION
//! (Kafka's answer to writing an internal topic from a client). The topic table removes the
//! topic; its partition logs are deleted by the partition managers of the owning shards.
//!
//! v0 is not offered: kafka-protocol 0.18 starts DeleteTopics at v1.

use std::collections::HashSet;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{ApiKey, DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::config::topic_name::is_internal_topic;
use crate::error::BrokerError;
use crate::server::RequestContext;
use crate::state::ShardState;

pub const API_KEY: ApiKey = ApiKey::DeleteTopics;
pub const MIN_VERSION: i16 = 1;
pub const MAX_VERSION: i16 = 6;

/// How the request names one topic.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TopicRef {
    Name(String),
    Id(Uuid),
    /// v6 entry with neither (or both) set.
    Invalid {
        name: Option<String>,
        id: Uuid,
    },
}

pub async fn handle(ctx: &RequestContext, request: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let state: &ShardState = &ctx.state;
    let mut response = DeleteTopicsResponse::default();
    let refs = topic_refs(&request);
    let duplicates = duplicated_refs(&refs);
    for topic in refs {
        let (name, id, outcome) = match &topic {
            _ if duplicates.contains(&topic) => {
                let (name, id) = match &topic {
                    TopicRef::Name(name) => (Some(name.clone()), Uuid::nil()),
                    TopicRef::Id(id) => (None, *id),
                    TopicRef::Invalid { name, id } => (name.clone(), *id),
                };
                let err = BrokerError::InvalidRequest("Duplicate topic in request.".to_string());
                (name, id, Err(err))
            }
            TopicRef::Name(name) => {
                let id = crate::cluster::topic_id(state, name).unwrap_or(Uuid::nil());
                (Some(name.clone()), id, delete_named(state, name).await)
            }
            TopicRef::Id(id) => match crate::cluster::topic_name_by_id(state, *id) {
                Some(name) => {
                    let outcome = delete_named(state, &name).await;
                    (Some(name), *id, outcome)
                }
                None => (None, *id, Err(BrokerError::UnknownTopicId)),
            },
            TopicRef::Invalid { name, id } => (name.clone(), *id, Err(invalid_ref())),
        };
        response.responses.push(topic_result(name, id, outcome));
    }
    response
}

async fn delete_named(state: &ShardState, name: &str) -> Result<(), BrokerError> {
    check_deletable(name)?;
    crate::cluster::delete_topic(state, name).await
}

/// Every topic of the request, in order, from whichever field the version uses.
pub fn topic_refs(request: &DeleteTopicsRequest) -> Vec<TopicRef> {
    let by_name = request
        .topic_names
        .iter()
        .map(|name| TopicRef::Name(name.to_string()));
    let by_state =
        request
            .topics
            .iter()
            .map(|topic| match (&topic.name, topic.topic_id.is_nil()) {
                (Some(name), true) => TopicRef::Name(name.to_string()),
                (None, false) => TopicRef::Id(topic.topic_id),
                (name, _) => TopicRef::Invalid {
                    name: name.as_ref().map(|n| n.to_string()),
                    id: topic.topic_id,
                },
            });
    by_name.chain(by_state).collect()
}

/// Topics named more than once: Kafka refuses each of their entries with INVALID_REQUEST.
pub fn duplicated_refs(refs: &[TopicRef]) -> HashSet<TopicRef> {
    let mut seen = HashSet::new();
    refs.iter()
        .filter(|topic| !matches!(topic, TopicRef::Invalid { .. }) && !seen.insert(*topic))
        .cloned()
        .collect()
}

/// Refuses to delete the internal topics.
pub fn check_deletable(name: &str) -> Result<(), BrokerError> {
    if is_internal_topic(name) {
        return Err(BrokerError::InvalidTopic(format!(
            "Topic {name} is an internal topic and cannot be deleted"
        )));
    }
    Ok(())
}

fn invalid_ref() -> BrokerError {
    BrokerError::InvalidRequest(
        "Each topic must be named by exactly one of a name or a non-zero topic id".to_string(),
    )
}

pub fn topic_result(
    name: Option<String>,
    topic_id: Uuid,
    outcome: Result<(), BrokerError>,
) -> DeletableTopicResult {
    let mut result = DeletableTopicResult::default();
    result.name = name.map(|n| TopicName(StrBytes::from_string(n)));
    result.topic_id = topic_id;
    match outcome {
        Ok(()) => {
            result.error_code = 0;
            result.error_message = None;
        }
        Err(err) => {
            result.error_code = err.code_i16();
            result.error_message = Some(StrBytes::from_string(err.to_string()));
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
    use kafka_protocol::ResponseError;

    fn name(n: &str) -> TopicName {
        TopicName(StrBytes::from_string(n.to_string()))
    }

    fn state(n: Option<&str>, id: u128) -> DeleteTopicState {
        let mut topic = DeleteTopicState::default();
        topic.name = n.map(name);
        topic.topic_id = Uuid::from_u128(id);
        topic
    }

    #[test]
    fn old_versions_name_topics_and_v6_names_or_ids() {
        let mut request = DeleteTopicsRequest::default();
        request.topic_names = vec![name("a"), name("b")];
        assert_eq!(
            topic_refs(&request),
            vec![TopicRef::Name("a".into()), TopicRef::Name("b".into())]
        );
        let mut v6 = DeleteTopicsRequest::default();
        v6.topics = vec![
            state(Some("a"), 0),
            state(None, 7),
            state(None, 0),
            state(Some("b"), 9),
        ];
        let refs = topic_refs(&v6);
        assert_eq!(refs[0], TopicRef::Name("a".into()));
        assert_eq!(refs[1], TopicRef::Id(Uuid::from_u128(7)));
        assert!(matches!(refs[2], TopicRef::Invalid { .. }));
        assert!(matches!(refs[3], TopicRef::Invalid { .. }));
    }

    #[test]
    fn duplicates_are_found_by_name_and_by_id() {
        let refs = vec![
            TopicRef::Name("a".into()),
            TopicRef::Id(Uuid::from_u128(1)),
            TopicRef::Name("a".into()),
            TopicRef::Id(Uuid::from_u128(1)),
            TopicRef::Name("b".into()),
        ];
        let duplicates = duplicated_refs(&refs);
        assert_eq!(duplicates.len(), 2);
        assert!(!duplicates.contains(&TopicRef::Name("b".into())));
    }

    #[test]
    fn internal_topics_are_protected() {
        let err = check_deletable("__consumer_offsets").unwrap_err();
        assert_eq!(err.code_i16(), ResponseError::InvalidTopicException.code());
        assert!(check_deletable("orders").is_ok());
    }

    #[test]
    fn results_carry_name_id_and_error() {
        let ok = topic_result(Some("a".into()), Uuid::from_u128(3), Ok(()));
        assert_eq!((ok.error_code, ok.error_message), (0, None));
        assert_eq!(ok.topic_id, Uuid::from_u128(3));
        let missing = topic_result(None, Uuid::from_u128(5), Err(BrokerError::UnknownTopicId));
        assert_eq!(missing.error_code, ResponseError::UnknownTopicId.code());
        assert_eq!(missing.name, None);
        let bad = topic_result(None, Uuid::nil(), Err(invalid_ref()));
        assert_eq!(bad.error_code, ResponseError::InvalidRequest.code());
    }
}

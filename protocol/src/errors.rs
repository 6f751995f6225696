//! Kafka error codes.
//!
//! The `kafka-protocol` crate carries Kafka's error table (`ResponseError`, with `.code()` and
//! `is_retriable()`); the broker maps its own errors onto it in exactly one place.

pub use kafka_protocol::ResponseError;

/// The code of a successful partition/topic/request.
pub const NONE: i16 = 0;

/// Error code for an optional error: 0 when there is none.
pub fn code_of(error: Option<ResponseError>) -> i16 {
    error.map_or(NONE, |e| e.code())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_kafka_table() {
        assert_eq!(code_of(None), 0);
        assert_eq!(code_of(Some(ResponseError::OffsetOutOfRange)), 1);
        assert_eq!(code_of(Some(ResponseError::CorruptMessage)), 2);
        assert_eq!(code_of(Some(ResponseError::UnknownTopicOrPartition)), 3);
        assert_eq!(code_of(Some(ResponseError::MessageTooLarge)), 10);
        assert_eq!(code_of(Some(ResponseError::UnsupportedVersion)), 35);
    }
}

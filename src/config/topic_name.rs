//! Kafka's rules for topic names (`org.apache.kafka.common.internals.Topic`).
//!
//! A name is 1..=249 characters of `[a-zA-Z0-9._-]` and is not `.` or `..` (names become
//! directory names). `.` and `_` collide in metric names, so Kafka refuses a topic whose name
//! differs from an existing one only by those two characters.

/// Longest legal topic name (255 minus room for a partition suffix on disk).
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Topics Kafka treats as internal: clients may neither delete them nor produce to them.
pub const INTERNAL_TOPICS: &[&str] = &["__consumer_offsets", "__transaction_state"];

/// Checks a topic name; the error is the message for INVALID_TOPIC_EXCEPTION.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is illegal, it can't be empty".to_string());
    }
    if name == "." || name == ".." {
        return Err("Topic name cannot be \".\" or \"..\"".to_string());
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return Err(format!(
            "Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME_LEN} characters, \
             topic name: {name}"
        ));
    }
    let legal = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-';
    if !name.chars().all(legal) {
        return Err(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII \
             alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// True for `__consumer_offsets` and `__transaction_state`.
pub fn is_internal_topic(name: &str) -> bool {
    INTERNAL_TOPICS.contains(&name)
}

/// The name with `.` replaced by `_`: two topics with the same collision key collide.
pub fn collision_key(name: &str) -> String {
    name.replace('.', "_")
}

/// The existing topic `name` would collide with, if any (same name excluded: that is
/// TOPIC_ALREADY_EXISTS, not a collision).
pub fn colliding_topic<'a>(
    name: &str,
    existing: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let key = collision_key(name);
    existing
        .into_iter()
        .find(|other| *other != name && collision_key(other) == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legal_names() {
        for name in ["a", "orders", "Orders-2024_v1.x", "__consumer_offsets"] {
            assert_eq!(validate_topic_name(name), Ok(()), "{name}");
        }
        assert!(validate_topic_name(&"x".repeat(MAX_TOPIC_NAME_LEN)).is_ok());
    }

    #[test]
    fn illegal_names() {
        let too_long = "x".repeat(MAX_TOPIC_NAME_LEN + 1);
        for name in [
            "",
            ".",
            "..",
            "a b",
            "a/b",
            "tópico",
            "a\0",
            too_long.as_str(),
        ] {
            assert!(validate_topic_name(name).is_err(), "{name:?}");
        }
    }

    #[test]
    fn dots_and_underscores_collide() {
        let existing = ["a_b", "c"];
        assert_eq!(colliding_topic("a.b", existing), Some("a_b"));
        assert_eq!(colliding_topic("a_b", existing), None);
        assert_eq!(colliding_topic("c.d", existing), None);
    }

    #[test]
    fn internal_topics() {
        assert!(is_internal_topic("__consumer_offsets"));
        assert!(!is_internal_topic("__consumer_offsets2"));
    }
}

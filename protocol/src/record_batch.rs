//! Kafka record batch (magic 2) view: header fields, CRC32C check, offset rebasing.

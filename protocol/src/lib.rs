//! Sans-io Kafka wire layer.

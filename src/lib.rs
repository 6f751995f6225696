//! Ringlet broker.

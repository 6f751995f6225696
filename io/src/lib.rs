//! Storage and kernel-facing code.

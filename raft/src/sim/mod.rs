//! Simulation: a lock-step single-group harness ([`cluster`]) and the
//! fault-injecting multi-group world with its invariant checker ([`world`],
//! [`checker`]). Pure code, usable from tests, examples and benchmarks.

pub mod checker;
pub mod cluster;
pub mod workload;
pub mod world;

pub use world::{run_seed, SimConfig, SimReport, World};

//! Load generator and micro-benchmarks live here.

pub mod harness;

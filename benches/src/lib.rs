//! Load generator and micro-benchmarks live here.

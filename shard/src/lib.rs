//! Thread-per-core runtime for Ringlet. It knows nothing about Kafka.
//!
//! The model (see DESIGN.md): one [`glommio`] `LocalExecutor` per shard, pinned to one CPU
//! (cycling over the online CPUs when there are more shards than CPUs). Each shard owns a
//! shard-local state `S` behind an `Rc`; it never crosses threads. Shards talk through the
//! [`Bus`]: a typed, bounded, one-hop request with a one-shot reply, where the request is a
//! `Send` closure that runs on the target shard against that shard's `Rc<S>`.
//!
//! * [`runtime`]: start N shards, build each shard's state, run its bus pump, ordered stop.
//! * [`bus`]: `invoke_on`, `invoke_on_all`, plus [`RuntimeHandle`] for plain (non-shard)
//!   threads such as `main` driving an ordered shutdown.
//! * [`table`]: the pure partition -> shard placement function.
//! * [`task`], [`net`]: the only runtime primitives the broker uses (spawn, sleep, timeout,
//!   periodic tasks, TCP), so the broker crate never names glommio itself.
//! * [`memlock`], [`signals`]: process setup (RLIMIT_MEMLOCK for io_uring, SIGINT/SIGTERM).
//! * [`panic_mark`]: which code's panic a caller catches, for the broker's panic hook; shard
//!   work (bus jobs, spawned tasks) is never such code.

pub mod bus;
pub mod error;
pub mod memlock;
pub mod net;
pub mod panic_mark;
pub mod runtime;
pub mod signal;
pub mod signals;
pub mod sync;
pub mod table;
pub mod task;

pub use bus::{Bus, BusError, RuntimeHandle};
pub use error::ShardError;
pub use runtime::{Runtime, RuntimeConfig, ShardContext};
pub use table::{shard_for, ShardId};

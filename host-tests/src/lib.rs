//! A wasmtime host that implements the proxy-wasm ABI 0.2.1 (and the WASI
//! calls a Rust module makes) closely enough to run the real compiled
//! `license_gate.wasm` the way Envoy does, with a clock, shared data and
//! stats that tests control and inspect.

pub mod host;
pub mod process;
pub mod vm;
pub mod wire;

pub use host::{LocalResponse, LogLine};
pub use process::{CallRecord, Process, Scripted};
pub use vm::{Reply, Vm, compile, compile_metered};

//! Tests that drive the real compiled `license_gate.wasm` through the
//! wasmtime proxy-wasm host. One test binary, so the module compiles once.

mod cache_and_stats;
mod config_errors;
mod dry_run;
mod forwarding;
mod routing;
mod support;
mod verification;

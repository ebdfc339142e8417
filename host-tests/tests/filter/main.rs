//! Tests that drive the real compiled `license_gate.wasm` through the
//! wasmtime proxy-wasm host. One test binary, so the module compiles once.

// Table-driven tests spell a case's shape inline, next to its rows.
#![allow(clippy::type_complexity)]

mod bypasses;
mod cache_and_stats;
mod config_errors;
mod dry_run;
mod forwarding;
mod lifecycle;
mod routing;
mod scenarios;
mod support;
mod verification;

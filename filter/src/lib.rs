//! license-gate: a proxy-wasm HTTP filter that enforces signed license JWTs
//! and the feature entitlements they carry.
//!
//! Everything but [`proxy`] is plain Rust with no host calls, so it builds and
//! unit-tests natively; [`proxy`] is the thin proxy-wasm adapter, built only
//! for `wasm32`.

pub mod binding;
pub mod cache;
pub mod config;
pub mod crypto;
pub mod decision;
pub mod error;
pub mod json_path;
pub mod keys;
pub mod license;
pub mod plans;
pub mod reason;
pub mod remote;
pub mod request;
pub mod revocation;
pub mod routes;
pub mod runtime;
/// The configuration schema, a crate of its own (see its documentation).
pub use license_gate_schema as schema;
pub mod stats;
pub mod strict_json;
#[cfg(test)]
mod testing;
pub mod token_source;
pub mod verify;

#[cfg(target_arch = "wasm32")]
mod proxy;

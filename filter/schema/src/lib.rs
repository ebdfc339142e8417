//! The plugin configuration's JSON schema: the product's public contract,
//! as plain serde types that depend on nothing else. Each module of
//! license-gate compiles its own part (`keys`, `routes`, `plans`, …);
//! `config` puts them together.
//!
//! Unknown fields are errors everywhere: a typo must not silently switch a
//! protection off. Where exactly one of several shapes is allowed, a serde
//! enum says so.
//!
//! A crate of its own for the module's size: serde's derived parsers are
//! generic code, compiled where they are instantiated. Instantiated here,
//! by [`parse`] and [`parse_jwks_document`], they are built at this
//! crate's opt-level "z" (the workspace's release profile) instead of at
//! the filter's opt-level 3; they run once per configuration or fetched
//! document, never per request (issue 13, BENCHMARKS.md).

use std::collections::BTreeMap;

use serde::Deserialize;

/// Parses a plugin configuration. Not inlined: its callers are built for
/// speed and would pull the parser back into their own opt-level.
#[inline(never)]
pub fn parse(bytes: &[u8]) -> Result<RawConfig, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// A JWK as license-gate reads it (RFC 7517 §4, RFC 7518 §6, RFC 8037 §2):
/// the members of the key types it verifies with. Other members (`x5c`,
/// `key_ops`, `k`, …) are ignored, as a JWKS may carry them.
#[derive(Deserialize)]
pub struct RawJwk {
    pub kty: String,
    #[serde(rename = "use")]
    pub public_key_use: Option<String>,
    pub alg: Option<String>,
    pub kid: Option<String>,
    pub crv: Option<String>,
    pub x: Option<String>,
    pub y: Option<String>,
    pub n: Option<String>,
    pub e: Option<String>,
}

/// Reads one key of a JWKS (see [`parse`] for why not inlined).
#[inline(never)]
pub fn parse_jwk(value: &serde_json::Value) -> Result<RawJwk, serde_json::Error> {
    RawJwk::deserialize(value)
}

/// Parses a fetched JWKS document (see [`parse`] for why not inlined).
#[inline(never)]
pub fn parse_jwks_document(bytes: &[u8]) -> Result<RawJwks, serde_json::Error> {
    serde_json::from_slice(bytes)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub issuers: Vec<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
    pub algorithms: Option<Vec<String>>,
    #[serde(default)]
    pub keys: RawKeys,
    #[serde(default)]
    pub hmac_secrets: Vec<RawHmacSecret>,
    pub token: Option<Vec<RawTokenSource>>,
    #[serde(default = "default_max_token_bytes")]
    pub max_token_bytes: usize,
    #[serde(default = "default_clock_skew")]
    pub clock_skew_seconds: u64,
    #[serde(default)]
    pub grace_period_seconds: u64,
    #[serde(default)]
    pub claims: RawClaims,
    #[serde(default)]
    pub plans: BTreeMap<String, RawPlan>,
    /// The plan of a license whose token names none.
    pub default_plan: Option<String>,
    #[serde(default)]
    pub rules: Vec<RawRule>,
    #[serde(default)]
    pub default: DefaultAction,
    #[serde(default)]
    pub forward: RawForward,
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub cache: RawCache,
    #[serde(default)]
    pub revocation: RawRevocation,
    pub binding: Option<RawBinding>,
}

fn default_max_token_bytes() -> usize {
    8192
}

fn default_clock_skew() -> u64 {
    60
}

/// `cache`; defaults come from `cache::CacheSettings`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawCache {
    pub max_entries: Option<u32>,
    pub ttl_seconds: Option<u64>,
    pub negative_ttl_seconds: Option<u64>,
    pub local_entries: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawKeys {
    pub jwks: Option<RawJwks>,
    #[serde(default)]
    pub pem: Vec<RawPem>,
    /// A JWKS fetched from an Envoy cluster and refreshed.
    pub remote: Option<RawRemote>,
}

/// A JWKS, inline (`keys.jwks`) or fetched. Each key stays raw JSON here,
/// compiled on its own: an inline key that is refused is reported with its
/// index, and one unusable fetched key does not refuse the others.
#[derive(Deserialize)]
pub struct RawJwks {
    pub keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPem {
    pub kid: Option<String>,
    pub alg: String,
    pub key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHmacSecret {
    pub kid: Option<String>,
    pub alg: String,
    /// The shared secret, base64 (standard alphabet, padded or not).
    pub secret_base64: String,
}

/// A document fetched through an Envoy cluster (`keys.remote`,
/// `revocation.remote`); each kind has its own defaults.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRemote {
    pub cluster: String,
    pub path: String,
    pub authority: Option<String>,
    pub refresh_seconds: Option<u64>,
    pub timeout_ms: Option<u64>,
    pub max_stale_seconds: Option<u64>,
    pub max_bytes: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTokenSource {
    pub header: Option<String>,
    pub prefix: Option<String>,
    pub query: Option<String>,
    pub cookie: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawClaims {
    pub features: String,
    pub plan: String,
    pub tenant: String,
    pub license_id: String,
}

impl Default for RawClaims {
    fn default() -> Self {
        RawClaims {
            features: "features".into(),
            plan: "plan".into(),
            tenant: "tenant".into(),
            license_id: "jti".into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlan {
    #[serde(default)]
    pub inherits: Vec<String>,
    #[serde(default)]
    pub features: Vec<String>,
    /// Enforced by Envoy's rate limiters, per tenant (see `plans.rs`).
    pub quota: Option<RawQuota>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuota {
    pub requests_per_second: u32,
    pub burst: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    #[serde(rename = "match")]
    pub matcher: RawMatch,
    pub license: Option<LicenseMode>,
    pub require: Option<RawRequire>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    pub prefix: Option<String>,
    pub path_separated_prefix: Option<String>,
    pub exact: Option<String>,
    pub methods: Option<Vec<String>>,
    pub host: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequire {
    #[serde(default)]
    pub all: Vec<String>,
    #[serde(default)]
    pub any: Vec<String>,
}

#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LicenseMode {
    /// The route needs a valid license (the default).
    Required,
    /// The route is open: no token is looked at.
    None,
    /// The route is closed to everyone.
    Deny,
}

#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum DefaultAction {
    #[default]
    Require,
    Allow,
    Deny,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawForward {
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub strip_token: bool,
}

#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Enforce,
    DryRun,
}

/// `revocation`: license ids that are no longer honoured.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRevocation {
    #[serde(default)]
    pub ids: Vec<String>,
    /// A signed revocation list fetched from an Envoy cluster.
    pub remote: Option<RawRemote>,
    #[serde(default)]
    pub on_stale: OnStale,
}

/// What a stale remote revocation list means.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnStale {
    /// Keep enforcing the last good list.
    #[default]
    Keep,
    /// Refuse every license (`keys_unavailable`, 503) until a fresh list arrives.
    Deny,
}

/// `binding`: licenses bound to the deployments they may run in.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBinding {
    #[serde(default = "default_binding_claim")]
    pub claim: String,
    #[serde(default)]
    pub identity: RawIdentity,
    #[serde(default)]
    pub required: bool,
}

fn default_binding_claim() -> String {
    "deployments".into()
}

/// Where the gateway's own identity comes from: `"node_id"`,
/// `"node_cluster"`, `{"metadata": KEY}` or `{"value": TEXT}`.
#[derive(Deserialize, Clone, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum RawIdentity {
    /// Envoy's `--service-node` (`node.id`).
    #[default]
    NodeId,
    /// Envoy's `--service-cluster` (`node.cluster`).
    NodeCluster,
    /// A key of the node metadata (Istio: `CLUSTER_ID`, `NAMESPACE`, …).
    Metadata(String),
    /// A fixed identity written in the configuration.
    Value(String),
}

//! The plugin configuration: its JSON schema (the product's public contract)
//! and its compilation, once per `on_configure`, into ready-to-use structures.
//!
//! Every problem is a [`ConfigError`] that names the field, so Envoy's log
//! shows one line an admin can act on.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;

use crate::cache::{CacheSettings, VerdictCache};
use crate::json_path::error_path;
use crate::keys::KeySet;
use crate::plans::Plans;
use crate::routes::RouteTable;
use crate::token_source::TokenSource;
use crate::verify::{ClaimNames, Verifier};

/// A configuration problem: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError { field: field.into(), message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "license-gate: config: {}: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}

// ---------------------------------------------------------------------------
// The JSON schema. Unknown fields are errors everywhere: a typo must not
// silently switch a protection off.
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawCache {
    pub max_entries: u32,
    pub ttl_seconds: u64,
    pub negative_ttl_seconds: u64,
    pub local_entries: u32,
}

impl Default for RawCache {
    fn default() -> Self {
        let d = CacheSettings::default();
        RawCache {
            max_entries: d.max_entries,
            ttl_seconds: d.ttl_seconds,
            negative_ttl_seconds: d.negative_ttl_seconds,
            local_entries: d.local_entries,
        }
    }
}

/// Upper bound on cache slots: each holds at most a few hundred bytes.
const MAX_CACHE_ENTRIES: u32 = 1_000_000;
/// Upper bound on each VM's local slots: they cost memory in every worker.
const MAX_LOCAL_ENTRIES: u32 = 100_000;

fn default_max_token_bytes() -> usize {
    8192
}

fn default_clock_skew() -> u64 {
    60
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawKeys {
    pub jwks: Option<RawJwks>,
    #[serde(default)]
    pub pem: Vec<RawPem>,
}

/// Each key stays raw JSON here so that one bad key is reported with its index.
#[derive(Deserialize)]
pub(crate) struct RawJwks {
    pub keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPem {
    pub kid: Option<String>,
    pub alg: String,
    pub key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHmacSecret {
    pub kid: Option<String>,
    pub alg: String,
    /// The shared secret, base64 (standard alphabet, padded or not).
    pub secret_base64: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTokenSource {
    pub header: Option<String>,
    pub prefix: Option<String>,
    pub query: Option<String>,
    pub cookie: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct RawClaims {
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
pub(crate) struct RawPlan {
    #[serde(default)]
    pub inherits: Vec<String>,
    #[serde(default)]
    pub features: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    #[serde(rename = "match")]
    pub matcher: RawMatch,
    pub license: Option<LicenseMode>,
    pub require: Option<RawRequire>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMatch {
    pub prefix: Option<String>,
    pub path_separated_prefix: Option<String>,
    pub exact: Option<String>,
    pub methods: Option<Vec<String>>,
    pub host: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRequire {
    #[serde(default)]
    pub all: Vec<String>,
    #[serde(default)]
    pub any: Vec<String>,
}

#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum LicenseMode {
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
pub(crate) struct RawForward {
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

// ---------------------------------------------------------------------------
// The compiled configuration.
// ---------------------------------------------------------------------------

/// Headers the filter owns on the way upstream. Whatever a client sends under
/// these names is removed before the filter sets its own.
pub const STATUS_HEADER: &str = "x-license-status";
pub const DRY_RUN_HEADER: &str = "x-license-dry-run";

/// One upstream header set from a license claim.
#[derive(Debug, Clone)]
pub struct ForwardHeader {
    pub header: String,
    pub claim: String,
}

#[derive(Debug)]
pub struct Config {
    pub verifier: Verifier,
    pub sources: Vec<TokenSource>,
    pub max_token_bytes: usize,
    pub routes: RouteTable,
    pub forward: Vec<ForwardHeader>,
    pub strip_token: bool,
    pub mode: Mode,
    pub cache: VerdictCache,
}

impl Config {
    /// Parses and compiles the plugin configuration.
    pub fn from_json(bytes: &[u8]) -> Result<Config, ConfigError> {
        let raw: RawConfig = serde_json::from_slice(bytes).map_err(|e| {
            let path = error_path(bytes, &e);
            let field = if path.is_empty() { "config".to_string() } else { path };
            ConfigError::new(field, strip_position(&e.to_string()))
        })?;
        Config::compile(raw, bytes)
    }

    fn compile(raw: RawConfig, bytes: &[u8]) -> Result<Config, ConfigError> {
        if raw.max_token_bytes == 0 {
            return Err(ConfigError::new("max_token_bytes", "must be greater than 0"));
        }
        let keys = KeySet::compile(&raw)?;
        let plans = Plans::compile(&raw.plans)?;
        let forward = compile_forward(&raw.forward)?;
        let claims = ClaimNames {
            features: non_empty("claims.features", raw.claims.features)?,
            plan: non_empty("claims.plan", raw.claims.plan)?,
            tenant: non_empty("claims.tenant", raw.claims.tenant)?,
            license_id: non_empty("claims.license_id", raw.claims.license_id)?,
            forwarded: forward.iter().map(|f| f.claim.clone()).collect(),
        };
        let verifier = Verifier::new(
            &raw.issuers,
            &raw.audiences,
            keys,
            plans,
            claims,
            raw.clock_skew_seconds,
            raw.grace_period_seconds,
        )?;
        let sources = match &raw.token {
            None => TokenSource::defaults(),
            Some(list) if list.is_empty() => {
                return Err(ConfigError::new("token", "must name at least one source"));
            }
            Some(list) => list
                .iter()
                .enumerate()
                .map(|(i, s)| TokenSource::compile(&format!("token[{i}]"), s))
                .collect::<Result<_, _>>()?,
        };
        let routes = RouteTable::compile(&raw.rules, raw.default)?;
        let cache = compile_cache(&raw.cache, bytes)?;
        Ok(Config {
            verifier,
            sources,
            max_token_bytes: raw.max_token_bytes,
            routes,
            forward,
            strip_token: raw.forward.strip_token,
            mode: raw.mode,
            cache,
        })
    }

    /// Every header name a client must not be able to set on its own.
    pub fn owned_headers(&self) -> impl Iterator<Item = &str> {
        self.forward.iter().map(|f| f.header.as_str()).chain([STATUS_HEADER, DRY_RUN_HEADER])
    }
}

fn compile_cache(raw: &RawCache, config_bytes: &[u8]) -> Result<VerdictCache, ConfigError> {
    if raw.max_entries > MAX_CACHE_ENTRIES {
        return Err(ConfigError::new("cache.max_entries", format!("at most {MAX_CACHE_ENTRIES}")));
    }
    if raw.max_entries > 0 && raw.ttl_seconds == 0 {
        return Err(ConfigError::new(
            "cache.ttl_seconds",
            "must be at least 1 (set cache.max_entries to 0 to disable the cache)",
        ));
    }
    if raw.local_entries > MAX_LOCAL_ENTRIES {
        return Err(ConfigError::new("cache.local_entries", format!("at most {MAX_LOCAL_ENTRIES}")));
    }
    let settings = CacheSettings {
        max_entries: raw.max_entries,
        ttl_seconds: raw.ttl_seconds,
        negative_ttl_seconds: raw.negative_ttl_seconds,
        local_entries: raw.local_entries,
    };
    Ok(VerdictCache::new(settings, config_bytes))
}

fn non_empty(field: &str, value: String) -> Result<String, ConfigError> {
    if value.is_empty() {
        return Err(ConfigError::new(field, "must not be empty"));
    }
    Ok(value)
}

fn compile_forward(raw: &RawForward) -> Result<Vec<ForwardHeader>, ConfigError> {
    raw.headers
        .iter()
        .map(|(header, claim)| {
            let field = format!("forward.headers.{header}");
            if !is_header_name(header) {
                return Err(ConfigError::new(field, "not a valid lower-case HTTP header name"));
            }
            if header == STATUS_HEADER || header == DRY_RUN_HEADER {
                return Err(ConfigError::new(field, "is set by the filter itself"));
            }
            if claim.is_empty() {
                return Err(ConfigError::new(field, "claim name must not be empty"));
            }
            Ok(ForwardHeader { header: header.clone(), claim: claim.clone() })
        })
        .collect()
}

/// An RFC 9110 token in lower case (HTTP/2 and Envoy want lower-case names).
pub(crate) fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// serde_json appends "at line 1 column 42": noise in a one-line log message
/// that already names the field.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        match Config::from_json(json.as_bytes()) {
            Ok(_) => "ok".into(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn schema_errors_name_the_field() {
        assert_eq!(
            err(r#"{"issuers":["i"],"rules":[{"match":{}},{"match":{}},{"match":{},"require":{"all":"x"}}]}"#),
            "license-gate: config: rules[2].require.all: invalid type: string \"x\", expected a sequence"
        );
        assert!(
            err(r#"{"issuers":["i"],"bogus":1}"#)
                .starts_with("license-gate: config: bogus: unknown field `bogus`, expected one of `issuers`")
        );
        assert!(
            err(r#"{"issuers":["i"],"rules":[{"match":{"prefx":"/"}}]}"#)
                .starts_with("license-gate: config: rules[0].match.prefx: unknown field `prefx`")
        );
        assert_eq!(err(r#"{"audiences":[]}"#), "license-gate: config: config: missing field `issuers`");
        assert_eq!(err("not json"), "license-gate: config: config: expected ident");
    }

    #[test]
    fn header_names() {
        assert!(is_header_name("x-license-tenant"));
        assert!(!is_header_name("X-License"));
        assert!(!is_header_name(":path"));
        assert!(!is_header_name("a b"));
        assert!(!is_header_name(""));
    }
}

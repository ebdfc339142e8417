//! The compiled configuration: what `on_configure` builds, once, from the
//! schema (crate `license-gate-schema`, `filter/schema`). It has two halves:
//!
//! - the [`Policy`], immutable: rules, plans, claim names, token sources,
//!   forwarded headers, mode, binding;
//! - the initial [`Runtime`] state, which changes while the configuration
//!   does not: the key ring and the revocations (the fetchers replace their
//!   remote parts) and the verdict cache.
//!
//! Every problem is a [`ConfigError`] that names the field, so Envoy's log
//! shows one line an admin can act on.

use sha2::{Digest, Sha256};

use crate::binding::Binding;
use crate::cache::{CacheSettings, VerdictCache};
use crate::error::ConfigError;
use crate::keys::{KeyRing, KeySet, compile_algorithms};
use crate::license::License;
use crate::plans::Plans;
use crate::remote::{JWKS_DEFAULTS, REVOCATION_DEFAULTS, RemoteSettings};
use crate::request::is_header_name;
use crate::revocation::Revocations;
use crate::routes::RouteTable;
use crate::runtime::Runtime;
use crate::schema::{Mode, RawCache, RawConfig, RawForward};
use crate::token_source::TokenSource;
use crate::verify::{ClaimNames, Verifier};

/// Headers the filter owns on the way upstream. Whatever a client sends under
/// these names is removed before the filter sets its own.
pub const STATUS_HEADER: &str = "x-license-status";
pub const DRY_RUN_HEADER: &str = "x-license-dry-run";
/// The license's plan and tenant, set on every request the filter forwards
/// with a license: Envoy's rate limiters after the filter pick a tenant's
/// bucket from them, so a client must never be able to send its own.
pub const PLAN_HEADER: &str = "x-license-plan";
pub const TENANT_HEADER: &str = "x-license-tenant";

/// One upstream header set from a license claim.
#[derive(Debug, Clone)]
pub struct ForwardHeader {
    pub header: String,
    pub claim: String,
}

/// What the configuration decides, fixed for its lifetime.
#[derive(Debug)]
pub struct Policy {
    /// The authenticator: issuers, audiences, claim names, skew, grace.
    pub verifier: Verifier,
    pub plans: Plans,
    /// The plan of a license whose token names none (`default_plan`).
    pub default_plan: Option<String>,
    pub routes: RouteTable,
    pub sources: Vec<TokenSource>,
    pub max_token_bytes: usize,
    pub forward: Vec<ForwardHeader>,
    pub strip_token: bool,
    pub mode: Mode,
    pub binding: Option<Binding>,
}

impl Policy {
    /// Every header name a client must not be able to set on its own.
    pub fn owned_headers(&self) -> impl Iterator<Item = &str> {
        self.forward.iter().map(|f| f.header.as_str()).chain([
            STATUS_HEADER,
            DRY_RUN_HEADER,
            PLAN_HEADER,
            TENANT_HEADER,
        ])
    }

    /// Entitlements: the license's features plus everything its plan grants;
    /// a license that names no plan is on `default_plan`. A license on a
    /// plan with a quota but without a tenant is its own tenant (its license
    /// id): its requests must land in a bucket of that plan, not escape the
    /// quota through the limiter's default bucket.
    pub fn entitle(&self, mut license: License) -> License {
        if license.plan.is_none() {
            license.plan.clone_from(&self.default_plan);
        }
        if license.tenant.is_none() && license.plan.as_deref().and_then(|p| self.plans.quota(p)).is_some() {
            license.tenant.clone_from(&license.license_id);
        }
        if let Some(granted) = license.plan.as_deref().and_then(|p| self.plans.features(p)) {
            license.features.extend(granted.iter().cloned());
        }
        license
    }
}

#[derive(Debug)]
pub struct Config {
    pub policy: Policy,
    /// The state a VM starts with.
    pub runtime: Runtime,
    pub remote_keys: Option<RemoteSettings>,
    pub remote_revocations: Option<RemoteSettings>,
    /// The first 8 bytes of the configuration's SHA-256, hex: names this
    /// configuration's entries in shared data.
    pub fingerprint: String,
}

impl Config {
    /// Parses and compiles the plugin configuration.
    pub fn from_json(bytes: &[u8]) -> Result<Config, ConfigError> {
        let raw: RawConfig = crate::schema::parse(bytes).map_err(|e| ConfigError::from_json(bytes, &e))?;
        let digest = Sha256::digest(bytes);
        let fingerprint: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Config::compile(raw, fingerprint)
    }

    fn compile(raw: RawConfig, fingerprint: String) -> Result<Config, ConfigError> {
        if raw.max_token_bytes == 0 {
            return Err(ConfigError::new("max_token_bytes", "must be greater than 0"));
        }
        let algorithms = compile_algorithms(raw.algorithms.as_deref(), !raw.hmac_secrets.is_empty())?;
        let inline_keys = KeySet::compile(&raw.keys, &raw.hmac_secrets)?;
        let remote_keys =
            raw.keys.remote.as_ref().map(|r| RemoteSettings::compile("keys.remote", r, JWKS_DEFAULTS)).transpose()?;
        let remote_revocations = raw
            .revocation
            .remote
            .as_ref()
            .map(|r| RemoteSettings::compile("revocation.remote", r, REVOCATION_DEFAULTS))
            .transpose()?;
        let revocations =
            Revocations::compile(&raw.revocation.ids, remote_revocations.is_some(), raw.revocation.on_stale)?;
        let plans = Plans::compile(&raw.plans)?;
        if let Some(plan) = &raw.default_plan
            && !plans.contains(plan)
        {
            return Err(ConfigError::new("default_plan", format!("unknown plan \"{plan}\" (not in plans)")));
        }
        let binding = raw.binding.as_ref().map(Binding::compile).transpose()?;
        let plan_claim = non_empty("claims.plan", raw.claims.plan)?;
        let tenant_claim = non_empty("claims.tenant", raw.claims.tenant)?;
        let forward = compile_forward(&raw.forward, &plan_claim, &tenant_claim)?;
        let claims = ClaimNames {
            features: non_empty("claims.features", raw.claims.features)?,
            plan: plan_claim,
            tenant: tenant_claim,
            license_id: non_empty("claims.license_id", raw.claims.license_id)?,
            deployments: binding.as_ref().map(|b| b.claim.clone()),
            forwarded: forward.iter().map(|f| f.claim.clone()).collect(),
        };
        let verifier =
            Verifier::new(&raw.issuers, &raw.audiences, claims, raw.clock_skew_seconds, raw.grace_period_seconds)?;
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
        let cache = VerdictCache::new(compile_cache(&raw.cache)?, &fingerprint);
        let keys = KeyRing::new(algorithms, inline_keys, remote_keys.is_some());
        Ok(Config {
            policy: Policy {
                verifier,
                plans,
                default_plan: raw.default_plan,
                routes,
                sources,
                max_token_bytes: raw.max_token_bytes,
                forward,
                strip_token: raw.forward.strip_token,
                mode: raw.mode,
                binding,
            },
            runtime: Runtime::new(keys, revocations, cache),
            remote_keys,
            remote_revocations,
            fingerprint,
        })
    }
}

/// Upper bound on cache slots: each holds at most a few hundred bytes.
const MAX_CACHE_ENTRIES: u32 = 1_000_000;
/// Upper bound on each VM's local slots: they cost memory in every worker.
const MAX_LOCAL_ENTRIES: u32 = 100_000;

fn compile_cache(raw: &RawCache) -> Result<CacheSettings, ConfigError> {
    let d = CacheSettings::default();
    let settings = CacheSettings {
        max_entries: raw.max_entries.unwrap_or(d.max_entries),
        ttl_seconds: raw.ttl_seconds.unwrap_or(d.ttl_seconds),
        negative_ttl_seconds: raw.negative_ttl_seconds.unwrap_or(d.negative_ttl_seconds),
        local_entries: raw.local_entries.unwrap_or(d.local_entries),
    };
    if settings.max_entries > MAX_CACHE_ENTRIES {
        return Err(ConfigError::new("cache.max_entries", format!("at most {MAX_CACHE_ENTRIES}")));
    }
    if settings.max_entries > 0 && settings.ttl_seconds == 0 {
        return Err(ConfigError::new(
            "cache.ttl_seconds",
            "must be at least 1 (set cache.max_entries to 0 to disable the cache)",
        ));
    }
    if settings.local_entries > MAX_LOCAL_ENTRIES {
        return Err(ConfigError::new("cache.local_entries", format!("at most {MAX_LOCAL_ENTRIES}")));
    }
    Ok(settings)
}

fn non_empty(field: &str, value: String) -> Result<String, ConfigError> {
    if value.is_empty() {
        return Err(ConfigError::new(field, "must not be empty"));
    }
    Ok(value)
}

/// The configured `forward.headers`. `x-license-plan` and
/// `x-license-tenant` are always set from the plan and tenant claims; naming
/// them here is accepted (configurations written before that) only with
/// those very claims.
fn compile_forward(raw: &RawForward, plan_claim: &str, tenant_claim: &str) -> Result<Vec<ForwardHeader>, ConfigError> {
    let mut forward = Vec::new();
    for (header, claim) in &raw.headers {
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
        for (own, from, claims_field) in [(PLAN_HEADER, plan_claim, "plan"), (TENANT_HEADER, tenant_claim, "tenant")] {
            if header == own && claim != from {
                return Err(ConfigError::new(
                    field,
                    format!(
                        "is set by the filter itself from claims.{claims_field} (\"{from}\"); remove it or change claims.{claims_field}"
                    ),
                ));
            }
        }
        if header != PLAN_HEADER && header != TENANT_HEADER {
            forward.push(ForwardHeader { header: header.clone(), claim: claim.clone() });
        }
    }
    Ok(forward)
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
    fn quota_and_plan_errors_name_the_field() {
        let cases = [
            (
                r#"{"issuers":["i"],"hmac_secrets":[{"alg":"HS256","secret_base64":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}],"plans":{"a":{"quota":{"requests_per_second":10}}}}"#,
                "license-gate: config: plans.a.quota: missing field `burst`",
            ),
            (
                r#"{"issuers":["i"],"hmac_secrets":[{"alg":"HS256","secret_base64":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}],"plans":{"a":{"quota":{"requests_per_second":1,"burst":2,"period":3}}}}"#,
                "license-gate: config: plans.a.quota.period: unknown field `period`, expected `requests_per_second` or `burst`",
            ),
            (
                r#"{"issuers":["i"],"hmac_secrets":[{"alg":"HS256","secret_base64":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}],"plans":{"a":{}},"default_plan":"b"}"#,
                "license-gate: config: default_plan: unknown plan \"b\" (not in plans)",
            ),
            (
                r#"{"issuers":["i"],"hmac_secrets":[{"alg":"HS256","secret_base64":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}],"forward":{"headers":{"x-license-plan":"tier"}}}"#,
                "license-gate: config: forward.headers.x-license-plan: is set by the filter itself from claims.plan (\"plan\"); remove it or change claims.plan",
            ),
            (
                r#"{"issuers":["i"],"hmac_secrets":[{"alg":"HS256","secret_base64":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}],"claims":{"tenant":"org"},"forward":{"headers":{"x-license-tenant":"tenant"}}}"#,
                "license-gate: config: forward.headers.x-license-tenant: is set by the filter itself from claims.tenant (\"org\"); remove it or change claims.tenant",
            ),
            (
                r#"{"issuers":["i"],"hmac_secrets":[{"alg":"HS256","secret_base64":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}],"plans":{"a":{}},"default_plan":"a","forward":{"headers":{"x-license-plan":"plan"}}}"#,
                "ok",
            ),
        ];
        for (json, want) in cases {
            assert_eq!(err(json), want, "{json}");
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
}

//! The filter's stats: their names (what Prometheus shows, through Envoy's
//! tag extraction) and which of them a decided request counts.
//!
//! Names carry the reason as a tag, `license_gate.reason=.=<code>;.;<stat>`:
//! the form Istio's bootstrap already extracts for any tag named in
//! `extraStatTags`, so on a stock Istio gateway one annotation
//! (`sidecar.istio.io/extraStatTags: reason`) turns `<code>` into the
//! `reason` label of `license_gate_denied`, `license_gate_dry_run_would_deny`
//! and the fetch failure counters; `envoy/gateway.yaml` has the same rule.

use crate::cache::CacheOutcome;
use crate::decision::{Decision, Verdict};
use crate::license::LicenseStatus;
use crate::reason::Reason;
use crate::remote::{Document, FetchFailure};
use crate::runtime::Trace;

/// One counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// A license granted the request (active or in grace).
    Allowed,
    /// ... of which in the grace period after `exp`.
    AllowedGrace,
    /// An open route (`"license": "none"` or default allow): nothing checked.
    Open,
    Denied(Reason),
    /// Dry-run: forwarded, but enforcement would have denied it.
    DryRunWouldDeny(Reason),
    CacheHit,
    CacheMiss,
    /// Signature checks actually performed (cache misses that got that far).
    SignatureVerifications,
    /// A remote document fetched and found good (new or unchanged).
    FetchSuccess(Document),
    /// A fetch that failed, by why; the last good document stays.
    FetchFailed(Document, FetchFailure),
}

/// The gauges, set on every tick of every worker (to the same values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gauge {
    /// Keys of the remote JWKS in force (0 when none is).
    JwksKeys,
    /// Seconds since the JWKS was last fetched successfully.
    JwksAge,
    /// Ids on the remote revocation list in force.
    RevocationIds,
    /// Seconds since the revocation list was last fetched successfully.
    RevocationAge,
}

impl Gauge {
    pub const ALL: [Gauge; 4] = [Gauge::JwksKeys, Gauge::JwksAge, Gauge::RevocationIds, Gauge::RevocationAge];

    pub fn name(self) -> &'static str {
        match self {
            Gauge::JwksKeys => "license_gate.jwks_keys",
            Gauge::JwksAge => "license_gate.jwks_age_seconds",
            Gauge::RevocationIds => "license_gate.revocation_ids",
            Gauge::RevocationAge => "license_gate.revocation_age_seconds",
        }
    }
}

/// The counter of requests a rate limiter after the filter refused (its
/// local reply, `429`), by the bucket the filter's headers put the request
/// in: `license_gate_rate_limited{plan="pro"}` in Prometheus for a tenant's
/// bucket of a plan with a quota, `plan="_default"` for the limiter's
/// default bucket (open routes, licenses without a plan quota or without a
/// tenant). Bounded labels: the plans with a quota, and `_default`.
pub fn rate_limited_name(plan_label: &str) -> String {
    format!("license_gate.plan=.={plan_label};.;rate_limited")
}

pub const DEFAULT_BUCKET_LABEL: &str = "_default";

/// The histogram of remaining license validity, in seconds, per licensed request.
pub const REMAINING_VALIDITY: &str = "license_gate.license_remaining_seconds";

/// The `reason` tag inside a stat name, in the `name=.=value;.;` form that
/// Istio's bootstrap extracts for every tag listed in `extraStatTags` (and
/// `envoy/gateway.yaml` does with the same rule): the tag is cut out of the
/// name, so `license_gate.reason=.=expired;.;denied` becomes
/// `license_gate_denied{reason="expired"}` in Prometheus.
fn reason_tag(value: &str) -> String {
    format!("reason=.={value};.;")
}

impl Counter {
    /// Every counter, in a fixed order: `index()` is the position here.
    pub fn all() -> Vec<Counter> {
        let mut all = vec![
            Counter::Allowed,
            Counter::AllowedGrace,
            Counter::Open,
            Counter::CacheHit,
            Counter::CacheMiss,
            Counter::SignatureVerifications,
        ];
        all.extend(Reason::ALL.iter().map(|r| Counter::Denied(*r)));
        all.extend(Reason::ALL.iter().map(|r| Counter::DryRunWouldDeny(*r)));
        all.extend(Document::ALL.iter().map(|d| Counter::FetchSuccess(*d)));
        for d in Document::ALL {
            all.extend(FetchFailure::ALL.iter().map(|f| Counter::FetchFailed(d, *f)));
        }
        all
    }

    pub fn index(self) -> usize {
        let reason_index = |r: Reason| Reason::ALL.iter().position(|x| *x == r).unwrap_or(0);
        match self {
            Counter::Allowed => 0,
            Counter::AllowedGrace => 1,
            Counter::Open => 2,
            Counter::CacheHit => 3,
            Counter::CacheMiss => 4,
            Counter::SignatureVerifications => 5,
            Counter::Denied(r) => 6 + reason_index(r),
            Counter::DryRunWouldDeny(r) => 6 + Reason::ALL.len() + reason_index(r),
            Counter::FetchSuccess(d) => 6 + 2 * Reason::ALL.len() + d.index(),
            Counter::FetchFailed(d, f) => {
                let failure = FetchFailure::ALL.iter().position(|x| *x == f).unwrap_or(0);
                6 + 2 * Reason::ALL.len() + Document::ALL.len() + d.index() * FetchFailure::ALL.len() + failure
            }
        }
    }

    pub fn name(self) -> String {
        match self {
            Counter::Allowed => "license_gate.allowed".into(),
            Counter::AllowedGrace => "license_gate.allowed_grace".into(),
            Counter::Open => "license_gate.open".into(),
            Counter::CacheHit => "license_gate.cache_hit".into(),
            Counter::CacheMiss => "license_gate.cache_miss".into(),
            Counter::SignatureVerifications => "license_gate.signature_verifications".into(),
            Counter::Denied(r) => format!("license_gate.{}denied", reason_tag(r.code())),
            Counter::DryRunWouldDeny(r) => format!("license_gate.{}dry_run_would_deny", reason_tag(r.code())),
            Counter::FetchSuccess(d) => format!("license_gate.{}_fetch_success", d.stat_name()),
            Counter::FetchFailed(d, f) => {
                format!("license_gate.{}{}_fetch_failed", reason_tag(f.code()), d.stat_name())
            }
        }
    }
}

/// The counters one decided request increments (at most four; no allocation).
pub fn counted(decision: &Decision, trace: &Trace) -> impl Iterator<Item = Counter> + use<> {
    let (outcome, grace) = match (&decision.verdict, decision.would_deny) {
        (Verdict::Open, _) => (Counter::Open, false),
        (Verdict::Allowed { status, .. }, _) => (Counter::Allowed, *status == LicenseStatus::Grace),
        (Verdict::Denied { .. }, Some(reason)) => (Counter::DryRunWouldDeny(reason), false),
        (Verdict::Denied { reason, .. }, None) => (Counter::Denied(*reason), false),
    };
    let cache = match trace.cache {
        Some(CacheOutcome::Hit) => Some(Counter::CacheHit),
        Some(CacheOutcome::Miss) => Some(Counter::CacheMiss),
        None => None,
    };
    [
        Some(outcome),
        grace.then_some(Counter::AllowedGrace),
        cache,
        trace.signature_checked.then_some(Counter::SignatureVerifications),
    ]
    .into_iter()
    .flatten()
}

/// The remaining validity to record for a request carrying a valid license.
pub fn remaining_validity(decision: &Decision, now: u64) -> Option<u64> {
    match &decision.verdict {
        Verdict::Allowed { license, .. } => license.remaining_seconds(now),
        Verdict::Denied { license: Some(license), .. } => license.remaining_seconds(now),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_match_positions_and_names_are_unique() {
        let all = Counter::all();
        for (i, c) in all.iter().enumerate() {
            assert_eq!(c.index(), i, "{c:?}");
        }
        let mut names: Vec<String> = all.iter().map(|c| c.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), all.len());
        assert_eq!(Counter::Denied(Reason::Expired).name(), "license_gate.reason=.=expired;.;denied");
        assert_eq!(
            Counter::FetchFailed(Document::Revocations, FetchFailure::TooLarge).name(),
            "license_gate.reason=.=too_large;.;revocation_fetch_failed"
        );
        assert_eq!(Counter::FetchSuccess(Document::Jwks).name(), "license_gate.jwks_fetch_success");
    }
}

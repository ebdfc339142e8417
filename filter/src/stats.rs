//! The filter's stats: their names (what Prometheus shows, through Envoy's
//! tag extraction) and which of them a decided request counts.
//!
//! Names carry the reason as `license_gate.reason.<code>.<stat>`, so one tag
//! extraction rule (see `envoy/gateway.yaml`) turns `<code>` into a `reason`
//! label of `license_gate_denied` / `license_gate_dry_run_would_deny`.

use crate::cache::CacheOutcome;
use crate::decision::{Decision, Verdict};
use crate::license::LicenseStatus;
use crate::reason::Reason;

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
}

/// The histogram of remaining license validity, in seconds, per licensed request.
pub const REMAINING_VALIDITY: &str = "license_gate.license_remaining_seconds";

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
            Counter::Denied(r) => format!("license_gate.reason.{}.denied", r.code()),
            Counter::DryRunWouldDeny(r) => format!("license_gate.reason.{}.dry_run_would_deny", r.code()),
        }
    }
}

/// What verification did for one request, beyond its verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trace {
    pub cache: Option<CacheOutcome>,
    pub signature_checked: bool,
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
        assert_eq!(Counter::Denied(Reason::Expired).name(), "license_gate.reason.expired.denied");
    }
}

//! Runtime state: what changes while the configuration does not. One per
//! VM (Envoy worker): the key ring and the revocations (their remote parts
//! replaced by the fetchers), the verdict cache, and the gateway's identity.
//!
//! [`Runtime::license`] is the part of a decision worth caching: verify the
//! token with the keys in force, check the revocations, expand the plan.

use crate::binding::Identity;
use crate::cache::{CacheOutcome, Epoch, SharedStore, VerdictCache, Verified};
use crate::config::Policy;
use crate::keys::KeyRing;
use crate::license::License;
use crate::reason::Reason;
use crate::revocation::Revocations;
use crate::verify::Verifier;

#[derive(Debug)]
pub struct Runtime {
    pub keys: KeyRing,
    pub revocations: Revocations,
    pub cache: VerdictCache,
    /// The gateway's identity for deployment binding, read once per VM.
    pub identity: Identity,
}

/// What deciding one token did, beyond its verdict.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trace {
    pub cache: Option<CacheOutcome>,
    pub signature_checked: bool,
}

impl Runtime {
    pub fn new(keys: KeyRing, revocations: Revocations, cache: VerdictCache) -> Runtime {
        Runtime { keys, revocations, cache, identity: Err("not read yet".into()) }
    }

    /// The epoch verdicts are decided (and cached) under at `now`.
    pub fn epoch(&self, now: u64) -> Epoch {
        Epoch { keys: self.keys.epoch(now), revocations: self.revocations.epoch(now) }
    }

    /// The license a token carries at `now`, or why it cannot be used; and
    /// whether a signature check was made to find out.
    pub fn license(&self, policy: &Policy, token: &str, now: u64) -> (Result<License, Reason>, bool) {
        let verified = policy.verifier.verify(token, now, &self.keys);
        let checked = Verifier::signature_checked(&verified);
        let result = verified
            .and_then(|license| self.revocations.check(license.license_id.as_deref(), now).map(|()| license))
            .map(|license| policy.entitle(license));
        (result, checked)
    }

    /// [`Runtime::license`] behind the verdict cache.
    pub fn verdict(&self, policy: &Policy, store: &dyn SharedStore, token: &str, now: u64) -> (Verified, Trace) {
        let mut trace = Trace::default();
        let (verdict, outcome) = self.cache.verdict(store, token, now, self.epoch(now), |t| {
            let (result, checked) = self.license(policy, t, now);
            trace.signature_checked = checked;
            result
        });
        trace.cache = outcome;
        (verdict, trace)
    }
}

//! A verified license: what the policy and the upstream headers need from the
//! token, and nothing else.

use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LicenseStatus {
    /// Within its validity window.
    Active,
    /// Past `exp`, but within the configured grace period.
    Grace,
}

impl LicenseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LicenseStatus::Active => "active",
            LicenseStatus::Grace => "grace",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct License {
    /// The token's own features plus everything its plan grants.
    pub features: BTreeSet<String>,
    pub plan: Option<String>,
    pub tenant: Option<String>,
    pub license_id: Option<String>,
    /// `exp` in seconds since the epoch; `None` for a perpetual license.
    pub expires_at: Option<u64>,
    /// Until when the license is `Active` (`exp` + clock skew).
    pub active_until: Option<u64>,
    /// Until when it is accepted at all (`exp` + clock skew + grace period).
    pub valid_until: Option<u64>,
    /// Values for the configured `forward.headers`, in the config's order;
    /// `None` where the claim is absent or cannot be a header value.
    pub forwarded: Vec<Option<String>>,
    /// The deployments the license is bound to (`binding.claim`); `None`
    /// when it carries no such claim (or binding is off).
    pub deployments: Option<Vec<String>>,
}

impl License {
    /// Active until `exp` + skew, then in grace (verification refuses the
    /// token once the grace period is over; a cached license never outlives it).
    pub fn status_at(&self, now: u64) -> LicenseStatus {
        match self.active_until {
            Some(end) if now >= end => LicenseStatus::Grace,
            _ => LicenseStatus::Active,
        }
    }

    pub fn has(&self, feature: &str) -> bool {
        self.features.contains(feature)
    }

    /// Seconds of validity left at `now` (0 once past `exp`); `None` when perpetual.
    pub fn remaining_seconds(&self, now: u64) -> Option<u64> {
        self.expires_at.map(|exp| exp.saturating_sub(now))
    }
}

//! Plans: named bundles of features and a request quota, with inheritance.
//! Flattened once at configure time so a request only does a map lookup.
//!
//! The quota is not enforced here: Envoy's rate limiters do it, from the
//! `x-license-plan` and `x-license-tenant` headers the filter sets, with a
//! configuration `licensectl quota` generates from this table.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::ConfigError;
use crate::schema::{RawPlan, RawQuota};

/// A plan's share: a token bucket per tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub requests_per_second: u32,
    /// The bucket's size: how many requests a tenant may make at once.
    pub burst: u32,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Every feature it grants, inherited ones included.
    pub features: BTreeSet<String>,
    /// Its own quota, or else the first one found along `inherits`.
    pub quota: Option<Quota>,
}

#[derive(Debug, Default)]
pub struct Plans {
    flat: BTreeMap<String, Plan>,
}

impl Plans {
    pub(crate) fn compile(raw: &BTreeMap<String, RawPlan>) -> Result<Plans, ConfigError> {
        let mut flat = BTreeMap::new();
        for (name, plan) in raw {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) {
                return Err(ConfigError::new(
                    format!("plans.{name}"),
                    "a plan name is letters, digits, '.', '_' and '-' (it travels in a header and a stat name)",
                ));
            }
            if name == crate::stats::DEFAULT_BUCKET_LABEL {
                return Err(ConfigError::new(
                    format!("plans.{name}"),
                    "reserved: the stats name the rate limiter's default bucket so",
                ));
            }
            if let Some(quota) = &plan.quota {
                compile_quota(name, quota)?;
            }
            let mut features = BTreeSet::new();
            let mut path = Vec::new();
            collect(raw, name, &mut path, &mut features)?;
            let quota = inherited_quota(raw, name, &mut Vec::new());
            flat.insert(name.clone(), Plan { features, quota });
        }
        Ok(Plans { flat })
    }

    /// The features a plan grants; `None` for a plan this config does not know.
    pub fn features(&self, plan: &str) -> Option<&BTreeSet<String>> {
        self.flat.get(plan).map(|p| &p.features)
    }

    pub fn contains(&self, plan: &str) -> bool {
        self.flat.contains_key(plan)
    }

    /// The plan's quota, inherited or its own; `None` for a plan without
    /// one or one this config does not know.
    pub fn quota(&self, plan: &str) -> Option<Quota> {
        self.flat.get(plan).and_then(|p| p.quota)
    }

    /// Every plan, flattened, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Plan)> {
        self.flat.iter().map(|(name, plan)| (name.as_str(), plan))
    }
}

/// Upper bound on a quota's numbers: Envoy's token buckets count in u32.
const MAX_QUOTA: u32 = 1_000_000_000;

fn compile_quota(name: &str, raw: &RawQuota) -> Result<Quota, ConfigError> {
    let field = |f: &str| format!("plans.{name}.quota.{f}");
    if !(1..=MAX_QUOTA).contains(&raw.requests_per_second) {
        return Err(ConfigError::new(field("requests_per_second"), format!("must be between 1 and {MAX_QUOTA}")));
    }
    if !(1..=MAX_QUOTA).contains(&raw.burst) {
        return Err(ConfigError::new(field("burst"), format!("must be between 1 and {MAX_QUOTA}")));
    }
    if raw.burst < raw.requests_per_second {
        return Err(ConfigError::new(
            field("burst"),
            format!(
                "must be at least requests_per_second ({}): the bucket refills that many each second",
                raw.requests_per_second
            ),
        ));
    }
    Ok(Quota { requests_per_second: raw.requests_per_second, burst: raw.burst })
}

/// The plan's own quota, else the first ancestor's (depth first, in
/// `inherits` order). Cycles are refused by [`collect`] before this runs.
fn inherited_quota(raw: &BTreeMap<String, RawPlan>, name: &str, path: &mut Vec<String>) -> Option<Quota> {
    let plan = raw.get(name)?;
    if path.iter().any(|p| p == name) {
        return None;
    }
    if let Some(q) = &plan.quota {
        return Some(Quota { requests_per_second: q.requests_per_second, burst: q.burst });
    }
    path.push(name.to_string());
    let found = plan.inherits.iter().find_map(|parent| inherited_quota(raw, parent, path));
    path.pop();
    found
}

/// Depth-first walk of `name`'s ancestry; `path` is the chain being walked,
/// so meeting a name already on it is a cycle.
fn collect(
    raw: &BTreeMap<String, RawPlan>,
    name: &str,
    path: &mut Vec<String>,
    out: &mut BTreeSet<String>,
) -> Result<(), ConfigError> {
    let Some(plan) = raw.get(name) else {
        // Only reachable through `inherits`; the caller names the field.
        return Ok(());
    };
    path.push(name.to_string());
    for (i, feature) in plan.features.iter().enumerate() {
        if feature.is_empty() || feature.contains(char::is_whitespace) {
            return Err(ConfigError::new(
                format!("plans.{name}.features[{i}]"),
                "a feature name must be non-empty and have no spaces",
            ));
        }
        out.insert(feature.clone());
    }
    for parent in &plan.inherits {
        let field = format!("plans.{name}.inherits");
        if !raw.contains_key(parent) {
            return Err(ConfigError::new(field, format!("unknown plan \"{parent}\"")));
        }
        if path.iter().any(|p| p == parent) {
            let mut cycle = path.clone();
            cycle.push(parent.clone());
            return Err(ConfigError::new(field, format!("inheritance cycle {}", cycle.join(" -> "))));
        }
        collect(raw, parent, path, out)?;
    }
    path.pop();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plans(json: &str) -> Result<Plans, String> {
        let raw: BTreeMap<String, RawPlan> = serde_json::from_str(json).map_err(|e| e.to_string())?;
        Plans::compile(&raw).map_err(|e| e.to_string())
    }

    fn names(set: Option<&BTreeSet<String>>) -> Vec<&str> {
        set.map(|s| s.iter().map(String::as_str).collect()).unwrap_or_default()
    }

    #[test]
    fn inheritance_is_transitive() {
        let p = plans(
            r#"{"basic":{"features":["a"]},"pro":{"inherits":["basic"],"features":["b"]},
                "enterprise":{"inherits":["pro"],"features":["c"]}}"#,
        )
        .unwrap_or_default();
        assert_eq!(names(p.features("enterprise")), ["a", "b", "c"]);
        assert_eq!(names(p.features("pro")), ["a", "b"]);
        assert_eq!(p.features("gold"), None);
    }

    #[test]
    fn quotas_are_inherited_unless_a_plan_sets_its_own() {
        let p = plans(
            r#"{"basic":{"quota":{"requests_per_second":5,"burst":10}},
                "pro":{"inherits":["basic"],"quota":{"requests_per_second":50,"burst":100}},
                "team":{"inherits":["pro"]}, "free":{},
                "enterprise":{"inherits":["free","team"]}}"#,
        )
        .unwrap_or_default();
        let quota = |name: &str| p.iter().find(|(n, _)| *n == name).and_then(|(_, plan)| plan.quota);
        assert_eq!(quota("basic"), Some(Quota { requests_per_second: 5, burst: 10 }));
        assert_eq!(quota("pro"), Some(Quota { requests_per_second: 50, burst: 100 }));
        assert_eq!(quota("team"), Some(Quota { requests_per_second: 50, burst: 100 }));
        assert_eq!(quota("enterprise"), Some(Quota { requests_per_second: 50, burst: 100 }));
        assert_eq!(quota("free"), None);
    }

    #[test]
    fn errors_name_the_plan() {
        let cases = [
            (
                r#"{"a":{"inherits":["b"]},"b":{"inherits":["a"]}}"#,
                "license-gate: config: plans.b.inherits: inheritance cycle a -> b -> a",
            ),
            (r#"{"a":{"inherits":["a"]}}"#, "license-gate: config: plans.a.inherits: inheritance cycle a -> a"),
            (r#"{"a":{"inherits":["zz"]}}"#, "license-gate: config: plans.a.inherits: unknown plan \"zz\""),
            (
                r#"{"a":{"features":["x y"]}}"#,
                "license-gate: config: plans.a.features[0]: a feature name must be non-empty and have no spaces",
            ),
            (
                r#"{"a":{"quota":{"requests_per_second":0,"burst":1}}}"#,
                "license-gate: config: plans.a.quota.requests_per_second: must be between 1 and 1000000000",
            ),
            (
                r#"{"a":{"quota":{"requests_per_second":10,"burst":5}}}"#,
                "license-gate: config: plans.a.quota.burst: must be at least requests_per_second (10): the bucket refills that many each second",
            ),
            (
                r#"{"a b":{}}"#,
                "license-gate: config: plans.a b: a plan name is letters, digits, '.', '_' and '-' (it travels in a header and a stat name)",
            ),
            (
                r#"{"x;.;y":{}}"#,
                "license-gate: config: plans.x;.;y: a plan name is letters, digits, '.', '_' and '-' (it travels in a header and a stat name)",
            ),
            (
                r#"{"_default":{}}"#,
                "license-gate: config: plans._default: reserved: the stats name the rate limiter's default bucket so",
            ),
        ];
        for (json, want) in cases {
            assert_eq!(plans(json).err().as_deref(), Some(want), "{json}");
        }
    }
}

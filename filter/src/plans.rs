//! Plans: named bundles of features, with inheritance. Flattened once at
//! configure time so a request only does a map lookup.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::ConfigError;
use crate::schema::RawPlan;

#[derive(Debug, Default)]
pub struct Plans {
    /// Plan name -> every feature it grants, inherited ones included.
    flat: BTreeMap<String, BTreeSet<String>>,
}

impl Plans {
    pub(crate) fn compile(raw: &BTreeMap<String, RawPlan>) -> Result<Plans, ConfigError> {
        let mut flat = BTreeMap::new();
        for name in raw.keys() {
            let mut features = BTreeSet::new();
            let mut path = Vec::new();
            collect(raw, name, &mut path, &mut features)?;
            flat.insert(name.clone(), features);
        }
        Ok(Plans { flat })
    }

    /// The features a plan grants; `None` for a plan this config does not know.
    pub fn features(&self, plan: &str) -> Option<&BTreeSet<String>> {
        self.flat.get(plan)
    }
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
        ];
        for (json, want) in cases {
            assert_eq!(plans(json).err().as_deref(), Some(want), "{json}");
        }
    }
}

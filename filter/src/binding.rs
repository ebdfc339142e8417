//! Deployment binding: a license names the deployments it may run in (as a
//! license server binds one to a machine fingerprint), and the gateway
//! compares them with its own identity, read once per VM from Envoy's node
//! (or fixed in the configuration). Policy, like required features: the
//! authenticator only reports what the license claims.

use crate::error::ConfigError;
use crate::reason::Reason;
use crate::schema::{RawBinding, RawIdentity};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The claim holding the deployments (a string or an array of strings).
    pub claim: String,
    pub identity: IdentitySource,
    /// Whether a license without the claim is refused.
    pub required: bool,
}

/// Where the gateway's identity comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySource {
    /// A proxy-wasm property path, such as `node.id`.
    Property(Vec<String>),
    /// Written in the configuration.
    Value(String),
}

/// The gateway's identity as read at start: the text, or why there is none.
pub type Identity = Result<String, String>;

impl IdentitySource {
    /// The property path to read, or `None` for a fixed value.
    pub fn property(&self) -> Option<Vec<&str>> {
        match self {
            IdentitySource::Property(path) => Some(path.iter().map(String::as_str).collect()),
            IdentitySource::Value(_) => None,
        }
    }

    /// What the source names, for log lines (`node.metadata.CLUSTER_ID`).
    pub fn describe(&self) -> String {
        match self {
            IdentitySource::Property(path) => path.join("."),
            IdentitySource::Value(_) => "the configured value".into(),
        }
    }
}

impl Binding {
    pub(crate) fn compile(raw: &RawBinding) -> Result<Binding, ConfigError> {
        if raw.claim.is_empty() {
            return Err(ConfigError::new("binding.claim", "must not be empty"));
        }
        let identity = match &raw.identity {
            RawIdentity::NodeId => IdentitySource::Property(node(&["id"])),
            RawIdentity::NodeCluster => IdentitySource::Property(node(&["cluster"])),
            RawIdentity::Metadata(key) if key.is_empty() => {
                return Err(ConfigError::new("binding.identity.metadata", "must name a node metadata key"));
            }
            RawIdentity::Metadata(key) => IdentitySource::Property(node(&["metadata", key])),
            RawIdentity::Value(v) if v.is_empty() => {
                return Err(ConfigError::new("binding.identity.value", "must not be empty"));
            }
            RawIdentity::Value(v) => IdentitySource::Value(v.clone()),
        };
        Ok(Binding { claim: raw.claim.clone(), identity, required: raw.required })
    }

    /// Whether a license bound to `deployments` may be used by a gateway of
    /// this identity. A gateway that could not read its identity accepts no
    /// bound license (fail closed); unbound ones only when not `required`.
    pub fn check(&self, deployments: Option<&[String]>, identity: &Identity) -> Result<(), Reason> {
        let Some(deployments) = deployments else {
            return if self.required { Err(Reason::BindingMismatch) } else { Ok(()) };
        };
        let Ok(identity) = identity else { return Err(Reason::BindingMismatch) };
        if deployments.iter().any(|pattern| matches(pattern, identity)) { Ok(()) } else { Err(Reason::BindingMismatch) }
    }
}

/// The proxy-wasm property path of a field of Envoy's node: `xds.node.*`
/// (Envoy 1.40 answers `node.*` with nothing).
fn node(field: &[&str]) -> Vec<String> {
    ["xds", "node"].iter().chain(field).map(|s| s.to_string()).collect()
}

/// `*` matches any identity, `*.suffix` any identity ending in `.suffix`
/// (and longer than it), anything else exactly.
fn matches(pattern: &str, identity: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some("") => true,
        Some(suffix) if suffix.starts_with('.') => identity.len() > suffix.len() && identity.ends_with(suffix),
        _ => pattern == identity,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(required: bool) -> Binding {
        Binding { claim: "deployments".into(), identity: IdentitySource::Value("x".into()), required }
    }

    #[test]
    fn patterns() {
        let cases = [
            ("eu-prod-1", "eu-prod-1", true),
            ("eu-prod-1", "eu-prod-2", false),
            ("*", "anything", true),
            ("*.prod.example", "gw1.prod.example", true),
            ("*.prod.example", "prod.example", false),
            ("*.prod.example", "gw1.prod.example.evil", false),
            ("*prod", "eu-prod", false),
            ("EU-PROD-1", "eu-prod-1", false),
        ];
        for (pattern, identity, want) in cases {
            assert_eq!(matches(pattern, identity), want, "{pattern} {identity}");
        }
    }

    #[test]
    fn checks() {
        let id: Identity = Ok("eu-prod-1".into());
        let unreadable: Identity = Err("no node.id".into());
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let b = binding(false);
        assert_eq!(b.check(None, &id), Ok(()));
        assert_eq!(b.check(None, &unreadable), Ok(()));
        assert_eq!(b.check(Some(&list(&["us-1", "eu-prod-1"])), &id), Ok(()));
        assert_eq!(b.check(Some(&list(&["us-1"])), &id), Err(Reason::BindingMismatch));
        assert_eq!(b.check(Some(&list(&[])), &id), Err(Reason::BindingMismatch));
        assert_eq!(b.check(Some(&list(&["*"])), &unreadable), Err(Reason::BindingMismatch));
        assert_eq!(binding(true).check(None, &id), Err(Reason::BindingMismatch));
    }

    #[test]
    fn identity_sources() {
        let raw = |json: &str| serde_json::from_str::<RawBinding>(json).unwrap();
        let compiled = |json: &str| Binding::compile(&raw(json)).map(|b| b.identity);
        let path = |p: &[&str]| Ok(IdentitySource::Property(p.iter().map(|s| s.to_string()).collect()));
        assert_eq!(compiled("{}"), path(&["xds", "node", "id"]));
        assert_eq!(compiled(r#"{"identity":"node_cluster"}"#), path(&["xds", "node", "cluster"]));
        assert_eq!(
            compiled(r#"{"identity":{"metadata":"CLUSTER_ID"}}"#),
            path(&["xds", "node", "metadata", "CLUSTER_ID"])
        );
        assert_eq!(compiled(r#"{"identity":{"value":"eu-prod-1"}}"#), Ok(IdentitySource::Value("eu-prod-1".into())));
        assert_eq!(
            compiled(r#"{"identity":{"value":""}}"#).unwrap_err().to_string(),
            "license-gate: config: binding.identity.value: must not be empty"
        );
        assert!(serde_json::from_str::<RawBinding>(r#"{"identity":"node_name"}"#).is_err());
    }
}

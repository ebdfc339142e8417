//! The filter's own core, as licensectl uses it: the configuration exactly
//! as `on_configure` compiles it, the claim names a gateway reads, and a
//! one-key gateway that checks what licensectl signs before it is printed.

use license_gate::config::Config;
use license_gate::schema::RawConfig;
use serde_json::json;

use crate::keys::Jwk;
use crate::source::PluginConfig;

/// What `on_configure` logs for a configuration it refuses, or the
/// compiled configuration.
pub fn compile(config: &PluginConfig) -> Result<Config, String> {
    if config.bytes.is_empty() {
        // proxy.rs refuses an empty configuration before parsing it.
        return Err("license-gate: config: config: the plugin configuration is empty".into());
    }
    Config::from_json(&config.bytes).map_err(|e| e.to_string())
}

/// The claims a gateway reads a license's attributes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    pub features: String,
    pub plan: String,
    pub tenant: String,
    pub license_id: String,
    /// `binding.claim`; `deployments` when the configuration binds nothing.
    pub deployments: String,
    /// Whether the configuration has a `binding` at all.
    pub binding: bool,
}

impl Default for ClaimNames {
    fn default() -> Self {
        ClaimNames {
            features: "features".into(),
            plan: "plan".into(),
            tenant: "tenant".into(),
            license_id: "jti".into(),
            deployments: "deployments".into(),
            binding: false,
        }
    }
}

/// What a mint needs to know of the gateway it mints for.
#[derive(Debug)]
pub struct Gateway {
    pub names: ClaimNames,
    pub issuers: Vec<String>,
    pub audiences: Vec<String>,
    pub plans: Vec<String>,
    pub max_token_bytes: usize,
}

/// Reads the claim names (and what else a mint checks) of a configuration
/// the filter accepts.
pub fn gateway(config: &PluginConfig) -> Result<Gateway, String> {
    compile(config)?;
    let raw: RawConfig = serde_json::from_slice(&config.bytes).map_err(|e| format!("{}: {e}", config.origin))?;
    let names = ClaimNames {
        features: raw.claims.features,
        plan: raw.claims.plan,
        tenant: raw.claims.tenant,
        license_id: raw.claims.license_id,
        deployments: raw.binding.as_ref().map_or_else(|| "deployments".to_string(), |b| b.claim.clone()),
        binding: raw.binding.is_some(),
    };
    Ok(Gateway {
        names,
        issuers: raw.issuers,
        audiences: raw.audiences,
        plans: raw.plans.keys().cloned().collect(),
        max_token_bytes: raw.max_token_bytes,
    })
}

/// A gateway that trusts one key and one issuer and reads these claim
/// names, with no clock skew: licensectl verifies what it signs with it.
pub fn verifier(jwk: &Jwk, issuer: &str, names: &ClaimNames) -> Result<Config, String> {
    let config = json!({
        "issuers": [issuer],
        "keys": {"jwks": {"keys": [jwk]}},
        "claims": {
            "features": names.features,
            "plan": names.plan,
            "tenant": names.tenant,
            "license_id": names.license_id,
        },
        "clock_skew_seconds": 0,
    });
    let bytes = serde_json::to_vec(&config).map_err(|e| e.to_string())?;
    Config::from_json(&bytes).map_err(|e| match e.field.as_str() {
        "keys.jwks.keys[0]" => format!("license-gate would refuse this key: {}", e.message),
        _ => e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(json: &str) -> PluginConfig {
        PluginConfig { bytes: json.as_bytes().to_vec(), origin: "c.json".into() }
    }

    #[test]
    fn claim_names_from_a_configuration() {
        let key = r#""keys":{"jwks":{"keys":[{"kty":"OKP","crv":"Ed25519","x":"HPD04AazYkNx7NpF5gliU2qy03RpWBBNV5BURUn0a6E"}]}}"#;
        let with = |extra: &str| plugin(&format!("{{\"issuers\":[\"i\"],{key}{extra}}}"));
        let gw = gateway(&with("")).unwrap();
        assert_eq!(gw.names, ClaimNames::default());
        let gw =
            gateway(&with(r#","claims":{"features":"ents","license_id":"lid"},"binding":{"claim":"sites"}"#)).unwrap();
        assert_eq!(gw.names.features, "ents");
        assert_eq!(gw.names.license_id, "lid");
        assert_eq!(gw.names.plan, "plan");
        assert_eq!(gw.names.deployments, "sites");
        assert!(gw.names.binding);
        let error = gateway(&with(r#","claims":{"feature":"ents"}"#)).unwrap_err();
        assert!(error.starts_with("license-gate: config: claims.feature: unknown field `feature`"), "{error}");
        assert_eq!(
            compile(&plugin("")).unwrap_err(),
            "license-gate: config: config: the plugin configuration is empty"
        );
    }
}

//! Where the plugin configuration comes from: the plugin configuration JSON
//! itself, an Istio `WasmPlugin` (its `spec.pluginConfig`), or an Envoy
//! bootstrap/listener/EnvoyFilter YAML or JSON holding the Wasm filter
//! (its `configuration`: a `StringValue`, `BytesValue` or `Struct`, as Envoy
//! hands each to the plugin). The answer is the bytes `on_configure` reads.

use std::path::Path;

use base64::Engine;
use serde_json::{Map, Value};
use yaml_rust2::{Yaml, YamlLoader};

use crate::keys::io_reason;

const STRING_VALUE: &str = "type.googleapis.com/google.protobuf.StringValue";
const BYTES_VALUE: &str = "type.googleapis.com/google.protobuf.BytesValue";
const STRUCT: &str = "type.googleapis.com/google.protobuf.Struct";

/// A plugin configuration and where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginConfig {
    /// What `on_configure` would read (empty when the holder sets none).
    pub bytes: Vec<u8>,
    /// `spec.pluginConfig of WasmPlugin istio-system/license-gate`, or the
    /// file itself.
    pub origin: String,
}

/// Reads FILE as a plugin configuration, or as a manifest holding one.
pub fn load(path: &Path) -> Result<PluginConfig, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {}", path.display(), io_reason(&e)))?;
    from_bytes(bytes, &path.display().to_string())
}

pub fn from_bytes(bytes: Vec<u8>, name: &str) -> Result<PluginConfig, String> {
    let itself = |bytes: Vec<u8>| PluginConfig { bytes, origin: name.to_string() };
    // JSON first: a plugin configuration is given to the filter as it is,
    // byte for byte, so its errors are the filter's own.
    if let Ok(value) = serde_json::from_slice::<Value>(&bytes) {
        return match found_in(&[value], name)? {
            Some(found) => Ok(found),
            None => Ok(itself(bytes)),
        };
    }
    let text = match std::str::from_utf8(&bytes) {
        // What is meant as JSON, broken or not, is the filter's to name
        // ("config: expected ...").
        Ok(text) if !(text.trim_start().starts_with('{') || name.ends_with(".json")) => text,
        _ => return Ok(itself(bytes)),
    };
    let documents = YamlLoader::load_from_str(text).map_err(|e| format!("{name}: neither JSON nor YAML: {e}"))?;
    let values = documents.iter().map(|d| to_json(d, "")).collect::<Result<Vec<_>, _>>()?;
    if let Some(found) = found_in(&values, name)? {
        return Ok(found);
    }
    // A YAML file that holds no manifest is a plugin configuration in YAML.
    match values.as_slice() {
        [value @ Value::Object(_)] => Ok(PluginConfig {
            bytes: serde_json::to_vec(value).map_err(|e| e.to_string())?,
            origin: format!("{name} (YAML)"),
        }),
        _ => Err(format!(
            "{name}: no plugin configuration found (a JSON object, a WasmPlugin's spec.pluginConfig, or an Envoy Wasm filter's configuration)"
        )),
    }
}

/// The one plugin configuration the documents hold, if they are manifests.
fn found_in(documents: &[Value], name: &str) -> Result<Option<PluginConfig>, String> {
    let mut found = Vec::new();
    for (i, document) in documents.iter().enumerate() {
        let at = if documents.len() > 1 { format!("document {}", i + 1) } else { String::new() };
        search(document, &at, &mut found)?;
    }
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        n => Err(format!(
            "{name} holds {n} plugin configurations ({}): give a file with one",
            found.iter().map(|f| f.origin.as_str()).collect::<Vec<_>>().join("; ")
        )),
    }
}

/// Finds WasmPlugins and Envoy Wasm plugin configurations anywhere in `value`.
fn search(value: &Value, at: &str, found: &mut Vec<PluginConfig>) -> Result<(), String> {
    match value {
        Value::Object(map) => {
            if map.get("kind").and_then(Value::as_str) == Some("WasmPlugin") && map.contains_key("spec") {
                found.push(wasm_plugin(map, at)?);
                return Ok(());
            }
            // Envoy's Wasm PluginConfig: the one message with a `vm_config`.
            if map.contains_key("vm_config") {
                found.push(envoy_plugin(map, at)?);
                return Ok(());
            }
            for (key, child) in map {
                search(child, &join(at, key), found)?;
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                search(child, &format!("{at}[{i}]"), found)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn join(at: &str, key: &str) -> String {
    if at.is_empty() { key.to_string() } else { format!("{at}.{key}") }
}

/// Istio hands `spec.pluginConfig` (a Struct) to the plugin as JSON.
fn wasm_plugin(map: &Map<String, Value>, at: &str) -> Result<PluginConfig, String> {
    let metadata = map.get("metadata");
    let field = |name: &str| metadata.and_then(|m| m.get(name)).and_then(Value::as_str);
    let plugin = match (field("namespace"), field("name")) {
        (Some(ns), Some(name)) => format!("WasmPlugin {ns}/{name}"),
        (None, Some(name)) => format!("WasmPlugin {name}"),
        _ => "WasmPlugin".to_string(),
    };
    let origin =
        format!("spec.pluginConfig of {plugin}{}", if at.is_empty() { String::new() } else { format!(" ({at})") });
    let bytes = match map.get("spec").and_then(|s| s.get("pluginConfig")) {
        None | Some(Value::Null) => Vec::new(),
        Some(config) => serde_json::to_vec(config).map_err(|e| e.to_string())?,
    };
    Ok(PluginConfig { bytes, origin })
}

/// Envoy hands a StringValue or BytesValue to the plugin as it is, and a
/// Struct as JSON.
fn envoy_plugin(map: &Map<String, Value>, at: &str) -> Result<PluginConfig, String> {
    let name = map.get("name").or_else(|| map.get("root_id")).and_then(Value::as_str);
    let field = join(at, "configuration");
    let origin = match name {
        Some(name) => format!("{field} of the Wasm filter \"{name}\""),
        None => field.clone(),
    };
    let Some(configuration) = map.get("configuration") else {
        return Ok(PluginConfig { bytes: Vec::new(), origin });
    };
    let type_url = configuration.get("@type").and_then(Value::as_str).unwrap_or_default();
    let value = configuration.get("value");
    let bytes = match (type_url, value) {
        (STRING_VALUE, Some(Value::String(text))) => text.clone().into_bytes(),
        (BYTES_VALUE, Some(Value::String(b64))) => base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| format!("{field}: the BytesValue is not base64: {e}"))?,
        (STRING_VALUE | BYTES_VALUE, None) => Vec::new(),
        (STRUCT, Some(value)) => serde_json::to_vec(value).map_err(|e| e.to_string())?,
        (STRUCT, None) => b"{}".to_vec(),
        (other, _) => {
            return Err(format!(
                "{field}: a configuration of type \"{other}\"; expected a google.protobuf StringValue, BytesValue or Struct"
            ));
        }
    };
    Ok(PluginConfig { bytes, origin })
}

/// What else a manifest says around the plugin configuration, for checks
/// that look at where the filter sits (`licensectl quota`).
#[derive(Debug, Default)]
pub struct Manifests {
    /// Every WasmPlugin object.
    pub wasm_plugins: Vec<Value>,
    /// Every `http_filters` list, with where it was found.
    pub http_filter_chains: Vec<FilterChain>,
    /// Every `rate_limits` list of routes and virtual hosts (not those
    /// inside an HTTP filter's own configuration).
    pub rate_limits: Vec<Value>,
}

#[derive(Debug)]
pub struct FilterChain {
    pub at: String,
    pub filters: Vec<Value>,
}

/// The manifests in FILE (none when it is a bare plugin configuration).
pub fn manifests(path: &Path) -> Result<Manifests, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {}", path.display(), io_reason(&e)))?;
    let name = path.display().to_string();
    let documents = match serde_json::from_slice::<Value>(&bytes) {
        Ok(value) => vec![value],
        Err(_) => match std::str::from_utf8(&bytes).ok().and_then(|t| YamlLoader::load_from_str(t).ok()) {
            Some(documents) => documents.iter().map(|d| to_json(d, "")).collect::<Result<Vec<_>, _>>()?,
            None => return Err(format!("{name}: neither JSON nor YAML")),
        },
    };
    let mut found = Manifests::default();
    for (i, document) in documents.iter().enumerate() {
        let at = if documents.len() > 1 { format!("document {}", i + 1) } else { String::new() };
        collect_manifests(document, &at, &mut found);
    }
    Ok(found)
}

fn collect_manifests(value: &Value, at: &str, found: &mut Manifests) {
    match value {
        Value::Object(map) => {
            if map.get("kind").and_then(Value::as_str) == Some("WasmPlugin") {
                found.wasm_plugins.push(value.clone());
                return;
            }
            for (key, child) in map {
                let here = join(at, key);
                if key == "http_filters"
                    && let Value::Array(filters) = child
                {
                    found.http_filter_chains.push(FilterChain { at: here.clone(), filters: filters.clone() });
                }
                if key == "rate_limits" && !here.contains("http_filters") {
                    found.rate_limits.push(child.clone());
                }
                collect_manifests(child, &here, found);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                collect_manifests(child, &format!("{at}[{i}]"), found);
            }
        }
        _ => {}
    }
}

/// An Envoy HTTP filter that runs a Wasm module (license-gate's kind).
pub fn is_wasm_plugin_filter(filter: &Value) -> bool {
    filter
        .get("typed_config")
        .and_then(|t| t.get("@type"))
        .and_then(Value::as_str)
        .is_some_and(|t| t.ends_with("envoy.extensions.filters.http.wasm.v3.Wasm"))
}

/// A YAML document as JSON, the way Kubernetes and Envoy read YAML: keys
/// as strings, numbers as numbers.
fn to_json(yaml: &Yaml, at: &str) -> Result<Value, String> {
    Ok(match yaml {
        Yaml::Null => Value::Null,
        Yaml::Boolean(b) => Value::Bool(*b),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::Real(text) => {
            let number = text.parse::<f64>().ok().and_then(serde_json::Number::from_f64);
            Value::Number(number.ok_or_else(|| format!("{at}: {text} is not a finite number"))?)
        }
        Yaml::String(s) => Value::String(s.clone()),
        Yaml::Array(items) => Value::Array(
            items.iter().enumerate().map(|(i, item)| to_json(item, &format!("{at}[{i}]"))).collect::<Result<_, _>>()?,
        ),
        Yaml::Hash(hash) => {
            let mut map = Map::new();
            for (key, value) in hash {
                let key = match key {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Real(r) => r.clone(),
                    Yaml::Boolean(b) => b.to_string(),
                    Yaml::Null => "null".to_string(),
                    _ => return Err(format!("{at}: a mapping key that is not a scalar")),
                };
                let value = to_json(value, &join(at, &key))?;
                map.insert(key, value);
            }
            Value::Object(map)
        }
        Yaml::Alias(_) | Yaml::BadValue => return Err(format!("{at}: a YAML value that cannot be read")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(text: &str, name: &str) -> Result<PluginConfig, String> {
        from_bytes(text.as_bytes().to_vec(), name)
    }

    #[test]
    fn plugin_json_is_passed_byte_for_byte() {
        let json = "{\"issuers\": [\"i\"],\n \"mode\": \"dry_run\"}";
        let found = load_str(json, "c.json").unwrap();
        assert_eq!(found.bytes, json.as_bytes());
        assert_eq!(found.origin, "c.json");
        // Broken JSON too: the filter names the problem.
        assert_eq!(load_str("{\"issuers\": [", "c.json").unwrap().bytes, b"{\"issuers\": [");
        assert_eq!(load_str("not json", "c.json").unwrap().bytes, b"not json");
    }

    #[test]
    fn wasm_plugin_yaml() {
        let yaml = "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata: {name: lg, namespace: ns}\n\
                    spec:\n  pluginConfig:\n    issuers: [\"https://i\"]\n    clock_skew_seconds: 30\n    rules:\n    - match: {prefix: /a}\n      license: none\n";
        let found = load_str(yaml, "p.yaml").unwrap();
        assert_eq!(found.origin, "spec.pluginConfig of WasmPlugin ns/lg");
        let value: Value = serde_json::from_slice(&found.bytes).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"issuers": ["https://i"], "clock_skew_seconds": 30,
                "rules": [{"match": {"prefix": "/a"}, "license": "none"}]})
        );
        let empty = load_str("kind: WasmPlugin\nspec: {url: x}\n", "p.yaml").unwrap();
        assert!(empty.bytes.is_empty());
    }

    #[test]
    fn envoy_configurations() {
        let yaml = r#"
static_resources:
  listeners:
  - filter_chains:
    - filters:
      - typed_config:
          http_filters:
          - name: license-gate
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm
              config:
                name: license-gate
                vm_config:
                  configuration: {"@type": type.googleapis.com/google.protobuf.StringValue, value: "vm"}
                configuration:
                  "@type": type.googleapis.com/google.protobuf.StringValue
                  value: |
                    {"issuers": ["x"]}
"#;
        let found = load_str(yaml, "envoy.yaml").unwrap();
        assert_eq!(found.bytes, b"{\"issuers\": [\"x\"]}\n");
        assert!(found.origin.starts_with("static_resources.listeners[0].filter_chains[0]"), "{}", found.origin);
        assert!(
            found.origin.ends_with(".config.configuration of the Wasm filter \"license-gate\""),
            "{}",
            found.origin
        );
        let bytes = yaml.replace(
            "\"@type\": type.googleapis.com/google.protobuf.StringValue\n                  value: |\n                    {\"issuers\": [\"x\"]}",
            "\"@type\": type.googleapis.com/google.protobuf.BytesValue\n                  value: eyJpc3N1ZXJzIjogWyJ4Il19",
        );
        assert_eq!(load_str(&bytes, "e.yaml").unwrap().bytes, b"{\"issuers\": [\"x\"]}");
        let two = format!("{yaml}---\n{yaml}");
        let error = load_str(&two, "e.yaml").unwrap_err();
        assert!(error.starts_with("e.yaml holds 2 plugin configurations (document 1.static_resources"), "{error}");
    }

    #[test]
    fn yaml_errors() {
        assert!(load_str("a: [", "x.yaml").unwrap_err().starts_with("x.yaml: neither JSON nor YAML: "));
        assert!(load_str("- a\n- b\n", "x.yaml").unwrap_err().starts_with("x.yaml: no plugin configuration found"));
        // A plugin configuration written in YAML.
        let found = load_str("issuers: [i]\n", "c.yaml").unwrap();
        assert_eq!(found.bytes, b"{\"issuers\":[\"i\"]}");
    }
}

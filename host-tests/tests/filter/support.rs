//! Shared test fixtures: the compiled module (once per test binary), test
//! keys, token minting, the reference configuration and a gateway driver.

use std::sync::OnceLock;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use license_gate_host_tests::{LogLine, Process, Reply, Vm, compile};
use serde_json::{Map, Value, json};
use wasmtime::Module;

/// The test clock's "now": 2027-01-15.
pub const NOW: u64 = 1_800_000_000;
// The reference configuration's issuer, audience, skew and grace period
// (`scenarios.rs` checks that they agree with `testdata/scenarios.json`).
pub const ISSUER: &str = "https://licenses.example.com";
pub const AUDIENCE: &str = "gateway.example.com";
pub const SKEW: u64 = 60;
pub const GRACE: u64 = 86_400;

/// The bytes of the real module (`LICENSE_GATE_WASM`, else `dist/`), read once.
pub fn module_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let path = std::env::var("LICENSE_GATE_WASM")
            .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../dist/license_gate.wasm").to_string());
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e} (run scripts/build.sh first)"))
    })
}

/// The real module, compiled once for the whole test binary.
pub fn module() -> &'static Module {
    static MODULE: OnceLock<Module> = OnceLock::new();
    MODULE.get_or_init(|| compile(module_bytes()).unwrap_or_else(|e| panic!("compiling the module: {e:#}")))
}

pub fn key_file(name: &str) -> String {
    let path = format!("{}/testdata/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `host-tests/testdata/scenarios.json`, read once: the reference
/// configuration, the signers, the default claims and the scenario table
/// that both test hosts (this harness and `envoy/tests/`) run.
pub fn reference() -> &'static Value {
    static TABLE: OnceLock<Value> = OnceLock::new();
    TABLE.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/scenarios.json");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    })
}

/// `value` with every `{"key_file": name}` member replaced by `{"key": <contents of keys/name>}`.
pub fn with_key_files(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("key_file", Value::String(file)) => ("key".to_string(), Value::String(key_file(&file))),
                    (_, v) => (k, with_key_files(v)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(with_key_files).collect()),
        other => other,
    }
}

/// Claims with `exp_in`, `nbf_in`, `iat_in` (seconds from `now`) turned into `exp`, `nbf`, `iat`.
pub fn resolve_time_claims(claims: &Value, now: u64) -> Map<String, Value> {
    let Value::Object(claims) = claims else { panic!("claims must be an object: {claims}") };
    claims
        .iter()
        .map(|(k, v)| match k.strip_suffix("_in").filter(|c| ["exp", "nbf", "iat"].contains(c)) {
            Some(claim) => {
                let offset = v.as_i64().unwrap_or_else(|| panic!("{k}: an offset in seconds, got {v}"));
                let at = now.checked_add_signed(offset).unwrap_or_else(|| panic!("{k}: {offset} from {now}"));
                (claim.to_string(), json!(at))
            }
            None => (k.clone(), v.clone()),
        })
        .collect()
}

/// A signing identity: algorithm, `kid` to put in the header, private key file.
#[derive(Debug, Clone, Copy)]
pub struct Signer {
    pub alg: Algorithm,
    pub kid: Option<&'static str>,
    pub key: &'static str,
}

// The `signers` of the reference table (`scenarios.rs` checks that they agree).
pub const RS256: Signer = Signer { alg: Algorithm::RS256, kid: Some("rs1"), key: "rsa.key.pem" };
pub const PS256: Signer = Signer { alg: Algorithm::PS256, kid: Some("ps1"), key: "rsa.key.pem" };
pub const ES256: Signer = Signer { alg: Algorithm::ES256, kid: Some("es1"), key: "p256.key.pem" };
pub const ES384: Signer = Signer { alg: Algorithm::ES384, kid: Some("es384"), key: "p384.key.pem" };
pub const EDDSA: Signer = Signer { alg: Algorithm::EdDSA, kid: Some("ed1"), key: "ed25519.key.pem" };
/// The RSA key published in the config's inline JWKS.
pub const JWK_RS256: Signer = Signer { alg: Algorithm::RS256, kid: Some("jwk-rs"), key: "rsa-other.key.pem" };

pub fn encoding_key(signer: &Signer) -> EncodingKey {
    private_key(signer.alg, signer.key)
}

/// The private key in `keys/<file>`, for signing with `alg`.
pub fn private_key(alg: Algorithm, file: &str) -> EncodingKey {
    let pem = key_file(file);
    let key = match alg {
        Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem.as_bytes()),
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem.as_bytes()),
        _ => EncodingKey::from_rsa_pem(pem.as_bytes()),
    };
    key.unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Signs `claims` as a compact JWS.
pub fn mint(signer: Signer, claims: &Value) -> String {
    let mut header = Header::new(signer.alg);
    header.kid = signer.kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, &encoding_key(&signer)).unwrap_or_else(|e| panic!("mint: {e}"))
}

/// A compact JWS over exactly these header and payload texts, signed by
/// `signer` (for tokens `mint` cannot make: duplicate members, odd types).
pub fn sign_raw(signer: Signer, header: &str, payload: &str) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let message = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &encoding_key(&signer), signer.alg)
        .unwrap_or_else(|e| panic!("sign: {e}"));
    format!("{message}.{signature}")
}

/// A valid license's claims at [`NOW`] (`default_claims` of the reference
/// table), with `extra` merged over them (a `null` in `extra` removes the
/// claim; `exp_in` and the like are seconds from [`NOW`]).
pub fn claims(extra: Value) -> Value {
    let mut base = resolve_time_claims(&reference()["default_claims"], NOW);
    if extra.is_object() {
        for (k, v) in resolve_time_claims(&extra, NOW) {
            if v.is_null() {
                base.remove(&k);
            } else {
                base.insert(k, v);
            }
        }
    }
    Value::Object(base)
}

pub fn jwk(signer: Signer) -> Value {
    let mut jwk = Jwk::from_encoding_key(&encoding_key(&signer), signer.alg).unwrap_or_else(|e| panic!("jwk: {e}"));
    jwk.common.key_id = signer.kid.map(str::to_string);
    serde_json::to_value(jwk).unwrap_or_else(|e| panic!("jwk: {e}"))
}

/// The reference configuration, in the contract's shape: `reference_config`
/// of the reference table, its PEM key files read in.
pub fn config() -> Value {
    with_key_files(reference()["reference_config"].clone())
}

/// Sets `config[path...] = value`, creating objects on the way.
pub fn with(mut config: Value, path: &[&str], value: Value) -> Value {
    let mut at = &mut config;
    for (i, key) in path.iter().enumerate() {
        if i + 1 == path.len() {
            at[*key] = value;
            break;
        }
        at = &mut at[*key];
    }
    config
}

/// One Envoy process with one configured VM, its clock at [`NOW`].
pub struct Gateway {
    pub process: Process,
    pub vm: Vm,
}

impl Gateway {
    pub fn new(config: &Value) -> Gateway {
        let process = Process::new();
        process.clock().set_seconds(NOW);
        let mut vm = Vm::start(module(), &process).unwrap_or_else(|e| panic!("vm start: {e:#}"));
        let accepted = vm.configure(config.to_string().as_bytes()).unwrap_or_else(|e| panic!("configure: {e:#}"));
        assert!(accepted, "configuration refused: {:?}", vm.logs());
        Gateway { process, vm }
    }

    /// A request with pseudo-headers filled in and extra headers.
    pub fn send(&mut self, method: &str, authority: &str, path: &str, extra: &[(&str, &str)]) -> Reply {
        let mut headers = vec![(":method", method), (":authority", authority), (":path", path), (":scheme", "http")];
        headers.extend_from_slice(extra);
        self.vm.request(&headers).unwrap_or_else(|e| panic!("request {method} {path}: {e:#}"))
    }

    /// `GET <path>` on the default host with `authorization: Bearer <token>`.
    pub fn get(&mut self, path: &str, token: &str) -> Reply {
        let auth = format!("Bearer {token}");
        self.send("GET", "api.example.com", path, &[("authorization", &auth)])
    }

    pub fn logs(&mut self) -> Vec<LogLine> {
        self.vm.take_logs()
    }
}

/// The exact JSON body of a denial.
pub fn deny_body(reason: &str, message: &str, missing: &[&str]) -> String {
    json!({"error": reason, "message": message, "missing_features": missing}).to_string()
}

/// The `error` code of a local reply's JSON body.
pub fn reason_of(reply: &Reply) -> String {
    match reply {
        Reply::Forwarded { .. } => "forwarded".to_string(),
        Reply::Local(_) => serde_json::from_str::<Value>(&reply.body())
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_else(|| format!("unparsable body {:?}", reply.body())),
    }
}

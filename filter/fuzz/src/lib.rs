//! What the fuzz targets (`fuzz_targets/`) and the seed generator
//! (`examples/seeds.rs`) share: the test keys, the configurations, the
//! `arbitrary` request shape of `token_extraction` (and an encoder that turns
//! a request into the bytes that decode to it, for seeds), the cache stores
//! and sample licenses of `cache_entry_decode`.
//!
//! Nothing here is fuzzed itself; a panic in it is a harness bug.

use std::cell::RefCell;
use std::collections::BTreeSet;

use arbitrary::{Arbitrary, Unstructured};
use license_gate::binding::Identity;
use license_gate::cache::{CacheSettings, Epoch, SharedStore};
use license_gate::config::Config;
use license_gate::license::License;
use license_gate::reason::Reason;
use serde_json::{Value, json};

/// The test clock's "now" (2027-01-15), as in host-tests.
pub const NOW: u64 = 1_800_000_000;
pub const ISSUER: &str = "https://licenses.example.com";
pub const AUDIENCE: &str = "gateway.example.com";

/// The public halves of the test keys in host-tests/testdata/keys.
pub mod keys {
    pub const RSA_PUB: &str = include_str!("../../../host-tests/testdata/keys/rsa.pub.pem");
    pub const P256_PUB: &str = include_str!("../../../host-tests/testdata/keys/p256.pub.pem");
    pub const P384_PUB: &str = include_str!("../../../host-tests/testdata/keys/p384.pub.pem");
    pub const ED25519_PUB: &str = include_str!("../../../host-tests/testdata/keys/ed25519.pub.pem");
}

/// The fixed key set: rs1 (RS256), ps1 (PS256, same RSA key), es1 (ES256),
/// es384 (ES384) and ed1 (EdDSA), so every verifier family is reachable.
pub fn pem_keys() -> Value {
    json!([
        {"kid": "rs1", "alg": "RS256", "key": keys::RSA_PUB},
        {"kid": "ps1", "alg": "PS256", "key": keys::RSA_PUB},
        {"kid": "es1", "alg": "ES256", "key": keys::P256_PUB},
        {"kid": "es384", "alg": "ES384", "key": keys::P384_PUB},
        {"kid": "ed1", "alg": "EdDSA", "key": keys::ED25519_PUB},
    ])
}

/// `verify_token`'s configuration: the fixed keys, plans, claim names and
/// forwarded claims, so that every step of `Verifier::verify` has work to do.
pub fn verify_config_json() -> Value {
    json!({
        "issuers": [ISSUER],
        "audiences": [AUDIENCE],
        "algorithms": ["RS256", "PS256", "ES256", "ES384", "EdDSA"],
        "keys": {"pem": pem_keys()},
        "clock_skew_seconds": 60,
        "grace_period_seconds": 86_400,
        "plans": {
            "pro": {"features": ["reports"]},
            "enterprise": {"inherits": ["pro"], "features": ["sso", "audit"]}
        },
        "forward": {
            "headers": {"x-license-tenant": "tenant", "x-license-plan": "plan", "x-license-seats": "seats"}
        },
        "binding": {"claim": "deployments"}
    })
}

/// `token_extraction`'s configuration: every token source, `strip_token`,
/// rules with prefix, path-separated prefix, exact, host (exact and
/// wildcard) and method matchers, forwarded headers, deployment binding.
/// `mode` is "enforce" or "dry_run".
pub fn gate_config_json(mode: &str) -> Value {
    json!({
        "issuers": [ISSUER],
        "audiences": [AUDIENCE],
        "keys": {"pem": pem_keys()},
        "token": [
            {"header": "authorization", "prefix": "Bearer "},
            {"header": "x-license"},
            {"query": "license"},
            {"cookie": "license"}
        ],
        "max_token_bytes": 1024,
        "rules": [
            {"match": {"prefix": "/healthz"}, "license": "none"},
            {"match": {"prefix": "/api/reports", "methods": ["GET", "HEAD"]}, "require": {"all": ["reports"]}},
            {"match": {"exact": "/api/admin", "host": "admin.example.com"}, "require": {"any": ["sso", "audit"]}},
            {"match": {"prefix": "/tenant", "host": "*.example.com"}, "require": {"all": ["reports"], "any": ["sso"]}},
            {"match": {"prefix": "/internal"}, "license": "deny"},
            {"match": {"path_separated_prefix": "/admin"}, "require": {"all": ["audit"]}},
            {"match": {"exact": "/"}, "license": "none"},
            {"match": {"prefix": "/api/"}}
        ],
        "default": "deny",
        "forward": {
            "headers": {"x-license-tenant": "tenant", "x-license-plan": "plan", "x-license-id": "jti"},
            "strip_token": true
        },
        "binding": {"claim": "deployments", "identity": {"value": "gw1.prod.example"}},
        "mode": mode
    })
}

/// Compiles a harness configuration; refusing one is a harness bug.
pub fn config(json: &Value) -> Config {
    Config::from_json(json.to_string().as_bytes()).unwrap_or_else(|e| panic!("harness config refused: {e}"))
}

// ---------------------------------------------------------------------------
// token_extraction: the request, as `arbitrary` decodes it.
// ---------------------------------------------------------------------------

/// A request: how the stub verifier answers, the clock and configuration,
/// and the headers in order (names mostly from the list the filter looks at).
#[derive(Arbitrary, Debug, Clone, PartialEq, Eq)]
pub struct RequestInput<'a> {
    /// The stub verifier: `% 4` picks the kind of answer, the rest a reason.
    pub verdict: u8,
    /// Bits 0-1: the clock ([`REQUEST_CLOCKS`]); bits 2-3: the gateway's
    /// identity ([`identity`]); bit 7: dry-run mode.
    pub clock: u8,
    pub headers: Vec<Header<'a>>,
}

#[derive(Arbitrary, Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    pub name: HeaderName<'a>,
    pub value: &'a [u8],
}

#[derive(Arbitrary, Debug, Clone, PartialEq, Eq)]
pub enum HeaderName<'a> {
    Path,
    Method,
    Authority,
    Host,
    Scheme,
    Authorization,
    XLicense,
    Cookie,
    XLicenseStatus,
    XLicenseDryRun,
    XLicenseTenant,
    Other(&'a str),
}

impl HeaderName<'_> {
    pub fn as_str(&self) -> &str {
        match self {
            HeaderName::Path => ":path",
            HeaderName::Method => ":method",
            HeaderName::Authority => ":authority",
            HeaderName::Host => "host",
            HeaderName::Scheme => ":scheme",
            HeaderName::Authorization => "authorization",
            HeaderName::XLicense => "x-license",
            HeaderName::Cookie => "cookie",
            HeaderName::XLicenseStatus => "x-license-status",
            HeaderName::XLicenseDryRun => "x-license-dry-run",
            HeaderName::XLicenseTenant => "x-license-tenant",
            HeaderName::Other(name) => name,
        }
    }

    /// The list entry for a name, else `Other`.
    pub fn from_name(name: &str) -> HeaderName<'_> {
        const KNOWN: [HeaderName<'static>; 11] = [
            HeaderName::Path,
            HeaderName::Method,
            HeaderName::Authority,
            HeaderName::Host,
            HeaderName::Scheme,
            HeaderName::Authorization,
            HeaderName::XLicense,
            HeaderName::Cookie,
            HeaderName::XLicenseStatus,
            HeaderName::XLicenseDryRun,
            HeaderName::XLicenseTenant,
        ];
        KNOWN.into_iter().find(|k| k.as_str() == name).unwrap_or(HeaderName::Other(name))
    }

    /// Index and count of the variant, as `#[derive(Arbitrary)]` numbers them.
    fn variant(&self) -> (u64, u64) {
        let index = match self {
            HeaderName::Path => 0,
            HeaderName::Method => 1,
            HeaderName::Authority => 2,
            HeaderName::Host => 3,
            HeaderName::Scheme => 4,
            HeaderName::Authorization => 5,
            HeaderName::XLicense => 6,
            HeaderName::Cookie => 7,
            HeaderName::XLicenseStatus => 8,
            HeaderName::XLicenseDryRun => 9,
            HeaderName::XLicenseTenant => 10,
            HeaderName::Other(_) => 11,
        };
        (index, 12)
    }
}

pub const REQUEST_CLOCKS: [u64; 4] = [NOW, 0, u64::MAX, NOW + 40 * 86_400];

/// The gateway identities deployment binding compares with (`index & 3`):
/// matched by `*.prod.example`, matched exactly, unreadable, empty.
pub fn identity(index: u8) -> Identity {
    match index & 3 {
        0 => Ok("gw1.prod.example".into()),
        1 => Ok("eu-1".into()),
        2 => Err("node.id unreadable".into()),
        _ => Ok(String::new()),
    }
}

impl<'a> RequestInput<'a> {
    /// Decodes fuzz bytes exactly as the target does.
    pub fn decode(data: &'a [u8]) -> arbitrary::Result<RequestInput<'a>> {
        RequestInput::arbitrary_take_rest(Unstructured::new(data))
    }

    pub fn now(&self) -> u64 {
        REQUEST_CLOCKS[usize::from(self.clock & 3)]
    }

    pub fn identity(&self) -> Identity {
        identity(self.clock >> 2)
    }

    pub fn dry_run(&self) -> bool {
        self.clock & 0x80 != 0
    }

    /// The headers as `RequestHeaders::new` takes them.
    pub fn pairs(&self) -> Vec<(String, Vec<u8>)> {
        self.headers.iter().map(|h| (h.name.as_str().to_string(), h.value.to_vec())).collect()
    }

    /// The bytes that `decode` turns back into this request (checked), so
    /// that seeds can be written as requests. Follows arbitrary 1.x's format:
    /// integers little-endian from the front, one "more" byte before each
    /// element of the last field's Vec, enum variants from a u32, and
    /// collection lengths from the back of the input.
    pub fn encode(&self) -> Vec<u8> {
        let mut ops = vec![Op::Front(vec![self.verdict, self.clock])];
        for h in &self.headers {
            let (index, count) = h.name.variant();
            // The smallest u32 x with (x * count) >> 32 == index.
            let x = u32::try_from((index << 32).div_ceil(count)).expect("variant index");
            let mut front = vec![1];
            front.extend_from_slice(&x.to_le_bytes());
            ops.push(Op::Front(front));
            if let HeaderName::Other(name) = &h.name {
                ops.push(Op::Len(name.len()));
                ops.push(Op::Front(name.as_bytes().to_vec()));
            }
            ops.push(Op::Len(h.value.len()));
            ops.push(Op::Front(h.value.to_vec()));
        }
        let bytes = encode_ops(&ops);
        match RequestInput::decode(&bytes) {
            Ok(back) if back == *self => bytes,
            other => panic!("the request encoder no longer matches arbitrary's format: {other:?}"),
        }
    }
}

enum Op {
    /// Bytes read from the front.
    Front(Vec<u8>),
    /// A length `Unstructured::arbitrary_len::<u8>` reads from the back.
    Len(usize),
}

/// Lays out front bytes and back-read lengths. A length takes 1, 2 or 4
/// bytes depending on how much input is left when it is read, which depends
/// on the widths of the lengths after it: iterate to the fixed point.
fn encode_ops(ops: &[Op]) -> Vec<u8> {
    let n_lens = ops.iter().filter(|o| matches!(o, Op::Len(_))).count();
    let mut widths = vec![1usize; n_lens];
    let front_total: usize = ops.iter().map(|o| if let Op::Front(b) = o { b.len() } else { 0 }).sum();
    let width = |remaining: usize| {
        if remaining <= 256 {
            1
        } else if remaining <= 65_537 {
            2
        } else {
            4
        }
    };
    let mut remaining_at = vec![0usize; n_lens];
    loop {
        let total = front_total + widths.iter().sum::<usize>();
        let (mut front_used, mut back_used, mut k) = (0, 0, 0);
        let mut next = widths.clone();
        for op in ops {
            match op {
                Op::Front(b) => front_used += b.len(),
                Op::Len(_) => {
                    let remaining = total - front_used - back_used;
                    remaining_at[k] = remaining;
                    next[k] = width(remaining);
                    back_used += next[k];
                    k += 1;
                }
            }
        }
        if next == widths {
            break;
        }
        widths = next;
    }
    let mut front = Vec::with_capacity(front_total);
    let mut back_blocks = Vec::with_capacity(n_lens);
    let mut k = 0;
    for op in ops {
        match op {
            Op::Front(b) => front.extend_from_slice(b),
            Op::Len(len) => {
                let w = widths[k];
                let max = remaining_at[k] - w;
                assert!(*len <= max, "length {len} does not fit in {max}");
                // Unstructured reads the w bytes in order, big-endian, but
                // only as many as `max` needs.
                let used = (0..w).take_while(|i| (max >> (8 * i)) > 0).count();
                let mut block = vec![0u8; w];
                for (i, byte) in block.iter_mut().take(used).enumerate() {
                    *byte = (len >> (8 * (used - 1 - i))) as u8;
                }
                back_blocks.push(block);
                k += 1;
            }
        }
    }
    // The first length read is the one at the very end.
    for block in back_blocks.into_iter().rev() {
        front.extend_from_slice(&block);
    }
    front
}

// ---------------------------------------------------------------------------
// cache_entry_decode: stores and licenses.
// ---------------------------------------------------------------------------

pub fn cache_settings() -> CacheSettings {
    CacheSettings { max_entries: 8, ttl_seconds: 300, negative_ttl_seconds: 30, local_entries: 4 }
}

/// Clocks for reading an entry written at [`NOW`]: live, live, expired, last live second.
pub const CACHE_CLOCKS: [u64; 4] = [NOW, 0, u64::MAX, NOW + 299];

/// The epoch entries are written under, and another one (a key rotation).
pub const CACHE_EPOCHS: [Epoch; 2] = [Epoch { keys: 3, revocations: 5 }, Epoch { keys: 4, revocations: 5 }];

/// The configuration fingerprint the cache keys carry.
pub const CACHE_FINGERPRINT: &str = "0123456789abcdef";

/// Shared data whose every slot holds the same bytes.
pub struct FixedStore<'a>(pub &'a [u8]);

impl SharedStore for FixedStore<'_> {
    fn get(&self, _key: &str) -> Option<(Vec<u8>, Option<u32>)> {
        Some((self.0.to_vec(), Some(7)))
    }
    fn set(&self, _key: &str, _value: &[u8], _cas: Option<u32>) -> bool {
        false
    }
}

/// Empty shared data that keeps the last value written.
#[derive(Default)]
pub struct RecordingStore(pub RefCell<Option<Vec<u8>>>);

impl SharedStore for RecordingStore {
    fn get(&self, _key: &str) -> Option<(Vec<u8>, Option<u32>)> {
        None
    }
    fn set(&self, _key: &str, value: &[u8], _cas: Option<u32>) -> bool {
        *self.0.borrow_mut() = Some(value.to_vec());
        true
    }
}

/// Licenses of every shape the entry encoding has: perpetual or not, with
/// and without optional strings, features and forwarded values.
pub fn sample_licenses() -> Vec<License> {
    let features = |fs: &[&str]| fs.iter().map(|f| f.to_string()).collect::<BTreeSet<_>>();
    vec![
        License {
            features: features(&["reports", "sso", "audit"]),
            plan: Some("enterprise".into()),
            tenant: Some("acme".into()),
            license_id: Some("lic-0001".into()),
            expires_at: Some(NOW + 30 * 86_400),
            active_until: Some(NOW + 30 * 86_400 + 60),
            valid_until: Some(NOW + 31 * 86_400 + 60),
            // The harness configs forward x-license-id, -plan, -tenant (or -seats):
            // forward.headers is a map, compiled in name order.
            forwarded: vec![Some("lic-0001".into()), None, Some("acme".into())],
            deployments: Some(vec!["eu-1".into(), "*.prod.example".into()]),
        },
        License {
            features: BTreeSet::new(),
            plan: None,
            tenant: None,
            license_id: None,
            expires_at: None,
            active_until: None,
            valid_until: None,
            forwarded: Vec::new(),
            deployments: None,
        },
        License {
            features: features(&["", "é✓"]),
            plan: Some(String::new()),
            tenant: None,
            license_id: Some("x".repeat(300)),
            expires_at: Some(NOW - 10),
            active_until: Some(NOW + 50),
            valid_until: Some(NOW + 1_000),
            forwarded: vec![None, None],
            deployments: Some(Vec::new()),
        },
    ]
}

/// The verdicts `cache_entry_decode` encodes in its mutating mode, by index.
pub fn sample_verdict(index: u8) -> Result<License, Reason> {
    let licenses = sample_licenses();
    let i = usize::from(index);
    match licenses.get(i % (licenses.len() + Reason::ALL.len())) {
        Some(l) => Ok(l.clone()),
        None => Err(Reason::ALL[(i % (licenses.len() + Reason::ALL.len())) - licenses.len()]),
    }
}

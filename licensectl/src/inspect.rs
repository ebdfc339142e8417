//! A token's header and claims, decoded but not verified, with its times
//! in RFC 3339 and relative to now.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::times;

/// A compact JWS, decoded.
#[derive(Debug)]
pub struct Decoded {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    pub signature_bytes: usize,
    /// What makes the gateway refuse the token before any key is looked at.
    pub warnings: Vec<String>,
}

pub fn decode(token: &str) -> Result<Decoded, String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts.as_slice() else {
        return Err(format!("not a compact JWT: {} dot-separated parts, expected 3", parts.len()));
    };
    let mut warnings = Vec::new();
    let header = object("header", header, &mut warnings)?;
    let claims = object("claims", payload, &mut warnings)?;
    let signature_bytes = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| "the signature is not base64url (without padding)".to_string())?
        .len();
    for name in ["iat", "nbf", "exp"] {
        if let Some(value) = claims.get(name)
            && numeric_date(value).is_none()
        {
            warnings.push(format!("{name} is not a NumericDate: the gateway refuses the token as malformed"));
        }
    }
    if header.contains_key("crit") {
        warnings.push("the header has crit: the gateway refuses the token as malformed".into());
    }
    Ok(Decoded { header, claims, signature_bytes, warnings })
}

/// One base64url JSON object, and whether the strict parser the gateway
/// uses would take it.
fn object(part: &str, b64: &str, warnings: &mut Vec<String>) -> Result<Map<String, Value>, String> {
    let bytes = URL_SAFE_NO_PAD.decode(b64).map_err(|_| format!("the {part} is not base64url (without padding)"))?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| format!("the {part} is not JSON: {e}"))?;
    let Value::Object(map) = value else { return Err(format!("the {part} is not a JSON object")) };
    if let Err(e) = license_gate::strict_json::object_from_slice(&bytes) {
        warnings.push(format!("the {part}: {e}: the gateway refuses the token as malformed"));
    }
    Ok(map)
}

/// Whole seconds of a NumericDate, as the gateway reads it.
fn numeric_date(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| (0.0..1.8e19).contains(f)).map(|f| f as u64)),
        _ => None,
    }
}

/// The time claims worth a sentence.
const TIMES: [&str; 4] = ["iat", "nbf", "exp", "next_update"];

fn describe_time(name: &str, at: u64, now: u64) -> String {
    match name {
        "exp" => times::expiry(at, now),
        "iat" => format!("issued {}", times::relative(at, now)),
        "nbf" if at > now => format!("not valid yet: valid {}", times::relative(at, now)),
        "nbf" => format!("valid since {}", times::relative(at, now)),
        _ => times::relative(at, now),
    }
}

/// The text report.
pub fn text(decoded: &Decoded, now: u64) -> String {
    let mut out = String::new();
    let width = decoded.header.keys().chain(decoded.claims.keys()).map(|k| k.chars().count()).max().unwrap_or(0);
    let line = |out: &mut String, name: &str, value: String| {
        out.push_str(&format!("  {name:width$}  {value}\n"));
    };
    out.push_str("header:\n");
    for (name, value) in &decoded.header {
        line(&mut out, name, scalar(value));
    }
    out.push_str("claims:\n");
    for (name, value) in &decoded.claims {
        let text = match (TIMES.contains(&name.as_str()), numeric_date(value)) {
            (true, Some(at)) => format!("{}  {}  {}", scalar(value), times::rfc3339(at), describe_time(name, at, now)),
            _ => scalar(value),
        };
        line(&mut out, name, text);
    }
    let revocation_list = decoded.header.get("typ").and_then(Value::as_str) == Some(license_gate::revocation::LIST_TYP);
    if !decoded.claims.contains_key("exp") && !revocation_list {
        out.push_str("  (no exp: the license never expires)\n");
    }
    out.push_str(&format!("signature: {} bytes, not verified (licensectl check verifies)\n", decoded.signature_bytes));
    for warning in &decoded.warnings {
        out.push_str(&format!("warning: {warning}\n"));
    }
    out
}

/// The machine report, members in reading order.
pub fn json(decoded: &Decoded, now: u64) -> Result<String, String> {
    #[derive(Serialize)]
    struct Out<'a> {
        header: &'a Map<String, Value>,
        claims: &'a Map<String, Value>,
        times: Map<String, Value>,
        signature_bytes: usize,
        verified: bool,
        warnings: &'a [String],
    }
    let mut times_out = Map::new();
    for (name, value) in &decoded.claims {
        if let (true, Some(at)) = (TIMES.contains(&name.as_str()), numeric_date(value)) {
            times_out.insert(
                name.clone(),
                json!({
                    "unix": at,
                    "rfc3339": times::rfc3339(at),
                    "relative": describe_time(name, at, now),
                    "seconds_from_now": i128::from(at) - i128::from(now),
                }),
            );
        }
    }
    let out = Out {
        header: &decoded.header,
        claims: &decoded.claims,
        times: times_out,
        signature_bytes: decoded.signature_bytes,
        verified: false,
        warnings: &decoded.warnings,
    };
    serde_json::to_string_pretty(&out).map(|s| s + "\n").map_err(|e| e.to_string())
}

/// A value on one line: strings as they are (JSON-quoted when they hold
/// control characters), anything else as compact JSON.
fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) if !s.chars().any(char::is_control) && !s.is_empty() => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: &str, claims: &str) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims),
            URL_SAFE_NO_PAD.encode([1u8; 64])
        )
    }

    #[test]
    fn text_report() {
        let now = 1_800_000_000;
        let t = token(
            r#"{"alg":"ES256","kid":"es1","typ":"JWT"}"#,
            &format!(
                r#"{{"iss":"https://i","exp":{},"iat":{},"features":["a","b"],"plan":"pro"}}"#,
                now + 29 * 86_400 + 5,
                now - 3 * 3_600
            ),
        );
        let report = text(&decode(&t).unwrap(), now);
        let (exp, iat) = (now + 29 * 86_400 + 5, now - 3 * 3_600);
        // serde_json's map is ordered by name.
        let expected = format!(
            "header:\n  alg       ES256\n  kid       es1\n  typ       JWT\nclaims:\n  \
             exp       {exp}  {}  expires in 29 days\n  features  [\"a\",\"b\"]\n  \
             iat       {iat}  {}  issued 3 hours ago\n  iss       https://i\n  plan      pro\n\
             signature: 64 bytes, not verified (licensectl check verifies)\n",
            times::rfc3339(exp),
            times::rfc3339(iat),
        );
        assert_eq!(report, expected);
        assert_eq!(times::rfc3339(exp), "2027-02-13T08:00:05Z");
    }

    #[test]
    fn problems_the_gateway_refuses() {
        let t = token(r#"{"alg":"RS256","alg":"none"}"#, r#"{"exp":"tomorrow"}"#);
        let d = decode(&t).unwrap();
        assert!(d.warnings.iter().any(|w| w.contains("duplicate")), "{:?}", d.warnings);
        assert!(d.warnings.iter().any(|w| w == "exp is not a NumericDate: the gateway refuses the token as malformed"));
        assert!(text(&d, 0).contains("warning: exp is not a NumericDate"));
        assert_eq!(decode("a.b").unwrap_err(), "not a compact JWT: 2 dot-separated parts, expected 3");
        assert_eq!(decode("!.b.c").unwrap_err(), "the header is not base64url (without padding)");
        let not_json = format!("{}.e30.", URL_SAFE_NO_PAD.encode("nope"));
        assert!(decode(&not_json).unwrap_err().starts_with("the header is not JSON"));
    }
}

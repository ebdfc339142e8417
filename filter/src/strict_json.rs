//! JSON for token headers and claims, parsed strictly: an object that names
//! a member twice is an error. RFC 7515 §4 lets a parser take the last
//! duplicate or reject the token; taking one would let `{"iss":"evil",
//! "iss":"good"}` mean different things to the gate and to whatever reads
//! the token after it, so license-gate rejects it, as Envoy's jwt_authn does.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// A [`Value`] whose objects, at every depth, had no duplicate member.
pub struct StrictValue(pub Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if members.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate member `{key}`")));
            }
            let StrictValue(value) = map.next_value()?;
            members.insert(key, value);
        }
        Ok(Value::Object(members))
    }
}

/// Parses one JSON object strictly (see the module documentation).
pub fn object_from_slice(bytes: &[u8]) -> Result<Map<String, Value>, serde_json::Error> {
    match serde_json::from_slice::<StrictValue>(bytes)?.0 {
        Value::Object(map) => Ok(map),
        _ => Err(de::Error::custom("not a JSON object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_errors_at_every_depth() {
        let ok = |s: &str| object_from_slice(s.as_bytes()).map(Value::Object).map_err(|e| e.to_string());
        assert_eq!(
            ok(r#"{"iss":"a","n":[1,-2,2.5,true,null,{"x":1}],"o":{"x":{"y":"z"}}}"#),
            Ok(serde_json::json!({"iss":"a","n":[1,-2,2.5,true,null,{"x":1}],"o":{"x":{"y":"z"}}}))
        );
        assert!(ok(r#"{"iss":"evil","iss":"good"}"#).unwrap_err().starts_with("duplicate member `iss`"));
        assert!(ok(r#"{"o":{"a":1,"a":1}}"#).unwrap_err().starts_with("duplicate member `a`"));
        assert!(ok(r#"{"l":[{"a":1,"a":2}]}"#).unwrap_err().starts_with("duplicate member `a`"));
        // The same member spelled with an escape is the same member.
        assert!(ok(r#"{"iss":"a","i\u0073s":"b"}"#).unwrap_err().starts_with("duplicate member `iss`"));
        assert!(ok("[1]").is_err());
        assert!(ok(r#"{"a":1} x"#).is_err());
        // Large numbers keep serde_json's meaning: beyond u64 they are floats.
        assert_eq!(ok(r#"{"exp":18446744073709551616}"#), Ok(serde_json::json!({"exp": 18446744073709551616.0})));
    }
}

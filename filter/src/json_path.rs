//! Names the field a serde_json error points at, such as `rules[2].require.all`.
//!
//! serde_json reports where in the text it stopped (line and column), not
//! which field it was reading. Tracking the field during deserialisation
//! (`serde_path_to_error`) wraps every visitor and doubled the config
//! parser's code: about a tenth of the module. An error is rare and its text
//! is at hand, so this walks the JSON up to the error's position instead and
//! reads the path off the open objects and arrays there.

/// One open container on the way to the error.
enum Frame {
    /// The key being read or just read; `None` before the first key and
    /// after a comma.
    Object(Option<String>),
    /// The index of the element being read.
    Array(usize),
}

/// The path of the field `error` is about in `text` (which serde_json was
/// reading); empty when the error is about the document as a whole.
pub fn error_path(text: &[u8], error: &serde_json::Error) -> String {
    path_at(text, error.line(), error.column())
}

/// The path at serde_json's `line` (1-based) and `column` (bytes from the
/// start of that line) in `text`. serde_json stops right after a bad value or
/// key, and right after the closing bracket of an object that lacks a field:
/// either way the containers still open there lead to the field at fault.
fn path_at(text: &[u8], line: usize, column: usize) -> String {
    let line_start = if line <= 1 {
        0
    } else {
        text.iter().enumerate().filter(|(_, b)| **b == b'\n').nth(line - 2).map_or(text.len(), |(i, _)| i + 1)
    };
    let end = (line_start + column).min(text.len());
    let mut frames: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < end {
        match text.get(i) {
            Some(b'{') => frames.push(Frame::Object(None)),
            Some(b'[') => frames.push(Frame::Array(0)),
            Some(b'}' | b']') => {
                frames.pop();
            }
            Some(b',') => match frames.last_mut() {
                Some(Frame::Object(key)) => *key = None,
                Some(Frame::Array(index)) => *index += 1,
                None => {}
            },
            Some(b'"') => {
                let start = i + 1;
                i = string_end(text, start);
                // A string where an object expects a key is the key.
                if let Some(Frame::Object(key @ None)) = frames.last_mut() {
                    let raw = text.get(start..i.min(text.len())).unwrap_or_default();
                    *key = Some(String::from_utf8_lossy(raw).into_owned());
                }
            }
            _ => {}
        }
        i += 1;
    }
    let mut path = String::new();
    for frame in &frames {
        match frame {
            Frame::Object(Some(key)) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Frame::Object(None) => {}
            Frame::Array(index) => path.push_str(&format!("[{index}]")),
        }
    }
    path
}

/// The index of the quote that closes a string whose content starts at `i`.
fn string_end(text: &[u8], mut i: usize) -> usize {
    while let Some(b) = text.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return i,
            _ => i += 1,
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: Option<String>,
        #[serde(default)]
        items: Vec<Item>,
        #[serde(default)]
        map: BTreeMap<String, Item>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        id: u32,
        #[serde(default)]
        tags: Vec<String>,
    }

    /// The path serde_json's error points at for `json` read as a `Doc`.
    fn path_of(json: &str) -> String {
        match serde_json::from_str::<Doc>(json) {
            Ok(_) => "ok".into(),
            Err(e) => error_path(json.as_bytes(), &e),
        }
    }

    #[test]
    fn names_the_field_of_each_kind_of_error() {
        let cases = [
            // (JSON, path of the error)
            (r#"{"name": "a"}"#, "ok"),
            (r#"{"nmae": "a"}"#, "nmae"),
            (r#"{"name": 5}"#, "name"),
            (r#"{"name": {"x": [1, 2]}}"#, "name"),
            (r#"{"items": [{"id": 1}, {"id": "two"}]}"#, "items[1].id"),
            (r#"{"items": [{"id": 1}, {"id": 2, "tags": ["a", 3]}]}"#, "items[1].tags[1]"),
            (r#"{"items": [{"id": 1}, {"tags": []}]}"#, "items[1]"),
            (r#"{"items": [{"id": 1}, {"tags": [] }  ]}"#, "items[1]"),
            (r#"{"map": {"a": {"id": 1}, "b\"c": {"id": -1}}}"#, "map.b\\\"c.id"),
            (r#"{"map": {"a": {"id": 1, "extra": true}}}"#, "map.a.extra"),
            (r#"{"items": 7}"#, "items"),
            (r#"{"map": {"a": {}}}"#, "map.a"),
            (r#"{"map": {"a": {"id": 1}}, "items": [{"id": 2, "tags": [[]]}]}"#, "items[0].tags[0]"),
            ("[]", ""),
            ("nope", ""),
            ("{\n  \"items\": [\n    {\"id\": 1},\n    {\"id\": false}\n  ]\n}", "items[1].id"),
            (r#"{"name": "a",}"#, ""),
        ];
        for (json, want) in cases {
            assert_eq!(path_of(json), want, "{json}");
        }
    }

    #[test]
    fn positions_past_the_text_are_safe() {
        assert_eq!(path_at(b"{\"a\": [", 1, 99), "a[0]");
        assert_eq!(path_at(b"{\"a", 7, 3), "a");
        assert_eq!(path_at(b"", 1, 0), "");
    }
}

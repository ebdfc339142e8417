//! Where the license token travels: a header (with an optional scheme prefix),
//! a query parameter or a cookie. Sources are tried in the configured order;
//! the first one that carries a token wins.

use std::borrow::Cow;

use crate::config::{ConfigError, RawTokenSource, is_header_name};
use crate::request::{HeaderEdit, RequestHeaders};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    Header { name: String, prefix: Option<String> },
    Query { name: String },
    Cookie { name: String },
}

/// A token as found, and where, so that it can be stripped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundToken<'c, 'r> {
    /// Borrowed from the request unless it had to be percent-decoded.
    pub token: Cow<'r, str>,
    pub source: &'c TokenSource,
}

impl TokenSource {
    /// `authorization: Bearer <token>`, then `x-license: <token>`.
    pub fn defaults() -> Vec<TokenSource> {
        vec![
            TokenSource::Header { name: "authorization".into(), prefix: Some("Bearer ".into()) },
            TokenSource::Header { name: "x-license".into(), prefix: None },
        ]
    }

    pub(crate) fn compile(field: &str, raw: &RawTokenSource) -> Result<TokenSource, ConfigError> {
        let source = match (&raw.header, &raw.query, &raw.cookie) {
            (Some(h), None, None) => {
                let name = h.to_ascii_lowercase();
                if !is_header_name(&name) {
                    return Err(ConfigError::new(format!("{field}.header"), "not a valid HTTP header name"));
                }
                let prefix = match &raw.prefix {
                    Some(p) if p.is_empty() => None,
                    p => p.clone(),
                };
                TokenSource::Header { name, prefix }
            }
            (None, Some(q), None) if !q.is_empty() => TokenSource::Query { name: q.clone() },
            (None, None, Some(c)) if !c.is_empty() => TokenSource::Cookie { name: c.clone() },
            (None, Some(_), None) | (None, None, Some(_)) => {
                return Err(ConfigError::new(field, "the parameter or cookie name must not be empty"));
            }
            _ => {
                return Err(ConfigError::new(field, "give exactly one of header, query or cookie"));
            }
        };
        if raw.prefix.is_some() && !matches!(source, TokenSource::Header { .. }) {
            return Err(ConfigError::new(format!("{field}.prefix"), "only a header source takes a prefix"));
        }
        Ok(source)
    }

    /// The raw token this source carries in the request, if any. An empty
    /// value, or a header with another scheme (`Basic …`), carries none.
    fn extract<'r>(&self, req: &'r RequestHeaders) -> Option<Cow<'r, str>> {
        let token: Cow<'r, str> = match self {
            TokenSource::Header { name, prefix } => {
                let value = req.get(name)?;
                match prefix {
                    None => value.trim(),
                    // The scheme is case-insensitive (RFC 9110 §11.1).
                    Some(p) => value
                        .get(..p.len())
                        .filter(|head| head.eq_ignore_ascii_case(p))
                        .and_then(|_| value.get(p.len()..))?
                        .trim(),
                }
                .into()
            }
            TokenSource::Query { name } => query_param(req.path_and_query(), name)?,
            TokenSource::Cookie { name } => req.all("cookie").flat_map(cookie_pairs).find(|(n, _)| n == name)?.1.into(),
        };
        (!token.is_empty()).then_some(token)
    }

    /// The edit that removes this source's token from the request.
    pub fn strip<'a>(&'a self, req: &RequestHeaders) -> HeaderEdit<'a> {
        match self {
            TokenSource::Header { name, .. } => HeaderEdit::Remove(name),
            TokenSource::Query { name } => {
                let full = req.path_and_query();
                let (path, query) = full.split_once('?').unwrap_or((full, ""));
                let kept: Vec<&str> = query
                    .split('&')
                    .filter(|pair| !pair.is_empty() && percent_decode(pair.split('=').next().unwrap_or("")) != *name)
                    .collect();
                let new = if kept.is_empty() { path.to_string() } else { format!("{path}?{}", kept.join("&")) };
                HeaderEdit::Set(":path", new.into())
            }
            TokenSource::Cookie { name } => {
                let kept: Vec<String> = req
                    .all("cookie")
                    .flat_map(cookie_pairs)
                    .filter(|(n, _)| n != name)
                    .map(|(n, v)| format!("{n}={v}"))
                    .collect();
                if kept.is_empty() {
                    HeaderEdit::Remove("cookie")
                } else {
                    HeaderEdit::Set("cookie", kept.join("; ").into())
                }
            }
        }
    }
}

/// Tries the sources in order; the first that carries a token wins.
pub fn find_token<'c, 'r>(sources: &'c [TokenSource], req: &'r RequestHeaders) -> Option<FoundToken<'c, 'r>> {
    sources.iter().find_map(|source| source.extract(req).map(|token| FoundToken { token, source }))
}

fn query_param<'r>(path_and_query: &'r str, name: &str) -> Option<Cow<'r, str>> {
    let (_, query) = path_and_query.split_once('?')?;
    let query = query.split('#').next().unwrap_or("");
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

fn cookie_pairs(header: &str) -> impl Iterator<Item = (&str, &str)> {
    header.split(';').filter_map(|c| {
        let (n, v) = c.trim().split_once('=')?;
        Some((n.trim(), v.trim().trim_matches('"')))
    })
}

/// `%XX` and `+` decoding for query components; invalid escapes stay as they
/// are. Borrows when there is nothing to decode (the usual case).
fn percent_decode(s: &str) -> Cow<'_, str> {
    if !s.contains(['%', '+']) {
        return Cow::Borrowed(s);
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = |j: usize| bytes.get(j).and_then(|c| (*c as char).to_digit(16));
        match (b, hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> RequestHeaders {
        RequestHeaders::new(pairs.iter().map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())).collect())
    }

    fn all_sources() -> Vec<TokenSource> {
        vec![
            TokenSource::Header { name: "authorization".into(), prefix: Some("Bearer ".into()) },
            TokenSource::Header { name: "x-license".into(), prefix: None },
            TokenSource::Query { name: "license".into() },
            TokenSource::Cookie { name: "license".into() },
        ]
    }

    #[test]
    fn finds_in_order() {
        let sources = all_sources();
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<(&'a str, usize)>);
        let cases: [Case; 9] = [
            (&[("authorization", "Bearer abc")], Some(("abc", 0))),
            (&[("authorization", "bearer abc")], Some(("abc", 0))),
            (&[("authorization", "Basic dXNlcg=="), ("x-license", "def")], Some(("def", 1))),
            (&[("authorization", "Bearer "), ("x-license", " def ")], Some(("def", 1))),
            (&[(":path", "/a?x=1&license=q.r.s")], Some(("q.r.s", 2))),
            (&[(":path", "/a?licens%65=q%2Er")], Some(("q.r", 2))),
            (&[("cookie", "a=1; license=c.d.e; b=2")], Some(("c.d.e", 3))),
            (&[("cookie", "a=1"), ("cookie", "license=z")], Some(("z", 3))),
            (&[(":path", "/a?licence=x"), ("cookie", "lic=1")], None),
        ];
        for (pairs, want) in cases {
            let req = headers(pairs);
            let got = find_token(&sources, &req);
            let got =
                got.as_ref().map(|f| (f.token.as_ref(), sources.iter().position(|s| s == f.source).unwrap_or(99)));
            assert_eq!(got, want, "{pairs:?}");
        }
    }

    #[test]
    fn strips_the_token() {
        let sources = all_sources();
        let req = headers(&[(":path", "/a?x=1&license=t&y=2"), ("cookie", "a=1; license=t"), ("cookie", "b=2")]);
        assert_eq!(sources[0].strip(&req), HeaderEdit::Remove("authorization"));
        assert_eq!(sources[2].strip(&req), HeaderEdit::Set(":path", "/a?x=1&y=2".into()));
        assert_eq!(sources[3].strip(&req), HeaderEdit::Set("cookie", "a=1; b=2".into()));
        let only = headers(&[(":path", "/a?license=t"), ("cookie", "license=t")]);
        assert_eq!(sources[2].strip(&only), HeaderEdit::Set(":path", "/a".into()));
        assert_eq!(sources[3].strip(&only), HeaderEdit::Remove("cookie"));
    }

    #[test]
    fn source_config_errors() {
        let bad = [
            (r#"{"header":"a","query":"b"}"#, "token[0]: give exactly one of header, query or cookie"),
            (r#"{}"#, "token[0]: give exactly one of header, query or cookie"),
            (r#"{"query":"q","prefix":"Bearer "}"#, "token[0].prefix: only a header source takes a prefix"),
            (r#"{"header":"a b"}"#, "token[0].header: not a valid HTTP header name"),
            (r#"{"cookie":""}"#, "token[0]: the parameter or cookie name must not be empty"),
        ];
        for (json, want) in bad {
            let raw: RawTokenSource = serde_json::from_str(json).unwrap();
            let err = TokenSource::compile("token[0]", &raw).unwrap_err();
            assert_eq!(format!("{}: {}", err.field, err.message), want);
        }
        let raw: RawTokenSource = serde_json::from_str(r#"{"header":"X-License"}"#).unwrap();
        assert_eq!(
            TokenSource::compile("t", &raw).unwrap(),
            TokenSource::Header { name: "x-license".into(), prefix: None }
        );
    }
}

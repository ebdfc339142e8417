//! Where the license token travels: a header (with an optional scheme prefix),
//! a query parameter or a cookie. Sources are tried in the configured order;
//! the first one that carries a token wins.
//!
//! A source that carries something the filter cannot use as one token (bytes
//! that are not text, or two different tokens) yields `malformed`: it never
//! falls through to the next source, and is never read as something else.
//! Stripping (`forward.strip_token`) removes what every source carries and
//! leaves every other byte of the request as it was.

use std::borrow::Cow;

use crate::error::ConfigError;
use crate::reason::Reason;
use crate::request::{HeaderEdit, RequestHeaders, is_header_name};
use crate::schema::RawTokenSource;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    Header { name: String, prefix: Option<String> },
    Query { name: String },
    Cookie { name: String },
}

/// A token as found: borrowed from the request unless it had to be
/// percent-decoded; `Err(Malformed)` when the source carries something
/// unusable.
pub type Found<'r> = Result<Cow<'r, str>, Reason>;

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

    /// What this source carries: `None` when nothing (an empty value, or a
    /// header with another scheme such as `Basic …`), else the one token.
    fn extract<'r>(&self, req: &'r RequestHeaders) -> Option<Found<'r>> {
        let mut found: Option<Found<'r>> = None;
        let mut consider = |candidate: Found<'r>| {
            found = Some(match (found.take(), candidate) {
                (None, c) => c,
                // The same token twice is one token; two different ones are
                // ambiguous (the upstream might read the other).
                (Some(Ok(a)), Ok(b)) if a == b => Ok(a),
                _ => Err(Reason::Malformed),
            });
        };
        match self {
            TokenSource::Header { name, prefix } => {
                for value in req.values(name) {
                    if let Some(token) = header_token(value_bytes(value), prefix.as_deref()) {
                        consider(text_in(value, token));
                    }
                }
            }
            TokenSource::Query { name } => {
                let path = req.path_and_query_value()?;
                for (key, value) in query_pairs(req) {
                    if percent_decode(key) == name.as_bytes() && !value.is_empty() {
                        consider(match percent_decode(value) {
                            Cow::Borrowed(raw) => text_in(path, raw),
                            Cow::Owned(decoded) => text(Cow::Owned(decoded)),
                        });
                    }
                }
            }
            TokenSource::Cookie { name } => {
                for header in req.values("cookie") {
                    for (cookie, value) in cookies(value_bytes(header)) {
                        if cookie == name.as_bytes() && !value.is_empty() {
                            consider(text_in(header, value));
                        }
                    }
                }
            }
        }
        found
    }

    /// Whether a value of this source's header carries a token for it.
    fn carried_by(&self, header_value: &[u8]) -> bool {
        match self {
            TokenSource::Header { prefix, .. } => header_token(header_value, prefix.as_deref()).is_some(),
            _ => false,
        }
    }
}

/// Tries the sources in order; the first that carries a token wins.
pub fn find_token<'r>(sources: &[TokenSource], req: &'r RequestHeaders) -> Option<Found<'r>> {
    sources.iter().find_map(|source| source.extract(req))
}

/// Adds the edits that remove whatever any source carries from the request:
/// token headers (values with another scheme stay), query parameters and
/// cookies of the sources' names. Everything else is kept byte for byte.
pub fn strip_all<'a>(sources: &'a [TokenSource], req: &'a RequestHeaders, edits: &mut Vec<HeaderEdit<'a>>) {
    for (i, source) in sources.iter().enumerate() {
        let TokenSource::Header { name, .. } = source else { continue };
        // Each header once, whichever sources share it.
        if sources.get(..i).is_some_and(|before| before.iter().any(|s| header_name(s) == Some(name))) {
            continue;
        }
        let on_header = || sources.iter().filter(|s| header_name(s) == Some(name));
        let total = req.values(name).count();
        let kept: Vec<&[u8]> =
            req.values(name).map(value_bytes).filter(|v| !on_header().any(|s| s.carried_by(v))).collect();
        if kept.len() < total {
            edits.push(HeaderEdit::Remove(name));
            edits.extend(kept.into_iter().map(|v| HeaderEdit::Add(name, Cow::Borrowed(v))));
        }
    }
    let query_names = names_of(sources, |s| matches!(s, TokenSource::Query { .. }));
    if !query_names.is_empty()
        && let Some(path) = strip_query(req, &query_names)
    {
        edits.push(HeaderEdit::Set(":path", Cow::Owned(path)));
    }
    let cookie_names = names_of(sources, |s| matches!(s, TokenSource::Cookie { .. }));
    if !cookie_names.is_empty() {
        strip_cookies(req, &cookie_names, edits);
    }
}

/// The parameter or cookie names of the sources `kind` picks.
fn names_of(sources: &[TokenSource], kind: impl Fn(&TokenSource) -> bool) -> Vec<&[u8]> {
    sources
        .iter()
        .filter(|s| kind(s))
        .filter_map(|s| match s {
            TokenSource::Query { name } | TokenSource::Cookie { name } => Some(name.as_bytes()),
            TokenSource::Header { .. } => None,
        })
        .collect()
}

fn header_name(source: &TokenSource) -> Option<&String> {
    match source {
        TokenSource::Header { name, .. } => Some(name),
        _ => None,
    }
}

fn value_bytes<'r>(value: Result<&'r str, &'r [u8]>) -> &'r [u8] {
    value.map_or_else(|b| b, str::as_bytes)
}

/// `part` (a slice of `value`'s bytes, cut at ASCII delimiters) as text: a
/// value already checked to be text needs no second check of its hundreds of
/// bytes, only of where the slice starts and ends.
fn text_in<'r>(value: Result<&'r str, &'r [u8]>, part: &'r [u8]) -> Found<'r> {
    match value {
        Ok(whole) => {
            let start = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
            whole.get(start..start.saturating_add(part.len())).map(Cow::Borrowed).ok_or(Reason::Malformed)
        }
        Err(_) => text(Cow::Borrowed(part)),
    }
}

/// A token must be text; bytes that are not make the source's token malformed.
fn text(bytes: Cow<'_, [u8]>) -> Found<'_> {
    match bytes {
        Cow::Borrowed(b) => std::str::from_utf8(b).map(Cow::Borrowed).map_err(|_| Reason::Malformed),
        Cow::Owned(b) => String::from_utf8(b).map(Cow::Owned).map_err(|_| Reason::Malformed),
    }
}

/// The token in one header value: after the scheme prefix (matched without
/// regard to case, RFC 9110 §11.1) when there is one, trimmed; `None` when
/// the value has another scheme or nothing after it.
fn header_token<'v>(value: &'v [u8], prefix: Option<&str>) -> Option<&'v [u8]> {
    let rest = match prefix {
        None => value,
        Some(p) => {
            let head = value.get(..p.len())?;
            if !head.eq_ignore_ascii_case(p.as_bytes()) {
                return None;
            }
            value.get(p.len()..)?
        }
    };
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// The query string of `:path` (after `?`, up to a `#`), if any.
fn query(req: &RequestHeaders) -> Option<&[u8]> {
    let full = req.path_and_query().ok()?;
    let start = full.iter().position(|b| *b == b'?')? + 1;
    let rest = full.get(start..)?;
    let end = rest.iter().position(|b| *b == b'#').unwrap_or(rest.len());
    rest.get(..end)
}

/// `name=value` pairs of the query, raw (a pair without `=` has an empty value).
fn query_pairs(req: &RequestHeaders) -> impl Iterator<Item = (&[u8], &[u8])> {
    query(req).into_iter().flat_map(|q| q.split(|b| *b == b'&')).map(|pair| {
        match pair.iter().position(|b| *b == b'=') {
            Some(i) => (pair.get(..i).unwrap_or_default(), pair.get(i + 1..).unwrap_or_default()),
            None => (pair, &[][..]),
        }
    })
}

/// `:path` with every parameter of these names gone, the rest as sent;
/// `None` when there was none to remove. Parameters are split on `;` as
/// well as `&` here (some upstreams still read `a=1;license=…` as two
/// parameters), so no copy of the token survives either reading.
fn strip_query(req: &RequestHeaders, names: &[&[u8]]) -> Option<Vec<u8>> {
    let full = req.path_and_query().ok()?;
    let q = full.iter().position(|b| *b == b'?')?;
    let (path, rest) = full.split_at(q);
    let rest = rest.get(1..).unwrap_or_default();
    let end = rest.iter().position(|b| *b == b'#').unwrap_or(rest.len());
    let (query, fragment) = rest.split_at(end);
    // Each parameter with the separator before it (none for the first).
    let mut params: Vec<(Option<u8>, &[u8])> = Vec::new();
    let mut start = 0;
    let mut before = None;
    for (i, b) in query.iter().enumerate() {
        if matches!(b, b'&' | b';') {
            params.push((before, query.get(start..i).unwrap_or_default()));
            before = Some(*b);
            start = i + 1;
        }
    }
    params.push((before, query.get(start..).unwrap_or_default()));
    let is_token = |param: &[u8]| {
        let key = param.split(|b| *b == b'=').next().unwrap_or_default();
        names.iter().any(|n| percent_decode(key) == *n)
    };
    if !params.iter().any(|(_, p)| is_token(p)) {
        return None;
    }
    let mut kept = Vec::with_capacity(query.len());
    for (separator, param) in params.into_iter().filter(|(_, p)| !is_token(p)) {
        if let Some(separator) = separator.filter(|_| !kept.is_empty()) {
            kept.push(separator);
        }
        kept.extend_from_slice(param);
    }
    let mut out = path.to_vec();
    if !kept.is_empty() {
        out.push(b'?');
        out.extend_from_slice(&kept);
    }
    out.extend_from_slice(fragment);
    Some(out)
}

/// The cookies of one `cookie` header: name and value, trimmed, the value
/// without its surrounding double quotes (RFC 6265 §4.1.1).
fn cookies(header: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    header.split(|b| *b == b';').filter_map(|c| {
        let i = c.iter().position(|b| *b == b'=')?;
        let name = c.get(..i)?.trim_ascii();
        let value = c.get(i + 1..)?.trim_ascii();
        let value = match value {
            [b'"', inner @ .., b'"'] => inner,
            v => v,
        };
        Some((name, value))
    })
}

/// Removes the cookies of these names from every `cookie` header, keeping
/// every other cookie byte for byte (quotes, spacing); a header left with
/// no cookie is dropped.
fn strip_cookies<'a>(req: &'a RequestHeaders, names: &[&[u8]], edits: &mut Vec<HeaderEdit<'a>>) {
    let is_token = |segment: &[u8]| {
        let name = segment.split(|b| *b == b'=').next().unwrap_or_default().trim_ascii();
        segment.contains(&b'=') && names.contains(&name)
    };
    let headers: Vec<&[u8]> = req.values("cookie").map(value_bytes).collect();
    if !headers.iter().any(|h| h.split(|b| *b == b';').any(is_token)) {
        return;
    }
    edits.push(HeaderEdit::Remove("cookie"));
    for header in headers {
        let kept: Vec<&[u8]> = header.split(|b| *b == b';').filter(|s| !is_token(s)).collect();
        let joined = kept.join(&b';');
        let value = joined.trim_ascii_start();
        if !value.trim_ascii().is_empty() {
            edits.push(HeaderEdit::Add("cookie", Cow::Owned(value.to_vec())));
        }
    }
}

/// `%XX` and `+` decoding for query components; invalid escapes stay as they
/// are. Borrows when there is nothing to decode (the usual case).
fn percent_decode(s: &[u8]) -> Cow<'_, [u8]> {
    if !s.iter().any(|b| matches!(b, b'%' | b'+')) {
        return Cow::Borrowed(s);
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = s.get(i) {
        let hex = |j: usize| s.get(j).and_then(|c| (*c as char).to_digit(16));
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
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &[u8])]) -> RequestHeaders {
        RequestHeaders::new(pairs.iter().map(|(n, v)| (n.to_string(), v.to_vec())).collect())
    }

    fn all_sources() -> Vec<TokenSource> {
        vec![
            TokenSource::Header { name: "authorization".into(), prefix: Some("Bearer ".into()) },
            TokenSource::Header { name: "x-license".into(), prefix: None },
            TokenSource::Query { name: "license".into() },
            TokenSource::Cookie { name: "license".into() },
        ]
    }

    #[rustfmt::skip]
    #[test]
    fn finds_in_order() {
        let sources = all_sources();
        type Case<'a> = (&'a [(&'a str, &'a [u8])], Option<Result<&'a str, Reason>>);
        let cases: &[Case] = &[
            (&[("authorization", b"Bearer abc")],                          Some(Ok("abc"))),
            (&[("authorization", b"bEaReR abc")],                          Some(Ok("abc"))),
            (&[("authorization", b"Basic dXNlcg=="), ("x-license", b"def")], Some(Ok("def"))),
            (&[("authorization", b"Bearer "), ("x-license", b" def ")],    Some(Ok("def"))),
            (&[(":path", b"/a?x=1&license=q.r.s")],                        Some(Ok("q.r.s"))),
            (&[(":path", b"/a?licens%65=q%2Er")],                          Some(Ok("q.r"))),
            (&[(":path", b"/a?x=\xff&license=t")],                         Some(Ok("t"))),
            (&[(":path", b"/a?license=&license=t")],                       Some(Ok("t"))),
            (&[("cookie", b"a=1; license=c.d.e; b=2")],                    Some(Ok("c.d.e"))),
            (&[("cookie", b"a=1"), ("cookie", b"license=\"z\"")],          Some(Ok("z"))),
            (&[(":path", b"/a?licence=x"), ("cookie", b"lic=1")],          None),
            // The same token twice is one; two different ones are ambiguous.
            (&[("x-license", b"t"), ("x-license", b" t")],                 Some(Ok("t"))),
            (&[("x-license", b"t"), ("x-license", b"u")],                  Some(Err(Reason::Malformed))),
            (&[(":path", b"/a?license=t&license=u")],                      Some(Err(Reason::Malformed))),
            (&[("cookie", b"license=t"), ("cookie", b"license=u")],        Some(Err(Reason::Malformed))),
            // Bytes that are not text: malformed, never the next source's token.
            (&[("authorization", b"Bearer \xff"), ("x-license", b"def")],  Some(Err(Reason::Malformed))),
            (&[("x-license", b"a\xffb")],                                  Some(Err(Reason::Malformed))),
            (&[(":path", b"/a?license=%ff")],                              Some(Err(Reason::Malformed))),
            (&[("cookie", b"license=\xfe")],                               Some(Err(Reason::Malformed))),
            // Another scheme carries no token, whatever its bytes.
            (&[("authorization", b"Basic \xff"), ("x-license", b"def")],   Some(Ok("def"))),
        ];
        for (pairs, want) in cases {
            let req = headers(pairs);
            let got = find_token(&sources, &req);
            assert_eq!(got.as_ref().map(|f| f.as_deref().map_err(|r| *r)), *want, "{pairs:?}");
        }
    }

    fn stripped(pairs: &[(&str, &[u8])]) -> Vec<(String, Option<Vec<u8>>)> {
        let sources = all_sources();
        let req = headers(pairs);
        let mut edits = Vec::new();
        strip_all(&sources, &req, &mut edits);
        edits
            .into_iter()
            .map(|e| match e {
                HeaderEdit::Remove(n) => (format!("-{n}"), None),
                HeaderEdit::Set(n, v) => (format!("={n}"), Some(v.into_owned())),
                HeaderEdit::Add(n, v) => (format!("+{n}"), Some(v.into_owned())),
            })
            .collect()
    }

    fn edit(op: &str, value: Option<&[u8]>) -> (String, Option<Vec<u8>>) {
        (op.to_string(), value.map(<[u8]>::to_vec))
    }

    #[test]
    fn strips_every_source_and_nothing_else() {
        assert_eq!(
            stripped(&[
                (":path", b"/a?x=%41&license=t&y=\xff&&license=u#f"),
                ("authorization", b"Bearer t"),
                ("authorization", b"Basic dXNlcg=="),
                ("x-license", b"t"),
                ("cookie", b"a=\"x y\";license=t;  b= 2"),
                ("cookie", b"license=t"),
                ("cookie", b"c=3"),
            ]),
            [
                edit("-authorization", None),
                edit("+authorization", Some(b"Basic dXNlcg==")),
                edit("-x-license", None),
                edit("=:path", Some(b"/a?x=%41&y=\xff&#f")),
                edit("-cookie", None),
                edit("+cookie", Some(b"a=\"x y\";  b= 2")),
                edit("+cookie", Some(b"c=3")),
            ]
        );
        let semicolons = stripped(&[(":path", b"/a?license=t;a=1;license=u&b=2;c")]);
        assert_eq!(semicolons, [edit("=:path", Some(b"/a?a=1&b=2;c"))]);
        let only = stripped(&[(":path", b"/a?license=t"), ("cookie", b"license=t; a=1")]);
        assert_eq!(only, [edit("=:path", Some(b"/a")), edit("-cookie", None), edit("+cookie", Some(b"a=1"))]);
        // Nothing carried, nothing touched.
        assert!(stripped(&[(":path", b"/a?x=1"), ("authorization", b"Basic x"), ("cookie", b"a=1")]).is_empty());
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

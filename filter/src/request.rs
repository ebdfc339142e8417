//! The request as the filter sees it: the request headers, fetched from the
//! host in one call, and the edits the filter asks the host to make.
//!
//! Every byte of a request is hostile. Values are kept exactly as received:
//! a value that is not UTF-8 stays bytes (so a query string with a raw 0xff
//! still has a readable path before it, and is forwarded byte for byte), and
//! a part the filter must read but cannot is [`Unreadable`], which the
//! policy turns into a denial: it is never read as something else.

use std::borrow::Cow;

/// Request headers with lower-case names, pseudo-headers (`:path`, …) included.
#[derive(Debug, Clone, Default)]
pub struct RequestHeaders {
    /// Checked for UTF-8 once here (a token is hundreds of bytes).
    pairs: Vec<(String, Value)>,
    /// The host could not hand over the header map: these are no headers,
    /// and what the client sent is unknown (see [`RequestHeaders::unreadable`]).
    unreadable: bool,
}

#[derive(Debug, Clone)]
enum Value {
    Text(String),
    Binary(Vec<u8>),
}

impl Value {
    fn as_result(&self) -> Result<&str, &[u8]> {
        match self {
            Value::Text(s) => Ok(s),
            Value::Binary(b) => Err(b),
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Value::Text(s) => s.as_bytes(),
            Value::Binary(b) => b,
        }
    }
}

/// A request part the filter needed and could not read: absent, repeated
/// where one is expected, or not text. Names the part, for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreadable(pub &'static str);

/// A request part as text, or why it cannot be read.
pub type Readable<'a> = Result<&'a str, Unreadable>;

impl RequestHeaders {
    pub fn new(pairs: Vec<(String, Vec<u8>)>) -> Self {
        let pairs = pairs
            .into_iter()
            .map(|(n, v)| {
                let value = match String::from_utf8(v) {
                    Ok(s) => Value::Text(s),
                    Err(e) => Value::Binary(e.into_bytes()),
                };
                (n, value)
            })
            .collect();
        RequestHeaders { pairs, unreadable: false }
    }

    /// A request whose header map the host could not hand over (or that
    /// did not decode): every rule part is unreadable, and on its way
    /// upstream every header the filter owns is removed blindly.
    pub fn unreadable() -> Self {
        RequestHeaders { pairs: Vec::new(), unreadable: true }
    }

    /// Whether the client's headers are unknown (see [`RequestHeaders::unreadable`]).
    pub fn is_unreadable(&self) -> bool {
        self.unreadable
    }

    /// Every value of a header, in order: text, or the raw bytes of a value
    /// that is not UTF-8 (the caller decides what an unreadable value means).
    pub fn values<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = Result<&'a str, &'a [u8]>> + use<'a, 'n> {
        self.pairs.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_result())
    }

    /// Whether the header is present at all (whatever its value).
    pub fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// Every header name, in order (repeated names repeat).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.pairs.iter().map(|(n, _)| n.as_str())
    }

    /// The one value of a header that must not repeat, as bytes.
    fn single_bytes(&self, name: &'static str) -> Result<&[u8], Unreadable> {
        let mut values = self.pairs.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name));
        match (values.next(), values.next()) {
            (Some((_, v)), None) => Ok(v.bytes()),
            _ => Err(Unreadable(name)),
        }
    }

    /// The one value of a header that must not repeat, as text.
    fn single(&self, name: &'static str) -> Readable<'_> {
        std::str::from_utf8(self.single_bytes(name)?).map_err(|_| Unreadable(name))
    }

    /// `:path` exactly as sent, query string included (its bytes need not be text).
    pub fn path_and_query(&self) -> Result<&[u8], Unreadable> {
        self.single_bytes(":path")
    }

    /// `:path` as text, or its bytes when they are not text.
    pub fn path_and_query_value(&self) -> Option<Result<&str, &[u8]>> {
        let mut values = self.values(":path");
        match (values.next(), values.next()) {
            (Some(v), None) => Some(v),
            _ => None,
        }
    }

    /// `:path` without its query string (and fragment), for rule matching.
    /// Envoy normalises this part; the query it passes on as sent, so only
    /// this part has to be text.
    pub fn path(&self) -> Readable<'_> {
        let full = self.path_and_query()?;
        let end = full.iter().position(|b| matches!(b, b'?' | b'#')).unwrap_or(full.len());
        full.get(..end).and_then(|p| std::str::from_utf8(p).ok()).ok_or(Unreadable(":path"))
    }

    pub fn method(&self) -> Readable<'_> {
        self.single(":method")
    }

    /// `:authority`, or `host` when there is no `:authority`. Both present
    /// and different is ambiguous (which one would the upstream trust?).
    pub fn authority(&self) -> Readable<'_> {
        match (self.single(":authority"), self.has("host")) {
            (Ok(authority), false) => Ok(authority),
            (Ok(authority), true) => match self.single("host") {
                Ok(host) if host.eq_ignore_ascii_case(authority) => Ok(authority),
                _ => Err(Unreadable(":authority")),
            },
            (Err(_), _) if !self.has(":authority") => self.single("host").map_err(|_| Unreadable(":authority")),
            (Err(e), _) => Err(e),
        }
    }
}

/// Decodes a header map in the proxy-wasm wire format (u32 count; count ×
/// (u32 name length, u32 value length); then each name and value followed by
/// a NUL), as the host hands it over. The SDK's own decoder panics on a name
/// that is not UTF-8, and a panic kills the VM with every request it
/// carries; here such a name is kept lossily (it can never equal a name the
/// filter acts on) and a truncated map is `None`.
pub fn decode_header_map(bytes: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    fn u32_at(bytes: &[u8], at: usize) -> Option<usize> {
        let b = bytes.get(at..at.checked_add(4)?)?;
        usize::try_from(u32::from_le_bytes([*b.first()?, *b.get(1)?, *b.get(2)?, *b.get(3)?])).ok()
    }
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let count = u32_at(bytes, 0)?;
    let mut data = count.checked_mul(8)?.checked_add(4)?;
    let mut pairs = Vec::with_capacity(count.min(bytes.len() / 8));
    for i in 0..count {
        let name_len = u32_at(bytes, 4 + i * 8)?;
        let value_len = u32_at(bytes, 8 + i * 8)?;
        let name = bytes.get(data..data.checked_add(name_len)?)?;
        data = data.checked_add(name_len + 1)?;
        let value = bytes.get(data..data.checked_add(value_len)?)?;
        data = data.checked_add(value_len + 1)?;
        pairs.push((String::from_utf8_lossy(name).into_owned(), value.to_vec()));
    }
    Some(pairs)
}

/// An RFC 9110 token in lower case (HTTP/2 and Envoy want lower-case names).
pub fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// One edit of the request headers, applied by the host adapter in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEdit<'a> {
    /// Remove every value of the header.
    Remove(&'a str),
    /// Replace every value of the header with this one.
    Set(&'a str, Cow<'a, [u8]>),
    /// Add one more value (after a `Remove`, to keep the values that stay).
    Add(&'a str, Cow<'a, [u8]>),
}

impl<'a> HeaderEdit<'a> {
    /// A `Set` of a text value borrowed for as long as the edit lives.
    pub fn set_text(name: &'a str, value: &'a str) -> HeaderEdit<'a> {
        HeaderEdit::Set(name, Cow::Borrowed(value.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &[u8])]) -> RequestHeaders {
        RequestHeaders::new(pairs.iter().map(|(n, v)| (n.to_string(), v.to_vec())).collect())
    }

    #[test]
    fn path_drops_query_and_fragment() {
        let path = |p: &[u8]| headers(&[(":path", p)]).path().map(str::to_string);
        assert_eq!(path(b"/a/b?x=1").as_deref(), Ok("/a/b"));
        assert_eq!(path(b"/a#f").as_deref(), Ok("/a"));
        assert_eq!(path(b"/a/b").as_deref(), Ok("/a/b"));
        // Bytes that are not text in the query leave the path readable...
        assert_eq!(path(b"/api/admin?x=\xff").as_deref(), Ok("/api/admin"));
        assert_eq!(headers(&[(":path", b"/a?x=\xff")]).path_and_query(), Ok(&b"/a?x=\xff"[..]));
        // ... in the path itself they do not: never read as some other path.
        assert_eq!(path(b"/api/\xffadmin"), Err(Unreadable(":path")));
        assert_eq!(headers(&[]).path(), Err(Unreadable(":path")));
        assert_eq!(headers(&[(":path", b"/a"), (":path", b"/b")]).path(), Err(Unreadable(":path")));
    }

    #[test]
    fn header_names() {
        assert!(is_header_name("x-license-tenant"));
        assert!(!is_header_name("X-License"));
        assert!(!is_header_name(":path"));
        assert!(!is_header_name("a b"));
        assert!(!is_header_name(""));
    }

    #[test]
    fn header_map_wire_format() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&2u32.to_le_bytes());
        for (n, v) in [(5u32, 1u32), (2, 2)] {
            wire.extend_from_slice(&n.to_le_bytes());
            wire.extend_from_slice(&v.to_le_bytes());
        }
        wire.extend_from_slice(b":path\0/\0x\xff\0\xfe\xfd\0");
        let pairs = decode_header_map(&wire).unwrap();
        assert_eq!(pairs, [(":path".to_string(), b"/".to_vec()), ("x\u{fffd}".to_string(), b"\xfe\xfd".to_vec())]);
        for cut in 1..wire.len() - 1 {
            assert_eq!(decode_header_map(&wire[..cut]), None, "cut at {cut}");
        }
        assert_eq!(decode_header_map(&[]), Some(Vec::new()));
        assert_eq!(decode_header_map(&u32::MAX.to_le_bytes()), None);
    }

    #[test]
    fn lookups() {
        let h = headers(&[("cookie", b"a=1"), ("cookie", b"b=\xff"), (":authority", b"h:1")]);
        assert_eq!(h.values("cookie").collect::<Vec<_>>(), [Ok("a=1"), Err(&b"b=\xff"[..])]);
        assert_eq!(h.authority(), Ok("h:1"));
        assert_eq!(h.method(), Err(Unreadable(":method")));
    }

    #[test]
    fn authority_sources() {
        let authority = |pairs: &[(&str, &[u8])]| headers(pairs).authority().map(str::to_string);
        assert_eq!(authority(&[("host", b"a.example.com")]).as_deref(), Ok("a.example.com"));
        assert_eq!(authority(&[(":authority", b"a"), ("host", b"A")]).as_deref(), Ok("a"));
        assert_eq!(authority(&[(":authority", b"a"), ("host", b"b")]), Err(Unreadable(":authority")));
        assert_eq!(authority(&[("host", b"a"), ("host", b"b")]), Err(Unreadable(":authority")));
        assert_eq!(authority(&[(":authority", b"\xffa")]), Err(Unreadable(":authority")));
        assert_eq!(authority(&[]), Err(Unreadable(":authority")));
    }
}

//! The request as the filter sees it: the request headers, fetched from the
//! host in one call, and the edits the filter asks the host to make.

use std::borrow::Cow;

/// Request headers with lower-case names, pseudo-headers (`:path`, …) included.
#[derive(Debug, Clone, Default)]
pub struct RequestHeaders {
    /// Values that are not UTF-8 are `None`: no token or path the filter
    /// trusts can be binary. Checked once here (a token is hundreds of bytes).
    pairs: Vec<(String, Option<String>)>,
}

impl RequestHeaders {
    pub fn new(pairs: Vec<(String, Vec<u8>)>) -> Self {
        RequestHeaders { pairs: pairs.into_iter().map(|(n, v)| (n, String::from_utf8(v).ok())).collect() }
    }

    /// The first value of a header, as text (a value that is not UTF-8 is
    /// treated as absent).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).and_then(|(_, v)| v.as_deref())
    }

    /// Whether the header is present at all (whatever its value).
    pub fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// Every value of a header, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).filter_map(|(_, v)| v.as_deref())
    }

    /// `:path` as sent, query string included.
    pub fn path_and_query(&self) -> &str {
        self.get(":path").unwrap_or("/")
    }

    /// `:path` without its query string (and fragment), for rule matching.
    pub fn path(&self) -> &str {
        let full = self.path_and_query();
        let end = full.find(['?', '#']).unwrap_or(full.len());
        &full[..end]
    }

    pub fn method(&self) -> &str {
        self.get(":method").unwrap_or("")
    }

    /// `:authority`, or `host` for HTTP/1.0-style requests.
    pub fn authority(&self) -> &str {
        self.get(":authority").or_else(|| self.get("host")).unwrap_or("")
    }
}

/// One edit of the request headers, applied by the host adapter in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEdit<'a> {
    /// Remove every value of the header.
    Remove(&'a str),
    /// Replace every value of the header with this one.
    Set(&'a str, Cow<'a, str>),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> RequestHeaders {
        RequestHeaders::new(pairs.iter().map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())).collect())
    }

    #[test]
    fn path_drops_query_and_fragment() {
        assert_eq!(headers(&[(":path", "/a/b?x=1")]).path(), "/a/b");
        assert_eq!(headers(&[(":path", "/a#f")]).path(), "/a");
        assert_eq!(headers(&[(":path", "/a/b")]).path(), "/a/b");
        assert_eq!(headers(&[]).path(), "/");
    }

    #[test]
    fn lookups() {
        let h = headers(&[("cookie", "a=1"), ("cookie", "b=2"), ("host", "h:1")]);
        assert_eq!(h.all("cookie").collect::<Vec<_>>(), ["a=1", "b=2"]);
        assert_eq!(h.authority(), "h:1");
        let binary = RequestHeaders::new(vec![("x".into(), vec![0xff, 0xfe])]);
        assert_eq!(binary.get("x"), None);
    }
}

//! Rules: which routes need a license, and which features they need.
//! First matching rule wins; `default` applies when none matches.
//!
//! A rule reads only the request parts it names. When one of those is
//! unreadable (a path that is not text, a host that is not a host name),
//! matching stops there with [`Unreadable`]: the filter cannot tell whether
//! the rule applies, so it must not fall through to a later, laxer one.

use crate::error::ConfigError;
use std::cell::OnceCell;

use crate::request::{Readable, RequestHeaders, Unreadable};
use crate::schema::{DefaultAction, LicenseMode, RawRule};

/// What a route asks of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteAction {
    /// Open route: no token is looked at.
    Open,
    /// Closed route: everyone gets 403 `route_denied`.
    Deny,
    /// A valid license granting these features.
    Require(Requirement),
}

/// Features a route requires: every one of `all`, and at least one of `any`
/// (when `any` is not empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirement {
    pub all: Vec<String>,
    pub any: Vec<String>,
}

impl Requirement {
    /// The features the license lacks; empty when it satisfies the route.
    /// For an unmet `any`, all its alternatives are listed.
    pub fn missing(&self, has: impl Fn(&str) -> bool) -> Vec<String> {
        let mut missing: Vec<String> = self.all.iter().filter(|f| !has(f)).cloned().collect();
        if !self.any.is_empty() && !self.any.iter().any(|f| has(f)) {
            for f in &self.any {
                if !missing.contains(f) {
                    missing.push(f.clone());
                }
            }
        }
        missing
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PathMatch {
    Any,
    /// Envoy's `prefix`: a plain string prefix (`/healthz` matches `/healthzadmin`).
    Prefix(String),
    /// Envoy's `path_separated_prefix`: the prefix is the whole path or is
    /// followed by `/` (`/healthz` matches `/healthz/live`, not `/healthzadmin`).
    SeparatedPrefix(String),
    Exact(String),
}

/// Host names are compared in canonical form: lower case (ASCII), no
/// port, no trailing dot (see [`canonical_host`]).
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostMatch {
    Exact(String),
    /// `*.example.com`: any name ending in `.example.com` (stored with the dot).
    Suffix(String),
}

#[derive(Debug, Clone)]
struct Rule {
    path: PathMatch,
    methods: Option<Vec<String>>,
    host: Option<HostMatch>,
    action: RouteAction,
}

/// The request attributes rules look at, each as text or unreadable, read
/// from the request only when a rule asks (a cache hit on a table without
/// host rules never parses the host), and then once.
#[derive(Debug, Default)]
pub struct RouteKey<'a> {
    req: Option<&'a RequestHeaders>,
    /// `:path` without its query string.
    path: OnceCell<Readable<'a>>,
    method: OnceCell<Readable<'a>>,
    /// `:authority`, possibly with a port.
    authority: OnceCell<Readable<'a>>,
    /// The authority's canonical host (see [`canonical_host`]).
    host: OnceCell<Readable<'a>>,
}

impl<'a> RouteKey<'a> {
    pub fn of(req: &'a RequestHeaders) -> Self {
        RouteKey { req: Some(req), ..RouteKey::default() }
    }

    /// A key from its parts (for tests and tools).
    pub fn from_parts(path: Readable<'a>, method: Readable<'a>, authority: Readable<'a>) -> Self {
        RouteKey {
            req: None,
            path: OnceCell::from(path),
            method: OnceCell::from(method),
            authority: OnceCell::from(authority),
            host: OnceCell::new(),
        }
    }

    fn part(
        &self,
        cell: &OnceCell<Readable<'a>>,
        read: fn(&'a RequestHeaders) -> Readable<'a>,
        name: &'static str,
    ) -> Readable<'a> {
        *cell.get_or_init(|| self.req.map_or(Err(Unreadable(name)), read))
    }

    fn path(&self) -> Readable<'a> {
        self.part(&self.path, RequestHeaders::path, ":path")
    }

    fn method(&self) -> Readable<'a> {
        self.part(&self.method, RequestHeaders::method, ":method")
    }

    fn host(&self) -> Readable<'a> {
        *self.host.get_or_init(|| {
            self.part(&self.authority, RequestHeaders::authority, ":authority").and_then(canonical_host)
        })
    }
}

#[derive(Debug)]
pub struct RouteTable {
    rules: Vec<Rule>,
    default: RouteAction,
}

impl RouteTable {
    pub(crate) fn compile(raw: &[RawRule], default: DefaultAction) -> Result<RouteTable, ConfigError> {
        let rules =
            raw.iter().enumerate().map(|(i, r)| compile_rule(&format!("rules[{i}]"), r)).collect::<Result<_, _>>()?;
        let default = match default {
            DefaultAction::Require => RouteAction::Require(Requirement::default()),
            DefaultAction::Allow => RouteAction::Open,
            DefaultAction::Deny => RouteAction::Deny,
        };
        Ok(RouteTable { rules, default })
    }

    /// The action of the first rule that matches, or the default; an error
    /// when a rule needs a request part that cannot be read.
    pub fn action(&self, key: &RouteKey<'_>) -> Result<&RouteAction, Unreadable> {
        for rule in &self.rules {
            if rule.matches(key)? {
                return Ok(&rule.action);
            }
        }
        Ok(&self.default)
    }
}

impl Rule {
    /// Method first: a rule for other methods needs nothing else of the request.
    fn matches(&self, key: &RouteKey<'_>) -> Result<bool, Unreadable> {
        if let Some(methods) = &self.methods {
            let method = key.method()?;
            if !methods.iter().any(|m| m.eq_ignore_ascii_case(method)) {
                return Ok(false);
            }
        }
        let path_ok = match &self.path {
            PathMatch::Any => true,
            PathMatch::Prefix(p) => key.path()?.starts_with(p.as_str()),
            PathMatch::SeparatedPrefix(p) => {
                key.path()?.strip_prefix(p.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            }
            PathMatch::Exact(p) => key.path()? == p,
        };
        if !path_ok {
            return Ok(false);
        }
        Ok(match &self.host {
            None => true,
            Some(HostMatch::Exact(h)) => h.eq_ignore_ascii_case(key.host()?),
            Some(HostMatch::Suffix(s)) => {
                let host = key.host()?;
                host.len() > s.len() && host.get(host.len() - s.len()..).is_some_and(|t| t.eq_ignore_ascii_case(s))
            }
        })
    }
}

/// The host name of an authority, for comparison without regard to ASCII
/// case: the port and one trailing dot (`example.com.`, the absolute form
/// of the same name) dropped. Anything that is not a plain host name, an
/// IPv4 address or a bracketed IPv6 literal, with an optional numeric port,
/// is unreadable: user info (`user@host`), two ports (`a:80:80`), a list
/// (`a,b`, as two Host headers merge), empty labels, any other character.
pub fn canonical_host(authority: &str) -> Readable<'_> {
    const UNREADABLE: Unreadable = Unreadable(":authority");
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let (inner, after) = rest.split_once(']').ok_or(UNREADABLE)?;
            if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
                return Err(UNREADABLE);
            }
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or(UNREADABLE)?),
            };
            (authority.get(..inner.len() + 2).ok_or(UNREADABLE)?, port)
        }
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(UNREADABLE);
    }
    if host.starts_with('[') {
        return Ok(host);
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    let label_ok = |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if name.split('.').all(label_ok) { Ok(name) } else { Err(UNREADABLE) }
}

fn compile_rule(field: &str, raw: &RawRule) -> Result<Rule, ConfigError> {
    let m = &raw.matcher;
    let path = match (&m.prefix, &m.path_separated_prefix, &m.exact) {
        (Some(p), None, None) => PathMatch::Prefix(check_path(&format!("{field}.match.prefix"), p)?),
        (None, Some(p), None) => {
            let f = format!("{field}.match.path_separated_prefix");
            let p = check_path(&f, p)?;
            if p.ends_with('/') {
                return Err(ConfigError::new(f, "must not end with \"/\" (it matches the segment boundary itself)"));
            }
            PathMatch::SeparatedPrefix(p)
        }
        (None, None, Some(p)) => PathMatch::Exact(check_path(&format!("{field}.match.exact"), p)?),
        (None, None, None) => PathMatch::Any,
        _ => {
            return Err(ConfigError::new(
                format!("{field}.match"),
                "give one of prefix, path_separated_prefix or exact",
            ));
        }
    };
    let methods = match &m.methods {
        None => None,
        Some(ms) if ms.is_empty() => {
            return Err(ConfigError::new(format!("{field}.match.methods"), "must not be empty"));
        }
        Some(ms) => {
            let mut methods: Vec<String> = ms
                .iter()
                .enumerate()
                .map(|(i, method)| {
                    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
                        Err(ConfigError::new(format!("{field}.match.methods[{i}]"), "not an HTTP method"))
                    } else {
                        Ok(method.to_ascii_uppercase())
                    }
                })
                .collect::<Result<_, _>>()?;
            // HEAD is GET without the body (RFC 9110 §9.3.2): most frameworks
            // run the GET handler for it, so it must not slip past a GET rule.
            if methods.iter().any(|m| m == "GET") && !methods.iter().any(|m| m == "HEAD") {
                methods.push("HEAD".to_string());
            }
            Some(methods)
        }
    };
    let host = match &m.host {
        None => None,
        Some(h) => Some(compile_host(&format!("{field}.match.host"), h)?),
    };
    let action = match (raw.license.unwrap_or(LicenseMode::Required), &raw.require) {
        (LicenseMode::Required, None) => RouteAction::Require(Requirement::default()),
        (LicenseMode::Required, Some(req)) => {
            let requirement = Requirement {
                all: check_features(&format!("{field}.require.all"), &req.all)?,
                any: check_features(&format!("{field}.require.any"), &req.any)?,
            };
            RouteAction::Require(requirement)
        }
        (LicenseMode::None, None) => RouteAction::Open,
        (LicenseMode::Deny, None) => RouteAction::Deny,
        (_, Some(_)) => {
            return Err(ConfigError::new(
                format!("{field}.require"),
                "only a rule that requires a license can require features",
            ));
        }
    };
    Ok(Rule { path, methods, host, action })
}

/// A host rule in canonical form (lower case, no trailing dot), so that it
/// compares with [`canonical_host`] of the request.
fn compile_host(field: &str, host: &str) -> Result<HostMatch, ConfigError> {
    let (wildcard, name) = match host.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None if host.contains('*') => return Err(ConfigError::new(field, "a wildcard must be \"*.domain\"")),
        None => (false, host),
    };
    let canonical = match canonical_host(name) {
        Ok(c) if !name.contains(':') && !name.starts_with('[') => c.to_ascii_lowercase(),
        _ => return Err(ConfigError::new(field, "a host name without port or path")),
    };
    Ok(if wildcard { HostMatch::Suffix(format!(".{canonical}")) } else { HostMatch::Exact(canonical) })
}

fn check_path(field: &str, path: &str) -> Result<String, ConfigError> {
    if !path.starts_with('/') {
        return Err(ConfigError::new(field, "must start with \"/\""));
    }
    if path.contains('?') {
        return Err(ConfigError::new(field, "matches the path without its query: drop the \"?\""));
    }
    Ok(path.to_string())
}

fn check_features(field: &str, features: &[String]) -> Result<Vec<String>, ConfigError> {
    for (i, f) in features.iter().enumerate() {
        if f.is_empty() || f.contains(char::is_whitespace) {
            return Err(ConfigError::new(
                format!("{field}[{i}]"),
                "a feature name must be non-empty and have no spaces",
            ));
        }
    }
    Ok(features.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(rules: &str, default: DefaultAction) -> RouteTable {
        let raw: Vec<RawRule> = serde_json::from_str(rules).unwrap();
        RouteTable::compile(&raw, default).unwrap()
    }

    fn req(all: &[&str], any: &[&str]) -> RouteAction {
        RouteAction::Require(Requirement {
            all: all.iter().map(|s| s.to_string()).collect(),
            any: any.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn first_match_wins() {
        let t = table(
            r#"[{"match":{"prefix":"/healthz"},"license":"none"},
                {"match":{"prefix":"/api/reports","methods":["GET"]},"require":{"all":["reports"]}},
                {"match":{"exact":"/api/admin","host":"admin.example.com"},"require":{"any":["sso","audit"]}},
                {"match":{"host":"*.internal.example.com"},"license":"deny"},
                {"match":{"prefix":"/api/"}}]"#,
            DefaultAction::Deny,
        );
        let cases: [(&str, &str, &str, RouteAction); 15] = [
            ("/healthz", "GET", "a", RouteAction::Open),
            ("/api/reports/1", "GET", "a", req(&["reports"], &[])),
            ("/api/reports/1", "get", "a", req(&["reports"], &[])),
            ("/api/reports/1", "POST", "a", req(&[], &[])),
            ("/api/reports/1", "HEAD", "a", req(&["reports"], &[])),
            ("/api/admin", "GET", "admin.example.com:8443", req(&[], &["sso", "audit"])),
            ("/api/admin", "GET", "ADMIN.example.com", req(&[], &["sso", "audit"])),
            ("/api/admin", "GET", "admin.example.com.", req(&[], &["sso", "audit"])),
            ("/api/admin", "GET", "Admin.Example.COM.:443", req(&[], &["sso", "audit"])),
            ("/api/admin", "GET", "other.example.com", req(&[], &[])),
            ("/x", "GET", "db.internal.example.com", RouteAction::Deny),
            ("/x", "GET", "DB.internal.example.com.", RouteAction::Deny),
            ("/x", "GET", "internal.example.com", RouteAction::Deny),
            ("/x", "GET", "internal.example.com.:80", RouteAction::Deny),
            ("/API/x", "GET", "a", RouteAction::Deny),
        ];
        for (path, method, authority, want) in cases {
            assert_eq!(table_action(&t, path, method, authority), Ok(want), "{method} {authority}{path}");
        }
    }

    fn table_action(t: &RouteTable, path: &str, method: &str, authority: &str) -> Result<RouteAction, Unreadable> {
        t.action(&RouteKey::from_parts(Ok(path), Ok(method), Ok(authority))).cloned()
    }

    #[test]
    fn separated_prefix_matches_whole_segments() {
        let t = table(r#"[{"match":{"path_separated_prefix":"/healthz"},"license":"none"}]"#, DefaultAction::Deny);
        for (path, want) in [
            ("/healthz", RouteAction::Open),
            ("/healthz/live", RouteAction::Open),
            ("/healthzadmin/secret", RouteAction::Deny),
            ("/healthz.json", RouteAction::Deny),
            ("/health", RouteAction::Deny),
        ] {
            assert_eq!(table_action(&t, path, "GET", "a"), Ok(want), "{path}");
        }
        // Envoy's plain prefix keeps its string meaning.
        let t = table(r#"[{"match":{"prefix":"/healthz"},"license":"none"}]"#, DefaultAction::Deny);
        assert_eq!(table_action(&t, "/healthzadmin/secret", "GET", "a"), Ok(RouteAction::Open));
    }

    #[test]
    fn unreadable_parts_stop_matching() {
        let t = table(
            r#"[{"match":{"prefix":"/open","methods":["POST"]},"license":"none"},
                {"match":{"host":"internal.example.com"},"license":"deny"},
                {"match":{"prefix":"/api/admin"},"license":"deny"}]"#,
            DefaultAction::Allow,
        );
        let key = |path, authority| RouteKey::from_parts(path, Ok("GET"), authority);
        let host = Unreadable(":authority");
        let path = Unreadable(":path");
        // The host rule cannot be decided: never fall through to the open default.
        assert_eq!(t.action(&key(Ok("/x"), Ok("a:80:80"))).cloned(), Err(host));
        assert_eq!(t.action(&key(Ok("/x"), Err(host))).cloned(), Err(host));
        assert_eq!(t.action(&key(Err(path), Ok("a.example.com"))).cloned(), Err(path));
        // A rule for other methods needs nothing else; a decided rule stops the search.
        assert_eq!(t.action(&key(Err(path), Ok("internal.example.com"))).cloned(), Ok(RouteAction::Deny));
        // Parts no rule reads may be unreadable.
        let open = table(r#"[{"match":{"methods":["GET"]},"license":"none"}]"#, DefaultAction::Deny);
        assert_eq!(open.action(&key(Err(path), Err(host))).cloned(), Ok(RouteAction::Open));
    }

    #[rustfmt::skip]
    #[test]
    fn canonical_hosts() {
        let cases: [(&str, Option<&str>); 22] = [
            ("a.example.com",          Some("a.example.com")),
            ("A.Example.com:80",       Some("A.Example.com")),
            ("a.example.com.",         Some("a.example.com")),
            ("a.example.com.:8443",    Some("a.example.com")),
            ("10.0.0.1:80",            Some("10.0.0.1")),
            ("[::1]:10000",            Some("[::1]")),
            ("[::1]",                  Some("[::1]")),
            ("[::ffff:10.0.0.1]",      Some("[::ffff:10.0.0.1]")),
            ("a_b.example.com",        Some("a_b.example.com")),
            ("a:80:80",                None),
            ("user@a.example.com",     None),
            ("a.example.com,b.example.com", None),
            ("a.example.com, a.example.com", None),
            ("a.example.com..",        None),
            (".a.example.com",         None),
            ("a..example.com",         None),
            ("a.example.com:",         None),
            ("a.example.com:x80",      None),
            ("a.example.com:123456",   None),
            ("",                       None),
            ("[::1]x",                 None),
            ("a b.example.com",        None),
        ];
        for (authority, want) in cases {
            assert_eq!(canonical_host(authority).ok(), want, "{authority:?}");
        }
    }

    #[test]
    fn missing_features() {
        let r = Requirement { all: vec!["a".into(), "b".into()], any: vec!["x".into(), "y".into()] };
        assert_eq!(r.missing(|f| f == "a" || f == "y"), vec!["b".to_string()]);
        assert_eq!(r.missing(|f| f == "a" || f == "b"), vec!["x".to_string(), "y".to_string()]);
        assert!(r.missing(|_| true).is_empty());
        assert!(Requirement::default().missing(|_| false).is_empty());
    }

    #[test]
    fn rule_errors() {
        let cases = [
            (
                r#"[{"match":{"prefix":"/a","exact":"/a"}}]"#,
                "rules[0].match: give one of prefix, path_separated_prefix or exact",
            ),
            (
                r#"[{"match":{"path_separated_prefix":"/a/"}}]"#,
                "rules[0].match.path_separated_prefix: must not end with \"/\" (it matches the segment boundary itself)",
            ),
            (r#"[{"match":{"host":"a.*.com"}}]"#, "rules[0].match.host: a wildcard must be \"*.domain\""),
            (r#"[{"match":{"host":"user@a.com"}}]"#, "rules[0].match.host: a host name without port or path"),
            (r#"[{"match":{"prefix":"a"}}]"#, "rules[0].match.prefix: must start with \"/\""),
            (r#"[{"match":{"methods":[]}}]"#, "rules[0].match.methods: must not be empty"),
            (r#"[{"match":{"host":"a:80"}}]"#, "rules[0].match.host: a host name without port or path"),
            (
                r#"[{"match":{},"license":"none","require":{"all":["a"]}}]"#,
                "rules[0].require: only a rule that requires a license can require features",
            ),
            (
                r#"[{"match":{},"require":{"any":[""]}}]"#,
                "rules[0].require.any[0]: a feature name must be non-empty and have no spaces",
            ),
        ];
        for (json, want) in cases {
            let raw: Vec<RawRule> = serde_json::from_str(json).unwrap();
            let err = RouteTable::compile(&raw, DefaultAction::Require).unwrap_err();
            assert_eq!(format!("{}: {}", err.field, err.message), want);
        }
    }
}

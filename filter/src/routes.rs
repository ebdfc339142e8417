//! Rules: which routes need a license, and which features they need.
//! First matching rule wins; `default` applies when none matches.

use crate::config::{ConfigError, DefaultAction, LicenseMode, RawRule};

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
    Prefix(String),
    Exact(String),
}

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

/// The request attributes rules look at.
#[derive(Debug, Clone, Copy)]
pub struct RouteKey<'a> {
    /// `:path` without its query string.
    pub path: &'a str,
    pub method: &'a str,
    /// `:authority`, possibly with a port.
    pub authority: &'a str,
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

    pub fn action(&self, key: &RouteKey<'_>) -> &RouteAction {
        let host = host_without_port(key.authority);
        self.rules.iter().find(|r| r.matches(key.path, key.method, host)).map_or(&self.default, |r| &r.action)
    }
}

impl Rule {
    fn matches(&self, path: &str, method: &str, host: &str) -> bool {
        let path_ok = match &self.path {
            PathMatch::Any => true,
            PathMatch::Prefix(p) => path.starts_with(p.as_str()),
            PathMatch::Exact(p) => path == p,
        };
        let method_ok = self.methods.as_ref().is_none_or(|ms| ms.iter().any(|m| m.eq_ignore_ascii_case(method)));
        let host_ok = match &self.host {
            None => true,
            Some(HostMatch::Exact(h)) => h.eq_ignore_ascii_case(host),
            Some(HostMatch::Suffix(s)) => {
                host.len() > s.len() && host.get(host.len() - s.len()..).is_some_and(|t| t.eq_ignore_ascii_case(s))
            }
        };
        path_ok && method_ok && host_ok
    }
}

/// `example.com:8080` -> `example.com`; `[::1]:80` -> `[::1]`.
fn host_without_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) => &authority[..=end],
            None => authority,
        };
    }
    match authority.rfind(':') {
        Some(i) if authority[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &authority[..i],
        _ => authority,
    }
}

fn compile_rule(field: &str, raw: &RawRule) -> Result<Rule, ConfigError> {
    let m = &raw.matcher;
    let path = match (&m.prefix, &m.exact) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(format!("{field}.match"), "give prefix or exact, not both"));
        }
        (Some(p), None) => PathMatch::Prefix(check_path(&format!("{field}.match.prefix"), p)?),
        (None, Some(p)) => PathMatch::Exact(check_path(&format!("{field}.match.exact"), p)?),
        (None, None) => PathMatch::Any,
    };
    let methods = match &m.methods {
        None => None,
        Some(ms) if ms.is_empty() => {
            return Err(ConfigError::new(format!("{field}.match.methods"), "must not be empty"));
        }
        Some(ms) => Some(
            ms.iter()
                .enumerate()
                .map(|(i, method)| {
                    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
                        Err(ConfigError::new(format!("{field}.match.methods[{i}]"), "not an HTTP method"))
                    } else {
                        Ok(method.to_ascii_uppercase())
                    }
                })
                .collect::<Result<_, _>>()?,
        ),
    };
    let host = match &m.host {
        None => None,
        Some(h) if h.is_empty() || h.contains(':') || h.contains('/') => {
            return Err(ConfigError::new(format!("{field}.match.host"), "a host name without port or path"));
        }
        Some(h) => Some(match h.strip_prefix('*') {
            Some(suffix) if suffix.starts_with('.') => HostMatch::Suffix(suffix.to_string()),
            Some(_) => {
                return Err(ConfigError::new(format!("{field}.match.host"), "a wildcard must be \"*.domain\""));
            }
            None => HostMatch::Exact(h.clone()),
        }),
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
        let cases: [(&str, &str, &str, RouteAction); 10] = [
            ("/healthz", "GET", "a", RouteAction::Open),
            ("/api/reports/1", "GET", "a", req(&["reports"], &[])),
            ("/api/reports/1", "get", "a", req(&["reports"], &[])),
            ("/api/reports/1", "POST", "a", req(&[], &[])),
            ("/api/admin", "GET", "admin.example.com:8443", req(&[], &["sso", "audit"])),
            ("/api/admin", "GET", "ADMIN.example.com", req(&[], &["sso", "audit"])),
            ("/api/admin", "GET", "other.example.com", req(&[], &[])),
            ("/x", "GET", "db.internal.example.com", RouteAction::Deny),
            ("/x", "GET", "internal.example.com", RouteAction::Deny),
            ("/API/x", "GET", "a", RouteAction::Deny),
        ];
        for (path, method, authority, want) in cases {
            assert_eq!(table_action(&t, path, method, authority), want, "{method} {authority}{path}");
        }
    }

    fn table_action(t: &RouteTable, path: &str, method: &str, authority: &str) -> RouteAction {
        t.action(&RouteKey { path, method, authority }).clone()
    }

    #[test]
    fn ports_and_ipv6() {
        assert_eq!(host_without_port("a.example.com:80"), "a.example.com");
        assert_eq!(host_without_port("a.example.com"), "a.example.com");
        assert_eq!(host_without_port("[::1]:10000"), "[::1]");
        assert_eq!(host_without_port("[::1]"), "[::1]");
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
            (r#"[{"match":{"prefix":"/a","exact":"/a"}}]"#, "rules[0].match: give prefix or exact, not both"),
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

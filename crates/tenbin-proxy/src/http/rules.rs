//! Content switching: ordered rules that pick a pool from a request's host, path, method,
//! headers, query parameters and file extension.
//!
//! Rules are compiled once (regexes built, hosts lower-cased, pool names resolved to indices)
//! and matched per request without allocating: the first rule whose every condition holds
//! wins, and a request no rule takes goes to the default pool.

use http::{HeaderName, Method, Request};
use regex::Regex;

/// How a rule looks at the path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathSpec {
    Prefix(String),
    Exact(String),
    Regex(String),
}

/// One rule as configured: every given condition must hold for the rule to select `pool`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleSpec {
    pub pool: String,
    /// Exact host ("static.example.com") or a wildcard for any subdomain ("*.example.com").
    pub host: Option<String>,
    /// Every one of these must hold (normally one).
    pub paths: Vec<PathSpec>,
    /// Any of these methods (empty: any method).
    pub methods: Vec<String>,
    /// A header whose value (any of its values) matches the regex.
    pub header: Option<(String, String)>,
    /// A query parameter by name, with an exact raw value or, when `None`, just present.
    pub query: Option<(String, Option<String>)>,
    /// Any of these file extensions of the last path segment (`png`, `tar.gz`), without the
    /// leading dot, case-insensitive.
    pub extensions: Vec<String>,
}

/// Why a rule set could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    #[error("rule {index}: unknown pool {pool:?}")]
    UnknownPool { index: usize, pool: String },
    #[error("rule {index}: bad regex {pattern:?}: {source}")]
    Regex {
        index: usize,
        pattern: String,
        source: regex::Error,
    },
    #[error("rule {index}: bad method {method:?}")]
    Method { index: usize, method: String },
    #[error("rule {index}: bad header name {name:?}")]
    HeaderName { index: usize, name: String },
    #[error("default pool {0:?} is unknown")]
    UnknownDefault(String),
}

#[derive(Debug)]
enum HostMatch {
    Exact(String),
    /// Stored with its leading dot: ".example.com".
    Suffix(String),
}

#[derive(Debug)]
enum PathMatch {
    Prefix(String),
    Exact(String),
    Regex(Regex),
}

#[derive(Debug)]
struct Rule {
    pool: usize,
    host: Option<HostMatch>,
    paths: Vec<PathMatch>,
    methods: Vec<Method>,
    header: Option<(HeaderName, Regex)>,
    query: Option<(String, Option<String>)>,
    extensions: Vec<String>,
}

/// A compiled rule set: pools are referred to by their index in the name list given to
/// [`Router::compile`].
#[derive(Debug)]
pub struct Router {
    rules: Vec<Rule>,
    default: Option<usize>,
}

impl Router {
    /// Compiles `specs` against the known pool names; `default` names the pool of requests
    /// no rule takes (without one they get 503).
    pub fn compile(
        specs: &[RuleSpec],
        default: Option<&str>,
        pools: &[&str],
    ) -> Result<Router, RuleError> {
        let find = |name: &str| pools.iter().position(|p| *p == name);
        let default = match default {
            None => None,
            Some(d) => Some(find(d).ok_or_else(|| RuleError::UnknownDefault(d.into()))?),
        };
        let mut rules = Vec::with_capacity(specs.len());
        for (index, s) in specs.iter().enumerate() {
            let pool = find(&s.pool).ok_or_else(|| RuleError::UnknownPool {
                index,
                pool: s.pool.clone(),
            })?;
            let regex = |pattern: &str| {
                Regex::new(pattern).map_err(|source| RuleError::Regex {
                    index,
                    pattern: pattern.into(),
                    source,
                })
            };
            let host = s.host.as_deref().map(|h| {
                let h = h.to_ascii_lowercase();
                match h.strip_prefix('*') {
                    Some(rest) => HostMatch::Suffix(rest.to_string()),
                    None => HostMatch::Exact(h),
                }
            });
            let paths = s
                .paths
                .iter()
                .map(|p| {
                    Ok(match p {
                        PathSpec::Prefix(p) => PathMatch::Prefix(p.clone()),
                        PathSpec::Exact(p) => PathMatch::Exact(p.clone()),
                        PathSpec::Regex(p) => PathMatch::Regex(regex(p)?),
                    })
                })
                .collect::<Result<_, RuleError>>()?;
            let methods = s
                .methods
                .iter()
                .map(|m| {
                    Method::from_bytes(m.to_ascii_uppercase().as_bytes()).map_err(|_| {
                        RuleError::Method {
                            index,
                            method: m.clone(),
                        }
                    })
                })
                .collect::<Result<_, _>>()?;
            let header = match &s.header {
                None => None,
                Some((name, pattern)) => {
                    let n = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                        RuleError::HeaderName {
                            index,
                            name: name.clone(),
                        }
                    })?;
                    Some((n, regex(pattern)?))
                }
            };
            let extensions = s
                .extensions
                .iter()
                .map(|e| e.trim_start_matches('.').to_ascii_lowercase())
                .collect();
            rules.push(Rule {
                pool,
                host,
                paths,
                methods,
                header,
                query: s.query.clone(),
                extensions,
            });
        }
        Ok(Router { rules, default })
    }

    /// The pool index for this request: the first matching rule's, else the default.
    pub fn route<B>(&self, req: &Request<B>) -> Option<usize> {
        let host = request_host(req);
        self.rules
            .iter()
            .find(|r| r.matches(req, host))
            .map_or(self.default, |r| Some(r.pool))
    }
}

impl Rule {
    fn matches<B>(&self, req: &Request<B>, host: Option<&str>) -> bool {
        if !self.methods.is_empty() && !self.methods.contains(req.method()) {
            return false;
        }
        if let Some(hm) = &self.host {
            let Some(h) = host else { return false };
            let ok = match hm {
                HostMatch::Exact(e) => h.eq_ignore_ascii_case(e),
                HostMatch::Suffix(suffix) => {
                    h.len() > suffix.len()
                        && h.is_char_boundary(h.len() - suffix.len())
                        && h[h.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
                }
            };
            if !ok {
                return false;
            }
        }
        let path = req.uri().path();
        let path_ok = |pm: &PathMatch| match pm {
            PathMatch::Prefix(p) => path.starts_with(p.as_str()),
            PathMatch::Exact(p) => path == p,
            PathMatch::Regex(r) => r.is_match(path),
        };
        if !self.paths.iter().all(path_ok) {
            return false;
        }
        if !self.extensions.is_empty() {
            let last = path.rsplit('/').next().unwrap_or("");
            if !self.extensions.iter().any(|e| has_extension(last, e)) {
                return false;
            }
        }
        if let Some((name, re)) = &self.header {
            let any = req
                .headers()
                .get_all(name)
                .iter()
                .any(|v| v.to_str().is_ok_and(|s| re.is_match(s)));
            if !any {
                return false;
            }
        }
        if let Some((name, value)) = &self.query {
            let q = req.uri().query().unwrap_or("");
            let found = q.split('&').any(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                k == name && value.as_deref().is_none_or(|want| v == want)
            });
            if !found {
                return false;
            }
        }
        true
    }
}

/// Whether file name `last` ends in `.ext`, ignoring ASCII case. A suffix rather than the text
/// after the last dot, so a multi-part extension (`tar.gz`) matches too.
fn has_extension(last: &str, ext: &str) -> bool {
    let (last, ext) = (last.as_bytes(), ext.as_bytes());
    last.len() > ext.len()
        && last[last.len() - ext.len() - 1] == b'.'
        && last[last.len() - ext.len()..].eq_ignore_ascii_case(ext)
}

/// The request's host without port: the URI authority (HTTP/2, absolute-form) or the Host
/// header.
pub fn request_host<B>(req: &Request<B>) -> Option<&str> {
    host_of(req.uri(), req.headers())
}

/// [`request_host`] from a request's parts.
pub fn host_of<'a>(uri: &'a http::Uri, headers: &'a http::HeaderMap) -> Option<&'a str> {
    let raw = match uri.authority() {
        Some(a) => a.as_str(),
        None => headers.get(http::header::HOST)?.to_str().ok()?,
    };
    Some(strip_port(raw))
}

fn strip_port(authority: &str) -> &str {
    // Byte searches: every delimiter is ASCII, so each cut is on a char boundary (and this
    // runs for every request).
    let at = |s: &str, c: u8| s.bytes().position(|b| b == c);
    let host = match authority.bytes().rposition(|b| b == b'@') {
        Some(i) => &authority[i + 1..],
        None => authority,
    };
    if host.starts_with('[') {
        return at(host, b']').map_or(host, |i| &host[..=i]);
    }
    at(host, b':').map_or(host, |i| &host[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, host: &str, uri: &str) -> Request<()> {
        Request::builder()
            .method(method)
            .uri(uri)
            .header("host", host)
            .header("user-agent", "Mozilla/5.0 (iPhone) Mobile Safari")
            .body(())
            .unwrap()
    }

    fn router(specs: Vec<RuleSpec>) -> Router {
        Router::compile(&specs, Some("app"), &["app", "static", "api"]).unwrap()
    }

    #[test]
    fn first_matching_rule_wins_and_default_catches_the_rest() {
        let r = router(vec![
            RuleSpec {
                pool: "static".into(),
                extensions: vec!["png".into(), "css".into()],
                ..Default::default()
            },
            RuleSpec {
                pool: "api".into(),
                paths: vec![PathSpec::Regex("^/api/v[0-9]+/".into())],
                ..Default::default()
            },
        ]);
        assert_eq!(r.route(&req("GET", "x", "/a/b.PNG")), Some(1));
        assert_eq!(r.route(&req("GET", "x", "/api/v2/users")), Some(2));
        assert_eq!(r.route(&req("GET", "x", "/api/vx/users")), Some(0));
        assert_eq!(r.route(&req("GET", "x", "/api/v2/logo.css")), Some(1));
    }

    #[test]
    fn hosts_exact_and_wildcard_ignore_case_and_port() {
        let r = router(vec![
            RuleSpec {
                pool: "static".into(),
                host: Some("static.example.com".into()),
                ..Default::default()
            },
            RuleSpec {
                pool: "api".into(),
                host: Some("*.example.com".into()),
                ..Default::default()
            },
        ]);
        assert_eq!(
            r.route(&req("GET", "Static.Example.com:8080", "/")),
            Some(1)
        );
        assert_eq!(r.route(&req("GET", "a.b.example.com", "/")), Some(2));
        assert_eq!(r.route(&req("GET", "example.com", "/")), Some(0));
        assert_eq!(r.route(&req("GET", "badexample.com", "/")), Some(0));
    }

    #[test]
    fn all_conditions_of_a_rule_must_hold() {
        let r = router(vec![RuleSpec {
            pool: "api".into(),
            paths: vec![PathSpec::Prefix("/m/".into())],
            methods: vec!["get".into(), "HEAD".into()],
            header: Some(("User-Agent".into(), "Mobile".into())),
            query: Some(("lang".into(), Some("ja".into()))),
            ..Default::default()
        }]);
        assert_eq!(r.route(&req("GET", "x", "/m/a?x=1&lang=ja")), Some(2));
        assert_eq!(r.route(&req("POST", "x", "/m/a?lang=ja")), Some(0));
        assert_eq!(r.route(&req("GET", "x", "/m/a?lang=en")), Some(0));
        assert_eq!(r.route(&req("GET", "x", "/n/a?lang=ja")), Some(0));
        let mut desktop = req("GET", "x", "/m/a?lang=ja");
        desktop
            .headers_mut()
            .insert("user-agent", "Desktop".parse().unwrap());
        assert_eq!(r.route(&desktop), Some(0));
    }

    #[test]
    fn exact_path_and_query_presence() {
        let r = router(vec![
            RuleSpec {
                pool: "static".into(),
                paths: vec![PathSpec::Exact("/x".into())],
                ..Default::default()
            },
            RuleSpec {
                pool: "api".into(),
                query: Some(("debug".into(), None)),
                ..Default::default()
            },
        ]);
        assert_eq!(r.route(&req("GET", "x", "/x")), Some(1));
        assert_eq!(r.route(&req("GET", "x", "/x/")), Some(0));
        assert_eq!(r.route(&req("GET", "x", "/y?debug")), Some(2));
        assert_eq!(r.route(&req("GET", "x", "/y?nodebug=1")), Some(0));
    }

    #[test]
    fn compile_errors_name_the_rule() {
        let bad = [RuleSpec {
            pool: "nope".into(),
            ..Default::default()
        }];
        assert!(matches!(
            Router::compile(&bad, Some("app"), &["app"]),
            Err(RuleError::UnknownPool { index: 0, .. })
        ));
        let bad = [RuleSpec {
            pool: "app".into(),
            paths: vec![PathSpec::Regex("(".into())],
            ..Default::default()
        }];
        assert!(matches!(
            Router::compile(&bad, Some("app"), &["app"]),
            Err(RuleError::Regex { index: 0, .. })
        ));
        assert!(Router::compile(&[], Some("zzz"), &["app"]).is_err());
        let no_default = Router::compile(&[], None, &["app"]).unwrap();
        assert_eq!(no_default.route(&req("GET", "x", "/")), None);
    }

    #[test]
    fn extensions_match_as_suffixes_including_multi_part_ones() {
        // Found by fuzz/fuzz_targets/http_rules.rs: `tar.gz` never matched, since only the
        // text after the last dot was compared.
        let r = router(vec![
            RuleSpec {
                pool: "static".into(),
                extensions: vec![".PNG".into(), "".into()],
                ..Default::default()
            },
            RuleSpec {
                pool: "api".into(),
                extensions: vec!["tar.gz".into()],
                ..Default::default()
            },
        ]);
        assert_eq!(r.route(&req("GET", "x", "/x.tar.gz")), Some(2));
        assert_eq!(r.route(&req("GET", "x", "/x.TAR.GZ")), Some(2));
        assert_eq!(r.route(&req("GET", "x", "/tar.gz")), Some(0));
        assert_eq!(r.route(&req("GET", "x", "/xtar.gz")), Some(0));
        assert_eq!(r.route(&req("GET", "x", "/a.png")), Some(1));
        assert_eq!(r.route(&req("GET", "x", "/.png")), Some(1));
        assert_eq!(r.route(&req("GET", "x", "/a.")), Some(1));
        assert_eq!(r.route(&req("GET", "x", "/dir.png/file")), Some(0));
    }

    #[test]
    fn host_port_stripping() {
        assert_eq!(strip_port("a.b:80"), "a.b");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        assert_eq!(strip_port("u@h:1"), "h");
        assert_eq!(strip_port(""), "");
    }
}

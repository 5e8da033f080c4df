//! Fuzz HTTP content switching: rule sets (as an operator could write them) compiled by
//! `Router::compile`, then requests (method, URI, Host, headers) routed through them.
//! Invariants: no panic; compiling refuses only what is really wrong (unknown pool, bad
//! regex, method or header name); and every route equals the one a naive reference matcher in
//! this file computes, rule by rule, from the same specs (host from `http::uri::Authority`,
//! extensions as a `.ext` suffix of the last path segment).
#![no_main]

use http::uri::Authority;
use http::{HeaderName, Method, Request};
use libfuzzer_sys::fuzz_target;
use regex::Regex;
use tenbin_proxy::http::{PathSpec, Router, RuleError, RuleSpec};

const POOLS: [&str; 3] = ["app", "static", "api"];

/// The input is text, so seeds are readable (see `corpus/http_rules`), one item a line:
///
/// ```text
/// default=app
/// rule pool=static ext=png ext=.CSS
/// rule pool=api host=*.example.com prefix=/api/ regex=^/api/v[0-9]+/ method=get
/// rule pool=api exact=/x header=User-Agent:Mobile query=lang=ja query=debug
/// req GET /api/v2/logo.css host=Static.Example.com:8080 User-Agent:Mobile
/// ```
///
/// Words are separated by spaces (a regex says `\x20` for one); `query=name` asks only for
/// presence. A request's words after the URI are `host=` or `Name:value` headers.
fn read(text: &str) -> (Vec<RuleSpec>, Option<String>, Vec<Request<()>>) {
    let (mut rules, mut default, mut requests) = (Vec::new(), None, Vec::new());
    for line in text.lines().take(32) {
        let mut words = line.split(' ').filter(|w| !w.is_empty());
        match words.next() {
            Some("rule") if rules.len() < 8 => {
                let mut r = RuleSpec::default();
                for w in words.take(12) {
                    let (k, v) = w.split_once('=').unwrap_or((w, ""));
                    let v = short(v);
                    match k {
                        "pool" => r.pool = v,
                        "host" => r.host = Some(v),
                        "prefix" => r.paths.push(PathSpec::Prefix(v)),
                        "exact" => r.paths.push(PathSpec::Exact(v)),
                        "regex" => r.paths.push(PathSpec::Regex(v)),
                        "method" => r.methods.push(v),
                        "ext" => r.extensions.push(v),
                        "header" => {
                            let (n, re) = v.split_once(':').unwrap_or((&v, ""));
                            r.header = Some((n.to_string(), re.to_string()));
                        }
                        "query" => {
                            r.query = Some(match v.split_once('=') {
                                Some((n, want)) => (n.to_string(), Some(want.to_string())),
                                None => (v, None),
                            })
                        }
                        _ => {}
                    }
                }
                rules.push(r);
            }
            Some(d) if d.starts_with("default=") => {
                default = Some(d["default=".len()..].to_string())
            }
            Some("req") if requests.len() < 8 => {
                let method = words.next().unwrap_or("GET");
                let uri = words.next().unwrap_or("/");
                let mut b = Request::builder().method(method).uri(uri);
                for w in words.take(8) {
                    b = match (w.strip_prefix("host="), w.split_once(':')) {
                        (Some(h), _) => b.header(http::header::HOST, h),
                        (None, Some((n, v))) => b.header(n, v),
                        (None, None) => b,
                    };
                }
                if let Ok(req) = b.body(()) {
                    requests.push(req);
                }
            }
            _ => {}
        }
    }
    (rules, default, requests)
}

/// Bounds compile time (regexes) per input.
fn short(s: &str) -> String {
    s.chars().take(48).collect()
}

fuzz_target!(|data: &[u8]| {
    let (specs, default, requests) = read(&String::from_utf8_lossy(data));
    let router = match Router::compile(&specs, default.as_deref(), &POOLS) {
        Ok(r) => r,
        Err(e) => {
            assert!(really_wrong(&specs, default.as_deref(), &e), "refused: {e}");
            return;
        }
    };
    let reference = Reference::new(&specs, default.as_deref());
    for req in &requests {
        let Some(want) = reference.route(req) else {
            continue;
        };
        assert_eq!(router.route(req), want, "{req:?}");
    }
});

/// The compile error names something that is indeed wrong with the specs.
fn really_wrong(specs: &[RuleSpec], default: Option<&str>, e: &RuleError) -> bool {
    match e {
        RuleError::UnknownDefault(d) => default == Some(d.as_str()) && !POOLS.contains(&d.as_str()),
        RuleError::UnknownPool { index, pool } => {
            specs[*index].pool == *pool && !POOLS.contains(&pool.as_str())
        }
        RuleError::Regex { pattern, .. } => Regex::new(pattern).is_err(),
        RuleError::Method { method, .. } => {
            Method::from_bytes(method.to_ascii_uppercase().as_bytes()).is_err()
        }
        RuleError::HeaderName { name, .. } => HeaderName::from_bytes(name.as_bytes()).is_err(),
    }
}

/// Rules evaluated straight from their specs.
struct Reference<'a> {
    specs: &'a [RuleSpec],
    regexes: Vec<Vec<Option<Regex>>>,
    headers: Vec<Option<Regex>>,
    default: Option<usize>,
}

impl<'a> Reference<'a> {
    fn new(specs: &'a [RuleSpec], default: Option<&str>) -> Self {
        let re = |p: &str| Regex::new(p).expect("compiled by the router");
        Reference {
            specs,
            regexes: specs
                .iter()
                .map(|s| {
                    s.paths
                        .iter()
                        .map(|p| match p {
                            PathSpec::Regex(r) => Some(re(r)),
                            _ => None,
                        })
                        .collect()
                })
                .collect(),
            headers: specs
                .iter()
                .map(|s| s.header.as_ref().map(|(_, r)| re(r)))
                .collect(),
            default: default.and_then(|d| POOLS.iter().position(|p| *p == d)),
        }
    }

    /// `None` when the request's host cannot be read as an authority (no reference then).
    fn route(&self, req: &Request<()>) -> Option<Option<usize>> {
        let host = match req.uri().authority() {
            Some(a) => Some(a.host().to_string()),
            None => match req.headers().get(http::header::HOST) {
                None => None,
                Some(v) => Some(
                    v.to_str()
                        .ok()?
                        .parse::<Authority>()
                        .ok()?
                        .host()
                        .to_string(),
                ),
            },
        };
        for (i, s) in self.specs.iter().enumerate() {
            if self.rule_matches(i, s, req, host.as_deref()) {
                return Some(POOLS.iter().position(|p| *p == s.pool));
            }
        }
        Some(self.default)
    }

    fn rule_matches(&self, i: usize, s: &RuleSpec, req: &Request<()>, host: Option<&str>) -> bool {
        let method = req.method().as_str();
        if !s.methods.is_empty() && !s.methods.iter().any(|m| m.to_ascii_uppercase() == method) {
            return false;
        }
        if let Some(want) = &s.host {
            let Some(h) = host else { return false };
            let (h, want) = (h.to_ascii_lowercase(), want.to_ascii_lowercase());
            let ok = match want.strip_prefix('*') {
                Some(suffix) => h.len() > suffix.len() && h.ends_with(suffix),
                None => h == want,
            };
            if !ok {
                return false;
            }
        }
        let path = req.uri().path();
        for (p, re) in s.paths.iter().zip(&self.regexes[i]) {
            let ok = match (p, re) {
                (PathSpec::Prefix(x), _) => path.starts_with(x.as_str()),
                (PathSpec::Exact(x), _) => path == x,
                (PathSpec::Regex(_), Some(re)) => re.is_match(path),
                (PathSpec::Regex(_), None) => unreachable!("compiled above"),
            };
            if !ok {
                return false;
            }
        }
        if !s.extensions.is_empty() {
            let last = path.rsplit('/').next().unwrap_or("").to_ascii_lowercase();
            let any = s.extensions.iter().any(|e| {
                let e = e.trim_start_matches('.').to_ascii_lowercase();
                last.ends_with(&format!(".{e}"))
            });
            if !any {
                return false;
            }
        }
        if let (Some((name, _)), Some(re)) = (&s.header, &self.headers[i]) {
            let any = req
                .headers()
                .get_all(name.as_str())
                .iter()
                .any(|v| v.to_str().is_ok_and(|v| re.is_match(v)));
            if !any {
                return false;
            }
        }
        if let Some((name, want)) = &s.query {
            let q = req.uri().query().unwrap_or("");
            let found = q.split('&').any(|pair| {
                let mut kv = pair.splitn(2, '=');
                let k = kv.next().unwrap_or("");
                let v = kv.next().unwrap_or("");
                k == name && want.as_ref().is_none_or(|w| w == v)
            });
            if !found {
                return false;
            }
        }
        true
    }
}

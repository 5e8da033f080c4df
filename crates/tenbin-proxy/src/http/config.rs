//! From a validated `[[frontend]]` (`mode = "http"`) to an [`HttpFrontend`].

use tenbin_config::frontend::{AccessLog, Forwarded, Rule};
use tenbin_config::Frontend;

use super::headers::HeaderRuleError;
use super::{
    AccessLogFormat, ForwardedMode, HeaderRules, HttpFrontend, HttpTimeouts, PathSpec, RuleError,
    RuleSpec,
};
use crate::pool::Pool;

/// Why a frontend could not be built (validation normally catches these first).
#[derive(Debug, thiserror::Error)]
pub enum FrontendConfigError {
    #[error("frontend {frontend}: {source}")]
    Rule { frontend: String, source: RuleError },
    #[error("frontend {frontend}: {source}")]
    Header {
        frontend: String,
        source: HeaderRuleError,
    },
}

impl HttpFrontend {
    /// Builds the frontend `fe` describes over `pools`, the runtime pools the binary built
    /// from `[[pool]]` (every pool the rules and `default_pool` name must be among them).
    pub fn from_config(fe: &Frontend, pools: Vec<Pool>) -> Result<Self, FrontendConfigError> {
        let frontend = fe.name.get_ref().clone();
        let rules: Vec<RuleSpec> = fe.rule.iter().map(rule_spec).collect();
        let default = fe.default_pool.as_ref().map(|p| p.get_ref().as_str());
        let mut out =
            HttpFrontend::new(frontend.clone(), &rules, default, pools).map_err(|source| {
                FrontendConfigError::Rule {
                    frontend: frontend.clone(),
                    source,
                }
            })?;
        let h = &fe.headers;
        let header_err = |source| FrontendConfigError::Header {
            frontend: frontend.clone(),
            source,
        };
        out.request_headers = HeaderRules::from_strings(
            pairs(&h.request_set),
            pairs(&h.request_add),
            h.request_del.iter().map(String::as_str),
        )
        .map_err(header_err)?;
        out.response_headers = HeaderRules::from_strings(
            pairs(&h.response_set),
            pairs(&h.response_add),
            h.response_del.iter().map(String::as_str),
        )
        .map_err(header_err)?;
        out.retries = fe.retries;
        out.forwarded = match fe.forwarded {
            Forwarded::XForwarded => ForwardedMode::XForwarded,
            Forwarded::Rfc7239 => ForwardedMode::Rfc7239,
            Forwarded::Both => ForwardedMode::Both,
            Forwarded::None => ForwardedMode::None,
        };
        out.access_log = match fe.access_log {
            AccessLog::Off => AccessLogFormat::Off,
            AccessLog::Json => AccessLogFormat::Json,
            AccessLog::Combined => AccessLogFormat::Combined,
        };
        let t = &fe.timeouts;
        out.timeouts = HttpTimeouts {
            client_header: t.client_header,
            client_idle: t.client_idle,
            client_body: t.client_body,
            connect: t.connect,
            server: t.server,
            total: t.total,
        };
        out.limits = fe.limits;
        Ok(out)
    }
}

fn pairs(m: &std::collections::BTreeMap<String, String>) -> impl Iterator<Item = (&str, &str)> {
    m.iter().map(|(k, v)| (k.as_str(), v.as_str()))
}

fn rule_spec(r: &Rule) -> RuleSpec {
    let mut paths = Vec::new();
    if let Some(p) = &r.path_prefix {
        paths.push(PathSpec::Prefix(p.clone()));
    }
    if let Some(p) = &r.path_exact {
        paths.push(PathSpec::Exact(p.clone()));
    }
    if let Some(p) = &r.path_regex {
        paths.push(PathSpec::Regex(p.get_ref().clone()));
    }
    let header = r.header.as_ref().map(|h| {
        let pattern = match (&h.regex, &h.value) {
            (Some(re), _) => re.get_ref().clone(),
            (None, Some(v)) => format!("^{}$", regex::escape(v)),
            (None, None) => String::new(),
        };
        (h.name.clone(), pattern)
    });
    RuleSpec {
        pool: r.pool.get_ref().clone(),
        host: r.host.clone(),
        paths,
        methods: r.method.clone().unwrap_or_default(),
        header,
        query: r.query.as_ref().map(|q| (q.name.clone(), q.value.clone())),
        extensions: r.extension.clone().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::Request;

    use super::*;
    use crate::pool::PoolConfig;

    const TOML: &str = r#"
[[frontend]]
name = "web"
bind = ["127.0.0.1:8080"]
mode = "http"
default_pool = "app"
retries = 1
access_log = "combined"
forwarded = "both"
[frontend.timeouts]
client_header = "2s"
server = "250ms"
[frontend.limits]
max_headers = 40
requests_per_second_per_source = 5
[[frontend.rule]]
pool = "static"
path_prefix = "/img/"
extension = ["png"]
[[frontend.rule]]
pool = "static"
header = { name = "X-Kind", value = "a.b" }
[frontend.headers]
request_set = { "X-Via" = "tenbin" }
response_del = ["Server"]

[[pool]]
name = "app"
[[pool.server]]
name = "a"
address = "127.0.0.1:9001"

[[pool]]
name = "static"
[[pool.server]]
name = "s"
address = "127.0.0.1:9002"
"#;

    #[test]
    fn converts_a_validated_http_frontend() {
        let cfg = tenbin_config::Config::parse(TOML, "test.toml").unwrap();
        let pools: Vec<Pool> = cfg
            .pool
            .iter()
            .map(|p| Pool::new(PoolConfig::from_config(p, Duration::from_secs(5))))
            .collect();
        let fe = HttpFrontend::from_config(&cfg.frontend[0], pools).unwrap();
        assert_eq!(fe.retries, 1);
        assert_eq!(fe.access_log, AccessLogFormat::Combined);
        assert_eq!(fe.forwarded, ForwardedMode::Both);
        assert_eq!(fe.timeouts.client_header, Duration::from_secs(2));
        assert_eq!(fe.timeouts.server, Duration::from_millis(250));
        assert_eq!(fe.timeouts.total, Duration::from_secs(120));
        assert_eq!(fe.timeouts.client_body, Duration::from_secs(60));
        assert_eq!(fe.limits.max_headers, 40);
        assert_eq!(fe.limits.requests_per_second_per_source, 5);
        assert_eq!(
            fe.limits.max_request_line,
            super::super::HttpLimits::default().max_request_line
        );
        assert_eq!(fe.request_headers.set.len(), 1);
        assert_eq!(fe.response_headers.delete.len(), 1);
        let route = |path: &str, kind: &str| {
            let req = Request::get(path).header("x-kind", kind).body(()).unwrap();
            fe.router
                .route(&req)
                .map(|i| fe.pools[i].name().to_string())
        };
        assert_eq!(route("/img/a.png", "").as_deref(), Some("static"));
        assert_eq!(route("/img/a.css", "").as_deref(), Some("app"));
        // An exact header value is matched literally, not as a regex.
        assert_eq!(route("/", "a.b").as_deref(), Some("static"));
        assert_eq!(route("/", "axb").as_deref(), Some("app"));
    }
}

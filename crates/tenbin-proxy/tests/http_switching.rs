//! Content switching and header handling through a running proxy on loopback.

mod http_support;

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use http_support::*;
use hyper_util::rt::TokioExecutor;
use tenbin_core::pick::Algorithm;
use tenbin_proxy::http::{AccessLogFormat, ForwardedMode, HeaderRules, PathSpec, RuleSpec};

fn rule(pool: &str) -> RuleSpec {
    RuleSpec {
        pool: pool.into(),
        ..Default::default()
    }
}

fn req(method: &str, url: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut b = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Full::new(Bytes::new())).unwrap()
}

#[tokio::test]
async fn every_rule_kind_selects_its_pool() {
    let names = [
        "default", "host", "wild", "prefix", "exact", "regex", "method", "header", "query", "ext",
    ];
    let mut backends = Vec::new();
    for n in names {
        backends.push(Backend::spawn(n).await);
    }
    let pools = backends
        .iter()
        .map(|b| pool(&b.name, Algorithm::RoundRobin, &[b]))
        .collect();
    let rules = vec![
        RuleSpec {
            host: Some("static.example.com".into()),
            ..rule("host")
        },
        RuleSpec {
            host: Some("*.example.org".into()),
            ..rule("wild")
        },
        RuleSpec {
            paths: vec![PathSpec::Prefix("/img/".into())],
            ..rule("prefix")
        },
        RuleSpec {
            paths: vec![PathSpec::Exact("/exact".into())],
            ..rule("exact")
        },
        RuleSpec {
            paths: vec![PathSpec::Regex("^/api/v[0-9]+/".into())],
            ..rule("regex")
        },
        RuleSpec {
            methods: vec!["DELETE".into()],
            ..rule("method")
        },
        RuleSpec {
            header: Some(("User-Agent".into(), "Mobile".into())),
            ..rule("header")
        },
        RuleSpec {
            query: Some(("lang".into(), Some("ja".into()))),
            ..rule("query")
        },
        RuleSpec {
            extensions: vec!["css".into(), "js".into()],
            ..rule("ext")
        },
    ];
    let proxy = Proxy::spawn(frontend(&rules, "default", pools)).await;
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case<'_>; 11] = [
        ("GET", "/", &[("host", "static.example.com")], "host"),
        ("GET", "/", &[("host", "a.example.org:8080")], "wild"),
        ("GET", "/img/logo.png", &[], "prefix"),
        ("GET", "/exact", &[], "exact"),
        ("GET", "/exact/not", &[], "default"),
        ("GET", "/api/v2/users", &[], "regex"),
        ("DELETE", "/thing", &[], "method"),
        ("GET", "/", &[("user-agent", "Foo Mobile Bar")], "header"),
        ("GET", "/page?x=1&lang=ja", &[], "query"),
        ("GET", "/assets/site.CSS", &[], "ext"),
        ("GET", "/nothing/special", &[], "default"),
    ];
    for (method, path, headers, want) in cases {
        let (status, hdrs, body) = send(req(method, &proxy.url(path), headers)).await;
        assert_eq!(status, StatusCode::OK, "{method} {path}");
        assert_eq!(body, want, "{method} {path} {headers:?}");
        assert_eq!(hdrs["x-server"], want);
    }
}

#[tokio::test]
async fn forwarding_headers_hop_by_hop_and_edit_rules() {
    let b = Backend::spawn("a").await;
    let mut fe = frontend(&[], "app", vec![pool("app", Algorithm::RoundRobin, &[&b])]);
    fe.forwarded = ForwardedMode::Both;
    fe.request_headers =
        HeaderRules::from_strings([("x-via", "tenbin")], [("x-added", "1")], ["x-debug"]).unwrap();
    fe.response_headers = HeaderRules::from_strings([], [("x-resp", "yes")], ["server"]).unwrap();
    let proxy = Proxy::spawn(fe).await;
    let (status, h, _) = send(req(
        "GET",
        &proxy.url("/"),
        &[
            ("host", "site.test"),
            ("x-forwarded-for", "198.51.100.7"),
            ("x-debug", "secret"),
            ("x-via", "client"),
            ("connection", "x-private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
        ],
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h["x-echo-x-forwarded-for"], "198.51.100.7, 127.0.0.1");
    assert_eq!(h["x-echo-x-forwarded-proto"], "http");
    assert_eq!(h["x-echo-x-forwarded-host"], "site.test");
    assert_eq!(
        h["x-echo-forwarded"],
        "for=127.0.0.1;proto=http;host=\"site.test\""
    );
    assert_eq!(h["x-echo-host"], "site.test");
    assert_eq!(h["x-echo-x-via"], "tenbin");
    assert_eq!(h["x-echo-x-added"], "1");
    assert!(!h.contains_key("x-echo-x-debug"));
    assert!(!h.contains_key("x-echo-x-private"));
    assert!(!h.contains_key("x-echo-keep-alive"));
    assert_eq!(h["x-resp"], "yes");
    assert!(!h.contains_key("server"));
}

#[tokio::test]
async fn h2c_clients_are_served_and_bodies_pass_through() {
    let b = Backend::spawn("a").await;
    let proxy = Proxy::spawn(frontend(
        &[],
        "app",
        vec![pool("app", Algorithm::RoundRobin, &[&b])],
    ))
    .await;
    let h2 = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let body = Bytes::from(vec![b'x'; 100_000]);
    let resp = h2
        .request(
            Request::post(proxy.url("/upload"))
                .body(Full::new(body))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-body-len"], "100000");
    // An h2 request carries its host as :authority; the server still gets a Host header.
    assert_eq!(
        resp.headers()["x-echo-host"],
        proxy.addr.to_string().as_str()
    );
    let text = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&text[..], b"a");
}

#[tokio::test]
async fn access_log_lines_in_both_formats() {
    let b = Backend::spawn("a").await;
    for format in [AccessLogFormat::Json, AccessLogFormat::Combined] {
        let lines = Arc::new(Lines::default());
        let mut fe = frontend(&[], "app", vec![pool("app", Algorithm::RoundRobin, &[&b])]);
        fe.access_log = format;
        fe.log_sink = lines.clone();
        let proxy = Proxy::spawn(fe).await;
        let (status, _, _) = send(req(
            "GET",
            &proxy.url("/status/404?q=1"),
            &[("user-agent", "probe/1")],
        ))
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let got = lines.0.lock().unwrap().clone();
        assert_eq!(got.len(), 1, "{got:?}");
        match format {
            AccessLogFormat::Json => {
                let v: serde_json::Value = serde_json::from_str(&got[0]).unwrap();
                assert_eq!(v["status"], 404);
                assert_eq!(v["server"], "a");
                assert_eq!(v["uri"], "/status/404?q=1");
                assert_eq!(v["user_agent"], "probe/1");
            }
            _ => {
                assert!(got[0].starts_with("127.0.0.1 - - ["), "{}", got[0]);
                assert!(
                    got[0].contains("\"GET /status/404?q=1 HTTP/1.1\" 404 1 \"-\" \"probe/1\""),
                    "{}",
                    got[0]
                );
            }
        }
    }
}

#[tokio::test]
async fn any_stream_can_be_served_and_tls_streams_say_https() {
    use tenbin_proxy::http::HttpService;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let b = Backend::spawn("a").await;
    let service = HttpService::new(frontend(
        &[],
        "app",
        vec![pool("app", Algorithm::RoundRobin, &[&b])],
    ));
    // An in-memory stream stands in for a decrypted TLS connection.
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    let stop = tokio_util::sync::CancellationToken::new();
    let peer = "127.0.0.9:4443".parse().unwrap();
    tokio::spawn(async move { service.serve_connection(server, peer, true, stop).await });
    client
        .write_all(b"GET / HTTP/1.1\r\nHost: secure.test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        client.read_to_string(&mut out),
    )
    .await
    .unwrap()
    .unwrap();
    let lower = out.to_ascii_lowercase();
    assert!(lower.starts_with("http/1.1 200"), "{out}");
    assert!(lower.contains("x-echo-x-forwarded-proto: https"), "{out}");
    assert!(lower.contains("x-echo-x-forwarded-for: 127.0.0.9"), "{out}");
}

#[tokio::test]
async fn upstream_connections_are_kept_alive_and_reused() {
    let b = Backend::spawn("a").await;
    let proxy = Proxy::spawn(frontend(
        &[],
        "app",
        vec![pool("app", Algorithm::RoundRobin, &[&b])],
    ))
    .await;
    for _ in 0..10 {
        let (status, _, _) = get(&proxy.url("/")).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(b.hits(), 10);
    assert_eq!(
        b.connections(),
        1,
        "sequential requests share one upstream connection"
    );
}

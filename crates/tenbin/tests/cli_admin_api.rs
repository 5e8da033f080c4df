//! The admin API of a running `tenbin run`, over raw HTTP: the token (401 without it, the
//! node refused off loopback without one), 400/404/405/413 with a reason, every change
//! visible in the state at once, and the served OpenAPI description.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::admin::{call, exchange, Written};
use common::Daemon;

fn config(admin: &str) -> String {
    format!(
        r#"
[admin]
{admin}

[[frontend]]
name = "web"
bind = ["127.0.0.1:0"]
default_pool = "app"

[[pool]]
name = "app"
[[pool.server]]
name = "a"
address = "127.0.0.1:9"
[[pool.server]]
name = "b"
address = "127.0.0.1:10"
"#
    )
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

#[test]
fn a_token_is_required_on_every_route_but_healthz() {
    let node = Daemon::start(
        &config("listen = \"127.0.0.1:0\"\ntoken = \"s3cret\""),
        "api-token",
    );
    let port = node.bound("admin", None).port();
    assert_eq!(call(port, "GET", "/healthz", "", "").0, 200);
    let (status, body) = call(port, "GET", "/api/v1/state", "", "");
    assert_eq!(status, 401, "{body}");
    assert!(json(&body)["error"].as_str().unwrap().contains("Bearer"));
    let wrong = "authorization: Bearer s3creT\r\n";
    assert_eq!(call(port, "GET", "/api/v1/state", wrong, "").0, 401);
    let drain = r#"{"state":"drain"}"#;
    let path = "/api/v1/pools/app/servers/a/state";
    assert_eq!(call(port, "PUT", path, "", drain).0, 401);
    let right = "authorization: Bearer s3cret\r\n";
    let (status, body) = call(port, "GET", "/api/v1/state", right, "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["pools"][0]["name"], "app");
    assert_eq!(call(port, "PUT", path, right, drain).0, 200);

    // A reload that changes only the token applies at once (the file watcher may get there
    // first, then the old token is already refused).
    let text = std::fs::read_to_string(&node.config).unwrap();
    std::fs::write(&node.config, text.replace("\"s3cret\"", "\"n3w\"")).unwrap();
    let (status, body) = call(port, "POST", "/api/v1/reload", right, "");
    assert!(status == 200 || status == 401, "{status}: {body}");
    let new = "authorization: Bearer n3w\r\n";
    assert_eq!(call(port, "GET", "/api/v1/state", right, "").0, 401);
    assert_eq!(call(port, "GET", "/api/v1/state", new, "").0, 200);
    std::fs::write(&node.config, text).unwrap();
    let (status, body) = call(port, "POST", "/api/v1/reload", new, "");
    assert!(status == 200 || status == 401, "{status}: {body}");
    assert_eq!(call(port, "GET", "/api/v1/state", right, "").0, 200);

    // ctl: the token from the flag, the env var or a file; without it the node refuses.
    let ctl = |args: &[&str], env: Option<&str>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tenbin"));
        c.args(["ctl", "--admin", &format!("127.0.0.1:{port}")])
            .args(args)
            .env_remove("TENBIN_TOKEN");
        if let Some(t) = env {
            c.env("TENBIN_TOKEN", t);
        }
        c.output().unwrap()
    };
    let out = ctl(&["status"], None);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
    assert_eq!(
        ctl(&["--token", "s3cret", "status"], None).status.code(),
        Some(0)
    );
    assert_eq!(ctl(&["status"], Some("s3cret")).status.code(), Some(0));
    let token_file = Written::new("api-token-file", "s3cret\n");
    let tf = token_file.0.to_str().unwrap();
    assert_eq!(
        ctl(&["--token-file", tf, "status"], None).status.code(),
        Some(0)
    );
    // -c FILE: the file's [admin] gives address and token (a copy naming the port the node
    // bound, since the node's own file asks for port 0).
    let own = Written::new(
        "api-token-ctl",
        &format!("[admin]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"s3cret\"\n"),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_tenbin"))
        .args(["ctl", "-c"])
        .arg(&own.0)
        .args(["enable", "app", "a"])
        .env_remove("TENBIN_TOKEN")
        .env_remove("TENBIN_ADMIN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn off_loopback_without_a_token_the_node_refuses_to_start() {
    // Validation refuses the file before anything binds: no traffic leaves loopback.
    let file = Written::new("api-open", &config("listen = \"0.0.0.0:0\""));
    let mut child = Command::new(env!("CARGO_BIN_EXE_tenbin"))
        .args(["run", "-c"])
        .arg(&file.0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("tenbin run started with an open admin API");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!status.success());
    assert!(err.contains(":3:10: key `admin.listen`"), "{err}");
    assert!(err.contains("token"), "{err}");
}

#[test]
fn bad_requests_get_a_reason_and_changes_show_at_once() {
    let node = Daemon::start(&config("listen = \"127.0.0.1:0\""), "api-open-loopback");
    let port = node.bound("admin", None).port();
    let put = |path: &str, body: &str| call(port, "PUT", path, "", body);

    // 404 names the unknown thing and the known ones.
    let (status, body) = put("/api/v1/pools/app/servers/x/weight", r#"{"weight": 2}"#);
    assert_eq!(status, 404, "{body}");
    let v = json(&body);
    assert_eq!(
        v["error"], "unknown server `x` in pool `app`; known: a, b",
        "{body}"
    );
    assert_eq!(v["known"], serde_json::json!(["a", "b"]));
    let (status, body) = put("/api/v1/pools/web/servers/a/weight", r#"{"weight": 2}"#);
    assert_eq!(status, 404);
    assert!(json(&body)["error"]
        .as_str()
        .unwrap()
        .contains("known: app"));
    let (status, body) = call(port, "GET", "/api/v1/nothing", "", "");
    assert_eq!(status, 404);
    assert!(json(&body)["error"]
        .as_str()
        .unwrap()
        .contains("openapi.json"));

    // 400 with a reason.
    for bad in [
        r#"{"state":"asleep"}"#,
        "not json",
        r#"{"state":"drain","x":1}"#,
        "",
    ] {
        let (status, body) = put("/api/v1/pools/app/servers/a/state", bad);
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(!json(&body)["error"].as_str().unwrap().is_empty());
    }
    let (status, body) = put("/api/v1/pools/app/servers/a/weight", r#"{"weight": -1}"#);
    assert_eq!(status, 400, "{body}");
    let (status, _) = call(
        port,
        "POST",
        "/api/v1/pools/app/servers",
        "",
        r#"{"name": "a", "address": "127.0.0.1:11"}"#,
    );
    assert_eq!(status, 400, "a duplicate server is refused");

    // 413 past the body limit, 405 for a wrong method.
    let big = format!(r#"{{"weight": 1, "pad": "{}"}}"#, "x".repeat(100 * 1024));
    let (status, body) = put("/api/v1/pools/app/servers/a/weight", &big);
    assert_eq!(status, 413, "{body}");
    let (status, body) = call(port, "GET", "/api/v1/reload", "", "");
    assert_eq!(status, 405, "{body}");
    assert!(json(&body)["error"].is_string());
    assert_eq!(call(port, "DELETE", "/api/v1/state", "", "").0, 405);

    // Changes show in the state at once.
    let (status, body) = put("/api/v1/pools/app/servers/b/weight", r#"{"weight": 7}"#);
    assert_eq!(status, 200, "{body}");
    let generation = json(&body)["generation"].as_u64().unwrap();
    assert!(generation > 1);
    assert_eq!(
        put("/api/v1/pools/app/servers/a/state", r#"{"state":"maint"}"#).0,
        200
    );
    let (status, body) = call(
        port,
        "POST",
        "/api/v1/pools/app/servers",
        "",
        r#"{"name": "c", "address": "127.0.0.1:11", "weight": 3}"#,
    );
    assert_eq!(status, 201, "{body}");
    let state = json(&call(port, "GET", "/api/v1/state", "", "").1);
    let servers = &state["pools"][0]["servers"];
    assert_eq!(servers[0]["admin"], "maintenance", "{state}");
    assert_eq!(servers[1]["weight"], 7);
    assert_eq!(servers[2]["name"], "c");
    assert_eq!(servers[2]["weight"], 3);
    assert_eq!(
        call(port, "DELETE", "/api/v1/pools/app/servers/c", "", "").0,
        200
    );
    let state = json(&call(port, "GET", "/api/v1/state", "", "").1);
    assert_eq!(state["pools"][0]["servers"].as_array().unwrap().len(), 2);
    // The first API's paths still answer.
    assert_eq!(call(port, "GET", "/state", "", "").0, 200);
    let (status, body) = call(port, "POST", "/api/v1/reload", "", "");
    assert_eq!(status, 200, "{body}");
    // No [dns] tier: a datacenter load names what is missing.
    let (status, body) = put("/api/v1/dns/datacenters/fra/load", r#"{"load": 1}"#);
    assert_eq!(status, 404, "{body}");
}

#[test]
fn the_served_openapi_description_names_routes_that_answer() {
    let node = Daemon::start(&config("listen = \"127.0.0.1:0\""), "api-openapi");
    let port = node.bound("admin", None).port();
    let (status, body) = call(port, "GET", "/api/v1/openapi.json", "", "");
    assert_eq!(status, 200);
    let spec = json(&body);
    assert_eq!(spec["openapi"], "3.1.0");
    // Each described operation is routed: with names that do not exist and an empty body it
    // may be refused (400, 404 with the JSON reason) but never "no route" or 405.
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if method == "post" && path.ends_with("reload") {
                continue; // applies the file: covered elsewhere
            }
            let concrete = path
                .replace("{pool}", "nopool")
                .replace("{server}", "noserver")
                .replace("{dc}", "nodc");
            let (status, body) = call(port, &method.to_uppercase(), &concrete, "", "");
            assert_ne!(status, 405, "{method} {path}: {body}");
            assert!(
                !body.contains("no route"),
                "{method} {path} is described but not routed: {body}"
            );
        }
    }
}

#[test]
fn the_dashboard_and_its_assets_load_without_the_token_but_its_data_does_not() {
    let node = Daemon::start(
        &config("listen = \"127.0.0.1:0\"\ntoken = \"s3cret\""),
        "api-dashboard",
    );
    let port = node.bound("admin", None).port();
    let (status, page) = call(port, "GET", "/", "", "");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<script type=\"module\" src=\"/ui/app.js\">"));
    for (asset, kind) in [
        ("app.js", "text/javascript"),
        ("prom.js", "text/javascript"),
        ("app.css", "text/css"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let (status, head, body) = exchange(port, "GET", &format!("/ui/{asset}"), "", "");
        assert_eq!(status, 200, "{asset}: {body}");
        assert!(!body.is_empty(), "{asset}");
        assert!(head.contains(&format!("content-type: {kind}")), "{head}");
        assert!(
            head.contains("content-security-policy: default-src 'self'"),
            "{head}"
        );
    }
    let (status, body) = call(port, "GET", "/ui/missing.js", "", "");
    assert_eq!(status, 404);
    assert!(json(&body)["known"].as_array().unwrap().len() > 3, "{body}");
    // What the page shows stays behind the token.
    assert_eq!(call(port, "GET", "/api/v1/state", "", "").0, 401);
    assert_eq!(call(port, "GET", "/uix", "", "").0, 401);
}

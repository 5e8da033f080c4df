//! TLS on `mode tcp` frontends started from config text through the L4 tier (`l4::serve`),
//! as `tenbin run` starts them: passthrough with SNI routes and session stickiness, and
//! termination in front of a plain TCP pool with certificate files that are reloaded.

mod tls_common;

use std::collections::BTreeSet;
use std::time::Duration;

use tenbin_proxy::l4::{pools, serve};
use tls_common::{tls_backend, tls_exchange, Ca, TempDir};

const TLS12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];

#[tokio::test]
async fn passthrough_and_termination_from_config() {
    let dir = TempDir::new("l4cfg");
    let ca = Ca::new("test ca");
    let shop_leaf = ca.leaf(&["shop.test"]);
    let api_leaf = ca.leaf(&["*.api.test"]);
    let (s0, _) = tls_backend("shop0", shop_leaf.server_config(TLS12)).await;
    let (s1, _) = tls_backend("shop1", shop_leaf.server_config(TLS12)).await;
    let (a0, _) = tls_backend("api0", api_leaf.server_config(TLS12)).await;
    let plain = tenbin_testkit::backend::tcp_echo()
        .name("plain")
        .greet()
        .spawn()
        .await;
    let front_v1 = ca.leaf(&["secure.test"]);
    let files = front_v1.write(&dir.0, "front");
    let text = format!(
        r#"
[[frontend]]
name = "pass"
bind = ["127.0.0.1:0"]
mode = "tcp"
default_pool = "api"
[frontend.tls]
mode = "passthrough"
[[frontend.sni_route]]
sni = "shop.test"
pool = "shop"

[[frontend]]
name = "offload"
bind = ["127.0.0.1:0"]
mode = "tcp"
default_pool = "plain"
[frontend.tls]
min_version = "1.2"
[[frontend.tls.certificate]]
cert = "{}"
key = "{}"

[[pool]]
name = "shop"
[pool.persistence]
mode = "tls-session"
table_size = 1000
[[pool.server]]
name = "shop0"
address = "{s0}"
[[pool.server]]
name = "shop1"
address = "{s1}"

[[pool]]
name = "api"
[[pool.server]]
name = "api0"
address = "{a0}"

[[pool]]
name = "plain"
[[pool.server]]
name = "plain"
address = "{}"
"#,
        files.cert.display(),
        files.key.display(),
        plain.addr()
    );
    let config = tenbin_config::Config::parse(&text, "tls.toml").unwrap();
    let pools = pools(&config);
    let (tx, rx) = tokio::sync::watch::channel(false);
    let listeners = serve(&config, &pools, rx).await.unwrap();
    let addr = |n: &str| listeners.iter().find(|l| l.frontend == n).unwrap().addr;
    let (pass, offload) = (addr("pass"), addr("offload"));

    // Passthrough: SNI picks the pool; a TLS 1.2 session sticks to its server.
    let api = tls_exchange(ca.client(&[]), pass, "x.api.test", b"")
        .await
        .unwrap();
    assert_eq!(api.line, "api0", "unrouted SNI goes to default_pool");
    let client = ca.client_with(&[], TLS12);
    let first = tls_exchange(client.clone(), pass, "shop.test", b"")
        .await
        .unwrap();
    let mut seen = BTreeSet::new();
    for _ in 0..10 {
        let again = tls_exchange(client.clone(), pass, "shop.test", b"")
            .await
            .unwrap();
        assert!(again.resumed);
        seen.insert(again.line);
    }
    assert_eq!(seen, BTreeSet::from([first.line]));

    // Termination: plaintext reaches the TCP server behind.
    let t = tls_exchange(ca.client(&[]), offload, "secure.test", b"")
        .await
        .unwrap();
    assert_eq!((t.line.as_str(), &t.peer_cert), ("plain", &front_v1.der));
    // New files on disk are picked up by the watcher (polling every RELOAD_POLL; the loop
    // bound only stops a broken watcher from hanging the test).
    let v2 = ca.leaf(&["secure.test"]);
    v2.write(&dir.0, "front");
    let mut reloaded = false;
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t = tls_exchange(ca.client(&[]), offload, "secure.test", b"")
            .await
            .unwrap();
        if t.peer_cert == v2.der {
            reloaded = true;
            break;
        }
    }
    assert!(reloaded, "certificate never reloaded");
    tx.send(true).unwrap();
}

//! TLS termination on loopback: certificate choice by SNI (exact, wildcard, default), ALPN,
//! versions, resumption by OpenSSL's client, a certificate reload while a client stays
//! connected, and the upstream connector's verification (wrong CA fails, right CA and
//! client certificate pass).

mod tls_common;

use std::net::SocketAddr;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use tenbin_core::pick::Algorithm;
use tenbin_proxy::pool::{Pool, PoolConfig, ServerConfig};
use tenbin_proxy::tls::server::server_config;
use tenbin_proxy::tls::{
    provider, terminate_tcp, CertFiles, CertStore, OffloadTimeouts, TerminateConfig, TlsVersion,
    Upstream, UpstreamConfig,
};
use tls_common::{tls_exchange, Ca, TempDir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

struct Front {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

/// A terminating frontend in front of one greeting TCP echo server named "plain".
async fn front(
    store: Arc<CertStore>,
    cfg: TerminateConfig,
) -> (Front, tenbin_testkit::backend::TcpBackend) {
    let backend = tenbin_testkit::backend::tcp_echo()
        .name("plain")
        .greet()
        .spawn()
        .await;
    let pool = Pool::new(PoolConfig::new(
        "p",
        Algorithm::RoundRobin,
        vec![ServerConfig::new("plain", backend.addr())],
    ));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    let config = server_config(&cfg, store).unwrap();
    tokio::spawn(terminate_tcp(
        listener,
        config,
        pool,
        OffloadTimeouts::default(),
        async move {
            let _ = rx.await;
        },
    ));
    (Front { addr, _stop: tx }, backend)
}

fn store(files: Vec<CertFiles>) -> Arc<CertStore> {
    Arc::new(CertStore::load(files, Arc::new(provider())).unwrap())
}

#[tokio::test]
async fn sni_chooses_exact_wildcard_or_default_certificate() {
    let dir = TempDir::new("sni");
    let ca = Ca::new("test ca");
    let default = ca.leaf(&["default.test", "127.0.0.1"]);
    let shop = ca.leaf(&["shop.test"]);
    let api = ca.leaf(&["*.api.test"]);
    let s = store(vec![
        default.write(&dir.0, "default"),
        shop.write(&dir.0, "shop"),
        api.write(&dir.0, "api"),
    ]);
    let (fe, _backend) = front(Arc::clone(&s), TerminateConfig::default()).await;
    let client = ca.client(&["http/1.1"]);
    let seen = tls_exchange(client.clone(), fe.addr, "shop.test", b"")
        .await
        .unwrap();
    assert_eq!(seen.peer_cert, shop.der);
    assert_eq!(seen.line, "plain", "plaintext reached the server behind");
    let seen = tls_exchange(client.clone(), fe.addr, "eu.api.test", b"")
        .await
        .unwrap();
    assert_eq!(seen.peer_cert, api.der);
    // No SNI at all (an IP literal): the first certificate.
    let seen = tls_exchange(client.clone(), fe.addr, "127.0.0.1", b"")
        .await
        .unwrap();
    assert_eq!(seen.peer_cert, default.der);
    // A wildcard covers one label only; unknown names get the default (and fail to verify).
    assert!(tls_exchange(client.clone(), fe.addr, "a.b.api.test", b"")
        .await
        .is_err());
    let chosen = s.select(Some("a.b.api.test")).unwrap();
    assert_eq!(chosen.end_entity_cert().unwrap(), &default.der);
    assert_eq!(
        s.select(Some("SHOP.TEST."))
            .unwrap()
            .end_entity_cert()
            .unwrap(),
        &shop.der
    );
}

#[tokio::test]
async fn alpn_prefers_h2_and_falls_back_to_http11() {
    let dir = TempDir::new("alpn");
    let ca = Ca::new("test ca");
    let s = store(vec![ca.leaf(&["shop.test"]).write(&dir.0, "shop")]);
    let (fe, _backend) = front(s, TerminateConfig::default()).await;
    let both = tls_exchange(ca.client(&["http/1.1", "h2"]), fe.addr, "shop.test", b"")
        .await
        .unwrap();
    assert_eq!(
        both.alpn.as_deref(),
        Some(&b"h2"[..]),
        "server preference wins"
    );
    let h1 = tls_exchange(ca.client(&["http/1.1"]), fe.addr, "shop.test", b"")
        .await
        .unwrap();
    assert_eq!(h1.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(both.version, Some(rustls::ProtocolVersion::TLSv1_3));
}

#[tokio::test]
async fn versions_and_suites_follow_the_configuration() {
    let dir = TempDir::new("ver");
    let ca = Ca::new("test ca");
    let s = store(vec![ca.leaf(&["shop.test"]).write(&dir.0, "shop")]);
    let cfg = TerminateConfig {
        max_version: TlsVersion::Tls12,
        cipher_suites: vec!["TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256".into()],
        ..TerminateConfig::default()
    };
    let (fe, _backend) = front(s.clone(), cfg).await;
    let seen = tls_exchange(ca.client(&[]), fe.addr, "shop.test", b"")
        .await
        .unwrap();
    assert_eq!(seen.version, Some(rustls::ProtocolVersion::TLSv1_2));
    let only13 = ca.client_with(&[], &[&rustls::version::TLS13]);
    assert!(tls_exchange(only13, fe.addr, "shop.test", b"")
        .await
        .is_err());
    let bad = TerminateConfig {
        cipher_suites: vec!["TLS_NOPE".into()],
        ..TerminateConfig::default()
    };
    assert!(server_config(&bad, s.clone()).is_err());
    let inverted = TerminateConfig {
        min_version: TlsVersion::Tls13,
        max_version: TlsVersion::Tls12,
        ..TerminateConfig::default()
    };
    assert!(server_config(&inverted, s).is_err());
}

#[tokio::test]
async fn certificate_reload_keeps_established_connections() {
    let dir = TempDir::new("reload");
    let ca = Ca::new("test ca");
    let v1 = ca.leaf(&["shop.test"]);
    let files = v1.write(&dir.0, "shop");
    let s = store(vec![files.clone()]);
    let (fe, _backend) = front(Arc::clone(&s), TerminateConfig::default()).await;

    // A client connects and stays connected across the reload.
    let tcp = TcpStream::connect(fe.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("shop.test").unwrap();
    let mut held = tokio_rustls::TlsConnector::from(ca.client(&[]))
        .connect(name, tcp)
        .await
        .unwrap();
    let mut greeting = [0u8; 6];
    held.read_exact(&mut greeting).await.unwrap();
    assert_eq!(&greeting, b"plain\n");
    assert_eq!(held.get_ref().1.peer_certificates().unwrap()[0], v1.der);

    assert!(!s.reload_if_changed().unwrap(), "nothing changed yet");
    let v2 = ca.leaf(&["shop.test"]);
    // Rewrite both files with a new key and certificate.
    v2.write(&dir.0, "shop");
    assert!(s.reload_if_changed().unwrap());
    let fresh = tls_exchange(ca.client(&[]), fe.addr, "shop.test", b"")
        .await
        .unwrap();
    assert_eq!(
        fresh.peer_cert, v2.der,
        "new handshakes get the new certificate"
    );

    // The old connection still carries data both ways.
    held.write_all(b"still here\n").await.unwrap();
    let mut echo = [0u8; 11];
    held.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"still here\n");

    // A broken file on disk keeps the last good certificates serving.
    std::fs::write(&files.key, "not a key").unwrap();
    assert!(s.reload_if_changed().is_err());
    let after = tls_exchange(ca.client(&[]), fe.addr, "shop.test", b"")
        .await
        .unwrap();
    assert_eq!(after.peer_cert, v2.der);
}

/// A TLS server requiring a client certificate from `client_ca`, answering "ok\n".
async fn mtls_server(leaf: &tls_common::Leaf, client_ca: &Ca) -> SocketAddr {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(client_ca.der()).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(provider()),
    )
    .build()
    .unwrap();
    let key = <rustls::pki_types::PrivateKeyDer<'static> as PemObject>::from_pem_slice(
        leaf.key_pem.as_bytes(),
    )
    .unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![leaf.der.clone()], key)
        .unwrap();
    let (addr, _task) = tls_common::tls_backend("ok", Arc::new(cfg)).await;
    addr
}

#[tokio::test]
async fn upstream_verifies_the_server_and_presents_a_client_certificate() {
    let dir = TempDir::new("up");
    let server_ca = Ca::new("server ca");
    let other_ca = Ca::new("other ca");
    let client_ca = Ca::new("client ca");
    let server_leaf = server_ca.leaf(&["backend.test"]);
    let addr = mtls_server(&server_leaf, &client_ca).await;
    std::fs::write(dir.0.join("server-ca.pem"), server_ca.pem()).unwrap();
    std::fs::write(dir.0.join("other-ca.pem"), other_ca.pem()).unwrap();
    let client_files = client_ca.leaf(&["proxy.test"]).write(&dir.0, "client");

    let connect = |cfg: UpstreamConfig| async move {
        let up = Upstream::new(&cfg).unwrap();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let mut tls = up.connect(tcp, addr).await?;
        let mut line = String::new();
        tls.read_to_string(&mut line).await?;
        Ok::<_, std::io::Error>(line)
    };
    let good = UpstreamConfig {
        ca_file: Some(dir.0.join("server-ca.pem")),
        verify: true,
        client_cert: Some(client_files.clone()),
        sni: Some("backend.test".into()),
        alpn: vec![],
    };
    assert_eq!(connect(good.clone()).await.unwrap(), "ok\n");

    let wrong_ca = UpstreamConfig {
        ca_file: Some(dir.0.join("other-ca.pem")),
        ..good.clone()
    };
    let err = connect(wrong_ca).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");

    let wrong_name = UpstreamConfig {
        sni: Some("elsewhere.test".into()),
        ..good.clone()
    };
    assert!(connect(wrong_name).await.is_err());

    // Without a client certificate the server refuses the session.
    let anonymous = UpstreamConfig {
        client_cert: None,
        ..good.clone()
    };
    assert!(connect(anonymous).await.is_err());

    // verify = false accepts the unknown CA (lab setups only).
    let lax = UpstreamConfig {
        ca_file: None,
        verify: false,
        ..good
    };
    assert_eq!(connect(lax).await.unwrap(), "ok\n");
}

#[test]
fn config_knows_exactly_the_suites_the_provider_has() {
    let mut ours = tenbin_proxy::tls::server::suite_names();
    let mut config: Vec<String> = tenbin_config::tls::CIPHER_SUITES
        .iter()
        .map(|s| s.to_string())
        .collect();
    ours.sort();
    config.sort();
    assert_eq!(ours, config);
}

/// OpenSSL's own client (not rustls on both ends) resumes what a terminating frontend
/// hands out, as with HAProxy's defaults: TLS 1.3 by ticket, TLS 1.2 by a stateless ticket
/// (which needs a ticket key: rustls' default issues none), and TLS 1.2 by session id from
/// the server's cache when the client refuses tickets.
#[tokio::test]
async fn openssl_resumes_by_ticket_and_by_session_id() {
    if !tenbin_testkit::skip::need_tools(&["openssl"]) {
        return;
    }
    let dir = TempDir::new("resume");
    let ca = Ca::new("test ca");
    let ca_file = dir.0.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let s = store(vec![ca.leaf(&["shop.test"]).write(&dir.0, "shop")]);
    let (fe, _backend) = front(s, TerminateConfig::default()).await;
    for (flags, how) in [
        (&["-tls1_3"][..], "ticket"),
        (&["-tls1_2"][..], "1.2 ticket"),
        (&["-tls1_2", "-no_ticket"][..], "session id"),
    ] {
        let sess = dir.0.join(format!("{}.pem", how.replace(' ', "-")));
        let first = s_client(fe.addr, &ca_file, flags, "-sess_out", &sess).await;
        assert!(first.contains("New, TLSv1."), "{how}, first: {first}");
        assert!(first.contains("Verify return code: 0"), "{how}: {first}");
        if how == "1.2 ticket" {
            assert!(
                first.contains("TLS session ticket:"),
                "no 1.2 ticket: {first}"
            );
        }
        let again = s_client(fe.addr, &ca_file, flags, "-sess_in", &sess).await;
        assert!(
            again.contains("Reused, TLSv1."),
            "{how} not resumed: {again}"
        );
    }
}

/// One `openssl s_client` session through `addr` to the greeting backend: its output once
/// the greeting came through (the session, and TLS 1.3's tickets, arrive before it).
async fn s_client(
    addr: SocketAddr,
    ca: &std::path::Path,
    flags: &[&str],
    sess_flag: &str,
    sess: &std::path::Path,
) -> String {
    use std::process::Stdio;
    use std::time::Duration;
    let mut child = tokio::process::Command::new("openssl")
        .arg("s_client")
        .arg("-connect")
        .arg(addr.to_string())
        .args(["-servername", "shop.test", "-CAfile"])
        .arg(ca)
        .args(flags)
        .arg(sess_flag)
        .arg(sess)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("openssl runs");
    let mut stdout = child.stdout.take().unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        while !String::from_utf8_lossy(&out).contains("plain\n") {
            match stdout.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), read).await;
    // End of input: s_client closes the session and exits.
    drop(child.stdin.take());
    let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    String::from_utf8_lossy(&out).into_owned()
}

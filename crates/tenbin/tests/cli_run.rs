//! `tenbin run` as a user runs it: tcp and http frontends from a config file really forward.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

use common::{dig, example, Daemon};
use tenbin_testkit::skip;

/// Starts `tenbin run` on `config`, whose frontend `frontend` binds port 0 (or `kind` =
/// `dns`), and returns the address it bound.
fn start(config: &str, tag: &str, kind: &str, frontend: Option<&str>) -> (Daemon, SocketAddr) {
    let daemon = Daemon::start(config, &format!("run-{tag}"));
    let addr = daemon.bound(kind, frontend);
    (daemon, addr)
}

/// A connection to `addr` that gives up reading after 10 s.
fn connect(addr: SocketAddr) -> TcpStream {
    let conn = TcpStream::connect(addr).expect("tenbin run listens where it logged");
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    conn
}

#[test]
fn run_serves_an_http_frontend_from_the_config_file() {
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend_addr = backend.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in backend.incoming().take(4).flatten() {
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let body = if req.contains("x-via: tenbin") || req.contains("X-Via: tenbin") {
                "via tenbin"
            } else {
                "direct"
            };
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let config = format!(
        "[[frontend]]\nname = \"web\"\nbind = [\"127.0.0.1:0\"]\nmode = \"http\"\ndefault_pool = \"web\"\n[frontend.headers]\nrequest_set = {{ \"X-Via\" = \"tenbin\" }}\n\n[[pool]]\nname = \"web\"\n[[pool.server]]\nname = \"w1\"\naddress = \"{backend_addr}\"\n"
    );
    let (_daemon, addr) = start(&config, "http", "http", Some("web"));
    let mut conn = connect(addr);
    conn.write_all(b"GET / HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.ends_with("via tenbin"),
        "header rule applied: {response}"
    );
}

#[test]
fn run_serves_a_tcp_frontend_from_the_config_file() {
    // A one-shot echo backend on loopback.
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend_addr = backend.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in backend.incoming().take(2).flatten() {
            let mut buf = [0u8; 64];
            if let Ok(n) = s.read(&mut buf) {
                let _ = s.write_all(&buf[..n]);
            }
        }
    });
    let config = format!(
        "[[frontend]]\nname = \"echo\"\nbind = [\"127.0.0.1:0\"]\nmode = \"tcp\"\ndefault_pool = \"echo\"\n\n[[pool]]\nname = \"echo\"\n[[pool.server]]\nname = \"e1\"\naddress = \"{backend_addr}\"\n"
    );
    let (_daemon, addr) = start(&config, "tcp", "tcp", Some("echo"));
    let mut conn = connect(addr);
    conn.write_all(b"hello tenbin").unwrap();
    let mut buf = [0u8; 64];
    let n = conn.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello tenbin");
}

#[test]
fn run_serves_the_gslb_dns_tier_from_the_config_file() {
    if !skip::need_tools(&["dig"]) {
        return;
    }
    let config = example("gslb-dns.toml").replace("127.0.0.1:5353", "127.0.0.1:0");
    let (_daemon, dns) = start(&config, "dns", "dns", None);
    let dig = |name: &str| dig(dns, name);
    // 127.0.0.1 is in no configured network: the default region (eu) prefers fra.
    let www: Vec<String> = dig("www.example.test").lines().map(String::from).collect();
    assert!(!www.is_empty(), "an answer for the GSLB name");
    assert!(
        www.iter().all(|a| a.starts_with("198.51.100.")),
        "only fra's IPv4 VIPs: {www:?}"
    );
    assert_eq!(dig("mail.example.test").trim(), "192.0.2.25");
}

#[test]
fn run_terminates_tls_on_an_http_frontend() {
    if !skip::need_tools(&["curl"]) {
        return;
    }
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let backend_addr = backend.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut s in backend.incoming().take(4).flatten() {
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_lowercase();
            let body = if req.contains("x-forwarded-proto: https") {
                "proto https"
            } else {
                "proto other"
            };
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let dir = std::env::temp_dir().join(format!("tenbin-certs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["www.tenbin.test".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    let config = format!(
        "[[frontend]]\nname = \"web\"\nbind = [\"127.0.0.1:0\"]\nmode = \"http\"\ndefault_pool = \"web\"\n[frontend.tls]\ncertificate = [{{ cert = \"{}\", key = \"{}\" }}]\n\n[[pool]]\nname = \"web\"\n[[pool.server]]\nname = \"w1\"\naddress = \"{backend_addr}\"\n",
        cert_file.display(),
        key_file.display()
    );
    let (_daemon, addr) = start(&config, "tls", "https", Some("web"));
    let port = addr.port();
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(&cert_file)
        .args(["--resolve", &format!("www.tenbin.test:{port}:127.0.0.1")])
        .arg(format!("https://www.tenbin.test:{port}/"))
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "proto https",
        "verified TLS to tenbin, X-Forwarded-Proto: https to the server ({})",
        String::from_utf8_lossy(&out.stderr)
    );
}

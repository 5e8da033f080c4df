//! The admin API of a running `tenbin run`: a datacenter's load pushed over HTTP moves GSLB
//! answers away from it once it is over capacity; bad reports are refused.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{dig, example, Daemon};
use tenbin_testkit::skip;

/// One HTTP/1.1 request to the admin API (which is listening: the daemon logged it); returns
/// the status code.
fn admin(addr: SocketAddr, method: &str, path: &str, body: &str) -> u16 {
    let mut c = TcpStream::connect(addr).expect("admin API listens");
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        c,
        "{method} {path} HTTP/1.1\r\nhost: admin\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    c.read_to_string(&mut resp).expect("an admin response");
    resp.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[test]
fn pushed_load_moves_answers_and_bad_reports_are_refused() {
    if !skip::need_tools(&["dig"]) {
        return;
    }
    let config = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\n\n{}",
        example("gslb-dns.toml").replace("127.0.0.1:5353", "127.0.0.1:0")
    );
    let daemon = Daemon::start(&config, "admin");
    let (dns, admin_addr) = (daemon.bound("dns", None), daemon.bound("admin", None));
    assert_eq!(admin(admin_addr, "GET", "/healthz", ""), 200);

    let fra = |a: &str| !a.is_empty() && a.lines().all(|l| l.starts_with("198.51.100."));
    let before: Vec<String> = (0..10).map(|_| dig(dns, "www.example.test")).collect();
    assert!(
        before.iter().all(|a| fra(a)),
        "fra answers while it has capacity: {before:?}"
    );

    assert_eq!(
        admin(admin_addr, "PUT", "/dns/datacenters/atlantis/load", "5"),
        404
    );
    assert_eq!(
        admin(admin_addr, "PUT", "/dns/datacenters/fra/load", "lots"),
        400
    );
    assert_eq!(
        admin(admin_addr, "PUT", "/dns/datacenters/fra/load", "-1"),
        400
    );
    assert_eq!(
        admin(admin_addr, "GET", "/dns/datacenters/fra/load", ""),
        405
    );
    assert_eq!(
        admin(admin_addr, "PUT", "/dns/datacenters/FRA/load", "1e9"),
        204
    );

    // fra now keeps about capacity/load = 1e-5 of its share: answers move elsewhere.
    daemon.wait_for("an overloaded fra shedding its clients", || {
        let a = dig(dns, "www.example.test");
        (!a.is_empty() && !fra(&a)).then_some(())
    });
}

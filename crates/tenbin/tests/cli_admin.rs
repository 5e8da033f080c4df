//! The admin API of a running `tenbin run`: a datacenter's load pushed over HTTP moves GSLB
//! answers away from it once it is over capacity; bad reports are refused.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::{admin_request, dig, free_port, have_dig, Daemon};

/// One request to the admin API; the status code.
fn admin(port: u16, method: &str, path: &str, body: &str) -> u16 {
    admin_request(SocketAddr::from(([127, 0, 0, 1], port)), method, path, body).0
}

#[test]
fn pushed_load_moves_answers_and_bad_reports_are_refused() {
    if !have_dig() {
        println!("skipped: needs dig (Debian dnsutils; scripts/install-deps installs it)");
        return;
    }
    let (dns_port, admin_port) = (free_port(), free_port());
    let config = format!(
        "[admin]\nlisten = \"127.0.0.1:{admin_port}\"\n\n{}",
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/gslb-dns.toml")
        )
        .unwrap()
        .replace("127.0.0.1:5353", &format!("127.0.0.1:{dns_port}"))
    );
    let dir = std::env::temp_dir().join(format!("tenbin-admin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tenbin.toml");
    std::fs::write(&file, config).unwrap();
    let _daemon = Daemon::run(&file);
    assert_eq!(admin(admin_port, "GET", "/healthz", ""), 200);
    std::fs::remove_dir_all(&dir).ok();

    let fra = |a: &str| !a.is_empty() && a.lines().all(|l| l.starts_with("198.51.100."));
    let before: Vec<String> = (0..10).map(|_| dig(dns_port, "www.example.test")).collect();
    assert!(
        before.iter().all(|a| fra(a)),
        "fra answers while it has capacity: {before:?}"
    );

    assert_eq!(
        admin(admin_port, "PUT", "/dns/datacenters/atlantis/load", "5"),
        404
    );
    assert_eq!(
        admin(admin_port, "PUT", "/dns/datacenters/fra/load", "lots"),
        400
    );
    assert_eq!(
        admin(admin_port, "PUT", "/dns/datacenters/fra/load", "-1"),
        400
    );
    assert_eq!(
        admin(admin_port, "GET", "/dns/datacenters/fra/load", ""),
        405
    );
    assert_eq!(
        admin(admin_port, "PUT", "/dns/datacenters/FRA/load", "1e9"),
        204
    );

    // fra now keeps about capacity/load = 1e-5 of its share: answers move elsewhere.
    let mut moved = None;
    for _ in 0..50 {
        let a = dig(dns_port, "www.example.test");
        if !a.is_empty() && !fra(&a) {
            moved = Some(a);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        moved.is_some(),
        "an overloaded fra sheds its clients to other datacenters"
    );
}

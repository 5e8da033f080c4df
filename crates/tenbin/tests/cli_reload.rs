//! `kill -HUP` on `tenbin run`: a changed `[dns]` (zone data, an operator's datacenter override)
//! is served without a restart, and a broken file changes nothing.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{dig, free_port, have_dig, Daemon};

/// Polls `dig` until it answers `want` (bounded), returning the last answer.
fn wait_for(port: u16, name: &str, want: &str) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        last = dig(port, name);
        if last == want {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    last
}

fn hup(daemon: &Daemon) {
    let ok = Command::new("kill")
        .args(["-HUP", &daemon.0.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -HUP");
}

#[test]
fn sighup_reloads_dns_and_a_broken_file_changes_nothing() {
    if !have_dig() {
        println!("skipped: needs dig (Debian dnsutils; scripts/install-deps installs it)");
        return;
    }
    let port = free_port();
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/gslb-dns.toml"),
    )
    .unwrap()
    .replace("127.0.0.1:5353", &format!("127.0.0.1:{port}"));
    assert!(example.contains("data = \"192.0.2.25\""));
    let dir = std::env::temp_dir().join(format!("tenbin-reload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tenbin.toml");
    std::fs::write(&file, &example).unwrap();
    let daemon = Daemon::run(&file);
    assert_eq!(
        wait_for(port, "mail.example.test", "192.0.2.25"),
        "192.0.2.25"
    );

    std::fs::write(&file, example.replace("192.0.2.25", "192.0.2.26")).unwrap();
    hup(&daemon);
    let reloaded = wait_for(port, "mail.example.test", "192.0.2.26");

    // The operator takes fra out: www is answered from another datacenter.
    let fra_down = example.replace("192.0.2.25", "192.0.2.26").replacen(
        "name = \"fra\"",
        "name = \"fra\"\nadmin = \"force-down\"",
        1,
    );
    std::fs::write(&file, &fra_down).unwrap();
    hup(&daemon);
    let mut www = dig(port, "www.example.test");
    for _ in 0..100 {
        if !www.is_empty() && !www.contains("198.51.100.") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        www = dig(port, "www.example.test");
    }

    std::fs::write(&file, "[dns]\nbogus = 1\n").unwrap();
    hup(&daemon);
    // Give the daemon the same bounded chance to (wrongly) drop the zone.
    let mut after_broken = String::new();
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(100));
        after_broken = dig(port, "mail.example.test");
    }
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(reloaded, "192.0.2.26", "the new zone data is served");
    assert_eq!(
        after_broken, "192.0.2.26",
        "a broken file keeps the running config"
    );
}

//! `tenbin mux run -c FILE --metrics ADDR` in a network namespace of its own: it attaches to
//! the interface, serves the counters of its configured VIPs, applies an edit of the file
//! live, keeps running on a broken edit and on SIGHUP, and detaches and exits 0 on SIGTERM.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use xdp_lab::{in_ns, Lab, Tenbin};

mod xdp_lab;

const METRICS: &str = "127.0.0.1:9464";

fn config(extra_vip: bool, mac: &str) -> String {
    let mut text = format!(
        r#"
[mux]
interface = "eth0"
[[mux.vip]]
address = "10.0.0.1"
port = 80
protocol = "tcp"
forward = "ipip"
[[mux.vip.backend]]
address = "10.1.0.1"
mac = "{mac}"
"#
    );
    if extra_vip {
        text.push_str(
            r#"
[[mux.vip]]
address = "10.0.0.2"
port = 53
protocol = "udp"
forward = "gre"
[[mux.vip.backend]]
address = "10.1.0.2"
mac = "02:be:00:00:00:02"
"#,
        );
    }
    text
}

/// The metrics text, once the endpoint answers (bounded).
fn metrics(ns: &str, log: &std::path::Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let got = in_ns(ns, || -> std::io::Result<String> {
            let mut c = TcpStream::connect(METRICS)?;
            c.set_read_timeout(Some(Duration::from_secs(5)))?;
            c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")?;
            let mut s = String::new();
            c.read_to_string(&mut s)?;
            Ok(s)
        });
        match got {
            Ok(s) if s.starts_with("HTTP/1.1 200") => return s,
            // Not listening yet: the daemon is still starting.
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    panic!(
        "no metrics; log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

/// Metrics until `ok` holds (bounded).
fn metrics_until(ns: &str, log: &std::path::Path, what: &str, ok: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if ok(&metrics(ns, log)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "metrics never showed {what}; log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

fn xdp_on_eth0(ns: &str) -> bool {
    let out = Command::new("ip")
        .args(["-n", ns, "link", "show", "eth0"])
        .output()
        .expect("ip");
    String::from_utf8_lossy(&out.stdout).contains("xdp")
}

#[test]
fn mux_run_serves_metrics_applies_edits_and_detaches_on_sigterm() {
    if !tenbin_testkit::skip::need_root("network namespaces, XDP")
        || !tenbin_testkit::skip::need_tools(&["ip"])
    {
        return;
    }
    let lab = Lab::new("tbmx");
    let ns = lab.0.clone();
    let dir = std::env::temp_dir().join(format!("tenbin-mux-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("mux.toml");
    let log = dir.join("mux.log");
    let write = |text: &str| {
        let tmp = dir.join("mux.toml.new");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &file).unwrap();
    };
    write(&config(false, "02:be:00:00:00:01"));
    let mut mux = Tenbin::start(&ns, &["mux", "run", "--metrics", METRICS], &file, &log);

    let text = metrics(&ns, &log);
    assert!(
        text.contains("tenbin_mux_packets_total{verdict=\"rx\"}"),
        "{text}"
    );
    assert!(text.contains("vip=\"10.0.0.1:80/tcp\""), "{text}");
    assert!(!text.contains("10.0.0.2"), "{text}");
    assert!(xdp_on_eth0(&ns), "the program is attached");

    write(&config(true, "02:be:00:00:00:01"));
    metrics_until(&ns, &log, "the VIP the edit added", |t| {
        t.contains("vip=\"10.0.0.2:53/udp\"") && t.contains("backend=\"10.1.0.2\"")
    });

    // A broken edit is refused and changes nothing; SIGHUP re-reads the same broken file.
    write(&config(false, "not-a-mac"));
    let pid = nix::unistd::Pid::from_raw(i32::try_from(mux.0.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("config change refused")
    {
        assert!(
            Instant::now() < deadline,
            "the broken edit was never refused"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = metrics(&ns, &log);
    assert!(text.contains("vip=\"10.0.0.2:53/udp\""), "{text}");

    let exit = mux.terminate().expect("the mux stops on SIGTERM");
    assert!(exit.success(), "exit status {exit}");
    assert!(!xdp_on_eth0(&ns), "the program is detached");
    let _ = std::fs::remove_dir_all(&dir);
}

//! `kill -HUP` on `tenbin run`: a changed `[dns]` (zone data, an operator's datacenter override)
//! is served without a restart, and a broken file changes nothing. Each step waits for the
//! daemon to log that it handled the signal, then asks once.

mod common;

use common::{dig, example, Daemon};
use tenbin_testkit::skip;

#[test]
fn sighup_reloads_dns_and_a_broken_file_changes_nothing() {
    if !skip::need_tools(&["dig"]) {
        return;
    }
    let example = example("gslb-dns.toml").replace("127.0.0.1:5353", "127.0.0.1:0");
    assert!(example.contains("data = \"192.0.2.25\""));
    let daemon = Daemon::start(&example, "reload");
    let dns = daemon.bound("dns", None);
    assert_eq!(dig(dns, "mail.example.test"), "192.0.2.25");
    let fra = |a: &str| !a.is_empty() && a.lines().all(|l| l.starts_with("198.51.100."));
    let www = dig(dns, "www.example.test");
    assert!(fra(&www), "fra answers www before the override: {www:?}");

    let changed = example.replace("192.0.2.25", "192.0.2.26");
    std::fs::write(&daemon.config, &changed).unwrap();
    daemon.hup();
    daemon.wait_events("applied", 1);
    assert_eq!(
        dig(dns, "mail.example.test"),
        "192.0.2.26",
        "the new zone data is served"
    );

    // The operator takes fra out: www is answered from another datacenter.
    let fra_down = changed.replacen(
        "name = \"fra\"",
        "name = \"fra\"\nadmin = \"force-down\"",
        1,
    );
    std::fs::write(&daemon.config, &fra_down).unwrap();
    daemon.hup();
    daemon.wait_events("applied", 2);
    let www = dig(dns, "www.example.test");
    assert!(
        !www.is_empty() && !www.contains("198.51.100."),
        "a forced-down fra is not answered: {www:?}"
    );

    std::fs::write(&daemon.config, "[dns]\nbogus = 1\n").unwrap();
    daemon.hup();
    daemon.wait_events("apply refused", 1);
    assert_eq!(
        dig(dns, "mail.example.test"),
        "192.0.2.26",
        "a broken file keeps the running config"
    );
    assert_eq!(daemon.events("applied").len(), 2);
}

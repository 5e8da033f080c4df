//! Interop with Debian's keepalived 2.2.7 (root): tenbin as master with keepalived as backup
//! and the other way round, in each checksum keepalived speaks: the IPv4 pseudo-header
//! (multicast, and unicast) and its `old_unicast_checksum` (unicast, the group address in the
//! pseudo-header). keepalived cannot send or accept IPv4 VRRPv3 sums without a pseudo-header
//! (tenbin's `rfc5798` mode), so that mode is covered by the codec tests only. A backup that
//! dropped the other's adverts would become master too: each test checks it does not, then
//! stops the master gracefully and checks the VIP and HTTP move.

mod vrrp_support;

use std::time::Duration;

use vrrp_support::{can_run, node_config, Lab};

const S: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Multicast, checksum over the IPv4 pseudo-header (keepalived's default).
    Multicast,
    /// Unicast, the same checksum.
    Unicast,
    /// Unicast with keepalived's `old_unicast_checksum`.
    UnicastOld,
}

fn keepalived_instance(priority: u8, me: &str, peer: &str, mode: Mode) -> String {
    let mut s = format!(
        " virtual_router_id 51\n priority {priority}\n advert_int 0.1\n state BACKUP\n \
         virtual_ipaddress {{\n  10.77.0.100/24\n }}\n"
    );
    if mode != Mode::Multicast {
        s += &format!(" unicast_src_ip {me}\n unicast_peer {{\n  {peer}\n }}\n");
    }
    if mode == Mode::UnicastOld {
        s += " old_unicast_checksum\n";
    }
    s
}

fn tenbin_extra(peer: &str, mode: Mode) -> String {
    match mode {
        Mode::Multicast => "checksum = \"keepalived\"".into(),
        Mode::Unicast => format!("checksum = \"keepalived\"\nunicast_peers = [\"{peer}\"]"),
        Mode::UnicastOld => {
            format!("checksum = \"keepalived-old-unicast\"\nunicast_peers = [\"{peer}\"]")
        }
    }
}

fn tenbin_master_keepalived_backup(tag: &str, mode: Mode) {
    if !can_run(&["keepalived"]) {
        return;
    }
    let mut lab = Lab::new(tag);
    let n = lab.notify_script();
    lab.http_server("a");
    lab.http_server("b");
    lab.tenbin(
        "a",
        &node_config(&n, 200, "100ms", &tenbin_extra("10.77.0.2", mode)),
    );
    lab.wait_state("a", "MASTER", 10 * S);
    lab.keepalived(
        "b",
        &keepalived_instance(100, "10.77.0.2", "10.77.0.1", mode),
    );
    lab.wait_state("b", "BACKUP", 10 * S);
    // keepalived's master-down interval here is 0.36 s: five of them without a takeover
    // means it accepts tenbin's adverts.
    lab.never(
        "keepalived took over from a live tenbin master",
        2 * S,
        |l| l.states("b").iter().any(|s| s == "MASTER"),
    );
    lab.wait_http_from("a", 10 * S);
    lab.stop("a");
    lab.wait_state("b", "MASTER", 10 * S);
    lab.wait("keepalived to add the VIP", 10 * S, |l| l.has_vip("b"));
    lab.wait_http_from("b", 10 * S);
}

fn keepalived_master_tenbin_backup(tag: &str, mode: Mode) {
    if !can_run(&["keepalived"]) {
        return;
    }
    let mut lab = Lab::new(tag);
    let n = lab.notify_script();
    lab.http_server("a");
    lab.http_server("b");
    lab.keepalived(
        "a",
        &keepalived_instance(200, "10.77.0.1", "10.77.0.2", mode),
    );
    lab.wait_state("a", "MASTER", 10 * S);
    lab.wait("keepalived to add the VIP", 10 * S, |l| l.has_vip("a"));
    lab.tenbin(
        "b",
        &node_config(&n, 100, "100ms", &tenbin_extra("10.77.0.1", mode)),
    );
    lab.wait_state("b", "BACKUP", 10 * S);
    lab.never(
        "tenbin took over from a live keepalived master",
        2 * S,
        |l| l.states("b").iter().any(|s| s == "MASTER"),
    );
    lab.wait_http_from("a", 10 * S);
    lab.stop("a");
    lab.wait_state("b", "MASTER", 10 * S);
    lab.wait_http_from("b", 10 * S);
    lab.stop("b");
    let log = lab.log("b");
    assert!(log.contains("dropped_checksum: 0,"), "{log}");
    assert!(!log.contains("received: 0,"), "{log}");
    assert!(log.contains("priority_zero_received: 1,"), "{log}");
}

#[test]
fn tenbin_master_keepalived_backup_multicast_ipv4_pseudo_header() {
    tenbin_master_keepalived_backup("kmm", Mode::Multicast);
}

#[test]
fn tenbin_master_keepalived_backup_unicast_ipv4_pseudo_header() {
    tenbin_master_keepalived_backup("kmu", Mode::Unicast);
}

#[test]
fn tenbin_master_keepalived_backup_unicast_old_unicast_checksum() {
    tenbin_master_keepalived_backup("kmo", Mode::UnicastOld);
}

#[test]
fn keepalived_master_tenbin_backup_multicast_ipv4_pseudo_header() {
    keepalived_master_tenbin_backup("kbm", Mode::Multicast);
}

#[test]
fn keepalived_master_tenbin_backup_unicast_ipv4_pseudo_header() {
    keepalived_master_tenbin_backup("kbu", Mode::Unicast);
}

#[test]
fn keepalived_master_tenbin_backup_unicast_old_unicast_checksum() {
    keepalived_master_tenbin_backup("kbo", Mode::UnicastOld);
}

/// The control: adverts without the pseudo-header (tenbin's `rfc5798` mode) are dropped by
/// keepalived, which then takes over beside the tenbin master. The modes above are what
/// keeps that from happening.
#[test]
fn keepalived_ignores_adverts_checksummed_without_the_pseudo_header() {
    if !can_run(&["keepalived"]) {
        return;
    }
    let mut lab = Lab::new("kno");
    let n = lab.notify_script();
    lab.tenbin(
        "a",
        &node_config(&n, 200, "100ms", "checksum = \"rfc5798\""),
    );
    lab.wait_state("a", "MASTER", 10 * S);
    lab.keepalived(
        "b",
        &keepalived_instance(100, "10.77.0.2", "10.77.0.1", Mode::Multicast),
    );
    lab.wait_state("b", "MASTER", 10 * S);
}

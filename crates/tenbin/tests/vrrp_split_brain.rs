//! Split brain (root): adverts lost one way, a switch port whose link goes down, and a dead
//! switch port that keeps its link. In each the isolated or deaf backup never owns the VIP
//! (an `ip monitor address` in its namespace records every address it ever added), the
//! master keeps serving HTTP through the VIP, and the backup recovers when the fault is
//! repaired. Each at 1 s and at 0.1 s adverts.

mod vrrp_support;

use std::time::Duration;

use vrrp_support::{can_run, node_config, Lab};

const S: Duration = Duration::from_secs(1);
const PROBE: &str = "probe = [\"10.77.0.3\"]";

/// Master-down interval of the backup (priority 100) in milliseconds.
fn down_ms(interval_ms: u64) -> u64 {
    3 * interval_ms + 156 * interval_ms / 256
}

fn pair(tag: &str, interval_ms: u64) -> Lab {
    let mut lab = Lab::new(tag);
    let n = lab.notify_script();
    let interval = format!("{interval_ms}ms");
    lab.http_server("a");
    lab.http_server("b");
    lab.tenbin("a", &node_config(&n, 200, &interval, PROBE));
    lab.wait_state("a", "MASTER", 10 * S);
    lab.tenbin("b", &node_config(&n, 100, &interval, PROBE));
    lab.wait_state("b", "BACKUP", 10 * S);
    lab.monitor_addresses("b");
    lab.wait_http_from("a", 10 * S);
    lab
}

fn never_master(lab: &Lab, window: Duration) {
    lab.never("the cut-off backup became master", window, |l| {
        l.states("b").iter().any(|s| s == "MASTER")
    });
    assert!(!lab.ever_had_vip("b"), "the VIP was added on b");
}

fn one_way_advert_loss(tag: &str, interval_ms: u64) {
    if !can_run(&[]) {
        return;
    }
    let lab = pair(tag, interval_ms);
    lab.drop_vrrp_to("port-b");
    // b stops hearing a, probes, finds a answering for the VIP, and stays backup: wait for
    // three such refusals, then keep watching a few more master-down intervals.
    let refusals = |l: &Lab| {
        l.log("b")
            .matches("a VIP answers from another host")
            .count()
    };
    lab.wait(
        "three refused promotions",
        Duration::from_millis(8 * down_ms(interval_ms)) + 10 * S,
        |l| refusals(l) >= 3,
    );
    never_master(&lab, Duration::from_millis(3 * down_ms(interval_ms)));
    assert!(lab.has_vip("a"));
    lab.wait_http_from("a", 5 * S);
    assert_eq!(lab.states("b").last().map(String::as_str), Some("BACKUP"));
}

fn switch_port_link_down(tag: &str, interval_ms: u64) {
    if !can_run(&[]) {
        return;
    }
    let lab = pair(tag, interval_ms);
    lab.port_down("port-b");
    lab.wait_state("b", "FAULT", 10 * S);
    never_master(&lab, Duration::from_millis(3 * down_ms(interval_ms)));
    lab.wait_http_from("a", 5 * S);
    lab.port_up("port-b");
    lab.wait_state("b", "BACKUP", 10 * S);
    never_master(&lab, Duration::from_millis(2 * down_ms(interval_ms)));
}

fn dead_switch_port(tag: &str, interval_ms: u64) {
    if !can_run(&[]) {
        return;
    }
    let lab = pair(tag, interval_ms);
    // Link stays up: only the probe can tell b it is cut off.
    lab.silence_port("port-b");
    lab.wait_state(
        "b",
        "FAULT",
        Duration::from_millis(2 * down_ms(interval_ms)) + 10 * S,
    );
    assert!(lab.log("b").contains("isolated"), "{}", lab.log("b"));
    never_master(&lab, Duration::from_millis(3 * down_ms(interval_ms)));
    lab.wait_http_from("a", 5 * S);
    lab.unsilence();
    lab.wait_state("b", "BACKUP", 10 * S);
    never_master(&lab, Duration::from_millis(2 * down_ms(interval_ms)));
}

#[test]
fn one_way_advert_loss_at_1s_the_deaf_backup_never_takes_the_vip() {
    one_way_advert_loss("sw1", 1000);
}

#[test]
fn one_way_advert_loss_at_100ms_the_deaf_backup_never_takes_the_vip() {
    one_way_advert_loss("sw2", 100);
}

#[test]
fn switch_port_link_down_at_1s_the_cut_node_goes_fault() {
    switch_port_link_down("sl1", 1000);
}

#[test]
fn switch_port_link_down_at_100ms_the_cut_node_goes_fault() {
    switch_port_link_down("sl2", 100);
}

#[test]
fn dead_switch_port_at_1s_the_isolated_node_goes_fault() {
    dead_switch_port("sd1", 1000);
}

#[test]
fn dead_switch_port_at_100ms_the_isolated_node_goes_fault() {
    dead_switch_port("sd2", 100);
}

/// The control: without the probe (keepalived's behaviour) the deaf backup does take the
/// VIP beside the master, and the address monitor sees it. The tests above would catch it.
#[test]
fn without_the_probe_one_way_advert_loss_splits_the_brain() {
    if !can_run(&[]) {
        return;
    }
    let mut lab = Lab::new("swc");
    let n = lab.notify_script();
    lab.tenbin("a", &node_config(&n, 200, "100ms", ""));
    lab.wait_state("a", "MASTER", 10 * S);
    lab.tenbin("b", &node_config(&n, 100, "100ms", ""));
    lab.wait_state("b", "BACKUP", 10 * S);
    lab.monitor_addresses("b");
    lab.drop_vrrp_to("port-b");
    lab.wait_state("b", "MASTER", 10 * S);
    lab.wait("the monitor to record the VIP on b", 5 * S, |l| {
        l.ever_had_vip("b")
    });
    assert!(lab.has_vip("a") && lab.has_vip("b"), "both own the VIP");
}

//! Two nodes and a client on a bridge (root): the VIP moves on kill -9, link loss and
//! graceful stop, preemption and nopreemption behave, and HTTP through the VIP is answered
//! by the new master each time. The nodes run `tenbin vrrp` (the role alone, HTTP answered
//! by a responder on port 80), and for kill -9 and graceful stop also `tenbin run` (the
//! product: `[vrrp]` beside the proxy tier, HTTP through the node's own proxy).

mod vrrp_support;

use std::time::Duration;

use vrrp_support::{can_run, node_config, run_config, Lab, BACKEND_PORT};

const S: Duration = Duration::from_secs(1);

/// a (priority 200) master, b (100) backup, both with an HTTP responder; waits until HTTP
/// through the VIP reaches a.
fn pair(tag: &str, interval: &str, extra_a: &str, extra_b: &str) -> Lab {
    pair_of(false, tag, interval, extra_a, extra_b)
}

/// [`pair`] with `tenbin run` nodes: each proxies port 80 to its own responder.
fn run_pair(tag: &str, interval: &str, extra_a: &str, extra_b: &str) -> Lab {
    pair_of(true, tag, interval, extra_a, extra_b)
}

fn pair_of(run: bool, tag: &str, interval: &str, extra_a: &str, extra_b: &str) -> Lab {
    let mut lab = Lab::new(tag);
    let n = lab.notify_script();
    for (h, prio, extra) in [("a", 200, extra_a), ("b", 100, extra_b)] {
        if run {
            lab.http_server_on(h, BACKEND_PORT);
            lab.tenbin_run(h, &run_config(&n, prio, interval, extra));
        } else {
            lab.http_server(h);
            lab.tenbin(h, &node_config(&n, prio, interval, extra));
        }
        lab.wait_state(h, if h == "a" { "MASTER" } else { "BACKUP" }, 10 * S);
    }
    lab.wait_http_from("a", 10 * S);
    lab
}

/// kill -9 of master a: its guard removes the VIP and sends the priority 0 advert a could
/// not, b takes over and answers HTTP.
fn kill_9_case(run: bool, tag: &str) -> Lab {
    let mut lab = pair_of(run, tag, "100ms", "", "probe = [\"10.77.0.3\"]");
    lab.kill9("a");
    lab.wait("the guard to remove the killed node's VIP", 10 * S, |l| {
        !l.has_vip("a")
    });
    lab.wait_state("b", "MASTER", 10 * S);
    assert!(lab.has_vip("b"));
    lab.wait_http_from("b", 10 * S);
    lab.stop("b");
    assert!(
        lab.log("b").contains("priority_zero_received: 1"),
        "the guard resigned for the killed master: {}",
        lab.log("b")
    );
    lab
}

#[test]
fn tenbin_run_kill_9_of_the_master_the_backup_node_takes_over_and_proxies() {
    if !can_run(&[]) {
        return;
    }
    kill_9_case(true, "rk");
}

#[test]
fn tenbin_run_graceful_stop_hands_over_before_the_listeners_close() {
    if !can_run(&[]) {
        return;
    }
    let mut lab = run_pair("rg", "1s", "", "");
    lab.stop("a");
    assert!(!lab.has_vip("a"), "a released the VIP before exiting");
    lab.wait_state("b", "MASTER", 10 * S);
    lab.wait_http_from("b", 10 * S);
    let log = lab.log("a");
    assert!(log.contains("priority_zero_sent: 1"), "{log}");
    // a kept the VIP until b's first advert as master arrived, and only then closed its
    // listeners: the order that leaves no moment without a node answering on the VIP.
    let released = log
        .find("VIPs released after the handover")
        .unwrap_or_else(|| panic!("no handover in a's log: {log}"));
    let line = log[released..].lines().next().unwrap_or_default();
    assert!(line.contains("successor_heard=true"), "{log}");
    let draining = log.find("shutting down").expect("a drained");
    assert!(
        released < draining,
        "the VIP went before the listeners: {log}"
    );
}

#[test]
fn kill_9_of_the_master_its_guard_removes_the_vip_and_the_backup_takes_over() {
    if !can_run(&[]) {
        return;
    }
    let lab = kill_9_case(false, "vk");
    assert!(
        !lab.log("b").contains("a VIP answers from another host"),
        "the VIP was gone before b's probe"
    );
}

#[test]
fn kill_9_of_the_master_and_its_guard_the_vip_lifetime_ends_and_the_backup_takes_over() {
    if !can_run(&[]) {
        return;
    }
    let mut lab = pair("vj", "100ms", "", "probe = [\"10.77.0.3\"]");
    lab.kill9_with_children("a");
    // Nobody removes a's VIP now: it lives out vip_lifetime (1 s) while b's probe sees it
    // answered and refuses, then b takes over.
    lab.wait_state("b", "MASTER", 10 * S);
    assert!(!lab.has_vip("a"), "the VIP expired on the killed node");
    assert!(lab.log("b").contains("a VIP answers from another host"));
    lab.wait_http_from("b", 10 * S);
}

#[test]
fn link_down_puts_the_master_in_fault_and_the_backup_takes_over() {
    if !can_run(&[]) {
        return;
    }
    let lab = pair("vl", "100ms", "", "");
    lab.port_down("port-a");
    lab.wait_state("a", "FAULT", 10 * S);
    lab.wait_state("b", "MASTER", 10 * S);
    assert!(!lab.has_vip("a"), "a released the VIP in Fault");
    lab.wait_http_from("b", 10 * S);
    // Link back: a returns as backup, then preempts b.
    lab.port_up("port-a");
    lab.wait_state("a", "MASTER", 10 * S);
    lab.wait_state("b", "BACKUP", 10 * S);
    lab.wait_http_from("a", 10 * S);
}

#[test]
fn graceful_stop_hands_over_with_priority_zero() {
    if !can_run(&[]) {
        return;
    }
    let mut lab = pair("vg", "1s", "", "");
    lab.stop("a");
    assert!(!lab.has_vip("a"), "a released the VIP before exiting");
    // At 1 s adverts b would need 3.6 s without the priority 0 advert; with it, skew time.
    lab.wait_state("b", "MASTER", 10 * S);
    lab.wait_http_from("b", 10 * S);
    assert!(
        lab.log("a").contains("priority_zero_sent: 1"),
        "{}",
        lab.log("a")
    );
    lab.stop("b");
    assert!(
        lab.log("b").contains("priority_zero_received: 1"),
        "{}",
        lab.log("b")
    );
}

#[test]
fn preempt_a_higher_priority_node_that_starts_takes_the_vip() {
    if !can_run(&[]) {
        return;
    }
    let mut lab = Lab::new("vp");
    let n = lab.notify_script();
    lab.http_server("a");
    lab.http_server("b");
    lab.tenbin("b", &node_config(&n, 100, "100ms", ""));
    lab.wait_state("b", "MASTER", 10 * S);
    lab.wait_http_from("b", 10 * S);
    lab.tenbin(
        "a",
        &node_config(&n, 200, "100ms", "probe = [\"10.77.0.3\"]"),
    );
    lab.wait_state("a", "MASTER", 10 * S);
    lab.wait_state("b", "BACKUP", 10 * S);
    assert!(!lab.has_vip("b"));
    lab.wait_http_from("a", 10 * S);
}

#[test]
fn nopreempt_a_higher_priority_node_waits_until_the_master_fails() {
    if !can_run(&[]) {
        return;
    }
    let mut lab = Lab::new("vn");
    let n = lab.notify_script();
    lab.http_server("a");
    lab.http_server("b");
    lab.tenbin("b", &node_config(&n, 100, "100ms", ""));
    lab.wait_state("b", "MASTER", 10 * S);
    lab.tenbin("a", &node_config(&n, 200, "100ms", "preempt = false"));
    lab.wait_state("a", "BACKUP", 10 * S);
    // Ten times the master-down interval (0.33 s): a preempting node would have taken over.
    lab.never("a preempted although preempt = false", 3 * S, |l| {
        l.states("a").iter().any(|s| s == "MASTER")
    });
    lab.wait_http_from("b", 10 * S);
    lab.stop("b");
    lab.wait_state("a", "MASTER", 10 * S);
    lab.wait_http_from("a", 10 * S);
}

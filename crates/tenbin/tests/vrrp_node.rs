//! `[vrrp]` inside `tenbin run` (root): the node's tier health sets the VRRP priority (a
//! failed pool costs its track weight, a node that cannot serve goes to Fault), `[vrrp]`
//! changes apply live where a running router can take them, and the state shows in
//! `GET /api/v1/state` and `tenbin ctl status`.

mod vrrp_support;

use std::time::Duration;

use vrrp_support::{can_run, run_config, Lab, BACKEND_PORT};

const S: Duration = Duration::from_secs(1);

fn state(lab: &Lab, h: &str) -> serde_json::Value {
    let out = lab.ctl(h, &["--json", "status"]);
    serde_json::from_str(&out).unwrap_or(serde_json::Value::Null)
}

fn instance(lab: &Lab, h: &str) -> serde_json::Value {
    state(lab, h)["vrrp"]["instances"][0].clone()
}

#[test]
fn a_failed_pool_lowers_the_priority_and_the_backup_preempts_then_it_comes_back() {
    if !can_run(&[]) {
        return;
    }
    let mut lab = Lab::new("nt");
    let n = lab.notify_script();
    lab.http_server_on("b", BACKEND_PORT);
    let track = "[[vrrp.instance.track]]\nname = \"pool/web\"\nweight = 150\n";
    lab.tenbin_run("a", &run_config(&n, 200, "100ms", track));
    // a's backend is not there yet: its pool is down, so it runs at 200 - 150 = 50.
    lab.wait("a at priority 50 with pool/web down", 10 * S, |l| {
        let i = instance(l, "a");
        i["priority"] == 50 && i["tracked_down"][0] == "pool/web"
    });
    // Alone, a takes the VIP even at 50; only then b starts (the transitions counted below:
    // master, backup once b preempts, master again).
    lab.wait_state("a", "MASTER", 10 * S);
    lab.tenbin_run("b", &run_config(&n, 100, "100ms", ""));
    lab.wait_state("b", "MASTER", 10 * S);
    lab.wait_state("a", "BACKUP", 10 * S);
    lab.wait_http_from("b", 10 * S);
    // a's backend starts: its check passes, a is back at 200 and preempts b.
    lab.http_server_on("a", BACKEND_PORT);
    lab.wait_state("a", "MASTER", 10 * S);
    lab.wait_http_from("a", 10 * S);
    let a = instance(&lab, "a");
    assert_eq!(a["state"], "master", "{a}");
    assert_eq!(a["priority"], 200, "{a}");
    assert_eq!(a["master"], "10.77.0.1", "{a}");
    assert!(a["transitions"].as_u64().unwrap_or(0) >= 3, "{a}");
    let b = instance(&lab, "b");
    assert_eq!(b["state"], "backup", "{b}");
    assert_eq!(b["master"], "10.77.0.1", "{b}");
    assert!(b["adverts_received"].as_u64().unwrap_or(0) > 0, "{b}");
    assert_eq!(b["drops"]["ttl"], 0, "{b}");
    let table = lab.ctl("a", &["status"]);
    let row = table
        .lines()
        .find(|l| l.starts_with("web ") && l.contains("eth0"))
        .unwrap_or_else(|| panic!("no vrrp row: {table}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        &cells[1..6],
        ["eth0", "51", "master", "200", "10.77.0.1"],
        "{table}"
    );
}

#[test]
fn a_node_that_cannot_serve_goes_to_fault_and_releases_the_vip() {
    if !can_run(&[]) {
        return;
    }
    let mut lab = Lab::new("nf");
    let n = lab.notify_script();
    lab.http_server_on("b", BACKEND_PORT);
    // No weight: while the proxy cannot serve (no pool up), Fault.
    let track = "[[vrrp.instance.track]]\nname = \"proxy\"\n";
    lab.tenbin_run("a", &run_config(&n, 200, "100ms", track));
    lab.wait_state("a", "FAULT", 10 * S);
    assert!(!lab.has_vip("a"));
    lab.tenbin_run("b", &run_config(&n, 100, "100ms", ""));
    lab.wait_state("b", "MASTER", 10 * S);
    lab.wait_http_from("b", 10 * S);
    lab.http_server_on("a", BACKEND_PORT);
    lab.wait_state("a", "MASTER", 10 * S);
    lab.wait_http_from("a", 10 * S);
}

#[test]
fn priority_changes_apply_live_and_address_changes_wait_for_a_restart() {
    if !can_run(&[]) {
        return;
    }
    let mut lab = Lab::new("na");
    let n = lab.notify_script();
    for h in ["a", "b"] {
        lab.http_server_on(h, BACKEND_PORT);
    }
    lab.tenbin_run("a", &run_config(&n, 200, "100ms", ""));
    lab.wait_state("a", "MASTER", 10 * S);
    lab.tenbin_run("b", &run_config(&n, 100, "100ms", ""));
    lab.wait_state("b", "BACKUP", 10 * S);
    lab.wait_http_from("a", 10 * S);
    // A live change: a drops to 50, b preempts it.
    let file = lab.config_path("a");
    std::fs::write(&file, run_config(&n, 50, "100ms", "")).expect("rewrite");
    lab.reload("a");
    lab.wait_state("b", "MASTER", 10 * S);
    lab.wait_state("a", "BACKUP", 10 * S);
    lab.wait_http_from("b", 10 * S);
    assert_eq!(instance(&lab, "a")["configured_priority"], 50);
    // A change of the VIPs is left for the next restart: a keeps running as it was.
    let moved = run_config(&n, 50, "100ms", "").replace("10.77.0.100/24", "10.77.0.200/24");
    std::fs::write(&file, moved).expect("rewrite");
    let generation = state(&lab, "a")["generation"].as_u64().unwrap_or(0);
    lab.reload("a");
    lab.wait("a's reload", 10 * S, |l| {
        state(l, "a")["generation"].as_u64().unwrap_or(0) > generation
            || l.log("a").contains("[vrrp] changed (at the next restart)")
    });
    assert!(
        lab.log("a")
            .contains("[vrrp] changed (at the next restart)"),
        "{}",
        lab.log("a")
    );
    assert_eq!(instance(&lab, "a")["state"], "backup");
    lab.wait_http_from("b", 10 * S);
}

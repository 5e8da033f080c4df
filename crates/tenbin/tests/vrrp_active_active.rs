//! Active-active (root): two virtual routers with crossed priorities, so each node is master
//! of one VIP and backup of the other; both VIPs serve HTTP, each fails over to the other
//! node and comes back when its node does.

mod vrrp_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use vrrp_support::{can_run, Lab};

const S: Duration = Duration::from_secs(1);
const VIP1: &str = "10.77.0.100";
const VIP2: &str = "10.77.0.101";

fn config(notify: &str, p1: u8, p2: u8) -> String {
    let inst = |name: &str, vrid: u8, prio: u8, vip: &str| {
        format!(
            "[[vrrp.instance]]\nname = \"{name}\"\ninterface = \"eth0\"\nvrid = {vrid}\n\
             priority = {prio}\ninterval = \"100ms\"\nvips = [\"{vip}/24\"]\nvip_lifetime = \"1s\"\n\
             probe = [\"10.77.0.3\"]\n\n"
        )
    };
    format!(
        "[vrrp]\nnotify = \"{notify}\"\n\n{}{}",
        inst("one", 51, p1, VIP1),
        inst("two", 52, p2, VIP2)
    )
}

/// Waits until HTTP to `vip` is answered by `h` and the VIP sits on `h` only.
fn served_by(lab: &Lab, vip: &str, h: &str) {
    let addr: SocketAddr = format!("{vip}:80").parse().unwrap();
    let want = format!("node-{h}");
    let other = if h == "a" { "b" } else { "a" };
    lab.wait(&format!("{vip} served by {h}"), 10 * S, |l| {
        l.get(addr).as_deref() == Some(want.as_str()) && !l.has_addr(other, vip)
    });
}

fn wait_instance(lab: &Lab, h: &str, inst: &str, state: &str) {
    let end = Instant::now() + 10 * S;
    while Instant::now() < end {
        if lab
            .states_of(h, Some(inst))
            .last()
            .is_some_and(|s| s == state)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{h}/{inst} not {state}: {:?}", lab.states_of(h, Some(inst)));
}

#[test]
fn crossed_priorities_serve_both_vips_and_fail_over_each_way_and_back() {
    if !can_run(&[]) {
        return;
    }
    let mut lab = Lab::new("aa");
    let n = lab.notify_script();
    lab.http_server("a");
    lab.http_server("b");
    lab.tenbin("a", &config(&n, 200, 100));
    lab.tenbin("b", &config(&n, 100, 200));
    wait_instance(&lab, "a", "one", "MASTER");
    wait_instance(&lab, "b", "two", "MASTER");
    served_by(&lab, VIP1, "a");
    served_by(&lab, VIP2, "b");

    // a fails: b serves both; a returns and takes back only its own.
    lab.stop("a");
    wait_instance(&lab, "b", "one", "MASTER");
    served_by(&lab, VIP1, "b");
    served_by(&lab, VIP2, "b");
    lab.tenbin("a", &config(&n, 200, 100));
    wait_instance(&lab, "a", "one", "MASTER");
    wait_instance(&lab, "a", "two", "BACKUP");
    served_by(&lab, VIP1, "a");
    served_by(&lab, VIP2, "b");

    // b fails the hard way: a serves both; b returns and takes back its own.
    lab.kill9("b");
    wait_instance(&lab, "a", "two", "MASTER");
    served_by(&lab, VIP2, "a");
    served_by(&lab, VIP1, "a");
    lab.tenbin("b", &config(&n, 100, 200));
    wait_instance(&lab, "b", "two", "MASTER");
    served_by(&lab, VIP2, "b");
    served_by(&lab, VIP1, "a");
}

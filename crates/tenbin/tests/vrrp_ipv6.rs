//! VRRPv3 over IPv6 (root): adverts to ff02::12 from link-local addresses with hop limit
//! 255, an IPv6 VIP that moves on a graceful stop and on kill -9, and HTTP to it from the
//! client.

mod vrrp_support;

use std::net::SocketAddr;
use std::time::Duration;

use vrrp_support::{can_run, sh, Lab};

const S: Duration = Duration::from_secs(1);
const VIP6: &str = "2001:db8:77::100";

fn config(notify: &str, priority: u8) -> String {
    format!(
        "[vrrp]\nnotify = \"{notify}\"\n\n[[vrrp.instance]]\nname = \"web6\"\ninterface = \"eth0\"\n\
         vrid = 61\npriority = {priority}\ninterval = \"100ms\"\nvips = [\"{VIP6}/64\"]\n\
         vip_lifetime = \"1s\"\n"
    )
}

fn wait_http6(lab: &Lab, h: &str) {
    let want = format!("node-{h}");
    let addr: SocketAddr = format!("[{VIP6}]:80").parse().unwrap();
    lab.wait(
        &format!("HTTP via the IPv6 VIP answered by {h}"),
        10 * S,
        |l| l.get(addr).as_deref() == Some(want.as_str()),
    );
}

#[test]
fn ipv6_vip_moves_on_graceful_stop_and_on_kill_9() {
    if !can_run(&[]) {
        return;
    }
    let mut lab = Lab::new("v6");
    for h in ["a", "b", "c"] {
        sh(&format!(
            "ip netns exec {} sysctl -qw net.ipv6.conf.all.disable_ipv6=0",
            lab.ns(h)
        ));
    }
    sh(&format!(
        "ip -n {} addr add 2001:db8:77::3/64 dev eth0 nodad",
        lab.ns("c")
    ));
    let n = lab.notify_script();
    lab.http_server("a");
    lab.http_server("b");
    // The link-local source address must exist (and be past DAD) before the node starts.
    for h in ["a", "b"] {
        lab.wait("a link-local address", 10 * S, |l| {
            sh(&format!(
                "ip -n {} -6 -o addr show dev eth0 scope link",
                l.ns(h)
            ))
            .contains("fe80")
                && !sh(&format!(
                    "ip -n {} -6 -o addr show dev eth0 tentative",
                    l.ns(h)
                ))
                .contains("fe80")
        });
    }
    lab.tenbin("a", &config(&n, 200));
    lab.wait_state("a", "MASTER", 10 * S);
    lab.tenbin("b", &config(&n, 100));
    lab.wait_state("b", "BACKUP", 10 * S);
    lab.never("b took over from a live IPv6 master", S, |l| {
        l.states("b").iter().any(|s| s == "MASTER")
    });
    wait_http6(&lab, "a");
    lab.stop("a");
    assert!(!lab.has_addr("a", VIP6));
    lab.wait_state("b", "MASTER", 10 * S);
    wait_http6(&lab, "b");
    lab.tenbin("a", &config(&n, 200));
    lab.wait_state("a", "MASTER", 10 * S);
    lab.wait_state("b", "BACKUP", 10 * S);
    wait_http6(&lab, "a");
    lab.kill9("a");
    lab.wait_state("b", "MASTER", 10 * S);
    wait_http6(&lab, "b");
}

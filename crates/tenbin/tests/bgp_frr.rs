//! `tenbin mux run` with `[bgp]` against FRR's bgpd and zebra (Debian `frr`) in network
//! namespaces: three Muxes reach Established, their VIPs become one 3-way multipath route in
//! the router's kernel FIB, and kill -9 of one Mux removes its next hop. Root only.
mod bgp_lab;

use std::time::{Duration, Instant};

use bgp_lab::{mux_config, nexthops, sh, wait_for, Lab, VIP4, VIP6};
use tenbin_testkit::skip::{need_root, need_tools};

const LIMIT: Duration = Duration::from_secs(30);
const ZEBRA: &str = "/usr/lib/frr/zebra";
const BGPD: &str = "/usr/lib/frr/bgpd";

fn bgpd_config(muxes: u8) -> String {
    let mut c = String::from(
        "frr defaults datacenter\nhostname r\nrouter bgp 65000\n bgp router-id 10.88.1.1\n \
         no bgp ebgp-requires-policy\n timers bgp 1 3\n",
    );
    let peers: Vec<String> = (1..=muxes).map(|i| format!("10.88.1{i}.2")).collect();
    for p in &peers {
        c.push_str(&format!(
            " neighbor {p} remote-as 65001\n neighbor {p} timers connect 1\n"
        ));
    }
    c.push_str(" address-family ipv4 unicast\n  maximum-paths 8\n exit-address-family\n");
    c.push_str(" address-family ipv6 unicast\n  maximum-paths 8\n");
    for p in &peers {
        c.push_str(&format!("  neighbor {p} activate\n"));
    }
    c.push_str(" exit-address-family\n");
    c
}

#[test]
fn frr_three_muxes_make_one_ecmp_route_and_kill_9_removes_a_next_hop() {
    if !need_root("network namespaces, XDP, FRR") || !need_tools(&["vtysh", "ip"]) {
        return;
    }
    if !std::path::Path::new(BGPD).exists() {
        return tenbin_testkit::skip::skip("needs FRR's bgpd (scripts/install-deps installs frr)");
    }
    let mut lab = Lab::new("bgf");
    for i in 1..=3 {
        lab.add_mux(i);
    }
    // FRR's daemons run as user frr and keep their sockets under /var/run/frr/<pathspace>.
    let space = lab.prefix().to_string();
    let run = lab.extra_dir(format!("/var/run/frr/{space}").into());
    sh(&format!("chown frr:frr {}", run.display()));
    let zconf = lab.write("zebra.conf", "hostname r\n");
    let bconf = lab.write("bgpd.conf", &bgpd_config(3));
    sh(&format!(
        "chmod 755 {} && chmod 644 {zconf} {bconf}",
        lab.dir.display()
    ));
    let r = lab.router();
    let pid = |d: &str| format!("{}/{d}.pid", run.display());
    lab.spawn(
        "zebra",
        &r,
        &[
            ZEBRA,
            "-N",
            &space,
            "-f",
            &zconf,
            "-i",
            &pid("zebra"),
            "--log",
            "stdout",
        ],
    );
    wait_for("zebra's API socket", LIMIT, || {
        run.join("zserv.api").exists().then_some(())
    });
    lab.spawn(
        "bgpd",
        &r,
        &[
            BGPD,
            "-N",
            &space,
            "-f",
            &bconf,
            "-i",
            &pid("bgpd"),
            "--log",
            "stdout",
        ],
    );
    for i in 1..=3 {
        let conf = lab.write(&format!("mux{i}.toml"), &mux_config(i, "active", 65000));
        let ns = lab.mux(i);
        lab.spawn(
            &format!("mux{i}"),
            &ns,
            &[env!("CARGO_BIN_EXE_tenbin"), "mux", "run", "-c", &conf],
        );
    }
    let vtysh = |cmd: &str| {
        let out = std::process::Command::new("ip")
            .args(["netns", "exec", &r, "vtysh", "-N", &space, "-c", cmd])
            .output()
            .expect("vtysh runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for i in 1..=3 {
        wait_for(&format!("FRR's session with Mux {i}"), LIMIT, || {
            vtysh(&format!("show bgp neighbors 10.88.1{i}.2"))
                .contains("BGP state = Established")
                .then_some(())
        });
    }
    let all = ["10.88.11.2", "10.88.12.2", "10.88.13.2"];
    wait_for("three next hops for the IPv4 VIP", LIMIT, || {
        (nexthops(&r, VIP4, false) == all).then_some(())
    });
    wait_for("three next hops for the IPv6 VIP", LIMIT, || {
        (nexthops(&r, VIP6, true) == ["fd88:11::2", "fd88:12::2", "fd88:13::2"]).then_some(())
    });
    let detail = vtysh(&format!("show bgp ipv4 unicast {VIP4}/32"));
    assert!(detail.contains("multipath"), "{detail}");
    println!("{detail}\n{}", sh(&format!("ip -n {r} route show {VIP4}")));

    let killed = Instant::now();
    lab.signal("mux2", "KILL");
    wait_for("the killed Mux's next hop to go", LIMIT, || {
        (nexthops(&r, VIP4, false) == ["10.88.11.2", "10.88.13.2"]).then_some(())
    });
    println!(
        "kill -9 of one Mux: its next hop left FRR's FIB after {:?}",
        killed.elapsed()
    );
}

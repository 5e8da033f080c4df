//! `tenbin mux run` with `[bgp]` against BIRD 2 (Debian `bird2`) in network namespaces:
//! the session comes up, both VIPs reach BIRD with the configured attributes, a VIP whose
//! backend goes down is withdrawn, SIGTERM withdraws and ceases, and three Muxes with
//! identical attributes become one ECMP route in the router's kernel FIB from which kill -9
//! of one Mux removes its next hop. Root only.
mod bgp_lab;

use std::time::{Duration, Instant};

use bgp_lab::{birdc, mux_config, nexthops, sh, wait_for, Lab, VIP4, VIP6};
use tenbin_testkit::skip::{need_root, need_tools};

const LIMIT: Duration = Duration::from_secs(20);

fn bird_config(muxes: u8) -> String {
    let mut c = String::from(
        r#"
router id 10.88.1.1;
protocol device { scan time 10; }
protocol kernel k4 { ipv4 { import none; export all; }; merge paths yes limit 16; }
protocol kernel k6 { ipv6 { import none; export all; }; merge paths yes limit 16; }
template bgp mux {
  local as 65000; hold time 3; keepalive time 1;
  connect retry time 1; error wait time 1, 5;
  ipv4 { import all; export none; };
  ipv6 { import all; export none; };
}
"#,
    );
    for i in 1..=muxes {
        c.push_str(&format!(
            "protocol bgp m{i} from mux {{ neighbor 10.88.1{i}.2 as 65001; }}\n"
        ));
    }
    c
}

fn start_bird(lab: &mut Lab, muxes: u8) -> String {
    let conf = lab.write("bird.conf", &bird_config(muxes));
    let ctl = lab.path("bird.ctl").display().to_string();
    let r = lab.router();
    lab.spawn("bird", &r, &["bird", "-f", "-c", &conf, "-s", &ctl]);
    wait_for("BIRD's control socket", LIMIT, || {
        std::path::Path::new(&ctl).exists().then_some(())
    });
    ctl
}

fn start_mux(lab: &mut Lab, i: u8, state: &str) -> String {
    let conf = lab.write(&format!("mux{i}.toml"), &mux_config(i, state, 65000));
    let ns = lab.mux(i);
    lab.spawn(
        &format!("mux{i}"),
        &ns,
        &[env!("CARGO_BIN_EXE_tenbin"), "mux", "run", "-c", &conf],
    );
    conf
}

fn ready() -> bool {
    need_root("network namespaces, XDP, BIRD") && need_tools(&["bird", "birdc", "ip"])
}

/// The `show route all` block of one prefix, or None while BIRD does not have it.
fn route_block(lab: &Lab, ctl: &str, prefix: &str) -> Option<String> {
    let out = birdc(lab, ctl, &format!("show route for {prefix} all"));
    out.contains("BGP.origin").then_some(out)
}

#[test]
fn bird_learns_both_vips_with_their_attributes_and_loses_them_on_withdraw_and_sigterm() {
    if !ready() {
        return;
    }
    let mut lab = Lab::new("bgb");
    lab.add_mux(1);
    let ctl = start_bird(&mut lab, 1);
    let conf = start_mux(&mut lab, 1, "active");

    let v4 = wait_for("BIRD to learn the IPv4 VIP", LIMIT, || {
        route_block(&lab, &ctl, VIP4)
    });
    for want in [
        "BGP.origin: IGP",
        "BGP.as_path: 65001",
        "BGP.next_hop: 10.88.11.2",
        "BGP.med: 10",
        "BGP.community: (65001,100)",
        "BGP.large_community: (65001, 1, 2)",
    ] {
        assert!(v4.contains(want), "missing `{want}` in:\n{v4}");
    }
    let v6 = wait_for("BIRD to learn the IPv6 VIP", LIMIT, || {
        route_block(&lab, &ctl, VIP6)
    });
    println!("{v4}{v6}");
    for want in [
        "BGP.as_path: 65001",
        "BGP.next_hop: fd88:11::2",
        "BGP.med: 10",
    ] {
        assert!(v6.contains(want), "missing `{want}` in:\n{v6}");
    }
    assert!(birdc(&lab, &ctl, "show protocols m1").contains("Established"));
    // Installed in the router's kernel table too.
    assert_eq!(nexthops(&lab.router(), VIP4, false), ["10.88.11.2"]);

    // The VIPs' only backend goes down (config edit, applied hot): both are withdrawn
    // while the session stays up.
    std::fs::write(&conf, mux_config(1, "down", 65000)).unwrap();
    wait_for("the withdrawal", LIMIT, || {
        (route_block(&lab, &ctl, VIP4).is_none() && route_block(&lab, &ctl, VIP6).is_none())
            .then_some(())
    });
    assert!(birdc(&lab, &ctl, "show protocols m1").contains("Established"));
    std::fs::write(&conf, mux_config(1, "active", 65000)).unwrap();
    wait_for("the announcement again", LIMIT, || {
        route_block(&lab, &ctl, VIP4)
    });

    // SIGTERM: withdraw, linger, then Cease / Administrative shutdown, exit 0.
    lab.signal("mux1", "TERM");
    wait_for("the withdrawal on SIGTERM", LIMIT, || {
        route_block(&lab, &ctl, VIP4).is_none().then_some(())
    });
    assert!(
        birdc(&lab, &ctl, "show protocols m1").contains("Established"),
        "routes leave before the session does (linger)"
    );
    assert!(lab.wait_exit("mux1", LIMIT), "{}", lab.log("mux1"));
    let proto = wait_for("BIRD to see the Cease", LIMIT, || {
        let p = birdc(&lab, &ctl, "show protocols all m1");
        p.contains("Administrative shutdown").then_some(p)
    });
    assert!(proto.contains("Received"), "{proto}");
}

#[test]
fn three_muxes_make_one_ecmp_route_and_kill_9_removes_a_next_hop() {
    if !ready() {
        return;
    }
    let mut lab = Lab::new("bge");
    for i in 1..=3 {
        lab.add_mux(i);
    }
    let ctl = start_bird(&mut lab, 3);
    for i in 1..=3 {
        start_mux(&mut lab, i, "active");
    }
    let r = lab.router();
    let all = ["10.88.11.2", "10.88.12.2", "10.88.13.2"];
    wait_for("three next hops for the IPv4 VIP", LIMIT, || {
        (nexthops(&r, VIP4, false) == all).then_some(())
    });
    wait_for("three next hops for the IPv6 VIP", LIMIT, || {
        (nexthops(&r, VIP6, true) == ["fd88:11::2", "fd88:12::2", "fd88:13::2"]).then_some(())
    });
    println!("{}", sh(&format!("ip -n {r} route show {VIP4}")));

    let killed = Instant::now();
    lab.signal("mux2", "KILL");
    wait_for("the killed Mux's next hop to go", LIMIT, || {
        (nexthops(&r, VIP4, false) == ["10.88.11.2", "10.88.13.2"]).then_some(())
    });
    println!(
        "kill -9 of one Mux: its next hop left the router's FIB after {:?}",
        killed.elapsed()
    );
    assert!(birdc(&lab, &ctl, "show protocols m1").contains("Established"));
}

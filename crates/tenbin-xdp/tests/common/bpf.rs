//! Helpers of the BPF_PROG_TEST_RUN suites: a programmed Mux over the shared topology.

use std::net::{IpAddr, Ipv4Addr};

use tenbin_core::flow::FlowKey;
use tenbin_testkit::skip;
use tenbin_xdp::abi::stat_index;
use tenbin_xdp::control::{Controller, MaglevRings};
use tenbin_xdp::loader::{Program, RunOutput};
use tenbin_xdp::packet::outer;

use super::*;

pub type Mux = Controller<Program, MaglevRings>;

pub fn mux(test: &str) -> Option<Mux> {
    if !skip::need_root(&format!("BPF_PROG_TEST_RUN in {test}")) {
        return None;
    }
    let mut c = Controller::new(Program::mux(65_536).expect("load mux"), MaglevRings);
    c.apply(&spec()).expect("program maps");
    Some(c)
}

pub fn run(m: &Mux, f: &[u8]) -> RunOutput {
    m.writer().run(f, 1).expect("test run")
}

pub fn stat(m: &Mux, name: &str) -> u64 {
    m.writer().stats().unwrap()[stat_index(name).unwrap()]
}

pub fn client4(port: u16) -> FlowKey {
    FlowKey::v4(
        Ipv4Addr::new(198, 51, 100, 7),
        port,
        Ipv4Addr::new(10, 0, 0, 1),
        80,
        6,
    )
}

pub fn client6(port: u16, vip: &str, vport: u16, proto: u8) -> FlowKey {
    FlowKey::v6(
        "2001:db8:c::7".parse().unwrap(),
        port,
        vip.parse().unwrap(),
        vport,
        proto,
    )
}

/// The backend address a frame was sent to, checked to be one of the VIP's backends.
pub fn backend_addr(m: &Mux, out: &RunOutput) -> (IpAddr, u32) {
    let o = outer(&out.frame).expect("outer headers");
    let id = m
        .backend_id(o.dst)
        .unwrap_or_else(|| panic!("{} is no backend", o.dst));
    (o.dst, id)
}

pub fn ip_of(vk: tenbin_xdp::abi::VipKey) -> IpAddr {
    tenbin_xdp::abi::key_addr(vk.addr, vk.family)
}

pub fn mac_of(m: &Mux, id: u32) -> [u8; 6] {
    for i in 1..=3 {
        if m.backend_id(v4(i)) == Some(id) {
            return mac(i);
        }
        if m.backend_id(v6(u16::from(i))) == Some(id) {
            return mac(10 + i);
        }
    }
    panic!("unknown backend id {id}");
}

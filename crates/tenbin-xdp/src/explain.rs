//! `tenbin mux explain`: where a 5-tuple goes and why. The real program runs the flow's first
//! packet through `BPF_PROG_TEST_RUN` (root), and the in-memory model says which VIP, hash,
//! ring slot and backend led there; the two must agree.

use std::fmt;
use std::net::IpAddr;

use tenbin_core::flow::{FlowAddrs, FlowKey};

use crate::abi::RING_SIZE;
use crate::loader::{LoadError, Program, XDP_DROP, XDP_PASS, XDP_TX};
use crate::packet::{outer, Frame, Outer, SYN};
use crate::writer::{MemWriter, Pick};

/// What the real program did with the flow's first packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub action: u32,
    pub bytes_out: usize,
    pub outer: Option<Outer>,
}

/// The whole answer.
#[derive(Clone, Debug)]
pub struct Explanation {
    pub key: FlowKey,
    pub seed: u32,
    pub model: Pick,
    pub backend: Option<(u32, IpAddr, [u8; 6])>,
    /// `None` when the program could not be run (no root).
    pub run: Option<Run>,
}

impl Explanation {
    /// Does the program's choice match the model's (or, for pass/drop, its verdict)?
    pub fn agrees(&self) -> Option<bool> {
        let run = self.run.as_ref()?;
        Some(match (self.model, self.backend) {
            (Pick::NotVip, _) => run.action == XDP_PASS,
            (Pick::NoRing { .. } | Pick::NoBackend { .. }, _) => run.action == XDP_DROP,
            (Pick::Backend { .. }, Some((_, addr, mac))) => {
                run.action == XDP_TX
                    && run
                        .outer
                        .as_ref()
                        // Encapsulated (4, 41, 47): the outer destination is the backend; L2
                        // DSR leaves the IP header alone and only the MAC says where it went.
                        .is_some_and(|o| {
                            o.dst_mac == mac && (o.dst == addr || !matches!(o.proto, 4 | 41 | 47))
                        })
            }
            (Pick::Backend { .. }, None) => false,
        })
    }
}

/// Explains `key` against the model maps, running `program` (already programmed with the same
/// spec) when given.
pub fn explain(
    model: &MemWriter,
    program: Option<&Program>,
    key: &FlowKey,
) -> Result<Explanation, LoadError> {
    let pick = model.pick(key);
    let backend = match pick {
        Pick::Backend { backend, .. } => model
            .backends
            .get(&backend)
            .map(|r| (backend, crate::abi::key_addr(r.addr, r.family), r.mac)),
        _ => None,
    };
    let run = match program {
        Some(p) => {
            // A TCP flow's first packet is a SYN: it consults the ring like a new connection.
            let frame = Frame::new(*key).flags(SYN).build();
            let out = p.run(&frame, 1)?;
            Some(Run {
                action: out.action,
                bytes_out: out.frame.len(),
                outer: outer(&out.frame),
            })
        }
        None => None,
    };
    Ok(Explanation {
        key: *key,
        seed: model.config.seed,
        model: pick,
        backend,
        run,
    })
}

fn action_name(a: u32) -> &'static str {
    match a {
        XDP_DROP => "XDP_DROP",
        XDP_PASS => "XDP_PASS",
        XDP_TX => "XDP_TX",
        _ => "other",
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = &self.key;
        let proto = match k.proto {
            6 => "tcp".to_string(),
            17 => "udp".to_string(),
            p => format!("proto {p}"),
        };
        let (s, d) = match k.addrs {
            FlowAddrs::V4 { src, dst } => (src.to_string(), dst.to_string()),
            FlowAddrs::V6 { src, dst } => (format!("[{src}]"), format!("[{dst}]")),
        };
        writeln!(
            f,
            "flow     {proto} {s}:{} -> {d}:{}",
            k.src_port, k.dst_port
        )?;
        match self.model {
            Pick::NotVip => writeln!(
                f,
                "vip      none: not a VIP (address, port, protocol), nor an all-ports VIP"
            )?,
            Pick::NoRing { vip_id } => writeln!(
                f,
                "vip      id {vip_id}: no ring (no active backend with weight > 0): dropped"
            )?,
            Pick::NoBackend { vip_id, slot } => writeln!(
                f,
                "vip      id {vip_id}: slot {slot} has no backend record: dropped"
            )?,
            Pick::Backend {
                vip_id,
                hash,
                slot,
                backend,
            } => {
                writeln!(f, "vip      id {vip_id}")?;
                writeln!(
                    f,
                    "hash     {hash:#010x} (seed {}), ring slot {slot} = hash % {RING_SIZE}",
                    self.seed
                )?;
                if let Some((_, addr, mac)) = self.backend {
                    let m: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
                    writeln!(f, "backend  id {backend}: {addr} via {}", m.join(":"))?;
                }
            }
        }
        match &self.run {
            None => writeln!(f, "program  not run (needs root for BPF_PROG_TEST_RUN)")?,
            Some(r) => {
                write!(
                    f,
                    "program  {} ({} bytes out)",
                    action_name(r.action),
                    r.bytes_out
                )?;
                if let (XDP_TX, Some(o)) = (r.action, &r.outer) {
                    write!(f, ": outer {} -> {} proto {}", o.src, o.dst, o.proto)?;
                }
                writeln!(f)?;
                let verdict = if self.agrees() == Some(true) {
                    "yes"
                } else {
                    "NO"
                };
                writeln!(f, "agrees   {verdict} (program vs tenbin-core model)")?;
            }
        }
        Ok(())
    }
}

//! Counters for the metrics registry: lock-free, read as a [`Stats`] snapshot.

use crate::gslb::Outcome;
use crate::state::Transport;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Query types counted by name; everything else is `other`.
pub const QTYPES: [RecordType; 10] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::CNAME,
    RecordType::NS,
    RecordType::SOA,
    RecordType::MX,
    RecordType::TXT,
    RecordType::SRV,
    RecordType::CAA,
    RecordType::ANY,
];
/// Response codes counted by name (BADVERS is 16).
pub const RCODES: [u16; 7] = [0, 1, 2, 3, 4, 5, 16];
/// Policy outcomes, in the order of [`Outcome`].
pub const OUTCOMES: [&str; 5] = [
    "healthy",
    "draining_only",
    "fail_open",
    "nodata",
    "servfail",
];

/// Live counters.
#[derive(Debug, Default)]
pub struct Counters {
    qtype: [AtomicU64; QTYPES.len() + 1],
    rcode: [AtomicU64; RCODES.len() + 1],
    outcome: [AtomicU64; OUTCOMES.len()],
    pub truncated: AtomicU64,
    pub ecs_present: AtomicU64,
    pub ecs_absent: AtomicU64,
    /// Datagrams dropped without an answer (too short, or responses).
    pub dropped: AtomicU64,
    /// Answered queries by transport and path, in [`PATHS`] order.
    paths: [AtomicU64; PATHS.len()],
}

/// (transport, path) pairs: `fast` is the precompiled answer path, `full` the parser.
pub const PATHS: [(&str, &str); 4] = [
    ("udp", "fast"),
    ("udp", "full"),
    ("tcp", "fast"),
    ("tcp", "full"),
];

/// A snapshot of the counters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stats {
    /// (type name, count), `other` last.
    pub qtype: Vec<(String, u64)>,
    /// (rcode number, count), `u16::MAX` for any other.
    pub rcode: Vec<(u16, u64)>,
    pub outcome: Vec<(&'static str, u64)>,
    pub truncated: u64,
    pub ecs_present: u64,
    pub ecs_absent: u64,
    pub dropped: u64,
    /// Answers per datacenter name.
    pub answers_per_dc: Vec<(String, u64)>,
    /// Answered queries per (transport, path), in [`PATHS`] order.
    pub paths: Vec<(&'static str, &'static str, u64)>,
}

impl Counters {
    pub fn query(&self, t: RecordType) {
        let i = QTYPES.iter().position(|q| *q == t).unwrap_or(QTYPES.len());
        self.qtype[i].fetch_add(1, Relaxed);
    }

    pub fn rcode(&self, r: ResponseCode) {
        let v = u16::from(r);
        let i = RCODES.iter().position(|c| *c == v).unwrap_or(RCODES.len());
        self.rcode[i].fetch_add(1, Relaxed);
    }

    pub fn outcome(&self, o: Outcome) {
        let i = match o {
            Outcome::Healthy => 0,
            Outcome::DrainingOnly => 1,
            Outcome::FailOpen => 2,
            Outcome::NoData => 3,
            Outcome::ServFail => 4,
        };
        self.outcome[i].fetch_add(1, Relaxed);
    }

    /// An answer went out over `transport`, from the fast path or the full one.
    pub fn answered(&self, transport: Transport, fast: bool) {
        let i = match transport {
            Transport::Udp => 0,
            Transport::Tcp => 2,
        } + usize::from(!fast);
        self.paths[i].fetch_add(1, Relaxed);
    }

    /// Reads everything; `per_dc` comes from the current state.
    pub fn stats(&self, per_dc: Vec<(String, u64)>) -> Stats {
        let mut qtype: Vec<(String, u64)> = QTYPES
            .iter()
            .zip(&self.qtype)
            .map(|(t, c)| (t.to_string(), c.load(Relaxed)))
            .collect();
        qtype.push(("other".into(), self.qtype[QTYPES.len()].load(Relaxed)));
        let mut rcode: Vec<(u16, u64)> = RCODES
            .iter()
            .zip(&self.rcode)
            .map(|(r, c)| (*r, c.load(Relaxed)))
            .collect();
        rcode.push((u16::MAX, self.rcode[RCODES.len()].load(Relaxed)));
        Stats {
            qtype,
            rcode,
            outcome: OUTCOMES
                .iter()
                .zip(&self.outcome)
                .map(|(o, c)| (*o, c.load(Relaxed)))
                .collect(),
            truncated: self.truncated.load(Relaxed),
            ecs_present: self.ecs_present.load(Relaxed),
            ecs_absent: self.ecs_absent.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
            answers_per_dc: per_dc,
            paths: PATHS
                .iter()
                .zip(&self.paths)
                .map(|((t, p), c)| (*t, *p, c.load(Relaxed)))
                .collect(),
        }
    }
}

impl Stats {
    /// Count for one response code.
    pub fn rcode_count(&self, code: u16) -> u64 {
        self.rcode
            .iter()
            .find(|(r, _)| *r == code)
            .map_or(0, |(_, c)| *c)
    }
}

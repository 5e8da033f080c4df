//! Host-agent health reports to the Muxes (the Ananta manager's role, kept small): a datagram
//! that says which services behind which VIPs pass their local checks, authenticated with
//! HMAC-SHA256 under a key shared by the agents and Muxes, with a sequence number against
//! replay. [`HealthBook`] is the Mux's sans-IO memory of them: a backend whose report fails a
//! service, or whose reports stop, is taken out of that VIP's ring.
//!
//! Wire format (big-endian):
//! `"TBHR" | version 1 | 0 | count u16 | seq u64 | backend (family u8, 16 address bytes) |
//!  count x (family u8, 16 address bytes, port u16, proto u8, healthy u8) | HMAC-SHA256 (32)`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use ring::hmac;

/// The HMAC-SHA256 key reports are signed with (build it with [`key`]).
pub type ReportKey = hmac::Key;

const MAGIC: &[u8; 4] = b"TBHR";
const HEADER: usize = 4 + 2 + 2 + 8 + 17;
const ENTRY: usize = 17 + 2 + 1 + 1;
const TAG: usize = 32;
/// The most services one report may carry (keeps a report in one small datagram).
pub const MAX_SERVICES: usize = 64;

/// One service's state as its host sees it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ServiceHealth {
    pub vip: IpAddr,
    pub port: u16,
    pub proto: u8,
    pub healthy: bool,
}

/// One report from one backend host.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Report {
    /// Strictly increasing per backend (agents use the wall clock in microseconds).
    pub seq: u64,
    pub backend: IpAddr,
    pub services: Vec<ServiceHealth>,
}

/// A datagram that is not an acceptable report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("too short or truncated")]
    Truncated,
    #[error("not a tenbin health report")]
    Magic,
    #[error("unknown report version {0}")]
    Version(u8),
    #[error("bad address family {0}")]
    Family(u8),
    #[error("too many services ({0})")]
    TooMany(usize),
    #[error("authentication failed (wrong key or altered report)")]
    Auth,
}

fn put_addr(out: &mut Vec<u8>, a: IpAddr) {
    match a {
        IpAddr::V4(v) => {
            out.push(4);
            out.extend_from_slice(&v.octets());
            out.extend_from_slice(&[0; 12]);
        }
        IpAddr::V6(v) => {
            out.push(6);
            out.extend_from_slice(&v.octets());
        }
    }
}

fn get_addr(b: &[u8]) -> Result<IpAddr, ReportError> {
    let octets: [u8; 16] = b[1..17].try_into().map_err(|_| ReportError::Truncated)?;
    match b[0] {
        4 => Ok(IpAddr::V4(Ipv4Addr::new(
            octets[0], octets[1], octets[2], octets[3],
        ))),
        6 => Ok(IpAddr::V6(Ipv6Addr::from(octets))),
        f => Err(ReportError::Family(f)),
    }
}

impl Report {
    /// The signed datagram.
    pub fn encode(&self, key: &hmac::Key) -> Result<Vec<u8>, ReportError> {
        if self.services.len() > MAX_SERVICES {
            return Err(ReportError::TooMany(self.services.len()));
        }
        let mut out = Vec::with_capacity(HEADER + ENTRY * self.services.len() + TAG);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(self.services.len() as u16).to_be_bytes());
        out.extend_from_slice(&self.seq.to_be_bytes());
        put_addr(&mut out, self.backend);
        for s in &self.services {
            put_addr(&mut out, s.vip);
            out.extend_from_slice(&s.port.to_be_bytes());
            out.push(s.proto);
            out.push(u8::from(s.healthy));
        }
        let tag = hmac::sign(key, &out);
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Verifies and parses a datagram. Never panics on input.
    pub fn decode(b: &[u8], key: &hmac::Key) -> Result<Report, ReportError> {
        if b.len() < HEADER + TAG {
            return Err(ReportError::Truncated);
        }
        if &b[..4] != MAGIC {
            return Err(ReportError::Magic);
        }
        if b[4] != 1 {
            return Err(ReportError::Version(b[4]));
        }
        let count = usize::from(u16::from_be_bytes([b[6], b[7]]));
        if count > MAX_SERVICES {
            return Err(ReportError::TooMany(count));
        }
        let body = HEADER + count * ENTRY;
        if b.len() != body + TAG {
            return Err(ReportError::Truncated);
        }
        hmac::verify(key, &b[..body], &b[body..]).map_err(|_| ReportError::Auth)?;
        let seq = u64::from_be_bytes(b[8..16].try_into().map_err(|_| ReportError::Truncated)?);
        let backend = get_addr(&b[16..33])?;
        let services = b[HEADER..body]
            .chunks_exact(ENTRY)
            .map(|e| {
                Ok(ServiceHealth {
                    vip: get_addr(&e[..17])?,
                    port: u16::from_be_bytes([e[17], e[18]]),
                    proto: e[19],
                    healthy: e[20] != 0,
                })
            })
            .collect::<Result<Vec<_>, ReportError>>()?;
        Ok(Report {
            seq,
            backend,
            services,
        })
    }
}

/// The report key from the shared secret (at least 16 bytes; shorter ones are refused).
pub fn key(secret: &[u8]) -> Option<hmac::Key> {
    (secret.len() >= 16).then(|| hmac::Key::new(hmac::HMAC_SHA256, secret))
}

/// What the Mux believes about one backend's service.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Verdict {
    /// The backend never reported: configuration alone decides.
    Unknown,
    Healthy,
    /// The last report says the service fails.
    Failing,
    /// Reports stopped for longer than the timeout.
    Stale,
}

#[derive(Debug)]
struct Entry {
    seq: u64,
    at: Duration,
    services: HashMap<(IpAddr, u16, u8), bool>,
}

/// The Mux's record of agent reports; time is an argument (monotonic, any origin).
#[derive(Debug)]
pub struct HealthBook {
    timeout: Duration,
    hosts: HashMap<IpAddr, Entry>,
}

impl HealthBook {
    pub fn new(timeout: Duration) -> Self {
        HealthBook {
            timeout,
            hosts: HashMap::new(),
        }
    }

    /// A new silence timeout (reports already taken stay).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Takes a verified report; false when it replays or precedes one already seen.
    pub fn on_report(&mut self, r: &Report, now: Duration) -> bool {
        if self.hosts.get(&r.backend).is_some_and(|e| r.seq <= e.seq) {
            return false;
        }
        let services = r
            .services
            .iter()
            .map(|s| ((s.vip, s.port, s.proto), s.healthy))
            .collect();
        self.hosts.insert(
            r.backend,
            Entry {
                seq: r.seq,
                at: now,
                services,
            },
        );
        true
    }

    /// The verdict for `backend`'s service `(vip, port, proto)`. A silent host (no report
    /// within the timeout) is `Stale` for every service. A port-0 VIP matches a report for any
    /// port of it; a reporting host that does not list the service is `Unknown` for it.
    pub fn verdict(
        &self,
        backend: IpAddr,
        vip: IpAddr,
        port: u16,
        proto: u8,
        now: Duration,
    ) -> Verdict {
        let Some(e) = self.hosts.get(&backend) else {
            return Verdict::Unknown;
        };
        if now.saturating_sub(e.at) > self.timeout {
            return Verdict::Stale;
        }
        let found = if port == 0 {
            let mut any = e
                .services
                .iter()
                .filter(|((v, _, p), _)| *v == vip && *p == proto);
            any.next().map(|(_, ok)| *ok && any.all(|(_, ok)| *ok))
        } else {
            e.services.get(&(vip, port, proto)).copied()
        };
        match found {
            Some(true) => Verdict::Healthy,
            Some(false) => Verdict::Failing,
            None => Verdict::Unknown,
        }
    }

    /// When the next reporting host falls silent (its verdicts turn `Stale`), if any does
    /// later than `now`: the Mux wakes then instead of polling.
    pub fn next_stale(&self, now: Duration) -> Option<Duration> {
        self.hosts
            .values()
            .map(|e| e.at + self.timeout + Duration::from_millis(1))
            .filter(|t| *t > now)
            .min()
    }

    /// Marks failing or silent backends `Down` in `spec` (so they leave the rings and their
    /// pinned flows are placed again).
    pub fn overlay(&self, spec: &mut crate::control::MuxSpec, now: Duration) {
        for v in &mut spec.vips {
            for b in &mut v.backends {
                if matches!(
                    self.verdict(b.addr, v.addr, v.port, v.proto, now),
                    Verdict::Failing | Verdict::Stale
                ) {
                    b.state = tenbin_core::ServerState::Down;
                }
            }
        }
    }
}

//! A manual-clock harness around one [`Session`] and hand-made message bytes (written here
//! octet by octet, not with the crate's encoder, so the codec is checked against the RFC's
//! layout rather than against itself).
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use tenbin_ha::bgp::{
    Down, Event, Notification, Output, PeerConfig, Route, RouteAttrs, Session, State,
};

pub const LOCAL: &str = "10.88.11.2:50000";
pub const MY_AS: u32 = 65001;
pub const PEER_AS: u32 = 65000;

pub fn config() -> PeerConfig {
    PeerConfig {
        local_as: MY_AS,
        remote_as: PEER_AS,
        router_id: Ipv4Addr::new(10, 88, 11, 2),
        hold_time: 90,
        passive: false,
        connect_retry: Duration::from_secs(1),
        connect_retry_max: Duration::from_secs(8),
        ipv4: true,
        ipv6: true,
        next_hop_v4: None,
        next_hop_v6: Some("fd88:11::2".parse().unwrap()),
    }
}

/// A session and the time it lives at.
pub struct Lab {
    pub s: Session,
    pub now: Instant,
    pub start: Instant,
}

impl Lab {
    pub fn new(cfg: PeerConfig) -> Lab {
        let now = Instant::now();
        Lab {
            s: Session::new(cfg),
            now,
            start: now,
        }
    }

    /// Seconds since the lab's start.
    pub fn at(&self) -> Duration {
        self.now - self.start
    }

    pub fn outputs(&mut self) -> Vec<Output> {
        std::iter::from_fn(|| self.s.poll_output()).collect()
    }

    /// Bytes sent, events dropped.
    pub fn sent(&mut self) -> Vec<Vec<u8>> {
        self.outputs()
            .into_iter()
            .filter_map(|o| match o {
                Output::Send(b) => Some(b),
                _ => None,
            })
            .collect()
    }

    pub fn input(&mut self, bytes: &[u8]) {
        self.s.handle_input(bytes, self.now);
    }

    /// Moves the clock to the session's next deadline and fires it.
    pub fn next_timeout(&mut self) -> Duration {
        let t = self.s.poll_timeout().expect("a timer is armed");
        assert!(t >= self.now, "deadline in the past");
        self.now = t;
        self.s.handle_timeout(self.now);
        self.at()
    }

    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.s.handle_timeout(self.now);
    }

    /// Idle → Connect → OpenSent; returns the OPEN we sent.
    pub fn connect(&mut self) -> Vec<u8> {
        self.s.start(self.now);
        let out = self.outputs();
        assert!(out.contains(&Output::Connect), "{out:?}");
        self.s
            .connected(LOCAL.parse::<SocketAddr>().unwrap(), self.now);
        let mut sent = self.sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(self.s.state(), State::OpenSent);
        sent.remove(0)
    }

    /// All the way to Established with a peer OPEN of hold time `hold`.
    pub fn establish(&mut self, hold: u16) {
        self.connect();
        self.input(&open(PEER_AS, hold, [10, 88, 1, 1], &caps_all(PEER_AS)));
        let sent = self.sent();
        assert_eq!(sent, vec![keepalive()], "KEEPALIVE answers the OPEN");
        assert_eq!(self.s.state(), State::OpenConfirm);
        self.input(&keepalive());
        assert_eq!(self.s.state(), State::Established);
    }

    /// Feeds `bytes` and returns the NOTIFICATION sent (asserting the close and Down event).
    pub fn expect_notification(&mut self, bytes: &[u8]) -> Notification {
        self.input(bytes);
        let out = self.outputs();
        let sent: Vec<&Vec<u8>> = out
            .iter()
            .filter_map(|o| match o {
                Output::Send(b) => Some(b),
                _ => None,
            })
            .collect();
        let last = sent
            .last()
            .unwrap_or_else(|| panic!("nothing sent: {out:?}"));
        assert_eq!(last[18], 3, "a NOTIFICATION: {out:?}");
        let n = Notification::with_data(last[19], last[20], &last[21..]);
        assert!(out.contains(&Output::Close), "{out:?}");
        assert!(
            out.contains(&Output::Event(Event::Down(Down::Sent(n.clone())))),
            "{out:?}"
        );
        assert_ne!(self.s.state(), State::Established);
        n
    }
}

pub fn route(p: &str) -> Route {
    Route {
        prefix: p.parse().unwrap(),
        attrs: RouteAttrs::default(),
    }
}

/// A message: marker, length, type, body.
pub fn msg(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&u16::try_from(19 + body.len()).unwrap().to_be_bytes());
    m.push(kind);
    m.extend_from_slice(body);
    m
}

pub fn keepalive() -> Vec<u8> {
    msg(4, &[])
}

/// Capabilities parameter: MP IPv4 + IPv6 unicast, route refresh, 4-octet AS.
pub fn caps_all(asn: u32) -> Vec<u8> {
    let mut c = vec![1, 4, 0, 1, 0, 1, 1, 4, 0, 2, 0, 1, 2, 0, 65, 4];
    c.extend_from_slice(&asn.to_be_bytes());
    param(&c)
}

/// One optional parameter of type 2 (capabilities) holding `caps`.
pub fn param(caps: &[u8]) -> Vec<u8> {
    let mut p = vec![2, u8::try_from(caps.len()).unwrap()];
    p.extend_from_slice(caps);
    p
}

pub fn open(asn: u32, hold: u16, id: [u8; 4], params: &[u8]) -> Vec<u8> {
    let my_as = u16::try_from(asn).unwrap_or(23456);
    let mut b = vec![4];
    b.extend_from_slice(&my_as.to_be_bytes());
    b.extend_from_slice(&hold.to_be_bytes());
    b.extend_from_slice(&id);
    b.push(u8::try_from(params.len()).unwrap());
    b.extend_from_slice(params);
    msg(1, &b)
}

pub fn attr(flags: u8, kind: u8, value: &[u8]) -> Vec<u8> {
    let mut a = vec![flags, kind, u8::try_from(value.len()).unwrap()];
    a.extend_from_slice(value);
    a
}

pub fn update(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut b = u16::try_from(withdrawn.len())
        .unwrap()
        .to_be_bytes()
        .to_vec();
    b.extend_from_slice(withdrawn);
    b.extend_from_slice(&u16::try_from(attrs.len()).unwrap().to_be_bytes());
    b.extend_from_slice(attrs);
    b.extend_from_slice(nlri);
    msg(2, &b)
}

/// ORIGIN IGP, AS_PATH [PEER_AS] (4-octet), NEXT_HOP 10.88.11.1.
pub fn good_attrs() -> Vec<u8> {
    let mut a = attr(0x40, 1, &[0]);
    let mut path = vec![2, 1];
    path.extend_from_slice(&PEER_AS.to_be_bytes());
    a.extend(attr(0x40, 2, &path));
    a.extend(attr(0x40, 3, &[10, 88, 11, 1]));
    a
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

//! rtnetlink for the driver: VIPs added and removed on the interface, and link state read
//! and followed (carrier loss → Fault).
//!
//! VIPs are added with a finite valid lifetime that the master refreshes while it
//! advertises, so a master killed with SIGKILL loses its VIPs within seconds instead of
//! holding them forever against the new master (IPv4 and IPv6 address lifetimes are the
//! kernel's own).

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, BorrowedFd};

use ipnet::IpNet;
use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_REPLACE,
    NLM_F_REQUEST,
};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressMessage, AddressScope, CacheInfo,
};
use netlink_packet_route::link::{LinkFlags, LinkMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

const RTMGRP_LINK: u32 = 1;

/// A request/ack rtnetlink socket.
#[derive(Debug)]
pub struct Netlink {
    sock: Socket,
    seq: u32,
}

impl Netlink {
    pub fn new() -> io::Result<Netlink> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        Ok(Netlink { sock, seq: 0 })
    }

    /// Adds (or refreshes) `vip` on `ifindex`, valid for `lifetime_s` seconds (0: forever).
    pub fn add_vip(&mut self, ifindex: u32, vip: IpNet, lifetime_s: u32) -> io::Result<()> {
        let mut msg = address(ifindex, vip);
        let mut ci = CacheInfo::default();
        let life = if lifetime_s == 0 {
            u32::MAX
        } else {
            lifetime_s
        };
        ci.ifa_preferred = life;
        ci.ifa_valid = life;
        msg.attributes.push(AddressAttribute::CacheInfo(ci));
        // No duplicate address detection: the VIP must answer at once, and VRRP is what
        // keeps it unique.
        msg.attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
        self.request(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
    }

    /// Removes `vip` from `ifindex`; absent already is fine.
    pub fn del_vip(&mut self, ifindex: u32, vip: IpNet) -> io::Result<()> {
        self.remove_vip(ifindex, vip).map(drop)
    }

    /// [`Netlink::del_vip`], saying whether the address was there.
    pub fn remove_vip(&mut self, ifindex: u32, vip: IpNet) -> io::Result<bool> {
        match self.request(RouteNetlinkMessage::DelAddress(address(ifindex, vip)), 0) {
            Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => Ok(false),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            other => other.map(|()| true),
        }
    }

    /// Whether `ifindex` has carrier (IFF_UP and IFF_LOWER_UP).
    pub fn link_up(&mut self, ifindex: u32) -> io::Result<bool> {
        let mut msg = LinkMessage::default();
        msg.header.index = ifindex;
        let reply = self.exchange(RouteNetlinkMessage::GetLink(msg), 0)?;
        for m in reply {
            match m.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) => {
                    return Ok(carrier(&l));
                }
                NetlinkPayload::Error(e) if e.code.is_some() => return Err(e.to_io()),
                _ => {}
            }
        }
        Err(io::Error::other("no link in the reply"))
    }

    fn request(&mut self, msg: RouteNetlinkMessage, flags: u16) -> io::Result<()> {
        for m in self.exchange(msg, flags | NLM_F_ACK)? {
            if let NetlinkPayload::Error(e) = m.payload {
                return match e.code {
                    None => Ok(()),
                    Some(_) => Err(e.to_io()),
                };
            }
        }
        Err(io::Error::other("netlink: no acknowledgement"))
    }

    fn exchange(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> io::Result<Vec<NetlinkMessage<RouteNetlinkMessage>>> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        nl.finalize();
        let mut buf = vec![0u8; nl.buffer_len()];
        nl.serialize(&mut buf);
        self.sock.send(&buf, 0)?;
        let mut out = Vec::new();
        // One reply datagram for these requests (ack or a single object).
        let mut rbuf = vec![0u8; 32 * 1024];
        let n = self.sock.recv(&mut &mut rbuf[..], 0)?;
        parse_all(&rbuf[..n], |m| out.push(m));
        Ok(out)
    }
}

/// A socket subscribed to link changes, for the driver's poll loop.
#[derive(Debug)]
pub struct LinkWatch {
    sock: Socket,
}

impl LinkWatch {
    pub fn new() -> io::Result<LinkWatch> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind(&SocketAddr::new(0, RTMGRP_LINK))?;
        sock.set_non_blocking(true)?;
        Ok(LinkWatch { sock })
    }

    /// Every (ifindex, carrier) change queued on the socket.
    pub fn drain(&self) -> Vec<(u32, bool)> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = self.sock.recv(&mut &mut buf[..], 0) {
            if n == 0 {
                break;
            }
            parse_all(&buf[..n], |m| {
                if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) = m.payload {
                    out.push((l.header.index, carrier(&l)));
                }
            });
        }
        out
    }
}

impl AsFd for LinkWatch {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

fn carrier(l: &LinkMessage) -> bool {
    l.header.flags.contains(LinkFlags::Up) && l.header.flags.contains(LinkFlags::LowerUp)
}

fn parse_all(mut buf: &[u8], mut f: impl FnMut(NetlinkMessage<RouteNetlinkMessage>)) {
    while buf.len() >= 16 {
        let len = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len < 16 || len > buf.len() {
            return;
        }
        if let Ok(m) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[..len]) {
            f(m);
        }
        buf = buf.get((len + 3) & !3..).unwrap_or(&[]);
    }
}

fn address(ifindex: u32, vip: IpNet) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.family = match vip {
        IpNet::V4(_) => AddressFamily::Inet,
        IpNet::V6(_) => AddressFamily::Inet6,
    };
    msg.header.prefix_len = vip.prefix_len();
    msg.header.scope = AddressScope::Universe;
    msg.header.index = ifindex;
    let a: IpAddr = vip.addr();
    msg.attributes.push(AddressAttribute::Local(a));
    msg.attributes.push(AddressAttribute::Address(a));
    msg
}

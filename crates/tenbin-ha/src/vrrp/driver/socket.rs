//! The raw IP protocol 112 socket of one virtual router: joined to 224.0.0.18 or ff02::12 on
//! its interface, sending with TTL / hop limit 255, and reporting each received packet's
//! source, destination and TTL so the state machine can check them.

use std::io::{self, IoSliceMut, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use nix::sys::socket::{self as nsock, sockopt, ControlMessageOwned, MsgFlags, SockaddrIn6};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};

use crate::vrrp::packet::{GROUP_V4, GROUP_V6, PROTOCOL, TTL};

/// One received VRRP packet.
#[derive(Debug)]
pub struct Datagram {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
    pub payload: Vec<u8>,
}

#[derive(Debug)]
pub struct VrrpSocket {
    sock: Socket,
    ifindex: u32,
    v6: bool,
}

impl VrrpSocket {
    /// Opens the socket on `ifname`; `primary` is our source address (IPv4) and decides the
    /// family.
    pub fn open(ifname: &str, ifindex: u32, primary: IpAddr) -> io::Result<VrrpSocket> {
        let proto = Some(Protocol::from(i32::from(PROTOCOL)));
        let sock = match primary {
            IpAddr::V4(src) => {
                let s = Socket::new(Domain::IPV4, Type::RAW, proto)?;
                s.bind_device(Some(ifname.as_bytes()))?;
                s.join_multicast_v4_n(&GROUP_V4, &InterfaceIndexOrAddress::Index(ifindex))?;
                s.set_multicast_if_v4(&src)?;
                s.set_multicast_ttl_v4(u32::from(TTL))?;
                s.set_ttl_v4(u32::from(TTL))?;
                s.set_multicast_loop_v4(false)?;
                // Internetwork control, like every other VRRP speaker.
                s.set_tos_v4(0xc0)?;
                s
            }
            IpAddr::V6(_) => {
                let s = Socket::new(Domain::IPV6, Type::RAW, proto)?;
                s.bind_device(Some(ifname.as_bytes()))?;
                s.join_multicast_v6(&GROUP_V6, ifindex)?;
                s.set_multicast_if_v6(ifindex)?;
                s.set_multicast_hops_v6(u32::from(TTL))?;
                s.set_unicast_hops_v6(u32::from(TTL))?;
                s.set_multicast_loop_v6(false)?;
                nsock::setsockopt(&s, sockopt::Ipv6RecvHopLimit, &true).map_err(io::Error::from)?;
                nsock::setsockopt(&s, sockopt::Ipv6RecvPacketInfo, &true)
                    .map_err(io::Error::from)?;
                s
            }
        };
        sock.set_nonblocking(true)?;
        Ok(VrrpSocket {
            sock,
            ifindex,
            v6: primary.is_ipv6(),
        })
    }

    /// The multicast group this socket advertises to.
    pub fn group(&self) -> IpAddr {
        if self.v6 {
            IpAddr::V6(GROUP_V6)
        } else {
            IpAddr::V4(GROUP_V4)
        }
    }

    pub fn send(&self, payload: &[u8], dst: IpAddr) -> io::Result<()> {
        let to: SocketAddr = match dst {
            IpAddr::V4(a) => (a, 0).into(),
            IpAddr::V6(a) => {
                let scope = if is_link_local(a) { self.ifindex } else { 0 };
                SocketAddrV6::new(a, 0, 0, scope).into()
            }
        };
        self.sock.send_to(payload, &SockAddr::from(to))?;
        Ok(())
    }

    /// The next queued packet, `None` when none is waiting; packets too mangled to carry
    /// addresses are skipped here (the machine counts the rest).
    pub fn recv(&self) -> io::Result<Option<Datagram>> {
        loop {
            let r = if self.v6 {
                self.recv_v6()
            } else {
                self.recv_v4()
            };
            match r {
                Ok(Some(d)) => return Ok(Some(d)),
                Ok(None) => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    fn recv_v4(&self) -> io::Result<Option<Datagram>> {
        let mut buf = [0u8; 2048];
        let n = (&self.sock).read(&mut buf)?;
        Ok(parse_ipv4(&buf[..n]))
    }

    fn recv_v6(&self) -> io::Result<Option<Datagram>> {
        let mut buf = [0u8; 2048];
        let mut cmsg = nix::cmsg_space!(libc::c_int, libc::in6_pktinfo);
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = nsock::recvmsg::<SockaddrIn6>(
            self.sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        )
        .map_err(io::Error::from)?;
        let (mut ttl, mut dst) = (None, None);
        for c in msg.cmsgs().map_err(io::Error::from)? {
            match c {
                ControlMessageOwned::Ipv6HopLimit(h) => ttl = u8::try_from(h).ok(),
                ControlMessageOwned::Ipv6PacketInfo(p) => {
                    dst = Some(Ipv6Addr::from(p.ipi6_addr.s6_addr));
                }
                _ => {}
            }
        }
        let src = msg.address.map(|a| a.ip());
        let n = msg.bytes;
        let (Some(src), Some(dst), Some(ttl)) = (src, dst, ttl) else {
            return Ok(None);
        };
        Ok(Some(Datagram {
            src: IpAddr::V6(src),
            dst: IpAddr::V6(dst),
            ttl,
            payload: buf[..n].to_vec(),
        }))
    }
}

impl AsFd for VrrpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

/// Splits a received IPv4 packet (raw sockets hand us the header) into its VRRP payload and
/// what the header says.
pub fn parse_ipv4(p: &[u8]) -> Option<Datagram> {
    let ihl = usize::from(*p.first()? & 0x0f) * 4;
    if p[0] >> 4 != 4 || ihl < 20 || p.len() < ihl || p[9] != PROTOCOL {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([p[2], p[3]])).min(p.len());
    let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
    let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
    Some(Datagram {
        src: IpAddr::V4(src),
        dst: IpAddr::V4(dst),
        ttl: p[8],
        payload: p.get(ihl..total)?.to_vec(),
    })
}

fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80 || a.segments()[0] & 0xff0f == 0xff02
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_ip_header_keepalived_sent() {
        // Header and advert captured from keepalived 2.2.7.
        let p = [
            0x45, 0xc0, 0x00, 0x20, 0x00, 0x01, 0x00, 0x00, 0xff, 0x70, 0xd0, 0x4c, 0x0a, 0x4d,
            0x00, 0x01, 0xe0, 0x00, 0x00, 0x12, 0x31, 0x33, 0x96, 0x01, 0x00, 0x64, 0x42, 0xd9,
            0x0a, 0x4d, 0x00, 0x64,
        ];
        let d = parse_ipv4(&p).unwrap();
        assert_eq!(d.src, "10.77.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(d.dst, IpAddr::V4(GROUP_V4));
        assert_eq!(d.ttl, 255);
        assert_eq!(d.payload.len(), 12);
        assert!(parse_ipv4(&p[..10]).is_none());
        assert!(parse_ipv4(&[]).is_none());
    }
}

//! recvmmsg/sendmmsg batching for the UDP loop: one system call moves up to [`BATCH`]
//! datagrams each way when the socket is busy (what gdnsd and Knot do), through nix's safe
//! wrappers.

use nix::sys::socket::{
    recvmmsg, sendmmsg, ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage,
};
use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::RawFd;

/// Datagrams per system call.
pub const BATCH: usize = 32;
/// Largest query we read over UDP (EDNS allows up to 65535, queries are far smaller).
const QUERY_MAX: usize = 4096;

/// Buffers reused across calls. The kernel headers hold raw pointers (not `Send`), so they
/// live only inside one call, never across an await of the UDP task.
#[derive(Debug)]
pub struct Batch {
    bufs: Vec<Vec<u8>>,
    /// (length, peer) of each datagram of the last receive.
    pub got: Vec<(usize, SocketAddr)>,
    /// Responses to send, with their peers.
    pub out: Vec<(Vec<u8>, SocketAddr)>,
}

impl Default for Batch {
    fn default() -> Self {
        Batch {
            bufs: vec![vec![0u8; QUERY_MAX]; BATCH],
            got: Vec::with_capacity(BATCH),
            out: Vec::with_capacity(BATCH),
        }
    }
}

fn to_std(s: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = s.as_sockaddr_in() {
        return Some(SocketAddr::from(*v4));
    }
    s.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6))
}

impl Batch {
    /// Reads what is queued (at least one datagram, or `WouldBlock`).
    pub fn recv(&mut self, fd: RawFd) -> io::Result<usize> {
        self.got.clear();
        let mut iovs: Vec<[IoSliceMut<'_>; 1]> =
            self.bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
        let mut hdrs = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
        let results = recvmmsg(fd, &mut hdrs, iovs.iter_mut(), MsgFlags::MSG_DONTWAIT, None)
            .map_err(io::Error::from)?;
        for r in results {
            if let Some(peer) = r.address.as_ref().and_then(to_std) {
                // A datagram longer than the buffer is cut: the query path answers FORMERR.
                self.got.push((r.bytes.min(QUERY_MAX), peer));
            }
        }
        Ok(self.got.len())
    }

    /// The payload of received datagram `i`.
    pub fn datagram(&self, i: usize) -> (&[u8], SocketAddr) {
        let (len, peer) = self.got[i];
        (&self.bufs[i][..len], peer)
    }

    /// Sends `out` from index `from`; returns how many went (`WouldBlock` if none could).
    pub fn send(&mut self, fd: RawFd, from: usize) -> io::Result<usize> {
        let rest = &self.out[from..];
        if rest.is_empty() {
            return Ok(0);
        }
        let slices: Vec<[IoSlice<'_>; 1]> = rest.iter().map(|(b, _)| [IoSlice::new(b)]).collect();
        let addrs: Vec<Option<SockaddrStorage>> = rest
            .iter()
            .map(|(_, p)| Some(SockaddrStorage::from(*p)))
            .collect();
        let mut hdrs = MultiHeaders::<SockaddrStorage>::preallocate(rest.len(), None);
        let sent = sendmmsg(
            fd,
            &mut hdrs,
            slices.iter(),
            &addrs,
            [] as [ControlMessage<'_>; 0],
            MsgFlags::MSG_DONTWAIT,
        )
        .map_err(io::Error::from)?;
        Ok(sent.count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn batches_round_trip_on_loopback() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        server.set_nonblocking(true).unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut b = Batch::default();
        assert_eq!(
            b.recv(server.as_raw_fd()).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        for i in 0..5u8 {
            client
                .send_to(&[i; 3], server.local_addr().unwrap())
                .unwrap();
        }
        let n = b.recv(server.as_raw_fd()).unwrap();
        assert_eq!(n, 5);
        for i in 0..n {
            let (d, peer) = b.datagram(i);
            assert_eq!(d, &[i as u8; 3]);
            assert_eq!(peer, client.local_addr().unwrap());
            b.out.push((vec![i as u8 + 100], peer));
        }
        assert_eq!(b.send(server.as_raw_fd(), 0).unwrap(), 5);
        let mut buf = [0u8; 8];
        for i in 0..5u8 {
            let n = client.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &[i + 100]);
        }
    }
}

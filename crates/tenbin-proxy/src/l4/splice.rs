//! Zero-copy relaying with splice(2): socket → pipe → socket, bytes never enter userspace.
//!
//! Same contract as [`super::copy::bidirectional`] (half-close, idle timeout). Each direction
//! owns a non-blocking pipe; it splices what the source socket has into the pipe, then drains
//! the pipe into the destination socket before reading again, so the pipe never holds more
//! than one read. Readiness comes from tokio (`readable()` / `writable()` + `try_io`), so the
//! sockets stay registered with the runtime as usual. nix wraps the syscalls safely.

use std::io;
use std::os::fd::OwnedFd;
use std::time::Duration;

use nix::fcntl::{splice, OFlag, SpliceFFlags};
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;

use super::copy::{join_directions, Activity, CopyError, DirectionError, Moved};

/// Bytes asked of one splice call; the kernel moves at most the pipe's capacity.
const CHUNK: usize = 1 << 20;

pub(super) async fn bidirectional(
    client: &mut TcpStream,
    server: &mut TcpStream,
    idle: Duration,
) -> Result<Moved, CopyError> {
    let activity = Activity::new();
    let (cr, cw) = client.split();
    let (sr, sw) = server.split();
    let up = one_way(cr, sw, &activity);
    let down = one_way(sr, cw, &activity);
    let (up, down) = join_directions(up, down, &activity, idle).await?;
    Ok(Moved {
        client_to_server: up,
        server_to_client: down,
    })
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).map_err(io::Error::from)
}

async fn one_way(
    from: ReadHalf<'_>,
    mut to: WriteHalf<'_>,
    activity: &Activity,
) -> Result<u64, DirectionError> {
    let (pipe_r, pipe_w) = pipe().map_err(|e| (e, true))?;
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
    let mut total = 0u64;
    loop {
        let src: &TcpStream = from.as_ref();
        let n = loop {
            src.readable().await.map_err(|e| (e, true))?;
            match src.try_io(Interest::READABLE, || {
                splice(src, None, &pipe_w, None, CHUNK, flags).map_err(io::Error::from)
            }) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err((e, true)),
            }
        };
        if n == 0 {
            to.shutdown().await.map_err(|e| (e, false))?;
            return Ok(total);
        }
        activity.touch();
        let dst: &TcpStream = to.as_ref();
        let mut left = n;
        while left > 0 {
            dst.writable().await.map_err(|e| (e, false))?;
            match dst.try_io(Interest::WRITABLE, || {
                splice(&pipe_r, None, dst, None, left, flags).map_err(io::Error::from)
            }) {
                Ok(0) => return Err((io::ErrorKind::WriteZero.into(), false)),
                Ok(m) => left -= m,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err((e, false)),
            }
        }
        activity.touch();
        total += n as u64;
    }
}

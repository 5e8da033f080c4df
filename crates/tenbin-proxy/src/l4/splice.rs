//! Zero-copy relaying with splice(2): socket → pipe → socket, bytes never enter userspace.
//!
//! Same contract as [`super::copy::relay`] (half-close, idle timeout). Each direction
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

use super::copy::{CopyError, DirectionError, Leg, Progress, Relay, Run};

/// Bytes asked of one splice call; the kernel moves at most the pipe's capacity.
const CHUNK: usize = 1 << 20;

/// Relays a session from `progress` on: the splice twin of `copy::relay` (a move is asked and
/// taken the same way, with each direction's pipe empty when it pauses).
pub(super) async fn relay<B>(
    client: &mut TcpStream,
    server: &mut TcpStream,
    progress: Progress,
    idle: Duration,
    better: &B,
) -> Result<Relay, CopyError>
where
    B: Fn(crate::placement::Brings) -> Option<usize> + Sync,
{
    let run = Run::new(progress, better);
    let (cr, cw) = client.split();
    let (sr, sw) = server.split();
    let up = one_way(&run, cr, sw, true);
    let down = one_way(&run, sr, cw, false);
    run.finish(up, down, idle).await
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).map_err(io::Error::from)
}

async fn one_way<B: Fn(crate::placement::Brings) -> Option<usize>>(
    run: &Run<'_, B>,
    from: ReadHalf<'_>,
    mut to: WriteHalf<'_>,
    up: bool,
) -> Result<Leg, DirectionError> {
    let (mut total, mut check) = match run.start(up) {
        Ok(at) => at,
        Err(ended) => {
            run.ended().await;
            return Ok(ended);
        }
    };
    let (pipe_r, pipe_w) = pipe().map_err(|e| (e, true))?;
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
    loop {
        let src: &TcpStream = from.as_ref();
        let read = async {
            loop {
                src.readable().await.map_err(|e| (e, true))?;
                match src.try_io(Interest::READABLE, || {
                    splice(src, None, &pipe_w, None, CHUNK, flags).map_err(io::Error::from)
                }) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err((e, true)),
                }
            }
        };
        // The pipe is empty here: a pause leaves nothing behind in it. Once a move is asked,
        // this direction goes on relaying until both wait here (see `copy::Pause`).
        let waiting = run.pausing();
        if waiting && run.ready().await {
            return Ok(Leg {
                total,
                ended: false,
            });
        }
        let n = tokio::select! {
            biased;
            () = run.both_ready(), if waiting => return Ok(Leg { total, ended: false }),
            () = run.paused(), if !waiting => continue,
            n = read => {
                if waiting {
                    run.busy();
                }
                n?
            }
        };
        if n == 0 {
            to.shutdown().await.map_err(|e| (e, false))?;
            run.ended().await;
            return Ok(Leg { total, ended: true });
        }
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
        total += n as u64;
        run.wrote(n, &mut check).await;
    }
}

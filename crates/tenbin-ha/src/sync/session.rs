//! One sync connection as a sans-IO machine: bytes and `now` in, bytes and events out.
//!
//! The dialer pushes its tables: after the hellos it asks its driver for a full snapshot
//! ([`Event::SnapshotWanted`] → [`Session::send_snapshot`]), then sends changes as they are
//! [`Session::push`]ed. Changes wait in a queue bounded by entry count until the driver can
//! write ([`Session::poll_transmit`] frames them only when everything before is taken);
//! a push into a full queue drops the queue and asks for a full snapshot instead (counted
//! in [`SessionStats::overflows`]), since a snapshot carries every change the queue held.
//! The acceptor merges what it receives ([`Event::Received`]) and acknowledges each batch,
//! which is what the dialer's lag is measured against. Both sides send keepalives when
//! idle and give up on a silent peer.
//!
//! Time is a [`Duration`] since any epoch the driver keeps.

use std::collections::VecDeque;
use std::time::Duration;

use ring::hmac;

use super::frame::{self, FrameError, Hello, Message, Role, WireEntry};

/// The knobs of one connection.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// This node's name, sent in the hello.
    pub name: String,
    /// Changes waiting to be written beyond this are dropped for a full resync.
    pub queue_bound: usize,
    /// Send a keepalive after this long without sending anything.
    pub keepalive: Duration,
    /// Close the connection after this long without receiving anything.
    pub dead_after: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            name: String::new(),
            queue_bound: 65_536,
            keepalive: Duration::from_secs(1),
            dead_after: Duration::from_secs(3),
        }
    }
}

/// What the driver must act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The hellos are exchanged and the peer holds the key.
    Established { peer: String },
    /// Dialer: call [`Session::send_snapshot`] with every table.
    SnapshotWanted,
    /// Acceptor: entries to merge into `table`.
    Received {
        table: String,
        entries: Vec<WireEntry>,
    },
    /// Acceptor: a full snapshot of `entries` entries has arrived.
    SnapshotComplete { entries: u64 },
}

/// Why a connection ended.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("no frame from the peer for {0:?}")]
    Timeout(Duration),
    #[error("the peer sent {0}, which its role does not send")]
    Unexpected(&'static str),
    #[error("acknowledgement of frame {0}, which was never sent")]
    BadAck(u64),
    #[error("the session is closed")]
    Closed,
    #[error("the peer closed the connection")]
    PeerClosed,
    #[error("socket: {0}")]
    Io(String),
}

/// Counters and gauges of one connection, plain data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// `handshake`, `resync` (a snapshot is on its way, not yet acknowledged),
    /// `established` or `closed`.
    pub state: &'static str,
    pub peer: Option<String>,
    pub entries_sent: u64,
    pub entries_received: u64,
    /// Full snapshots sent (dialer) or received (acceptor).
    pub resyncs: u64,
    /// Times the change queue overflowed and was replaced by a snapshot.
    pub overflows: u64,
    /// Changes waiting to be framed.
    pub queued: u64,
    /// Frames sent and not yet acknowledged.
    pub unacked: u64,
    /// Age of the oldest change not yet acknowledged (zero when all are).
    pub lag: Duration,
}

#[derive(Debug)]
enum Phase {
    Hello,
    Open { key: hmac::Key },
    Closed,
}

#[derive(Debug)]
struct Queued {
    table: String,
    entry: WireEntry,
    at: Duration,
}

/// One connection's protocol state. See the module docs.
#[derive(Debug)]
pub struct Session {
    role: Role,
    cfg: SessionConfig,
    shared: hmac::Key,
    my_hello: Vec<u8>,
    phase: Phase,
    rx: Vec<u8>,
    out: Vec<u8>,
    send_seq: u64,
    recv_seq: u64,
    queue: VecDeque<Queued>,
    snapshot_wanted: bool,
    /// The sequence number of the last snapshot's End, until it is acknowledged.
    snapshot_end: Option<u64>,
    /// (seq, when the oldest change in it was queued).
    unacked: VecDeque<(u64, Duration)>,
    ack_due: Option<u64>,
    last_rx: Duration,
    last_tx: Duration,
    events: VecDeque<Event>,
    generation: u64,
    stats: SessionStats,
}

impl Session {
    /// A connection that has just been opened; its hello is the first output. `nonce`
    /// must be fresh random bytes.
    pub fn new(
        role: Role,
        shared: &hmac::Key,
        nonce: [u8; 16],
        cfg: SessionConfig,
        now: Duration,
    ) -> Result<Session, SessionError> {
        let hello = Hello {
            version: frame::VERSION,
            role,
            nonce,
            name: cfg.name.clone(),
        };
        let body = hello.body()?;
        let mut out = Vec::with_capacity(4 + body.len());
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        Ok(Session {
            role,
            cfg,
            shared: shared.clone(),
            my_hello: body,
            phase: Phase::Hello,
            rx: Vec::new(),
            out,
            send_seq: 0,
            recv_seq: 0,
            queue: VecDeque::new(),
            snapshot_wanted: false,
            snapshot_end: None,
            unacked: VecDeque::new(),
            ack_due: None,
            last_rx: now,
            last_tx: now,
            events: VecDeque::new(),
            generation: 0,
            stats: SessionStats {
                state: "handshake",
                ..SessionStats::default()
            },
        })
    }

    /// Feeds bytes read from the socket. On error the session is closed.
    pub fn handle_input(&mut self, bytes: &[u8], now: Duration) -> Result<(), SessionError> {
        if matches!(self.phase, Phase::Closed) {
            return Err(SessionError::Closed);
        }
        self.last_rx = now;
        self.rx.extend_from_slice(bytes);
        let r = self.drain_frames();
        if r.is_err() {
            self.close();
        }
        r
    }

    /// Sends a keepalive when one is due; fails when the peer has been silent too long.
    pub fn handle_timeout(&mut self, now: Duration) -> Result<(), SessionError> {
        if matches!(self.phase, Phase::Closed) {
            return Err(SessionError::Closed);
        }
        let silent = now.saturating_sub(self.last_rx);
        if silent >= self.cfg.dead_after {
            self.close();
            return Err(SessionError::Timeout(silent));
        }
        if matches!(self.phase, Phase::Open { .. })
            && self.out.is_empty()
            && now.saturating_sub(self.last_tx) >= self.cfg.keepalive
        {
            self.seal(&Message::Keepalive, now)?;
        }
        Ok(())
    }

    /// When [`Session::handle_timeout`] wants to run next.
    pub fn poll_timeout(&self) -> Option<Duration> {
        match self.phase {
            Phase::Closed => None,
            Phase::Hello => Some(self.last_rx + self.cfg.dead_after),
            Phase::Open { .. } => {
                Some((self.last_rx + self.cfg.dead_after).min(self.last_tx + self.cfg.keepalive))
            }
        }
    }

    /// Bytes to write next, if any: pending frames first, then queued changes.
    pub fn poll_transmit(&mut self, now: Duration) -> Option<Vec<u8>> {
        if self.out.is_empty() {
            if let Err(e) = self.frame_pending(now) {
                tracing::debug!("sync: cannot frame: {e}");
            }
        }
        if self.out.is_empty() {
            return None;
        }
        self.last_tx = now;
        Some(std::mem::take(&mut self.out))
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Dialer: one change to send. A full queue is dropped for a full snapshot.
    pub fn push(&mut self, table: &str, entry: WireEntry, now: Duration) {
        if self.role != Role::Dialer || matches!(self.phase, Phase::Closed) {
            return;
        }
        if self.snapshot_wanted {
            // The snapshot will carry it.
            return;
        }
        if self.queue.len() >= self.cfg.queue_bound {
            self.overflow();
            return;
        }
        self.queue.push_back(Queued {
            table: table.to_owned(),
            entry,
            at: now,
        });
    }

    /// Dialer: changes were lost before they reached this session; resync in full.
    pub fn overflow(&mut self) {
        self.stats.overflows += 1;
        self.queue.clear();
        self.want_snapshot();
    }

    /// Dialer: frames a full snapshot of `tables` (after [`Event::SnapshotWanted`]); the
    /// queued changes are dropped, since the tables already hold them.
    pub fn send_snapshot(
        &mut self,
        tables: impl IntoIterator<Item = (String, Vec<WireEntry>)>,
        now: Duration,
    ) -> Result<(), SessionError> {
        if !matches!(self.phase, Phase::Open { .. }) {
            return Err(SessionError::Closed);
        }
        self.snapshot_wanted = false;
        self.queue.clear();
        self.generation += 1;
        self.seal(
            &Message::Begin {
                generation: self.generation,
            },
            now,
        )?;
        self.unacked.push_back((self.send_seq, now));
        let mut total = 0u64;
        for (table, entries) in tables {
            total += entries.len() as u64;
            for chunk in chunks(&table, entries) {
                self.seal(&chunk, now)?;
                self.unacked.push_back((self.send_seq, now));
            }
        }
        self.seal(&Message::End { entries: total }, now)?;
        self.unacked.push_back((self.send_seq, now));
        self.snapshot_end = Some(self.send_seq);
        self.stats.entries_sent += total;
        self.stats.resyncs += 1;
        Ok(())
    }

    pub fn stats(&self, now: Duration) -> SessionStats {
        let mut s = self.stats.clone();
        s.state = match self.phase {
            Phase::Hello => "handshake",
            Phase::Closed => "closed",
            Phase::Open { .. } if self.snapshot_wanted || self.snapshot_end.is_some() => "resync",
            Phase::Open { .. } => "established",
        };
        s.queued = self.queue.len() as u64;
        s.unacked = self.unacked.len() as u64;
        let oldest = [
            self.unacked.front().map(|u| u.1),
            self.queue.front().map(|q| q.at),
        ];
        s.lag = oldest
            .into_iter()
            .flatten()
            .min()
            .map_or(Duration::ZERO, |t| now.saturating_sub(t));
        s
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    fn close(&mut self) {
        self.phase = Phase::Closed;
        self.queue.clear();
        self.out.clear();
    }

    fn want_snapshot(&mut self) {
        if !self.snapshot_wanted {
            self.snapshot_wanted = true;
            if matches!(self.phase, Phase::Open { .. }) {
                self.events.push_back(Event::SnapshotWanted);
            }
        }
    }

    fn drain_frames(&mut self) -> Result<(), SessionError> {
        let mut used = 0;
        while let Some((body, n)) = frame::split_frame(&self.rx[used..])? {
            let body = body.to_vec();
            used += n;
            self.on_frame(&body)?;
        }
        self.rx.drain(..used);
        Ok(())
    }

    fn on_frame(&mut self, body: &[u8]) -> Result<(), SessionError> {
        let key = match &self.phase {
            Phase::Hello => return self.on_hello(body),
            Phase::Open { key } => key,
            Phase::Closed => return Err(SessionError::Closed),
        };
        let peer = match self.role {
            Role::Dialer => Role::Acceptor,
            Role::Acceptor => Role::Dialer,
        };
        let msg = frame::open(key, peer, self.recv_seq + 1, body)?;
        self.recv_seq += 1;
        match (self.role, msg) {
            (_, Message::Keepalive) => {}
            (Role::Dialer, Message::Ack { seq }) => self.on_ack(seq)?,
            (Role::Acceptor, Message::Begin { .. }) => self.ack_due = Some(self.recv_seq),
            (Role::Acceptor, Message::Entries { table, entries }) => {
                self.stats.entries_received += entries.len() as u64;
                self.ack_due = Some(self.recv_seq);
                self.events.push_back(Event::Received { table, entries });
            }
            (Role::Acceptor, Message::End { entries }) => {
                self.stats.resyncs += 1;
                self.ack_due = Some(self.recv_seq);
                self.events.push_back(Event::SnapshotComplete { entries });
            }
            (Role::Dialer, _) => return Err(SessionError::Unexpected("table data")),
            (Role::Acceptor, Message::Ack { .. }) => {
                return Err(SessionError::Unexpected("an acknowledgement"))
            }
        }
        Ok(())
    }

    fn on_hello(&mut self, body: &[u8]) -> Result<(), SessionError> {
        let hello = Hello::parse(body)?;
        if hello.role == self.role {
            return Err(FrameError::SameRole(hello.role).into());
        }
        let key = match self.role {
            Role::Dialer => frame::connection_key(&self.shared, &self.my_hello, body),
            Role::Acceptor => frame::connection_key(&self.shared, body, &self.my_hello),
        };
        self.phase = Phase::Open { key };
        self.stats.peer = Some(hello.name.clone());
        self.events
            .push_back(Event::Established { peer: hello.name });
        if self.role == Role::Dialer {
            self.snapshot_wanted = false;
            self.want_snapshot();
        }
        Ok(())
    }

    fn on_ack(&mut self, seq: u64) -> Result<(), SessionError> {
        if seq > self.send_seq {
            return Err(SessionError::BadAck(seq));
        }
        while self.unacked.front().is_some_and(|u| u.0 <= seq) {
            self.unacked.pop_front();
        }
        if self.snapshot_end.is_some_and(|end| end <= seq) {
            self.snapshot_end = None;
        }
        Ok(())
    }

    fn seal(&mut self, msg: &Message, now: Duration) -> Result<(), SessionError> {
        let Phase::Open { key } = &self.phase else {
            return Err(SessionError::Closed);
        };
        let bytes = frame::seal(key, self.role, self.send_seq + 1, msg)?;
        self.send_seq += 1;
        self.out.extend_from_slice(&bytes);
        self.last_tx = now;
        Ok(())
    }

    /// Acks due (acceptor) and queued changes (dialer) into `out`, one frame of changes
    /// at a time so that the queue, not the output buffer, holds what cannot be written.
    fn frame_pending(&mut self, now: Duration) -> Result<(), SessionError> {
        if !matches!(self.phase, Phase::Open { .. }) {
            return Ok(());
        }
        if let Some(seq) = self.ack_due.take() {
            self.seal(&Message::Ack { seq }, now)?;
        }
        if self.snapshot_wanted || self.queue.is_empty() {
            return Ok(());
        }
        let Some(first) = self.queue.front() else {
            return Ok(());
        };
        let table = first.table.clone();
        let oldest = first.at;
        let mut size = frame::ENTRIES_FIXED + table.len();
        let mut entries = Vec::new();
        while let Some(q) = self.queue.front() {
            let fits = size + frame::entry_size(&q.entry) <= frame::MAX_PAYLOAD;
            if q.table != table || !fits || entries.len() == usize::from(u16::MAX) {
                break;
            }
            let Some(mut q) = self.queue.pop_front() else {
                break;
            };
            size += frame::entry_size(&q.entry);
            // Time spent queued makes the session that much older.
            q.entry.age += now.saturating_sub(q.at);
            entries.push(q.entry);
        }
        self.stats.entries_sent += entries.len() as u64;
        self.seal(&Message::Entries { table, entries }, now)?;
        self.unacked.push_back((self.send_seq, oldest));
        Ok(())
    }
}

/// `entries` of `table` as Entries messages that each fit in one frame.
fn chunks(table: &str, entries: Vec<WireEntry>) -> Vec<Message> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut size = frame::ENTRIES_FIXED + table.len();
    for e in entries {
        let n = frame::entry_size(&e);
        if !cur.is_empty() && (size + n > frame::MAX_PAYLOAD || cur.len() == usize::from(u16::MAX))
        {
            out.push(Message::Entries {
                table: table.to_owned(),
                entries: std::mem::take(&mut cur),
            });
            size = frame::ENTRIES_FIXED + table.len();
        }
        size += n;
        cur.push(e);
    }
    if !cur.is_empty() {
        out.push(Message::Entries {
            table: table.to_owned(),
            entries: cur,
        });
    }
    out
}

//! The session-sync wire format: length-prefixed frames, an unauthenticated hello, then
//! frames authenticated with HMAC-SHA256 under a key bound to both hellos.
//!
//! ```text
//! frame      = length:u32be body                  length = len(body), 1..=MAX_FRAME
//! hello body = "TBSY" version:u8(1) role:u8 nonce:[16] name_len:u8 name
//! auth body  = kind:u8 seq:u64be payload tag:[32]
//!   tag      = HMAC(conn_key, sender_role:u8 kind seq payload)
//!   conn_key = HMAC(shared_key, "tenbin-sync/1" dialer_hello_body acceptor_hello_body)
//! payloads   Begin: generation:u64be          End: entries:u64be
//!            Ack: seq:u64be                   Keepalive: (empty)
//!            Entries: table_len:u8 table count:u16be
//!                     count × (key:u64be age_ms:u32be server_len:u8 server)
//! ```
//!
//! Both nonces are fresh per connection, so the connection key is too: a frame recorded on
//! one connection never verifies on another, and the per-direction sequence number (which
//! must be exactly the next one) stops replays and reordering within a connection. The
//! sender's role is under the tag, so a frame reflected back at its sender fails.
//! Decoding never panics; every malformed input is a [`FrameError`].

use std::time::Duration;

use ring::hmac;

/// Largest frame body accepted or sent; an Entries frame is split to stay under it.
pub const MAX_FRAME: usize = 64 * 1024;
/// The protocol version this code speaks (a hello with another one is refused).
pub const VERSION: u8 = 1;
const MAGIC: &[u8; 4] = b"TBSY";
const TAG: usize = 32;
/// kind + seq + tag.
const AUTH_OVERHEAD: usize = 1 + 8 + TAG;
const KEY_LABEL: &[u8] = b"tenbin-sync/1";
/// The fixed part of one entry on the wire (key, age, server length).
pub(crate) const ENTRY_FIXED: usize = 8 + 4 + 1;
/// The fixed part of an Entries payload (table length, count).
pub(crate) const ENTRIES_FIXED: usize = 1 + 2;

/// Which end of a connection a side is: the dialer pushes its tables, the acceptor merges
/// them and acknowledges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Dialer,
    Acceptor,
}

impl Role {
    fn byte(self) -> u8 {
        match self {
            Role::Dialer => 0,
            Role::Acceptor => 1,
        }
    }
}

/// The first frame each side sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    pub version: u8,
    pub role: Role,
    pub nonce: [u8; 16],
    /// The sender's node name (for logs and state; not an identity: the key is).
    pub name: String,
}

/// One persisted session as it travels: the key's stable hash, the server by its configured
/// name, and how long ago the session was last seen (so clocks need not agree).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireEntry {
    pub key: u64,
    pub server: String,
    pub age: Duration,
}

/// An authenticated message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// A full snapshot of the dialer's tables follows.
    Begin {
        generation: u64,
    },
    Entries {
        table: String,
        entries: Vec<WireEntry>,
    },
    /// The snapshot is complete; `entries` were sent in it.
    End {
        entries: u64,
    },
    /// The acceptor has applied every frame up to `seq`.
    Ack {
        seq: u64,
    },
    Keepalive,
}

impl Message {
    fn kind(&self) -> u8 {
        match self {
            Message::Begin { .. } => 2,
            Message::Entries { .. } => 3,
            Message::End { .. } => 4,
            Message::Ack { .. } => 5,
            Message::Keepalive => 6,
        }
    }
}

/// Why bytes were refused. Every one closes the connection.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame length {0} is outside 1..={MAX_FRAME}")]
    Length(usize),
    #[error("not a tenbin sync hello")]
    Magic,
    #[error("protocol version {0} is not spoken here (this is version {VERSION})")]
    Version(u8),
    #[error("unknown role byte {0}")]
    Role(u8),
    #[error("the peer has the same role ({0:?}) as this side")]
    SameRole(Role),
    #[error("frame truncated")]
    Truncated,
    #[error("{0} trailing bytes after the payload")]
    Trailing(usize),
    #[error("name or table is not UTF-8")]
    Utf8,
    #[error("unknown frame kind {0}")]
    Kind(u8),
    #[error("authentication failed (wrong key, tampered or replayed frame)")]
    Auth,
    #[error("sequence {got}, expected {expected}")]
    Sequence { expected: u64, got: u64 },
    #[error("a name or table is longer than 255 bytes")]
    NameTooLong,
}

/// Splits the first whole frame off `buf`: `Ok(None)` until enough bytes are there.
pub fn split_frame(buf: &[u8]) -> Result<Option<(&[u8], usize)>, FrameError> {
    let Some(len) = buf.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(FrameError::Length(len));
    }
    Ok(buf.get(4..4 + len).map(|body| (body, 4 + len)))
}

impl Hello {
    /// The hello body (without the length prefix).
    pub fn body(&self) -> Result<Vec<u8>, FrameError> {
        let name = short(&self.name)?;
        let mut b = Vec::with_capacity(4 + 2 + 16 + 1 + name.len());
        b.extend_from_slice(MAGIC);
        b.push(self.version);
        b.push(self.role.byte());
        b.extend_from_slice(&self.nonce);
        b.push(name.len() as u8);
        b.extend_from_slice(name);
        Ok(b)
    }

    pub fn parse(body: &[u8]) -> Result<Hello, FrameError> {
        let mut r = Reader(body);
        if r.take(4)? != MAGIC {
            return Err(FrameError::Magic);
        }
        let version = r.u8()?;
        if version != VERSION {
            return Err(FrameError::Version(version));
        }
        let role = match r.u8()? {
            0 => Role::Dialer,
            1 => Role::Acceptor,
            b => return Err(FrameError::Role(b)),
        };
        let mut nonce = [0u8; 16];
        nonce.copy_from_slice(r.take(16)?);
        let name = r.string()?;
        r.end()?;
        Ok(Hello {
            version,
            role,
            nonce,
            name,
        })
    }
}

/// The key both sides derive from the shared key and the two hello bodies.
pub fn connection_key(shared: &hmac::Key, dialer_hello: &[u8], acceptor_hello: &[u8]) -> hmac::Key {
    let mut ctx = hmac::Context::with_key(shared);
    ctx.update(KEY_LABEL);
    ctx.update(dialer_hello);
    ctx.update(acceptor_hello);
    hmac::Key::new(hmac::HMAC_SHA256, ctx.sign().as_ref())
}

/// A whole frame (length prefix included) carrying `msg` from `sender` as number `seq`.
pub fn seal(key: &hmac::Key, sender: Role, seq: u64, msg: &Message) -> Result<Vec<u8>, FrameError> {
    let mut out = vec![0u8; 4];
    out.push(msg.kind());
    out.extend_from_slice(&seq.to_be_bytes());
    payload(msg, &mut out)?;
    let tag = tag(key, sender, &out[4..]);
    out.extend_from_slice(tag.as_ref());
    let len = out.len() - 4;
    if len > MAX_FRAME {
        return Err(FrameError::Length(len));
    }
    out[..4].copy_from_slice(&(len as u32).to_be_bytes());
    Ok(out)
}

/// Verifies and decodes an authenticated body sent by `sender`, which must be number
/// `expected` in its direction.
pub fn open(
    key: &hmac::Key,
    sender: Role,
    expected: u64,
    body: &[u8],
) -> Result<Message, FrameError> {
    if body.len() < AUTH_OVERHEAD {
        return Err(FrameError::Truncated);
    }
    let (signed, got_tag) = body.split_at(body.len() - TAG);
    // ring's verify compares in constant time.
    hmac::verify(key, &[&[sender.byte()][..], signed].concat(), got_tag)
        .map_err(|_| FrameError::Auth)?;
    let mut r = Reader(signed);
    let kind = r.u8()?;
    let seq = r.u64()?;
    if seq != expected {
        return Err(FrameError::Sequence { expected, got: seq });
    }
    let msg = match kind {
        2 => Message::Begin {
            generation: r.u64()?,
        },
        3 => {
            let table = r.string()?;
            let count = r.u16()?;
            let mut entries = Vec::with_capacity(usize::from(count).min(r.0.len() / ENTRY_FIXED));
            for _ in 0..count {
                let key = r.u64()?;
                let age = Duration::from_millis(u64::from(r.u32()?));
                let server = r.string()?;
                entries.push(WireEntry { key, server, age });
            }
            Message::Entries { table, entries }
        }
        4 => Message::End { entries: r.u64()? },
        5 => Message::Ack { seq: r.u64()? },
        6 => Message::Keepalive,
        k => return Err(FrameError::Kind(k)),
    };
    r.end()?;
    Ok(msg)
}

/// The wire size of `entry` inside an Entries payload.
pub(crate) fn entry_size(entry: &WireEntry) -> usize {
    ENTRY_FIXED + entry.server.len()
}

/// The most payload bytes an authenticated frame may carry.
pub(crate) const MAX_PAYLOAD: usize = MAX_FRAME - AUTH_OVERHEAD;

fn tag(key: &hmac::Key, sender: Role, signed: &[u8]) -> hmac::Tag {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(&[sender.byte()]);
    ctx.update(signed);
    ctx.sign()
}

fn payload(msg: &Message, out: &mut Vec<u8>) -> Result<(), FrameError> {
    match msg {
        Message::Begin { generation } => out.extend_from_slice(&generation.to_be_bytes()),
        Message::End { entries } => out.extend_from_slice(&entries.to_be_bytes()),
        Message::Ack { seq } => out.extend_from_slice(&seq.to_be_bytes()),
        Message::Keepalive => {}
        Message::Entries { table, entries } => {
            let table = short(table)?;
            let count =
                u16::try_from(entries.len()).map_err(|_| FrameError::Length(entries.len()))?;
            out.push(table.len() as u8);
            out.extend_from_slice(table);
            out.extend_from_slice(&count.to_be_bytes());
            for e in entries {
                let server = short(&e.server)?;
                out.extend_from_slice(&e.key.to_be_bytes());
                let ms = u32::try_from(e.age.as_millis()).unwrap_or(u32::MAX);
                out.extend_from_slice(&ms.to_be_bytes());
                out.push(server.len() as u8);
                out.extend_from_slice(server);
            }
        }
    }
    Ok(())
}

fn short(s: &str) -> Result<&[u8], FrameError> {
    (s.len() <= 255)
        .then_some(s.as_bytes())
        .ok_or(FrameError::NameTooLong)
}

/// A bounds-checked cursor: every read is a `Truncated` error past the end, never a panic.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        if self.0.len() < n {
            return Err(FrameError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, FrameError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, FrameError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, FrameError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }

    fn string(&mut self) -> Result<String, FrameError> {
        let n = usize::from(self.u8()?);
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| FrameError::Utf8)
    }

    fn end(&self) -> Result<(), FrameError> {
        match self.0.len() {
            0 => Ok(()),
            n => Err(FrameError::Trailing(n)),
        }
    }
}

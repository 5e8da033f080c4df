//! ClientHello and ServerHello, read without decrypting anything (passthrough).
//!
//! [`parse_client_hello`] and [`parse_server_hello`] take the first bytes of a connection
//! (TLS records, RFC 8446 §5.1 / RFC 5246 §6.2) and return the fields passthrough routes on:
//! SNI (RFC 6066 §3), ALPN (RFC 7301), the legacy session id and, for the server, the version
//! it chose (RFC 8446 §4.2.1 `supported_versions`). A handshake message split over several
//! records is reassembled. They never panic: short input is [`HelloError::Incomplete`] (read
//! more and call again), anything else that does not parse is another error.
//!
//! TLS 1.3 session ids carry no meaning: a 1.3 client sends 32 random bytes in
//! `legacy_session_id` for middlebox compatibility (RFC 8446 §D.4) and resumes with PSK
//! tickets the balancer cannot read. Only a TLS 1.2 ServerHello's non-empty session id names
//! a session worth sticking to.

const CONTENT_HANDSHAKE: u8 = 22;
const CLIENT_HELLO: u8 = 1;
const SERVER_HELLO: u8 = 2;
const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;
const EXT_SUPPORTED_VERSIONS: u16 = 43;
/// Largest handshake message we reassemble; a ClientHello with post-quantum key shares is
/// under 2 KiB, so this is generous while bounding memory per connection.
pub const MAX_HELLO: usize = 16 * 1024;
pub const TLS12: u16 = 0x0303;
pub const TLS13: u16 = 0x0304;

#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum HelloError {
    /// More bytes are needed.
    #[error("incomplete TLS hello")]
    Incomplete,
    #[error("not a TLS handshake record")]
    NotHandshake,
    #[error("unexpected handshake message type {0}")]
    UnexpectedMessage(u8),
    #[error("hello larger than {MAX_HELLO} bytes")]
    TooLarge,
    #[error("malformed hello: {0}")]
    Malformed(&'static str),
}

/// What passthrough reads from a ClientHello.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientHello {
    /// The host name of the `server_name` extension, lower-cased.
    pub sni: Option<String>,
    pub alpn: Vec<Vec<u8>>,
    pub session_id: Vec<u8>,
    /// Versions of `supported_versions`; empty when the client sent none (TLS 1.2 or older).
    pub versions: Vec<u16>,
}

/// What passthrough reads from a ServerHello.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerHello {
    /// The negotiated version (from `supported_versions` when present).
    pub version: u16,
    pub session_id: Vec<u8>,
}

impl ServerHello {
    /// The session id identifies a resumable TLS 1.2 session (see the module docs).
    pub fn sticky_session_id(&self) -> Option<&[u8]> {
        (self.version <= TLS12 && !self.session_id.is_empty()).then_some(&self.session_id[..])
    }
}

pub fn parse_client_hello(input: &[u8]) -> Result<ClientHello, HelloError> {
    let body = handshake_message(input, CLIENT_HELLO)?;
    let mut r = Reader(&body);
    r.take(2 + 32)?; // legacy_version, random
    let session_id = r.vec8()?.to_vec();
    r.vec16()?; // cipher_suites
    r.vec8()?; // compression_methods
    let mut hello = ClientHello {
        session_id,
        ..ClientHello::default()
    };
    if r.0.is_empty() {
        return Ok(hello);
    }
    let mut exts = Reader(r.vec16()?);
    while !exts.0.is_empty() {
        let ty = exts.u16()?;
        let mut data = Reader(exts.vec16()?);
        match ty {
            EXT_SERVER_NAME => {
                let mut list = Reader(data.vec16()?);
                while !list.0.is_empty() {
                    let kind = list.u8()?;
                    let name = list.vec16()?;
                    if kind == 0 && hello.sni.is_none() {
                        let name = std::str::from_utf8(name)
                            .map_err(|_| HelloError::Malformed("server name not UTF-8"))?;
                        hello.sni = Some(name.to_ascii_lowercase());
                    }
                }
            }
            EXT_ALPN => {
                let mut list = Reader(data.vec16()?);
                while !list.0.is_empty() {
                    hello.alpn.push(list.vec8()?.to_vec());
                }
            }
            EXT_SUPPORTED_VERSIONS => {
                let mut list = Reader(data.vec8()?);
                while !list.0.is_empty() {
                    hello.versions.push(list.u16()?);
                }
            }
            _ => {}
        }
    }
    Ok(hello)
}

pub fn parse_server_hello(input: &[u8]) -> Result<ServerHello, HelloError> {
    let body = handshake_message(input, SERVER_HELLO)?;
    let mut r = Reader(&body);
    let mut version = r.u16()?;
    r.take(32)?;
    let session_id = r.vec8()?.to_vec();
    r.take(2 + 1)?; // cipher_suite, compression_method
    if !r.0.is_empty() {
        let mut exts = Reader(r.vec16()?);
        while !exts.0.is_empty() {
            let ty = exts.u16()?;
            let mut data = Reader(exts.vec16()?);
            if ty == EXT_SUPPORTED_VERSIONS {
                version = data.u16()?;
            }
        }
    }
    Ok(ServerHello {
        version,
        session_id,
    })
}

/// Reassembles the first handshake message from the records in `input` and checks its type.
fn handshake_message(input: &[u8], want: u8) -> Result<Vec<u8>, HelloError> {
    let mut records = Reader(input);
    let mut hs = Vec::new();
    loop {
        if hs.len() >= 4 {
            let len = usize::from(hs[1]) << 16 | usize::from(hs[2]) << 8 | usize::from(hs[3]);
            if hs[0] != want {
                return Err(HelloError::UnexpectedMessage(hs[0]));
            }
            if len > MAX_HELLO {
                return Err(HelloError::TooLarge);
            }
            if hs.len() >= 4 + len {
                hs.truncate(4 + len);
                return Ok(hs.split_off(4));
            }
        }
        if records.0.len() < 5 {
            return Err(HelloError::Incomplete);
        }
        let header = records.take(5)?;
        if header[0] != CONTENT_HANDSHAKE || header[1] != 3 {
            return Err(HelloError::NotHandshake);
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if len == 0 {
            return Err(HelloError::Malformed("empty record"));
        }
        let fragment = records.take(len).map_err(|_| HelloError::Incomplete)?;
        if hs.len() + fragment.len() > MAX_HELLO + 4 + (1 << 14) {
            return Err(HelloError::TooLarge);
        }
        hs.extend_from_slice(fragment);
    }
}

/// A cursor whose every read is bounds-checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], HelloError> {
        if self.0.len() < n {
            return Err(HelloError::Malformed("length beyond the message"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, HelloError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, HelloError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn vec8(&mut self) -> Result<&'a [u8], HelloError> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }

    fn vec16(&mut self) -> Result<&'a [u8], HelloError> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

#[cfg(test)]
#[path = "hello_tests.rs"]
mod tests;

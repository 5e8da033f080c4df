//! HTTP/1.1 towards servers, sans-IO: the request head the proxy writes, the response head
//! it parses (RFC 9112 §4-§6), and the chunked decoder for response bodies (§7.1). The I/O
//! shell (`super`) feeds these the bytes a server sent; nothing here reads a socket or a
//! clock. Public for the `upstream_response` fuzz target.

use std::mem::MaybeUninit;

use bytes::{Buf, Bytes, BytesMut};
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};

use crate::http::headers::is_hop_by_hop;

/// Response header fields a server may send; more is refused (hyper's default is 100).
pub const MAX_RESPONSE_HEADERS: usize = 128;
/// Longest response head accepted, and longest chunk-size or trailer line.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
const MAX_LINE: usize = 4096;
/// Trailer bytes a chunked body may carry (they are read and dropped).
const MAX_TRAILER_BYTES: usize = 16 * 1024;
/// Bodies at most this long are copied out of the read buffer (which then stays reusable
/// for the next response) instead of splitting it.
const COPY_BELOW: usize = 4096;

/// A server's response that cannot be read as HTTP/1.1.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("malformed response head: {0}")]
    Head(&'static str),
    #[error("response head larger than {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
    #[error("invalid Content-Length")]
    ContentLength,
    #[error("malformed chunked body: {0}")]
    Chunk(&'static str),
}

/// How a request body is framed towards the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestFraming {
    /// No body and no Content-Length (GET and friends).
    None,
    Length(u64),
    Chunked,
}

/// How a response body ends (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseFraming {
    /// No body: a HEAD request, 1xx, 204 or 304.
    Empty,
    Length(u64),
    Chunked,
    /// Until the server closes the connection.
    Close,
}

/// A parsed response head.
#[derive(Debug)]
pub struct Head {
    pub status: StatusCode,
    pub version: Version,
    /// End-to-end fields only.
    pub headers: HeaderMap,
    pub framing: ResponseFraming,
    /// Whether the connection may carry another request once this response is read.
    pub keep_alive: bool,
}

/// Writes the request head for `method path` with `host` (when given) and `headers`
/// (hop-by-hop fields already removed; any Content-Length or Transfer-Encoding left is
/// replaced by `framing`).
pub fn encode_request_head(
    out: &mut Vec<u8>,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    host: Option<&HeaderValue>,
    framing: RequestFraming,
) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if let Some(host) = host {
        out.extend_from_slice(b"host: ");
        out.extend_from_slice(host.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        RequestFraming::None => {}
        RequestFraming::Length(n) => {
            out.extend_from_slice(b"content-length: ");
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        RequestFraming::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    out.extend_from_slice(b"\r\n");
}

/// The line that opens a chunk of `len` bytes.
pub fn chunk_header(out: &mut Vec<u8>, len: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = (usize::BITS - len.leading_zeros()).div_ceil(4).max(1);
    for i in (0..digits).rev() {
        out.push(HEX[(len >> (i * 4)) & 0xf]);
    }
    out.extend_from_slice(b"\r\n");
}

/// Parses a response head at the start of `buf`: `Ok(None)` while incomplete, else the head
/// and the bytes it took. `head_request`: the request was HEAD (no body follows, whatever
/// the head says). The head's fields are the end-to-end ones: hop-by-hop fields, and any
/// the Connection field names, are read for framing and left out.
pub fn parse_response_head(
    buf: &[u8],
    head_request: bool,
) -> Result<Option<(usize, Head)>, WireError> {
    let mut fields =
        [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_RESPONSE_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut resp,
        buf,
        &mut fields,
    );
    let used = match parsed {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => {
            return Err(WireError::HeadTooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(WireError::Head("too many fields")),
        Err(_) => return Err(WireError::Head("not HTTP/1.x")),
    };
    let code = resp.code.ok_or(WireError::Head("no status"))?;
    let status = StatusCode::from_u16(code).map_err(|_| WireError::Head("status"))?;
    let version = match resp.version {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    };
    // Framing and the connection's fate first; names the Connection field lists are
    // hop-by-hop too (rare: collected only when there are any).
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut te = false;
    let mut close = version == Version::HTTP_10;
    let mut listed: Vec<&[u8]> = Vec::new();
    for f in resp.headers.iter() {
        let name = f.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_length(f.value)?;
            if length.is_some_and(|l| l != n) {
                return Err(WireError::ContentLength);
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            te = true;
            // Only the last coding decides (RFC 9112 §6.3): `gzip, chunked` is chunked.
            chunked = last_token(f.value).eq_ignore_ascii_case(b"chunked");
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in f.value.split(|b| *b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    close &= version != Version::HTTP_10;
                } else if !token.is_empty() {
                    listed.push(token);
                }
            }
        }
    }
    // Every value shares one copy of the head instead of a copy each.
    let block = Bytes::copy_from_slice(&buf[..used]);
    let mut headers = HeaderMap::with_capacity(resp.headers.len());
    for f in resp.headers.iter() {
        let name = f.name.as_bytes();
        if is_hop_by_hop(name) || listed.iter().any(|l| l.eq_ignore_ascii_case(name)) {
            continue;
        }
        let name = HeaderName::from_bytes(name).map_err(|_| WireError::Head("field name"))?;
        let at = f.value.as_ptr() as usize - buf.as_ptr() as usize;
        let value = HeaderValue::from_maybe_shared(block.slice(at..at + f.value.len()))
            .map_err(|_| WireError::Head("field value"))?;
        headers.append(name, value);
    }
    let no_body = bodiless(head_request, status);
    let framing = if no_body {
        ResponseFraming::Empty
    } else if te {
        // Transfer-Encoding wins over Content-Length; a response framed both ways is not
        // trusted with another request on the connection.
        close |= length.is_some();
        if chunked {
            ResponseFraming::Chunked
        } else {
            ResponseFraming::Close
        }
    } else {
        match length {
            Some(0) => ResponseFraming::Empty,
            Some(n) => ResponseFraming::Length(n),
            None => ResponseFraming::Close,
        }
    };
    let keep_alive =
        !close && framing != ResponseFraming::Close && status != StatusCode::SWITCHING_PROTOCOLS;
    Ok(Some((
        used,
        Head {
            status,
            version,
            headers,
            framing,
            keep_alive,
        },
    )))
}

fn parse_length(v: &[u8]) -> Result<u64, WireError> {
    let v = v.trim_ascii();
    if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
        return Err(WireError::ContentLength);
    }
    Ok(v.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
}

/// Whether a response to a request (HEAD or not) with `status` has no body (RFC 9112 §6.3).
pub fn bodiless(head_request: bool, status: StatusCode) -> bool {
    head_request
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
}

fn last_token(v: &[u8]) -> &[u8] {
    v.rsplit(|b| *b == b',').next().unwrap_or(v).trim_ascii()
}

/// What one step of a body decoder produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    Data(Bytes),
    /// The buffer holds no complete next piece: read more.
    NeedMore,
    /// The body ended; bytes after it stay in the buffer.
    End,
}

/// Takes up to `n` bytes off the front of `buf` as one frame.
pub fn take(buf: &mut BytesMut, n: usize) -> Bytes {
    let n = n.min(buf.len());
    if n < COPY_BELOW {
        let data = Bytes::copy_from_slice(&buf[..n]);
        buf.advance(n);
        data
    } else {
        buf.split_to(n).freeze()
    }
}

/// A chunked body decoder (RFC 9112 §7.1): sizes in hex, extensions ignored, trailers read
/// and dropped, anything else refused.
#[derive(Debug, Default)]
pub struct ChunkDecoder {
    state: ChunkState,
    trailer_bytes: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    Data(u64),
    DataEnd,
    Trailers,
    Done,
}

impl ChunkDecoder {
    /// Decodes what `buf` holds, consuming it.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Decoded, WireError> {
        loop {
            match self.state {
                ChunkState::Size => {
                    let Some(n) = line_len(buf)? else {
                        return Ok(Decoded::NeedMore);
                    };
                    let size = parse_chunk_size(&buf[..n])?;
                    buf.advance(n + 2);
                    self.state = if size == 0 {
                        ChunkState::Trailers
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    if buf.is_empty() {
                        return Ok(Decoded::NeedMore);
                    }
                    let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
                    let data = take(buf, n);
                    let left = left - n as u64;
                    self.state = if left == 0 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left)
                    };
                    return Ok(Decoded::Data(data));
                }
                ChunkState::DataEnd => {
                    if buf.len() < 2 {
                        return Ok(Decoded::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(WireError::Chunk("no CRLF after chunk data"));
                    }
                    buf.advance(2);
                    self.state = ChunkState::Size;
                }
                ChunkState::Trailers => {
                    let Some(n) = line_len(buf)? else {
                        return Ok(Decoded::NeedMore);
                    };
                    buf.advance(n + 2);
                    if n == 0 {
                        self.state = ChunkState::Done;
                        return Ok(Decoded::End);
                    }
                    self.trailer_bytes += n + 2;
                    if self.trailer_bytes > MAX_TRAILER_BYTES {
                        return Err(WireError::Chunk("trailers too large"));
                    }
                }
                ChunkState::Done => return Ok(Decoded::End),
            }
        }
    }
}

/// The length of the CRLF-terminated line at the front of `buf` (without the CRLF), once
/// it is complete. The caller reads it in place and advances past it: no split, so the
/// buffer stays unique.
fn line_len(buf: &[u8]) -> Result<Option<usize>, WireError> {
    match buf.windows(2).position(|w| w == b"\r\n") {
        Some(at) if at > MAX_LINE => Err(WireError::Chunk("line too long")),
        Some(at) => Ok(Some(at)),
        None if buf.len() > MAX_LINE => Err(WireError::Chunk("line too long")),
        None => Ok(None),
    }
}

fn parse_chunk_size(line: &[u8]) -> Result<u64, WireError> {
    // `size [BWS ; ext]`: only the hex digits before any extension count.
    let end = line
        .iter()
        .position(|b| matches!(b, b';' | b' ' | b'\t'))
        .unwrap_or(line.len());
    let (digits, rest) = line.split_at(end);
    if digits.is_empty() || digits.len() > 15 {
        return Err(WireError::Chunk("chunk size"));
    }
    let rest = rest.trim_ascii_start();
    if !rest.is_empty() && rest[0] != b';' {
        return Err(WireError::Chunk("chunk size"));
    }
    digits.iter().try_fold(0u64, |n, d| {
        let v = (*d as char)
            .to_digit(16)
            .ok_or(WireError::Chunk("chunk size"))?;
        Ok(n * 16 + u64::from(v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str, head_request: bool) -> Result<Option<(usize, Head)>, WireError> {
        parse_response_head(raw.as_bytes(), head_request)
    }

    /// The head of a response that holds a complete, valid one.
    fn complete(raw: &str, head_request: bool) -> Head {
        head(raw, head_request).unwrap().expect("a complete head").1
    }

    #[test]
    fn request_head_replaces_framing_fields() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("a"));
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("99"));
        h.append("x-a", HeaderValue::from_static("1"));
        h.append("x-a", HeaderValue::from_static("2"));
        let mut out = Vec::new();
        encode_request_head(
            &mut out,
            &Method::POST,
            "/p?q",
            &h,
            None,
            RequestFraming::Length(3),
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /p?q HTTP/1.1\r\nhost: a\r\nx-a: 1\r\nx-a: 2\r\ncontent-length: 3\r\n\r\n"
        );
        let mut out = Vec::new();
        let name = HeaderValue::from_static("10.0.0.1:80");
        encode_request_head(
            &mut out,
            &Method::PUT,
            "/",
            &h,
            Some(&name),
            RequestFraming::Chunked,
        );
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.starts_with("PUT / HTTP/1.1\r\nhost: 10.0.0.1:80\r\n"),
            "{out}"
        );
        assert!(
            out.ends_with("x-a: 2\r\ntransfer-encoding: chunked\r\n\r\n"),
            "{out}"
        );
    }

    #[test]
    fn chunk_headers_are_lowercase_hex() {
        for (len, text) in [(0, "0"), (9, "9"), (10, "a"), (255, "ff"), (4096, "1000")] {
            let mut out = Vec::new();
            chunk_header(&mut out, len);
            assert_eq!(out, format!("{text}\r\n").as_bytes(), "{len}");
        }
        let mut out = Vec::new();
        chunk_header(&mut out, usize::MAX);
        assert_eq!(out.len(), usize::BITS as usize / 4 + 2);
    }

    #[test]
    fn response_framing_follows_rfc_9112_section_6_3() {
        let (n, h) = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false)
            .unwrap()
            .unwrap();
        assert_eq!(n, 38);
        assert_eq!(h.framing, ResponseFraming::Length(5));
        assert!(h.keep_alive);
        let h = complete("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true);
        assert_eq!(h.framing, ResponseFraming::Empty);
        let h = complete(
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
            false,
        );
        assert_eq!(h.framing, ResponseFraming::Empty);
        let h = complete(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n",
            false,
        );
        assert_eq!(h.framing, ResponseFraming::Chunked);
        assert!(
            !h.keep_alive,
            "TE with CL is not trusted with another request"
        );
        let h = complete("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false);
        assert_eq!(h.framing, ResponseFraming::Close);
        let h = complete("HTTP/1.1 200 OK\r\n\r\n", false);
        assert_eq!((h.framing, h.keep_alive), (ResponseFraming::Close, false));
        let h = complete("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", false);
        assert!(!h.keep_alive);
        let h = complete(
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n",
            false,
        );
        assert!(h.keep_alive);
        let h = complete(
            "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n",
            false,
        );
        assert!(!h.keep_alive);
        let h = complete(
            "HTTP/1.1 200 OK\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\n\
             Keep-Alive: 5\r\nServer: s\r\nContent-Length: 1\r\n\r\n",
            false,
        );
        let names: Vec<&str> = h.headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            ["server", "content-length"],
            "hop-by-hop fields are left out"
        );
        assert_eq!(h.headers["server"], "s");
        assert!(!h.keep_alive);
    }

    #[test]
    fn bad_response_heads_are_errors() {
        assert_eq!(
            head("HTTP/1.1 200 OK\r\nContent-Len", false)
                .unwrap()
                .map(|x| x.0),
            None
        );
        for bad in [
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX : a\r\n\r\n",
            "SSH-2.0-OpenSSH\r\n\r\n",
            "HTTP/1.1 999999 OK\r\n\r\n",
        ] {
            assert!(head(bad, false).is_err(), "{bad:?}");
        }
        let same = head(
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            false,
        );
        assert_eq!(same.unwrap().unwrap().1.framing, ResponseFraming::Length(5));
        let big = format!("HTTP/1.1 200 OK\r\nX: {}", "a".repeat(MAX_HEAD_BYTES + 1));
        assert_eq!(head(&big, false).unwrap_err(), WireError::HeadTooLarge);
    }

    fn decode_all(input: &[u8]) -> Result<(Vec<u8>, usize), WireError> {
        // Byte by byte: every split point of the input is a read boundary.
        let mut dec = ChunkDecoder::default();
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        for (i, b) in input.iter().enumerate() {
            buf.extend_from_slice(&[*b]);
            loop {
                match dec.decode(&mut buf)? {
                    Decoded::Data(d) => body.extend_from_slice(&d),
                    Decoded::NeedMore => break,
                    Decoded::End => return Ok((body, input.len() - i - 1 + buf.len())),
                }
            }
        }
        Err(WireError::Chunk("unfinished"))
    }

    #[test]
    fn chunked_bodies_decode_across_any_read_boundary() {
        let (body, rest) =
            decode_all(b"5;ext=1\r\nhello\r\n6 ; x\r\n world\r\n0\r\nTrailer: t\r\n\r\nNEXT")
                .unwrap();
        assert_eq!(body, b"hello world");
        assert_eq!(rest, 4, "bytes after the body stay for the next response");
        let (body, _) = decode_all(b"A\r\n0123456789\r\n0\r\n\r\n").unwrap();
        assert_eq!(body, b"0123456789");
    }

    #[test]
    fn bad_chunks_are_errors() {
        for bad in [
            &b"x\r\nhello\r\n0\r\n\r\n"[..],
            b"5\r\nhelloXX0\r\n\r\n",
            b"-5\r\nhello\r\n0\r\n\r\n",
            b"5 5\r\nhello\r\n0\r\n\r\n",
            b"\r\nhello\r\n0\r\n\r\n",
            b"1000000000000000\r\n",
        ] {
            assert!(
                decode_all(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = [b"1".repeat(MAX_LINE + 10), b"\r\n".to_vec()].concat();
        assert!(decode_all(&long).is_err());
    }
}

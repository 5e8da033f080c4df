//! HTTP and content checks over a minimal HTTP/1.1 client.
//!
//! Why not hyper's client: a check wants one fresh connection per probe (a pooled connection
//! would hide a server that stopped accepting), a hard cap on the bytes read, one deadline for
//! the whole exchange, and nothing else; that is ~150 lines over tokio with `httparse` for the
//! response head, and it keeps hyper-util out of this crate's dependencies.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{left, tcp};
use crate::outcome::ProbeError;
use crate::spec::HttpCheck;

const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;

/// How the body of a response is delimited.
#[doc(hidden)] // public only for the fuzz targets
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// Run the check; `Ok` carries the pass reason.
pub async fn check(
    h: &HttpCheck,
    addr: SocketAddr,
    deadline: Instant,
) -> Result<String, ProbeError> {
    h.validate()
        .map_err(|e| ProbeError::Unavailable(format!("bad http check: {e}")))?;
    let mut stream = tcp::connect(addr, deadline).await?;
    let budget = left(deadline);
    match tokio::time::timeout_at(deadline, exchange(h, addr, &mut stream)).await {
        Err(_) => Err(ProbeError::ResponseTimeout(budget)),
        Ok(r) => r,
    }
}

async fn exchange(
    h: &HttpCheck,
    addr: SocketAddr,
    s: &mut TcpStream,
) -> Result<String, ProbeError> {
    let host = h.host.clone().unwrap_or_else(|| addr.to_string());
    let req = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: tenbin-health\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        h.method, h.path, host
    );
    s.write_all(req.as_bytes()).await.map_err(ProbeError::Io)?;

    let mut buf = Vec::with_capacity(4096);
    let (status, framing, head_len) = loop {
        if read_some(s, &mut buf).await? == 0 {
            return Err(ProbeError::Malformed(
                "connection closed before the response head",
            ));
        }
        if let Some(head) = parse_head(&buf, &h.method)? {
            break head;
        }
        if buf.len() > MAX_HEAD {
            return Err(ProbeError::Malformed("response head too large"));
        }
    };
    if !h.status_ok(status) {
        return Err(ProbeError::Status {
            got: status,
            expected: h.expect_status.clone(),
        });
    }
    if !h.wants_body() {
        return Ok(format!("HTTP {status}"));
    }
    let mut body = buf.split_off(head_len);
    let limit = h.max_body;
    loop {
        let done = match framing {
            Framing::Length(n) => body.len() >= n,
            Framing::Chunked => decode_chunked(&body)?.1,
            Framing::UntilClose => false,
        };
        if done || body.len() >= limit || read_some(s, &mut body).await? == 0 {
            break;
        }
    }
    let bytes = match framing {
        Framing::Chunked => decode_chunked(&body)?.0,
        Framing::Length(n) => body.into_iter().take(n).collect(),
        Framing::UntilClose => body,
    };
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(limit)]);
    if let Some(want) = &h.expect_body {
        if !text.contains(want.as_str()) {
            return Err(ProbeError::BodyMismatch(want.clone()));
        }
    }
    if let Some(re) = &h.expect_regex {
        if !re.is_match(&text) {
            return Err(ProbeError::RegexMismatch(re.as_str().to_string()));
        }
    }
    Ok(format!("HTTP {status}, content matches"))
}

async fn read_some(s: &mut TcpStream, buf: &mut Vec<u8>) -> Result<usize, ProbeError> {
    let mut chunk = [0u8; 4096];
    let n = s.read(&mut chunk).await.map_err(ProbeError::Io)?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

/// Parse the response head: `Some((status, framing, head length))` once complete.
#[doc(hidden)] // public only for the fuzz targets
pub fn parse_head(buf: &[u8], method: &str) -> Result<Option<(u16, Framing, usize)>, ProbeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(ProbeError::Malformed("invalid response head")),
    };
    let status = resp.code.ok_or(ProbeError::Malformed("no status code"))?;
    // httparse takes any three digits; RFC 9110 §15 defines 100..=599 only.
    if !(100..=599).contains(&status) {
        return Err(ProbeError::Malformed("status code outside 100-599"));
    }
    let mut framing = Framing::UntilClose;
    for hd in resp.headers.iter() {
        if hd.name.eq_ignore_ascii_case("transfer-encoding") {
            let v = String::from_utf8_lossy(hd.value);
            if v.to_ascii_lowercase().contains("chunked") {
                framing = Framing::Chunked;
            }
        } else if hd.name.eq_ignore_ascii_case("content-length") && framing != Framing::Chunked {
            let n = std::str::from_utf8(hd.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or(ProbeError::Malformed("bad content-length"))?;
            framing = Framing::Length(n);
        }
    }
    if method.eq_ignore_ascii_case("HEAD") || status == 204 || status == 304 {
        framing = Framing::Length(0);
    }
    Ok(Some((status, framing, head_len)))
}

/// Decode as much of a chunked body as `raw` holds: the data, and whether the last chunk was
/// seen. Trailers are not needed for a check and are not read.
#[doc(hidden)] // public only for the fuzz targets
pub fn decode_chunked(raw: &[u8]) -> Result<(Vec<u8>, bool), ProbeError> {
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        let Some(nl) = raw[pos..].windows(2).position(|w| w == b"\r\n") else {
            return Ok((out, false));
        };
        let line = &raw[pos..pos + nl];
        let size_txt = line.split(|&b| b == b';').next().unwrap_or_default();
        let size_txt = std::str::from_utf8(size_txt)
            .map_err(|_| ProbeError::Malformed("bad chunk size"))?
            .trim();
        let size = usize::from_str_radix(size_txt, 16)
            .map_err(|_| ProbeError::Malformed("bad chunk size"))?;
        pos += nl + 2;
        if size == 0 {
            return Ok((out, true));
        }
        let end = pos.saturating_add(size).min(raw.len());
        out.extend_from_slice(&raw[pos..end]);
        if end < pos.saturating_add(size) || raw.len() < end + 2 {
            return Ok((out, false));
        }
        pos = end + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_decode_whole_and_partial() {
        let raw = b"4\r\nWiki\r\n6;ext=1\r\npedia \r\n0\r\n\r\n";
        assert_eq!(decode_chunked(raw).unwrap(), (b"Wikipedia ".to_vec(), true));
        assert_eq!(decode_chunked(&raw[..6]).unwrap(), (b"Wik".to_vec(), false));
        assert_eq!(
            decode_chunked(&raw[..9]).unwrap(),
            (b"Wiki".to_vec(), false)
        );
        assert!(decode_chunked(b"zz\r\nabc").is_err());
    }

    #[test]
    fn heads_give_status_and_framing() {
        let h = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(
            parse_head(h, "GET").unwrap(),
            Some((200, Framing::Length(5), 38))
        );
        let h = b"HTTP/1.1 503 X\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(
            parse_head(h, "GET").unwrap().map(|x| x.1),
            Some(Framing::Chunked)
        );
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\n", "GET").unwrap(), None);
        assert!(parse_head(b"garbage\r\n\r\n", "GET").is_err());
        let h = b"HTTP/1.0 200 OK\r\n\r\n";
        assert_eq!(
            parse_head(h, "HEAD").unwrap().map(|x| x.1),
            Some(Framing::Length(0))
        );
    }

    #[test]
    fn status_codes_outside_rfc9110_are_malformed() {
        // Found by fuzz/fuzz_targets/http_check_response.rs: httparse reads "020" as 20.
        let h = b"HTTP/1.1 020 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n";
        assert!(matches!(
            parse_head(h, "GET"),
            Err(ProbeError::Malformed(_))
        ));
        assert!(parse_head(b"HTTP/1.1 600 X\r\n\r\n", "GET").is_err());
        assert!(parse_head(b"HTTP/1.1 099 X\r\n\r\n", "GET").is_err());
        for ok in [100u16, 599] {
            let head = format!("HTTP/1.1 {ok} X\r\n\r\n");
            assert_eq!(
                parse_head(head.as_bytes(), "GET").unwrap().map(|h| h.0),
                Some(ok)
            );
        }
    }

    #[test]
    fn decoders_never_panic_on_noise() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for len in 0..400usize {
            let buf: Vec<u8> = (0..len)
                .map(|i| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    // mix in protocol bytes so the decoders get past their first checks
                    match (x >> 60) as usize % 4 {
                        0 => b"\r\n0123456789abcdef"[i % 18],
                        _ => (x >> 33) as u8,
                    }
                })
                .collect();
            let _ = decode_chunked(&buf);
            let _ = parse_head(&buf, "GET");
        }
    }
}

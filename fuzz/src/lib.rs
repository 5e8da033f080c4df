//! Helpers the fuzz targets share.

use libfuzzer_sys::arbitrary::{self, Arbitrary};

/// Where to cut an input of `len` bytes to check how a decoder treats its prefixes: every
/// length of a short input; of a long one 40 spread lengths and the last 8 (all lengths
/// would make each run quadratic in the input).
pub fn cuts(len: usize) -> Vec<usize> {
    if len <= 48 {
        (0..len).collect()
    } else {
        (0..40).map(|i| i * len / 40).chain(len - 8..len).collect()
    }
}

/// A body to send chunked, as arbitrary input describes it: the bytes, the chunk sizes (255
/// past the end of `sizes`, 1 at least), hex sizes in upper case or not, an extension on
/// every chunk or not, a trailer field or not.
#[derive(Arbitrary, Debug)]
pub struct ChunkedBody {
    pub body: Vec<u8>,
    pub sizes: Vec<u8>,
    pub upper: bool,
    pub extension: bool,
    pub trailer: bool,
}

impl ChunkedBody {
    /// The body in chunked transfer coding (RFC 9112 §7.1), last chunk and trailers included.
    pub fn encode(&self) -> Vec<u8> {
        let mut raw = Vec::new();
        let mut rest = &self.body[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = usize::from(self.sizes.get(i).copied().unwrap_or(255).max(1)).min(rest.len());
            let size = if self.upper {
                format!("{n:X}")
            } else {
                format!("{n:x}")
            };
            raw.extend_from_slice(size.as_bytes());
            if self.extension {
                raw.extend_from_slice(b";name=value");
            }
            raw.extend_from_slice(b"\r\n");
            raw.extend_from_slice(&rest[..n]);
            raw.extend_from_slice(b"\r\n");
            rest = &rest[n..];
            i += 1;
        }
        raw.extend_from_slice(b"0\r\n");
        if self.trailer {
            raw.extend_from_slice(b"Expires: never\r\n");
        }
        raw.extend_from_slice(b"\r\n");
        raw
    }
}

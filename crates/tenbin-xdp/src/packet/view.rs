//! A checked view of the outer headers the Mux emits (Ethernet, optional VLAN tag, IPv4 or
//! IPv6, optional GRE). Short or foreign frames give `None`, never a panic.

use std::net::IpAddr;

use super::checksum;

/// The outer headers of an emitted frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outer {
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
    pub vlan: Option<u16>,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IP protocol / next header of the outer IP header.
    pub proto: u8,
    /// For GRE: the protocol type field.
    pub gre_type: Option<u16>,
    /// Offset of the inner (payload) bytes after the outer IP (and GRE) header.
    pub inner_offset: usize,
    /// IPv4 header checksum verifies (always true for IPv6).
    pub header_ok: bool,
    /// Outer IPv4 total length / IPv6 payload length + 40 equals the bytes present.
    pub length_ok: bool,
}

/// Reads the outer Ethernet/IP(/GRE) headers of `f`.
pub fn outer(f: &[u8]) -> Option<Outer> {
    let dst_mac: [u8; 6] = f.get(0..6)?.try_into().ok()?;
    let src_mac: [u8; 6] = f.get(6..12)?.try_into().ok()?;
    let mut off = 12;
    let mut vlan = None;
    let mut ty = u16::from_be_bytes(f.get(off..off + 2)?.try_into().ok()?);
    if ty == 0x8100 {
        vlan = Some(u16::from_be_bytes(f.get(14..16)?.try_into().ok()?));
        off += 4;
        ty = u16::from_be_bytes(f.get(off..off + 2)?.try_into().ok()?);
    }
    off += 2;
    let ip = f.get(off..)?;
    let (src, dst, proto, hl, header_ok, length_ok) = match ty {
        0x0800 => {
            let h = ip.get(..20)?;
            let hl = usize::from(h[0] & 0x0f) * 4;
            let src: [u8; 4] = h[12..16].try_into().ok()?;
            let dst: [u8; 4] = h[16..20].try_into().ok()?;
            let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
            (
                IpAddr::from(src),
                IpAddr::from(dst),
                h[9],
                hl,
                checksum(&[ip.get(..hl)?]) == 0,
                total == ip.len(),
            )
        }
        0x86dd => {
            let h = ip.get(..40)?;
            let src: [u8; 16] = h[8..24].try_into().ok()?;
            let dst: [u8; 16] = h[24..40].try_into().ok()?;
            let plen = usize::from(u16::from_be_bytes([h[4], h[5]]));
            (
                IpAddr::from(src),
                IpAddr::from(dst),
                h[6],
                40,
                true,
                plen + 40 == ip.len(),
            )
        }
        _ => return None,
    };
    let mut inner_offset = off + hl;
    let mut gre_type = None;
    if proto == 47 {
        let g = f.get(inner_offset..inner_offset + 4)?;
        gre_type = Some(u16::from_be_bytes([g[2], g[3]]));
        inner_offset += 4;
    }
    Some(Outer {
        dst_mac,
        src_mac,
        vlan,
        src,
        dst,
        proto,
        gre_type,
        inner_offset,
        header_ok,
        length_ok,
    })
}

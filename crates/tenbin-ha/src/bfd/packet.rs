//! The BFD control packet (RFC 5880 §4.1): a checked view of the 24 mandatory bytes and the
//! reception checks of §6.8.6 that need no session. Authentication is not offered, so a
//! packet with the A bit is refused.

use std::time::Duration;

pub const LEN: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    AdminDown,
    Down,
    Init,
    Up,
}

impl State {
    fn bits(self) -> u8 {
        match self {
            State::AdminDown => 0,
            State::Down => 1,
            State::Init => 2,
            State::Up => 3,
        }
    }

    fn from_bits(b: u8) -> State {
        match b & 3 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }
}

/// Diagnostic codes (§4.1).
pub mod diag {
    pub const NONE: u8 = 0;
    pub const DETECTION_TIME_EXPIRED: u8 = 1;
    pub const NEIGHBOR_DOWN: u8 = 3;
    pub const ADMIN_DOWN: u8 = 7;
}

/// A control packet's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Control {
    pub diag: u8,
    pub state: State,
    pub poll: bool,
    pub final_: bool,
    pub detect_mult: u8,
    pub my_discr: u32,
    pub your_discr: u32,
    pub desired_min_tx: Duration,
    pub required_min_rx: Duration,
}

/// Why a packet was dropped (§6.8.6); each is counted by the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("shorter than a BFD control packet")]
    Short,
    #[error("version is not 1")]
    Version,
    #[error("length field disagrees with the packet")]
    Length,
    #[error("authentication present but not configured")]
    Auth,
    #[error("multipoint bit set")]
    Multipoint,
    #[error("detect multiplier is zero")]
    DetectMult,
    #[error("my discriminator is zero")]
    MyDiscriminator,
    #[error("your discriminator is zero outside Down/AdminDown")]
    YourDiscriminator,
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

impl Control {
    pub fn parse(b: &[u8]) -> Result<Control, Refused> {
        if b.len() < LEN {
            return Err(Refused::Short);
        }
        if b[0] >> 5 != 1 {
            return Err(Refused::Version);
        }
        let flags = b[1];
        if flags & 0x04 != 0 {
            return Err(Refused::Auth);
        }
        if usize::from(b[3]) < LEN || usize::from(b[3]) > b.len() {
            return Err(Refused::Length);
        }
        if flags & 0x01 != 0 {
            return Err(Refused::Multipoint);
        }
        let word = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let c = Control {
            diag: b[0] & 0x1f,
            state: State::from_bits(flags >> 6),
            poll: flags & 0x20 != 0,
            final_: flags & 0x10 != 0,
            detect_mult: b[2],
            my_discr: word(4),
            your_discr: word(8),
            desired_min_tx: Duration::from_micros(u64::from(word(12))),
            required_min_rx: Duration::from_micros(u64::from(word(16))),
        };
        if c.detect_mult == 0 {
            return Err(Refused::DetectMult);
        }
        if c.my_discr == 0 {
            return Err(Refused::MyDiscriminator);
        }
        if c.your_discr == 0 && !matches!(c.state, State::Down | State::AdminDown) {
            return Err(Refused::YourDiscriminator);
        }
        Ok(c)
    }

    pub fn emit(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[0] = (1 << 5) | (self.diag & 0x1f);
        b[1] = (self.state.bits() << 6)
            | if self.poll { 0x20 } else { 0 }
            | if self.final_ { 0x10 } else { 0 };
        b[2] = self.detect_mult;
        b[3] = LEN as u8;
        b[4..8].copy_from_slice(&self.my_discr.to_be_bytes());
        b[8..12].copy_from_slice(&self.your_discr.to_be_bytes());
        b[12..16].copy_from_slice(&micros(self.desired_min_tx).to_be_bytes());
        b[16..20].copy_from_slice(&micros(self.required_min_rx).to_be_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let c = Control {
            diag: diag::NONE,
            state: State::Up,
            poll: true,
            final_: false,
            detect_mult: 3,
            my_discr: 7,
            your_discr: 9,
            desired_min_tx: Duration::from_millis(100),
            required_min_rx: Duration::from_millis(100),
        };
        let b = c.emit();
        assert_eq!(
            b,
            [
                0x20, 0xe0, 3, 24, 0, 0, 0, 7, 0, 0, 0, 9, 0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0, 0,
                0, 0, 0
            ]
        );
        assert_eq!(Control::parse(&b), Ok(c));
        assert_eq!(Control::parse(&b[..23]), Err(Refused::Short));
        let mut v = b;
        v[0] = 0x40;
        assert_eq!(Control::parse(&v), Err(Refused::Version));
        let mut a = b;
        a[1] |= 0x04;
        assert_eq!(Control::parse(&a), Err(Refused::Auth));
        let mut m = b;
        m[2] = 0;
        assert_eq!(Control::parse(&m), Err(Refused::DetectMult));
        let mut y = b;
        y[8..12].copy_from_slice(&[0; 4]);
        assert_eq!(Control::parse(&y), Err(Refused::YourDiscriminator));
        let mut l = b;
        l[3] = 30;
        assert_eq!(Control::parse(&l), Err(Refused::Length));
    }
}

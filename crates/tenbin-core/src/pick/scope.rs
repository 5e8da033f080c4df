//! What the per-algorithm functions see of a pool: one group's members, the dynamic half of
//! eligibility and the effective weight.

use std::time::Duration;

use crate::backend::BackendId;
use crate::health::SlowStart;

use super::{ServerView, Track};

/// One group's statically eligible members and what the per-algorithm code may read.
pub(super) struct Scope<'a> {
    /// Indices into `servers`, ascending.
    pub members: &'a [usize],
    /// `weight x load_factor%` of each member, by position (the plan's static half).
    pub base: &'a [u64],
    pub servers: &'a [ServerView],
    pub exclude: &'a [BackendId],
    pub now: Duration,
    pub slow_start: Option<SlowStart>,
}

impl Scope<'_> {
    /// The dynamic half of eligibility (the plan already checked state and weights).
    pub fn open(&self, i: usize) -> bool {
        open(&self.servers[i], self.exclude)
    }

    /// The effective weight of the member at `pos`: `weight x load_factor% x ramp`, in units
    /// of 1/100000 of a configured weight point.
    pub fn weight(&self, pos: usize, track: &Track) -> u64 {
        self.base[pos] * u64::from(self.ramp(track))
    }

    /// The slow-start fraction of a server now, in thousandths (1000 when not ramping).
    pub fn ramp(&self, track: &Track) -> u32 {
        ramp(self.slow_start, track, self.now)
    }

    /// The position of the first open member at or after position `start`, wrapping.
    pub fn open_from(&self, start: usize) -> Option<usize> {
        let n = self.members.len();
        let start = start.min(n);
        (start..n)
            .chain(0..start)
            .find(|&pos| self.open(self.members[pos]))
    }
}

/// A server's slow-start fraction at `now`, in thousandths (1000 when not ramping).
pub(super) fn ramp(slow_start: Option<SlowStart>, track: &Track, now: Duration) -> u32 {
    match (slow_start, track.up_since) {
        (Some(ss), Some(up)) => ss.permille(now.saturating_sub(up)),
        _ => SlowStart::SCALE,
    }
}

/// Below `maxconn` and not excluded by the caller.
pub(super) fn open(s: &ServerView, exclude: &[BackendId]) -> bool {
    s.spec.maxconn.is_none_or(|m| s.active < m) && !exclude.contains(&s.spec.id)
}

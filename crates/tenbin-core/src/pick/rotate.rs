//! The deterministic in-group choices by scanning: round robin and smooth weighted round
//! robin (least connections keeps a tree, see `lctree`).
//!
//! Smooth WRR is NGINX's: every pick adds each open server's effective weight to its running
//! `current`, takes the largest `current` (ties to the lower index) and subtracts the total
//! from it. Over one cycle of `sum(weights)` picks each server is chosen exactly `weight`
//! times, interleaved rather than in bursts.

use super::{Scope, Track};

/// The next open member at or after the cursor (a server index), wrapping.
pub(super) fn round_robin(scope: &Scope<'_>, cursor: &mut usize) -> Option<usize> {
    let start = scope.members.partition_point(|&i| i < *cursor);
    let i = scope.members[scope.open_from(start)?];
    *cursor = i + 1;
    Some(i)
}

pub(super) fn smooth_wrr(scope: &Scope<'_>, tracks: &mut [Track]) -> Option<usize> {
    let mut total: i64 = 0;
    let mut best: Option<(usize, i64)> = None;
    for (pos, &i) in scope.members.iter().enumerate() {
        if !scope.open(i) {
            continue;
        }
        let t = &mut tracks[i];
        let w = scope.weight(pos, t) as i64;
        t.current += w;
        total += w;
        if best.is_none_or(|(_, c)| t.current > c) {
            best = Some((i, t.current));
        }
    }
    let (b, _) = best?;
    tracks[b].current -= total;
    Some(b)
}

//! Power-of-two-choices algorithms: peak-EWMA latency (linkerd, tower) and least request
//! (Envoy).
//!
//! Both draw two distinct members at random (a drawn member that is closed, at `maxconn` or
//! excluded, yields to the next open member in group order) and keep the better one:
//! - peak-EWMA: lower `cost x (active + 1) / weight`, where `cost` is the latency average
//!   that jumps to any observation above it (peak) and otherwise moves towards it with weight
//!   `1 - exp(-elapsed / decay)`; between observations it decays towards zero by the same
//!   factor, so a server that was slow once is retried eventually. A server never observed
//!   costs [`DEFAULT_RTT`].
//! - least request: higher `weight / (active + 1)^bias`.

use std::time::Duration;

use rand_core::RngCore;

use super::{Scope, Track};

/// The cost of a server with no latency observation yet (linkerd's default estimate).
pub const DEFAULT_RTT: Duration = Duration::from_millis(30);

/// A peak-sensitive, exponentially decaying latency average. Time is injected.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PeakEwma {
    /// Nanoseconds, as of `stamp`; `None` before the first observation.
    cost: Option<f64>,
    stamp: Duration,
}

impl PeakEwma {
    /// Folds in one observed latency at `now`.
    pub fn observe(&mut self, rtt: Duration, now: Duration, decay: Duration) {
        let rtt = rtt.as_nanos() as f64;
        let cost = match self.cost {
            None => rtt,
            Some(c) if rtt > c => rtt,
            Some(c) => {
                let w = retain(now.saturating_sub(self.stamp), decay);
                c * w + rtt * (1.0 - w)
            }
        };
        self.cost = Some(cost);
        self.stamp = self.stamp.max(now);
    }

    /// The average at `now`, decayed since the last observation, in nanoseconds.
    pub fn cost(&self, now: Duration, decay: Duration) -> f64 {
        match self.cost {
            None => DEFAULT_RTT.as_nanos() as f64,
            Some(c) => c * retain(now.saturating_sub(self.stamp), decay),
        }
    }
}

/// The share of the old average kept after `elapsed`: `exp(-elapsed / decay)`.
fn retain(elapsed: Duration, decay: Duration) -> f64 {
    if decay.is_zero() {
        return 0.0;
    }
    (-elapsed.as_secs_f64() / decay.as_secs_f64()).exp()
}

pub(super) fn peak_ewma(
    scope: &Scope<'_>,
    tracks: &[Track],
    decay: Duration,
    rng: &mut dyn RngCore,
) -> Option<usize> {
    let score = |pos: usize| {
        let i = scope.members[pos];
        let t = &tracks[i];
        let load = f64::from(scope.servers[i].active) + 1.0;
        t.ewma.cost(scope.now, decay) * load / scope.weight(pos, t) as f64
    };
    let (a, b) = draw_two(scope, rng)?;
    Some(scope.members[if score(b) < score(a) { b } else { a }])
}

pub(super) fn least_request(
    scope: &Scope<'_>,
    tracks: &[Track],
    bias: f64,
    rng: &mut dyn RngCore,
) -> Option<usize> {
    let score = |pos: usize| {
        let i = scope.members[pos];
        let load = f64::from(scope.servers[i].active) + 1.0;
        let w = scope.weight(pos, &tracks[i]) as f64;
        if bias == 1.0 {
            w / load
        } else {
            w / load.powf(bias)
        }
    };
    let (a, b) = draw_two(scope, rng)?;
    Some(scope.members[if score(b) > score(a) { b } else { a }])
}

/// The positions of two open members drawn from distinct random positions (the same one
/// if only one is open).
fn draw_two(scope: &Scope<'_>, rng: &mut dyn RngCore) -> Option<(usize, usize)> {
    let n = scope.members.len() as u64;
    let pa = rng.next_u64() % n;
    let a = scope.open_from(pa as usize)?;
    if n == 1 {
        return Some((a, a));
    }
    let mut pb = rng.next_u64() % (n - 1);
    if pb >= pa {
        pb += 1;
    }
    Some((a, scope.open_from(pb as usize).unwrap_or(a)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn unobserved_costs_the_default() {
        let e = PeakEwma::default();
        assert_eq!(e.cost(Duration::ZERO, MS), DEFAULT_RTT.as_nanos() as f64);
    }

    #[test]
    fn a_peak_is_taken_at_once_and_a_dip_is_averaged() {
        let decay = 10 * MS;
        let mut e = PeakEwma::default();
        e.observe(10 * MS, Duration::ZERO, decay);
        e.observe(50 * MS, Duration::ZERO, decay);
        assert_eq!(e.cost(Duration::ZERO, decay), (50 * MS).as_nanos() as f64);
        // One decay period later a 10 ms observation keeps e^-1 of the old 50 ms.
        e.observe(10 * MS, decay, decay);
        let w = (-1.0f64).exp();
        let want = 50e6 * w + 10e6 * (1.0 - w);
        assert!((e.cost(decay, decay) - want).abs() < 1.0);
        assert!(e.cost(decay, decay) < 50e6 && e.cost(decay, decay) > 10e6);
    }

    #[test]
    fn cost_decays_while_idle() {
        let decay = 10 * MS;
        let mut e = PeakEwma::default();
        e.observe(40 * MS, Duration::ZERO, decay);
        let later = e.cost(20 * MS, decay);
        assert!((later - 40e6 * (-2.0f64).exp()).abs() < 1.0);
        assert!(e.cost(200 * MS, decay) < e.cost(20 * MS, decay));
    }
}

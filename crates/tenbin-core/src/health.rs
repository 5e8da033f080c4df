//! Health hysteresis (rise/fall) and the slow-start weight ramp.
//!
//! Both are pure: the prober (tenbin-health) feeds check results in, the balancer feeds the
//! time since a server came up in; neither reads a clock.
//!
//! # Hysteresis
//!
//! A server starts [`HealthState::Unchecked`]. Its first passing check makes it `Up` at once
//! (a new server has no bad history to outlive); `fall` consecutive failures make an
//! unchecked or up server `Down`; a down server needs `rise` consecutive passes to come back
//! `Up`. A result that contradicts the current streak resets it, so flapping never moves the
//! state.
//!
//! # Slow start
//!
//! For `duration` after a server comes up, its effective weight ramps linearly from
//! `1/1000` of its weight (at least 1) to the full weight, so a cold server is not flooded
//! (HAProxy's `slowstart`).

use std::time::Duration;

use crate::backend::ServerState;

/// The health-check view of one server, before admin states (drain, maintenance) apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum HealthState {
    #[default]
    Unchecked,
    Up,
    Down,
}

impl HealthState {
    /// The balancer state this health state implies when no admin state overrides it.
    pub fn server_state(self) -> ServerState {
        match self {
            HealthState::Unchecked => ServerState::Unchecked,
            HealthState::Up => ServerState::Active,
            HealthState::Down => ServerState::Down,
        }
    }
}

/// Rise/fall counting for one server. See the module docs for the rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hysteresis {
    rise: u32,
    fall: u32,
    state: HealthState,
    /// Consecutive results that argue for leaving `state`.
    streak: u32,
}

impl Hysteresis {
    /// `rise` and `fall` below 1 are taken as 1.
    pub fn new(rise: u32, fall: u32) -> Self {
        Hysteresis {
            rise: rise.max(1),
            fall: fall.max(1),
            state: HealthState::Unchecked,
            streak: 0,
        }
    }

    pub fn state(&self) -> HealthState {
        self.state
    }

    /// Records one check result; returns the new state when it changed.
    pub fn observe(&mut self, passed: bool) -> Option<HealthState> {
        let (needed, target) = match (self.state, passed) {
            (HealthState::Unchecked, true) => (1, HealthState::Up),
            (HealthState::Unchecked | HealthState::Up, false) => (self.fall, HealthState::Down),
            (HealthState::Down, true) => (self.rise, HealthState::Up),
            (HealthState::Up, true) | (HealthState::Down, false) => {
                self.streak = 0;
                return None;
            }
        };
        self.streak += 1;
        if self.streak < needed {
            return None;
        }
        self.state = target;
        self.streak = 0;
        Some(target)
    }
}

/// A linear weight ramp after a server comes up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlowStart {
    pub duration: Duration,
}

impl SlowStart {
    /// The ramp's resolution: fractions are in thousandths.
    pub const SCALE: u32 = 1000;

    /// The fraction of full weight, in thousandths (1..=1000), `since_up` after coming up.
    pub fn permille(&self, since_up: Duration) -> u32 {
        if since_up >= self.duration {
            return Self::SCALE;
        }
        let num = since_up.as_nanos() * u128::from(Self::SCALE);
        let frac = num / self.duration.as_nanos();
        (frac as u32).clamp(1, Self::SCALE)
    }

    /// `weight` scaled by the ramp; a positive weight never ramps to 0.
    pub fn effective_weight(&self, weight: u32, since_up: Duration) -> u32 {
        if weight == 0 {
            return 0;
        }
        let w = u64::from(weight) * u64::from(self.permille(since_up)) / u64::from(Self::SCALE);
        (w as u32).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(h: &mut Hysteresis, results: &[bool]) -> Vec<Option<HealthState>> {
        results.iter().map(|&r| h.observe(r)).collect()
    }

    #[test]
    fn first_pass_brings_an_unchecked_server_up() {
        let mut h = Hysteresis::new(3, 2);
        assert_eq!(h.state(), HealthState::Unchecked);
        assert_eq!(h.observe(true), Some(HealthState::Up));
        assert_eq!(h.state().server_state(), ServerState::Active);
    }

    #[test]
    fn unchecked_server_falls_after_fall_failures() {
        let mut h = Hysteresis::new(3, 2);
        assert_eq!(
            run(&mut h, &[false, false]),
            [None, Some(HealthState::Down)]
        );
    }

    #[test]
    fn down_needs_rise_consecutive_passes() {
        let mut h = Hysteresis::new(3, 2);
        run(&mut h, &[true, false, false]);
        assert_eq!(h.state(), HealthState::Down);
        // A failure in between restarts the count.
        assert_eq!(
            run(&mut h, &[true, true, false, true, true, true]),
            [None, None, None, None, None, Some(HealthState::Up)]
        );
    }

    #[test]
    fn flapping_never_moves_an_up_server() {
        let mut h = Hysteresis::new(2, 2);
        h.observe(true);
        let out = run(&mut h, &[false, true, false, true, false, true]);
        assert!(out.iter().all(Option::is_none));
        assert_eq!(h.state(), HealthState::Up);
    }

    #[test]
    fn zero_thresholds_act_as_one() {
        let mut h = Hysteresis::new(0, 0);
        assert_eq!(h.observe(false), Some(HealthState::Down));
        assert_eq!(h.observe(true), Some(HealthState::Up));
    }

    #[test]
    fn slow_start_ramps_linearly_to_full() {
        let s = SlowStart {
            duration: Duration::from_secs(10),
        };
        assert_eq!(s.permille(Duration::ZERO), 1);
        assert_eq!(s.permille(Duration::from_secs(5)), 500);
        assert_eq!(s.permille(Duration::from_millis(2500)), 250);
        assert_eq!(s.permille(Duration::from_secs(10)), 1000);
        assert_eq!(s.permille(Duration::from_secs(99)), 1000);
        assert_eq!(s.effective_weight(200, Duration::from_secs(5)), 100);
        assert_eq!(s.effective_weight(3, Duration::ZERO), 1);
        assert_eq!(s.effective_weight(0, Duration::from_secs(99)), 0);
        let mut last = 0;
        for ms in (0..=10_000).step_by(100) {
            let w = s.effective_weight(1000, Duration::from_millis(ms));
            assert!(w >= last, "ramp must not go down");
            last = w;
        }
        assert_eq!(last, 1000);
    }

    #[test]
    fn zero_duration_slow_start_is_full_weight() {
        let s = SlowStart {
            duration: Duration::ZERO,
        };
        assert_eq!(s.effective_weight(7, Duration::ZERO), 7);
    }
}

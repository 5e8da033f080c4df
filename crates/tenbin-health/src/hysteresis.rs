//! Rise/fall hysteresis over check verdicts, with drain vs down.
//!
//! The counting is `tenbin_core::health::Hysteresis` (shared with every tier): a new target is
//! `Unchecked` until its first passing check, `fall` consecutive failures take it down, `rise`
//! consecutive passes bring it back, and flapping never moves it. On top of that this type
//! remembers *how* the run of failures failed: if every failure of the run was a drain verdict
//! (slow, not broken) the target is `Draining`, otherwise `Down`.

use tenbin_core::health::{HealthState, Hysteresis as Counter};
use tenbin_core::ServerState;

use crate::outcome::Verdict;

#[derive(Clone, Debug)]
pub struct Hysteresis {
    counter: Counter,
    fall: u32,
    /// Failures since the last pass, and the worst of them.
    fails: u32,
    worst: Verdict,
    state: ServerState,
}

impl Hysteresis {
    /// `rise` and `fall` below 1 are taken as 1.
    pub fn new(rise: u32, fall: u32) -> Self {
        Hysteresis {
            counter: Counter::new(rise, fall),
            fall: fall.max(1),
            fails: 0,
            worst: Verdict::Pass,
            state: ServerState::Unchecked,
        }
    }

    pub fn state(&self) -> ServerState {
        self.state
    }

    /// Feed one verdict; returns the new state if it changed.
    pub fn observe(&mut self, v: Verdict) -> Option<ServerState> {
        let before = self.state;
        self.counter.observe(v == Verdict::Pass);
        if v == Verdict::Pass {
            self.fails = 0;
            self.worst = Verdict::Pass;
        } else {
            self.fails = self.fails.saturating_add(1);
            self.worst = self.worst.max(v);
        }
        self.state = match self.counter.state() {
            HealthState::Unchecked => ServerState::Unchecked,
            HealthState::Up => ServerState::Active,
            // A full run of failures names the state; a shorter run after a lone pass (a
            // rise in progress) keeps the name it had.
            HealthState::Down if self.fails >= self.fall => match self.worst {
                Verdict::Down => ServerState::Down,
                _ => ServerState::Draining,
            },
            HealthState::Down => self.state,
        };
        (self.state != before).then_some(self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ServerState::*;
    use Verdict::{Down as VDown, Drain as VDrain, Pass};

    fn run(h: &mut Hysteresis, vs: &[Verdict]) -> Vec<ServerState> {
        vs.iter()
            .map(|v| {
                h.observe(*v);
                h.state()
            })
            .collect()
    }

    #[test]
    fn unchecked_until_first_pass() {
        let mut h = Hysteresis::new(3, 2);
        assert_eq!(h.state(), Unchecked);
        assert_eq!(h.observe(Pass), Some(Active));
    }

    #[test]
    fn fall_then_rise() {
        let mut h = Hysteresis::new(2, 3);
        let got = run(
            &mut h,
            &[Pass, VDown, VDown, VDown, Pass, VDown, Pass, Pass, Pass],
        );
        assert_eq!(
            got,
            vec![Active, Active, Active, Down, Down, Down, Down, Active, Active]
        );
    }

    #[test]
    fn timeouts_only_drain_and_any_hard_failure_downs() {
        let mut h = Hysteresis::new(1, 2);
        assert_eq!(
            run(&mut h, &[Pass, VDrain, VDrain]),
            vec![Active, Active, Draining]
        );
        assert_eq!(run(&mut h, &[VDown]), vec![Down]);
        let mut h = Hysteresis::new(1, 2);
        assert_eq!(
            run(&mut h, &[Pass, VDown, VDrain]),
            vec![Active, Active, Down]
        );
    }

    #[test]
    fn a_down_server_drains_only_after_a_full_run_of_timeouts() {
        let mut h = Hysteresis::new(3, 2);
        assert_eq!(
            run(&mut h, &[Pass, VDown, VDown]),
            vec![Active, Active, Down]
        );
        // one pass (rise in progress) and one timeout: not enough to rename the state
        assert_eq!(run(&mut h, &[Pass, VDrain]), vec![Down, Down]);
        // a whole run of `fall` timeouts: slow but alive
        assert_eq!(run(&mut h, &[VDrain]), vec![Draining]);
        assert_eq!(
            run(&mut h, &[Pass, Pass, Pass]),
            vec![Draining, Draining, Active]
        );
    }

    #[test]
    fn unchecked_server_that_never_passes_goes_down_after_fall() {
        let mut h = Hysteresis::new(2, 2);
        assert_eq!(run(&mut h, &[VDown, VDown]), vec![Unchecked, Down]);
        assert_eq!(run(&mut h, &[Pass, Pass]), vec![Down, Active]);
    }
}

//! Rise/fall hysteresis over check verdicts.
//!
//! `tenbin_core::health` is to own the shared pure hysteresis; until it lands this local type
//! implements the same contract so the scheduler can be written and tested against it:
//! - a new target is `Unchecked` until its first passing check, which makes it `Active`;
//! - `fall` consecutive failures take it to `Down`, or to `Draining` if every one of them was a
//!   drain verdict (slow, not broken);
//! - from `Down` or `Draining`, `rise` consecutive passes bring it back to `Active`.

use crate::outcome::Verdict;
use tenbin_core::ServerState;

#[derive(Clone, Debug)]
pub struct Hysteresis {
    rise: u32,
    fall: u32,
    state: ServerState,
    passes: u32,
    fails: u32,
    worst: Verdict,
}

impl Hysteresis {
    /// `rise` and `fall` below 1 are taken as 1.
    pub fn new(rise: u32, fall: u32) -> Self {
        Hysteresis {
            rise: rise.max(1),
            fall: fall.max(1),
            state: ServerState::Unchecked,
            passes: 0,
            fails: 0,
            worst: Verdict::Pass,
        }
    }

    pub fn state(&self) -> ServerState {
        self.state
    }

    /// Feed one verdict; returns the new state if it changed.
    pub fn observe(&mut self, v: Verdict) -> Option<ServerState> {
        let before = self.state;
        match v {
            Verdict::Pass => {
                self.fails = 0;
                self.worst = Verdict::Pass;
                self.passes = self.passes.saturating_add(1);
                let up = match self.state {
                    ServerState::Unchecked => true,
                    ServerState::Active => false,
                    _ => self.passes >= self.rise,
                };
                if up {
                    self.state = ServerState::Active;
                }
            }
            Verdict::Drain | Verdict::Down => {
                self.passes = 0;
                self.fails = self.fails.saturating_add(1);
                self.worst = self.worst.max(v);
                if self.fails >= self.fall {
                    self.state = if self.worst == Verdict::Down {
                        ServerState::Down
                    } else {
                        ServerState::Draining
                    };
                }
            }
        }
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
    fn unchecked_server_that_never_passes_goes_down_after_fall() {
        let mut h = Hysteresis::new(2, 2);
        assert_eq!(run(&mut h, &[VDown, VDown]), vec![Unchecked, Down]);
        assert_eq!(run(&mut h, &[Pass, Pass]), vec![Down, Active]);
    }
}

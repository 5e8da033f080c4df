//! Least connections in `O(log n)` per pick and per session start/end: a tournament tree
//! over each group's members.
//!
//! A leaf is a member: its load `active + 1`, its effective weight, whether it is below
//! `maxconn`, and the pick number it last won. An inner node holds the better of its two
//! children: open before closed, then the lower `load / weight` (compared exactly by cross
//! multiplication), then the one picked longest ago, so equal servers take turns. A pick
//! reads the root; a session start or end re-plays one leaf's path. The caller's exclusions
//! close their leaves for one pick, and servers still in slow start are re-weighed at each
//! pick. The trees are rebuilt with the plan, at the first pick after a change.

use std::time::Duration;

use crate::health::SlowStart;

use super::plan::Group;
use super::{Scope, ServerView, Track};

const NONE: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, Default)]
struct Leaf {
    load: u64,
    weight: u64,
    open: bool,
    stamp: u64,
}

impl Leaf {
    fn beats(&self, other: &Leaf) -> bool {
        if self.open != other.open {
            return self.open;
        }
        let mine = u128::from(self.load) * u128::from(other.weight);
        let theirs = u128::from(other.load) * u128::from(self.weight);
        mine < theirs || (mine == theirs && self.stamp < other.stamp)
    }
}

#[derive(Clone, Debug, Default)]
struct Tree {
    width: usize,
    leaves: Vec<Leaf>,
    /// Heap-ordered nodes (root at 1); each holds the winning member position.
    win: Vec<u32>,
    /// Member positions whose weight still ramps.
    ramping: Vec<usize>,
}

impl Tree {
    fn winner(&self, a: u32, b: u32) -> u32 {
        match (a, b) {
            (NONE, _) => b,
            (_, NONE) => a,
            _ if self.leaves[b as usize].beats(&self.leaves[a as usize]) => b,
            _ => a,
        }
    }

    fn fix(&mut self, pos: usize) {
        let mut node = (self.width + pos) / 2;
        while node >= 1 {
            self.win[node] = self.winner(self.win[2 * node], self.win[2 * node + 1]);
            node /= 2;
        }
    }

    fn best(&self) -> Option<usize> {
        let w = self.win[1];
        (w != NONE && self.leaves[w as usize].open).then_some(w as usize)
    }
}

/// The trees of every group, and where each server sits in them.
#[derive(Clone, Debug, Default)]
pub(super) struct LeastConnIndex {
    trees: Vec<Tree>,
    /// Server index → (group index, member position).
    at: Vec<Option<(usize, usize)>>,
    clock: u64,
    valid: bool,
}

impl LeastConnIndex {
    pub fn invalidate(&mut self) {
        self.valid = false;
    }

    pub fn is_valid(&self) -> bool {
        self.valid
    }

    /// Rebuilds every group's tree from the servers' current counts, weighed at `now`.
    pub fn build(&mut self, groups: &[Group], servers: &[ServerView], tracks: &[Track], ctx: Ramp) {
        self.at = vec![None; servers.len()];
        self.trees = groups
            .iter()
            .enumerate()
            .map(|(g, group)| {
                let n = group.members.len();
                let width = n.next_power_of_two();
                let mut tree = Tree {
                    width,
                    leaves: Vec::with_capacity(n),
                    win: vec![NONE; 2 * width],
                    ramping: Vec::new(),
                };
                for (pos, &i) in group.members.iter().enumerate() {
                    self.at[i] = Some((g, pos));
                    let ramp = ctx.ramp(&tracks[i]);
                    if ramp < SlowStart::SCALE {
                        tree.ramping.push(pos);
                    }
                    tree.leaves.push(Leaf {
                        load: u64::from(servers[i].active) + 1,
                        weight: group.base[pos] * u64::from(ramp),
                        open: below_maxconn(&servers[i]),
                        stamp: 0,
                    });
                    tree.win[width + pos] = pos as u32;
                }
                for node in (1..width).rev() {
                    tree.win[node] = tree.winner(tree.win[2 * node], tree.win[2 * node + 1]);
                }
                tree
            })
            .collect();
        self.valid = true;
    }

    /// Server `i`'s active count changed.
    pub fn recount(&mut self, i: usize, server: &ServerView) {
        if !self.valid {
            return;
        }
        if let Some(&Some((g, pos))) = self.at.get(i) {
            let tree = &mut self.trees[g];
            tree.leaves[pos].load = u64::from(server.active) + 1;
            tree.leaves[pos].open = below_maxconn(server);
            tree.fix(pos);
        }
    }

    /// The least loaded open member of group `g` (a server index), skipping exclusions.
    pub fn pick(
        &mut self,
        g: usize,
        scope: &Scope<'_>,
        tracks: &[Track],
        excluded: impl Iterator<Item = usize> + Clone,
    ) -> Option<usize> {
        let tree = &mut self.trees[g];
        if !tree.ramping.is_empty() {
            let mut ramping = std::mem::take(&mut tree.ramping);
            ramping.retain(|&pos| {
                let t = &tracks[scope.members[pos]];
                tree.leaves[pos].weight = scope.weight(pos, t);
                tree.fix(pos);
                scope.ramp(t) < SlowStart::SCALE
            });
            tree.ramping = ramping;
        }
        let close = |tree: &mut Tree, open: bool| {
            for i in excluded.clone() {
                if let Some(&Some((eg, pos))) = self.at.get(i) {
                    if eg == g {
                        tree.leaves[pos].open = open && below_maxconn(&scope.servers[i]);
                        tree.fix(pos);
                    }
                }
            }
        };
        close(tree, false);
        let best = tree.best();
        close(tree, true);
        let pos = best?;
        self.clock += 1;
        tree.leaves[pos].stamp = self.clock;
        tree.fix(pos);
        Some(scope.members[pos])
    }
}

/// What weighing a ramping server needs.
#[derive(Clone, Copy, Debug)]
pub(super) struct Ramp {
    pub slow_start: Option<SlowStart>,
    pub now: Duration,
}

impl Ramp {
    fn ramp(&self, track: &Track) -> u32 {
        super::scope::ramp(self.slow_start, track, self.now)
    }
}

fn below_maxconn(s: &ServerView) -> bool {
    s.spec.maxconn.is_none_or(|m| s.active < m)
}

//! Tracked objects folded into what the state machine takes: a priority decrement and a
//! fault flag. The node names the objects (a pool, a frontend, a tier) and says whether each
//! is up; this module never looks at health itself.

use std::collections::HashSet;

/// One tracked object and what its failure costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    pub name: String,
    /// Priority decrement while it is down; `None`: Fault while it is down.
    pub weight: Option<u8>,
}

/// The set of tracked objects and which of them are down.
#[derive(Debug, Clone, Default)]
pub struct Tracking {
    specs: Vec<Track>,
    down: HashSet<String>,
}

impl Tracking {
    pub fn new(specs: Vec<Track>) -> Tracking {
        Tracking {
            specs,
            down: HashSet::new(),
        }
    }

    /// New specs (a live config change); objects still tracked keep their last state.
    pub fn respec(&mut self, specs: Vec<Track>) {
        self.down.retain(|d| specs.iter().any(|s| &s.name == d));
        self.specs = specs;
    }

    /// Records `name` up or down; `false` when it is not tracked here or did not change.
    pub fn set(&mut self, name: &str, up: bool) -> bool {
        if !self.specs.iter().any(|s| s.name == name) {
            return false;
        }
        if up {
            self.down.remove(name)
        } else {
            self.down.insert(name.to_owned())
        }
    }

    /// The tracked objects down now, in config order.
    pub fn down(&self) -> Vec<String> {
        self.down_specs().map(|s| s.name.clone()).collect()
    }

    /// Sum of the weights of the objects down, saturating.
    pub fn delta(&self) -> u8 {
        self.down_specs()
            .filter_map(|s| s.weight)
            .fold(0u8, |a, w| a.saturating_add(w))
    }

    /// Whether an object without a weight is down.
    pub fn fault(&self) -> bool {
        self.down_specs().any(|s| s.weight.is_none())
    }

    fn down_specs(&self) -> impl Iterator<Item = &Track> {
        self.specs.iter().filter(|s| self.down.contains(&s.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_add_up_and_unweighted_objects_fault() {
        let mut t = Tracking::new(vec![
            Track {
                name: "pool/web".into(),
                weight: Some(30),
            },
            Track {
                name: "pool/api".into(),
                weight: Some(30),
            },
            Track {
                name: "proxy".into(),
                weight: None,
            },
        ]);
        assert!(!t.set("unknown", false));
        assert!(t.set("pool/web", false));
        assert!(!t.set("pool/web", false), "no change");
        assert_eq!((t.delta(), t.fault()), (30, false));
        t.set("pool/api", false);
        assert_eq!(t.delta(), 60);
        t.set("proxy", false);
        assert!(t.fault());
        t.set("proxy", true);
        t.set("pool/web", true);
        assert_eq!((t.delta(), t.fault()), (30, false));
    }
}

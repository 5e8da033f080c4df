//! Reading distributions: how many answers each backend gave, and their shares.

use std::collections::BTreeMap;

/// Counts of answers per backend name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    counts: BTreeMap<String, usize>,
}

impl Tally {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, name: impl Into<String>) {
        *self.counts.entry(name.into()).or_default() += 1;
    }

    pub fn count(&self, name: &str) -> usize {
        self.counts.get(name).copied().unwrap_or(0)
    }

    pub fn total(&self) -> usize {
        self.counts.values().sum()
    }

    /// Distinct backends that answered at least once.
    pub fn distinct(&self) -> usize {
        self.counts.len()
    }

    /// `name`'s share of all answers, 0.0..=1.0.
    pub fn share(&self, name: &str) -> f64 {
        match self.total() {
            0 => 0.0,
            t => self.count(name) as f64 / t as f64,
        }
    }

    /// The largest minus the smallest count over `names` (absent names count 0).
    pub fn spread(&self, names: &[&str]) -> usize {
        let counts: Vec<usize> = names.iter().map(|n| self.count(n)).collect();
        counts.iter().max().unwrap_or(&0) - counts.iter().min().unwrap_or(&0)
    }

    pub fn counts(&self) -> &BTreeMap<String, usize> {
        &self.counts
    }
}

impl<S: Into<String>> FromIterator<S> for Tally {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        let mut t = Tally::new();
        for s in iter {
            t.add(s);
        }
        t
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let total = self.total();
        for (name, n) in &self.counts {
            let pct = if total == 0 {
                0.0
            } else {
                100.0 * *n as f64 / total as f64
            };
            writeln!(f, "{name:>12} {n:>8} {pct:>6.1}%")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_shares_and_spread() {
        let t: Tally = ["a", "b", "a", "a"].into_iter().collect();
        assert_eq!(t.count("a"), 3);
        assert_eq!(t.count("c"), 0);
        assert_eq!(t.total(), 4);
        assert_eq!(t.distinct(), 2);
        assert!((t.share("a") - 0.75).abs() < 1e-9);
        assert_eq!(t.spread(&["a", "b", "c"]), 3);
        assert!(t.to_string().contains("75.0%"));
    }
}

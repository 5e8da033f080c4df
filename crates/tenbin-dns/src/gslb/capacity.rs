//! Capacity stage: turn an initial preference (all on the nearest datacenter, or weights) into
//! answer shares that respect each datacenter's capacity against its reported load.
//!
//! A datacenter keeps the fraction `a = 1` of its share while `load + users <= capacity`, else
//! `a = capacity / (load + users)`, so an overloaded site sheds exactly its excess and one big
//! resolver (`users` from the user-base table) is sent there less often than a small one. The
//! shed part spreads over every datacenter in proportion to its spare capacity, in one pass:
//! it never cascades onto the next neighbour only.

/// What the stage needs to know about one candidate datacenter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Site {
    /// Share before capacity (sums to 1 over the candidates).
    pub preferred: f64,
    pub capacity: Option<f64>,
    pub load: f64,
}

/// Fraction of its preferred share a site keeps.
pub fn kept_fraction(site: &Site, users: f64) -> f64 {
    match site.capacity {
        None => 1.0,
        Some(c) if site.load + users <= c => 1.0,
        Some(c) => (c / (site.load + users)).clamp(0.0, 1.0),
    }
}

/// Spare capacity of a site (unbounded sites count as having the largest spare of all).
fn spare(site: &Site, unbounded: f64) -> f64 {
    match site.capacity {
        None => unbounded,
        Some(c) => (c - site.load).max(0.0),
    }
}

/// Final shares, same order as `sites`, summing to 1 (or all zero for no sites).
pub fn shares(sites: &[Site], users: f64) -> Vec<f64> {
    let users = users.max(1.0);
    let mut out: Vec<f64> = Vec::with_capacity(sites.len());
    let mut receives: Vec<bool> = Vec::with_capacity(sites.len());
    let mut shed = 0.0;
    for s in sites {
        let kept = kept_fraction(s, users);
        shed += s.preferred * (1.0 - kept);
        out.push(s.preferred * kept);
        // A site that sheds load takes none of the overflow back.
        receives.push(kept >= 1.0);
    }
    if shed <= 0.0 {
        return out;
    }
    let bounded_max = sites
        .iter()
        .filter_map(|s| s.capacity)
        .fold(0.0_f64, f64::max);
    let spares: Vec<f64> = sites
        .iter()
        .zip(&receives)
        .map(|(s, r)| {
            if *r {
                spare(s, bounded_max.max(1.0))
            } else {
                0.0
            }
        })
        .collect();
    let total: f64 = spares.iter().sum();
    if total > 0.0 {
        for (o, sp) in out.iter_mut().zip(&spares) {
            *o += shed * sp / total;
        }
        out
    } else {
        // Everyone is full: keep the original preference rather than invent one.
        sites.iter().map(|s| s.preferred).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(preferred: f64, capacity: Option<f64>, load: f64) -> Site {
        Site {
            preferred,
            capacity,
            load,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn under_capacity_keeps_everything() {
        let s = shares(
            &[site(1.0, Some(100.0), 50.0), site(0.0, Some(100.0), 0.0)],
            1.0,
        );
        assert_eq!(s, vec![1.0, 0.0]);
    }

    #[test]
    fn overload_sheds_its_excess_in_proportion_to_spare_capacity() {
        // 150 load on 100 capacity: keep 100/151, shed the rest 3:1 by spare (60 vs 20).
        let s = shares(
            &[
                site(1.0, Some(100.0), 150.0),
                site(0.0, Some(100.0), 40.0),
                site(0.0, Some(100.0), 80.0),
            ],
            1.0,
        );
        let keep = 100.0 / 151.0;
        assert!(close(s[0], keep), "{s:?}");
        assert!(close(s[1], (1.0 - keep) * 0.75), "{s:?}");
        assert!(close(s[2], (1.0 - keep) * 0.25), "{s:?}");
        assert!(close(s.iter().sum::<f64>(), 1.0));
    }

    #[test]
    fn a_big_resolver_overflows_sooner_than_a_small_one() {
        let sites = [site(1.0, Some(1000.0), 900.0), site(0.0, Some(1000.0), 0.0)];
        let small = shares(&sites, 1.0);
        let big = shares(&sites, 500.0);
        assert_eq!(small[0], 1.0);
        assert!(close(big[0], 1000.0 / 1400.0), "{big:?}");
        assert!(close(big[1], 400.0 / 1400.0), "{big:?}");
    }

    #[test]
    fn all_full_keeps_the_preference() {
        let s = shares(
            &[site(0.5, Some(10.0), 20.0), site(0.5, Some(10.0), 30.0)],
            1.0,
        );
        assert!(close(s[0], 0.5) && close(s[1], 0.5), "{s:?}");
    }

    #[test]
    fn unbounded_sites_absorb_overflow() {
        let s = shares(&[site(1.0, Some(10.0), 20.0), site(0.0, None, 1e6)], 1.0);
        assert!(
            close(s[0], 10.0 / 21.0) && close(s[1], 11.0 / 21.0),
            "{s:?}"
        );
    }
}

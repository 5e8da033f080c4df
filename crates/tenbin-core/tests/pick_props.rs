//! Property tests of the picking algorithms (issue 2): smooth WRR exactness and smoothness,
//! least-conn never choosing a strictly busier server, priority/overflow order under every
//! mix of server states, limits and exclusions, for every algorithm, and hashing that moves
//! only the keys of servers whose health changed.

use std::time::Duration;

use proptest::prelude::*;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tenbin_core::pick::{Algorithm, Balancer, PickContext, ServerView};
use tenbin_core::{BackendId, ServerSpec, ServerState};

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn active_pool(algorithm: Algorithm, specs: Vec<ServerSpec>) -> Balancer {
    let ids: Vec<BackendId> = specs.iter().map(|s| s.id).collect();
    let mut b = Balancer::new(algorithm, specs);
    for id in ids {
        b.set_state(id, ServerState::Active, Duration::ZERO);
    }
    b
}

fn pick(
    b: &mut Balancer,
    rng: &mut ChaCha8Rng,
    key: Option<u64>,
    ex: &[BackendId],
) -> Option<BackendId> {
    let mut ctx = PickContext {
        now: Duration::ZERO,
        key,
        exclude: ex,
        rng,
    };
    b.pick(&mut ctx)
}

fn weighted(weights: &[u32]) -> Vec<ServerSpec> {
    weights
        .iter()
        .enumerate()
        .map(|(i, &w)| ServerSpec::new(i as u32, format!("10.9.0.{i}:80")).weight(w))
        .collect()
}

fn state_strategy() -> impl Strategy<Value = ServerState> {
    prop_oneof![
        Just(ServerState::Unchecked),
        Just(ServerState::Active),
        Just(ServerState::Draining),
        Just(ServerState::Down),
        Just(ServerState::Maintenance),
    ]
}

fn algorithm_strategy() -> impl Strategy<Value = Algorithm> {
    prop_oneof![
        Just(Algorithm::RoundRobin),
        Just(Algorithm::WeightedRoundRobin),
        Just(Algorithm::LeastConn),
        Just(Algorithm::PeakEwma {
            decay: Duration::from_secs(10)
        }),
        Just(Algorithm::LeastRequest { bias: 1.0 }),
        Just(Algorithm::LeastRequest { bias: 2.0 }),
        Just(Algorithm::Maglev { table_size: 251 }),
        Just(Algorithm::Ketama),
        Just(Algorithm::SourceHash),
    ]
}

/// Eligible for a new session, as the module docs define it.
fn eligible(s: &ServerView, exclude: &[BackendId]) -> bool {
    s.state.accepts_new()
        && s.spec.weight.get() > 0
        && s.load_factor > 0
        && s.spec.maxconn.is_none_or(|m| s.active < m)
        && !exclude.contains(&s.spec.id)
}

proptest! {
    #![proptest_config(config(256))]

    /// Over each cycle of sum(weights) picks every server is chosen exactly `weight` times, and
    /// no prefix of the sequence gives a server a full pick more than its weight share.
    #[test]
    fn smooth_wrr_is_exact_and_smooth(weights in prop::collection::vec(1u32..=20, 1..=8)) {
        let mut b = active_pool(Algorithm::WeightedRoundRobin, weighted(&weights));
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let total: u32 = weights.iter().sum();
        let mut seen = vec![0u32; weights.len()];
        for cycle in 1..=3u32 {
            for k in 1..=total {
                let id = pick(&mut b, &mut rng, None, &[]).unwrap();
                seen[id.0 as usize] += 1;
                let done = (cycle - 1) * total + k;
                for (i, &w) in weights.iter().enumerate() {
                    // count - done*w/total < 1, in integers.
                    let over = i64::from(seen[i]) * i64::from(total) - i64::from(done) * i64::from(w);
                    prop_assert!(over < i64::from(total), "server {} burst: {} picks after {}", i, seen[i], done);
                }
            }
            for (i, &w) in weights.iter().enumerate() {
                prop_assert_eq!(seen[i], w * cycle, "server {} after cycle {}", i, cycle);
            }
        }
    }

    /// Least connections never picks a server with strictly more sessions than another
    /// eligible one of equal weight, nor a strictly higher (active+1)/weight with weights,
    /// through any sequence of picks, session ends, limits and exclusions.
    #[test]
    fn least_conn_never_picks_busier(
        servers in prop::collection::vec((0u32..20, 1u32..=5, prop::option::of(1u32..25)), 1..=12),
        equal in any::<bool>(),
        steps in prop::collection::vec((any::<bool>(), any::<prop::sample::Index>(), any::<u8>()), 1..40),
    ) {
        let specs: Vec<ServerSpec> = servers
            .iter()
            .enumerate()
            .map(|(i, &(_, w, maxconn))| {
                let s = ServerSpec::new(i as u32, format!("s{i}")).weight(if equal { 1 } else { w });
                match maxconn { Some(m) => s.maxconn(m), None => s }
            })
            .collect();
        let n = servers.len();
        let mut b = active_pool(Algorithm::LeastConn, specs);
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for (i, &(active, _, _)) in servers.iter().enumerate() {
            for _ in 0..active {
                b.on_dispatch(BackendId(i as u32));
            }
        }
        for (is_pick, which, mask) in steps {
            if !is_pick {
                b.on_complete(BackendId(which.index(n) as u32), None, Duration::ZERO);
                continue;
            }
            let exclude: Vec<BackendId> = (0..n.min(8))
                .filter(|i| mask >> i & 1 == 1 && mask & 0x80 == 0)
                .map(|i| BackendId(i as u32))
                .collect();
            let got = pick(&mut b, &mut rng, None, &exclude);
            let load = |s: &ServerView| (u64::from(s.active) + 1, u64::from(s.spec.weight.get()));
            let open: Vec<&ServerView> = b.servers().iter().filter(|s| eligible(s, &exclude)).collect();
            match got {
                None => prop_assert!(open.is_empty()),
                Some(id) => {
                    let picked = b.server(id).unwrap();
                    prop_assert!(eligible(picked, &exclude), "picked ineligible {}", id);
                    let (la, wa) = load(picked);
                    for s in &open {
                        let (lb, wb) = load(s);
                        prop_assert!(la * wb <= lb * wa, "picked {} over less loaded {}", id, s.spec.id);
                    }
                    b.on_dispatch(id);
                }
            }
        }
    }

    /// Whatever the algorithm and the mix of states, limits and exclusions, a pick comes from
    /// the lowest group that has an eligible server, and is itself eligible; `None` only when
    /// no server anywhere is eligible.
    #[test]
    fn overflow_order_is_respected(
        algorithm in algorithm_strategy(),
        servers in prop::collection::vec(
            (0u8..4, state_strategy(), 0u32..4, prop::option::of(1u32..3), 0u32..=3, any::<bool>()),
            0..=10,
        ),
        key in prop::option::of(any::<u64>()),
    ) {
        let specs: Vec<ServerSpec> = servers
            .iter()
            .enumerate()
            .map(|(i, &(group, _, weight, maxconn, _, _))| {
                let s = ServerSpec::new(i as u32, format!("10.8.0.{i}:80")).weight(weight).group(group);
                match maxconn { Some(m) => s.maxconn(m), None => s }
            })
            .collect();
        let mut b = Balancer::new(algorithm, specs);
        for (i, &(_, state, _, _, active, _)) in servers.iter().enumerate() {
            let id = BackendId(i as u32);
            b.set_state(id, state, Duration::ZERO);
            for _ in 0..active {
                b.on_dispatch(id);
            }
        }
        let exclude: Vec<BackendId> = servers.iter().enumerate()
            .filter(|(_, s)| s.5).map(|(i, _)| BackendId(i as u32)).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let best_group = b.servers().iter().filter(|s| eligible(s, &exclude)).map(|s| s.spec.group).min();
        for _ in 0..3 {
            match (pick(&mut b, &mut rng, key, &exclude), best_group) {
                (None, None) => {}
                (Some(id), Some(g)) => {
                    let s = b.server(id).unwrap();
                    prop_assert!(eligible(s, &exclude), "picked ineligible {:?}", s);
                    prop_assert_eq!(s.spec.group, g);
                }
                (got, want) => prop_assert!(false, "picked {:?}, lowest eligible group {:?}", got, want),
            }
        }
    }

    /// With a hashing algorithm, taking any subset of servers down moves only their keys, and
    /// bringing them back restores every key's server.
    #[test]
    fn hashing_moves_only_the_keys_of_changed_servers(
        algorithm in prop_oneof![
            Just(Algorithm::Maglev { table_size: 4099 }),
            Just(Algorithm::Ketama),
            Just(Algorithm::SourceHash),
        ],
        weights in prop::collection::vec(1u32..=5, 2..=30),
        down_mask in any::<u64>(),
        keys in prop::collection::vec(any::<u64>(), 50),
    ) {
        let n = weights.len();
        let down: Vec<bool> = (0..n).map(|i| down_mask >> i & 1 == 1).collect();
        prop_assume!(down.iter().any(|d| !d));
        let mut b = active_pool(algorithm, weighted(&weights));
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let before: Vec<BackendId> = keys.iter().map(|&k| pick(&mut b, &mut rng, Some(k), &[]).unwrap()).collect();
        for (i, &d) in down.iter().enumerate() {
            if d {
                b.set_state(BackendId(i as u32), ServerState::Down, Duration::ZERO);
            }
        }
        for (k, was) in keys.iter().zip(&before) {
            let now = pick(&mut b, &mut rng, Some(*k), &[]).unwrap();
            prop_assert!(!down[now.0 as usize]);
            if !down[was.0 as usize] {
                prop_assert_eq!(now, *was);
            }
        }
        for i in 0..n {
            b.set_state(BackendId(i as u32), ServerState::Active, Duration::ZERO);
        }
        for (k, was) in keys.iter().zip(&before) {
            prop_assert_eq!(pick(&mut b, &mut rng, Some(*k), &[]).unwrap(), *was);
        }
    }
}

//! Unit tests of every algorithm through the public `Balancer` interface; the hashing
//! algorithms' are in `hashing`.

mod hashing;

use std::time::Duration;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::health::SlowStart;

fn pool(algorithm: Algorithm, specs: Vec<ServerSpec>) -> Balancer {
    let ids: Vec<BackendId> = specs.iter().map(|s| s.id).collect();
    let mut b = Balancer::new(algorithm, specs);
    for id in ids {
        b.set_state(id, ServerState::Active, Duration::ZERO);
    }
    b
}

fn servers(weights: &[u32]) -> Vec<ServerSpec> {
    weights
        .iter()
        .enumerate()
        .map(|(i, &w)| ServerSpec::new(i as u32, format!("10.0.0.{i}:80")).weight(w))
        .collect()
}

struct Picker {
    rng: ChaCha8Rng,
    now: Duration,
}

impl Picker {
    fn new() -> Self {
        Picker {
            rng: ChaCha8Rng::seed_from_u64(7),
            now: Duration::ZERO,
        }
    }

    fn pick(&mut self, b: &mut Balancer, key: Option<u64>, exclude: &[BackendId]) -> Option<u32> {
        let mut ctx = PickContext {
            now: self.now,
            key,
            exclude,
            rng: &mut self.rng,
        };
        b.pick(&mut ctx).map(|id| id.0)
    }

    fn counts(&mut self, b: &mut Balancer, n: usize, picks: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        for _ in 0..picks {
            c[self.pick(b, None, &[]).unwrap() as usize] += 1;
        }
        c
    }
}

#[test]
fn new_servers_are_unchecked_and_get_nothing() {
    let mut b = Balancer::new(Algorithm::RoundRobin, servers(&[1, 1]));
    assert_eq!(b.servers()[0].state, ServerState::Unchecked);
    assert_eq!(Picker::new().pick(&mut b, None, &[]), None);
}

#[test]
fn round_robin_rotates_and_ignores_weights() {
    let mut b = pool(Algorithm::RoundRobin, servers(&[1, 9, 1]));
    let mut p = Picker::new();
    let seq: Vec<u32> = (0..6).map(|_| p.pick(&mut b, None, &[]).unwrap()).collect();
    assert_eq!(seq, [0, 1, 2, 0, 1, 2]);
    assert_eq!(p.pick(&mut b, None, &[BackendId(0)]), Some(1));
}

#[test]
fn smooth_wrr_interleaves_like_nginx() {
    // NGINX's documented sequence for weights a=5, b=1, c=1.
    let mut b = pool(Algorithm::WeightedRoundRobin, servers(&[5, 1, 1]));
    let mut p = Picker::new();
    let seq: Vec<u32> = (0..7).map(|_| p.pick(&mut b, None, &[]).unwrap()).collect();
    assert_eq!(seq, [0, 0, 1, 0, 2, 0, 0]);
}

#[test]
fn load_factor_scales_weighted_shares() {
    let mut b = pool(Algorithm::WeightedRoundRobin, servers(&[2, 2]));
    b.set_load_factor(BackendId(1), 50);
    assert_eq!(Picker::new().counts(&mut b, 2, 300), [200, 100]);
    b.set_load_factor(BackendId(1), 0);
    assert_eq!(Picker::new().counts(&mut b, 2, 10), [10, 0]);
}

#[test]
fn slow_start_ramps_a_returning_server() {
    let mut b = pool(Algorithm::WeightedRoundRobin, servers(&[10, 10]));
    b.set_slow_start(Some(SlowStart {
        duration: Duration::from_secs(10),
    }));
    let mut p = Picker::new();
    b.set_state(BackendId(1), ServerState::Down, Duration::ZERO);
    b.set_state(BackendId(1), ServerState::Active, Duration::from_secs(100));
    p.now = Duration::from_secs(102);
    let early = p.counts(&mut b, 2, 1200);
    assert_eq!(early, [1000, 200], "20% into the ramp");
    p.now = Duration::from_secs(110);
    let late = p.counts(&mut b, 2, 1000);
    assert!((495..=505).contains(&late[1]), "ramp done: {late:?}");
}

#[test]
fn slow_start_spares_a_first_verdict_and_an_ended_drain() {
    let mut b = Balancer::new(Algorithm::WeightedRoundRobin, servers(&[10, 10]));
    b.set_slow_start(Some(SlowStart {
        duration: Duration::from_secs(10),
    }));
    b.set_state(BackendId(0), ServerState::Active, Duration::from_secs(100));
    b.set_state(
        BackendId(1),
        ServerState::Draining,
        Duration::from_secs(100),
    );
    b.set_state(BackendId(1), ServerState::Active, Duration::from_secs(100));
    let mut p = Picker::new();
    p.now = Duration::from_secs(101);
    assert_eq!(p.counts(&mut b, 2, 1000), [500, 500]);
}

#[test]
fn switching_algorithm_keeps_connection_counts() {
    let mut b = pool(Algorithm::RoundRobin, servers(&[1, 1]));
    b.on_dispatch(BackendId(0));
    b.on_dispatch(BackendId(0));
    b.set_algorithm(Algorithm::LeastConn);
    assert_eq!(b.server(BackendId(0)).unwrap().active, 2);
    assert_eq!(Picker::new().pick(&mut b, None, &[]), Some(1));
}

#[test]
fn least_conn_prefers_idle_and_weighs_capacity() {
    let mut b = pool(Algorithm::LeastConn, servers(&[1, 1, 1]));
    let mut p = Picker::new();
    b.on_dispatch(BackendId(0));
    b.on_dispatch(BackendId(2));
    assert_eq!(p.pick(&mut b, None, &[]), Some(1));
    b.on_dispatch(BackendId(1));
    b.on_dispatch(BackendId(1));
    assert!(matches!(p.pick(&mut b, None, &[]), Some(0 | 2)));

    // Weighted: 3 sessions on a weight-4 server (4/4) beat 1 on a weight-1 server (2/1).
    let mut w = pool(Algorithm::LeastConn, servers(&[4, 1]));
    for _ in 0..3 {
        w.on_dispatch(BackendId(0));
    }
    w.on_dispatch(BackendId(1));
    assert_eq!(p.pick(&mut w, None, &[]), Some(0));
}

#[test]
fn least_conn_rotates_ties() {
    let mut b = pool(Algorithm::LeastConn, servers(&[1, 1, 1]));
    let mut p = Picker::new();
    let seq: Vec<u32> = (0..3).map(|_| p.pick(&mut b, None, &[]).unwrap()).collect();
    assert_eq!(seq, [0, 1, 2]);
}

#[test]
fn overflow_goes_to_the_next_group_only_when_needed() {
    let specs = vec![
        ServerSpec::new(0, "a").group(0).maxconn(1),
        ServerSpec::new(1, "b").group(0),
        ServerSpec::new(2, "c").group(1),
    ];
    let mut b = pool(Algorithm::RoundRobin, specs);
    let mut p = Picker::new();
    assert!(matches!(p.pick(&mut b, None, &[]), Some(0 | 1)));
    b.set_state(BackendId(1), ServerState::Draining, Duration::ZERO);
    assert_eq!(p.pick(&mut b, None, &[]), Some(0));
    b.on_dispatch(BackendId(0));
    assert_eq!(p.pick(&mut b, None, &[]), Some(2), "group 0 full");
    b.on_complete(BackendId(0), None, Duration::ZERO);
    assert_eq!(p.pick(&mut b, None, &[]), Some(0), "back once it has room");
    assert_eq!(p.pick(&mut b, None, &[BackendId(0)]), Some(2));
    assert!(
        b.accepts_persisted(BackendId(1)),
        "draining keeps persisted sessions"
    );
}

#[test]
fn peak_ewma_avoids_the_slow_server() {
    let decay = Duration::from_secs(10);
    let mut b = pool(Algorithm::PeakEwma { decay }, servers(&[1, 1, 1]));
    let mut p = Picker::new();
    for (id, ms) in [(0, 5), (1, 5), (2, 200)] {
        b.on_dispatch(BackendId(id));
        b.on_complete(BackendId(id), Some(Duration::from_millis(ms)), p.now);
    }
    let c = p.counts(&mut b, 3, 300);
    // Two fast servers each win every draw they appear in; the slow one only ties itself.
    assert_eq!(c[2], 0, "{c:?}");
    assert!(c[0] > 100 && c[1] > 100, "{c:?}");
}

#[test]
fn least_request_follows_weight_over_active() {
    let mut b = pool(Algorithm::LeastRequest { bias: 1.0 }, servers(&[10, 1]));
    let mut p = Picker::new();
    for _ in 0..5 {
        b.on_dispatch(BackendId(0));
    }
    // 10/6 > 1/1: the heavy server still wins with five sessions.
    assert_eq!(p.pick(&mut b, None, &[]), Some(0));
    for _ in 0..10 {
        b.on_dispatch(BackendId(0));
    }
    assert_eq!(p.pick(&mut b, None, &[]), Some(1));
}

#[test]
fn state_and_counters_survive_reconfiguration() {
    let mut b = pool(Algorithm::LeastConn, servers(&[1, 1]));
    b.on_dispatch(BackendId(1));
    let mut specs = servers(&[1, 1, 1]);
    specs.remove(0);
    b.update_servers(specs);
    assert_eq!(b.server(BackendId(1)).unwrap().active, 1);
    assert_eq!(b.server(BackendId(1)).unwrap().state, ServerState::Active);
    assert_eq!(
        b.server(BackendId(2)).unwrap().state,
        ServerState::Unchecked
    );
    assert!(b.server(BackendId(0)).is_none());
    assert_eq!(Picker::new().pick(&mut b, None, &[]), Some(1));
}

#[test]
fn least_conn_follows_a_slow_start_ramp() {
    let mut b = pool(Algorithm::LeastConn, servers(&[10, 10]));
    b.set_slow_start(Some(SlowStart {
        duration: Duration::from_secs(10),
    }));
    let mut p = Picker::new();
    b.set_state(BackendId(1), ServerState::Down, Duration::from_secs(90));
    b.set_state(BackendId(1), ServerState::Active, Duration::from_secs(100));
    p.now = Duration::from_secs(102);
    let mut held = [0u32; 2];
    for _ in 0..600 {
        let id = p.pick(&mut b, None, &[]).unwrap();
        b.on_dispatch(BackendId(id));
        held[id as usize] += 1;
    }
    // Weights 10 : 2 at 20% of the ramp, so held sessions split 5 : 1.
    assert!((98..=102).contains(&held[1]), "{held:?}");
    // Once ramped, new sessions go to the lighter-loaded returning server until even.
    p.now = Duration::from_secs(110);
    for _ in 0..400 {
        let id = p.pick(&mut b, None, &[]).unwrap();
        b.on_dispatch(BackendId(id));
        held[id as usize] += 1;
    }
    assert!(held[0].abs_diff(held[1]) <= 1, "{held:?}");
}

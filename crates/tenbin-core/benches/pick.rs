//! Pick latency per algorithm at N = 10, 100 and 1000 servers.
//!
//! The pool is prepared first (plan and hash tables built), servers carry a spread of active
//! sessions and latency observations, and hashing algorithms get a fresh key every pick, so
//! the figure is the steady-state cost of one `Balancer::pick`. Besides criterion's mean, it
//! prints the per-pick time of the fastest of 200 batches of 1000 picks, which a loaded
//! machine disturbs far less.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tenbin_core::pick::{Algorithm, Balancer, PickContext};
use tenbin_core::{BackendId, ServerSpec, ServerState};

fn algorithms() -> Vec<(&'static str, Algorithm)> {
    vec![
        ("round_robin", Algorithm::RoundRobin),
        ("smooth_wrr", Algorithm::WeightedRoundRobin),
        ("least_conn", Algorithm::LeastConn),
        (
            "peak_ewma",
            Algorithm::PeakEwma {
                decay: Duration::from_secs(10),
            },
        ),
        ("least_request", Algorithm::LeastRequest { bias: 1.0 }),
        ("maglev", Algorithm::Maglev { table_size: 65_537 }),
        ("ketama", Algorithm::Ketama),
        ("source_hash", Algorithm::SourceHash),
    ]
}

fn pool(algorithm: Algorithm, n: u32, rng: &mut ChaCha8Rng) -> Balancer {
    let specs: Vec<ServerSpec> = (0..n)
        .map(|i| ServerSpec::new(i, format!("10.2.{}.{}:80", i / 250, i % 250)).weight(1 + i % 4))
        .collect();
    let mut b = Balancer::new(algorithm, specs);
    for i in 0..n {
        let id = BackendId(i);
        b.set_state(id, ServerState::Active, Duration::ZERO);
        for _ in 0..rng.next_u32() % 8 {
            b.on_dispatch(id);
        }
        b.on_dispatch(id);
        let rtt = Duration::from_micros(500 + u64::from(rng.next_u32() % 5000));
        b.on_complete(id, Some(rtt), Duration::from_secs(1));
    }
    b.prepare();
    b
}

fn picks(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for (name, algorithm) in algorithms() {
        let mut group = c.benchmark_group(format!("pick/{name}"));
        for n in [10u32, 100, 1000] {
            let mut b = pool(algorithm.clone(), n, &mut rng);
            let mut key = 0u64;
            let fastest = (0..200)
                .map(|_| {
                    let t = Instant::now();
                    for _ in 0..1000 {
                        key = key.wrapping_add(0x9e37_79b9_7f4a_7c15);
                        let mut ctx = PickContext {
                            now: Duration::from_secs(2),
                            key: Some(key),
                            exclude: &[],
                            rng: &mut rng,
                        };
                        black_box(b.pick(&mut ctx));
                    }
                    t.elapsed() / 1000
                })
                .min()
                .unwrap_or(Duration::ZERO);
            println!("pick {name} N={n}: fastest batch {fastest:?} per pick");
            group.bench_function(BenchmarkId::from_parameter(n), |bench| {
                bench.iter(|| {
                    key = key.wrapping_add(0x9e37_79b9_7f4a_7c15);
                    let mut ctx = PickContext {
                        now: Duration::from_secs(2),
                        key: Some(key),
                        exclude: &[],
                        rng: &mut rng,
                    };
                    black_box(b.pick(&mut ctx))
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, picks);
criterion_main!(benches);

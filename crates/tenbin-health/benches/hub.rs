//! What health costs the data path: one passive report per request, and one republication
//! per check result, for a pool of 100 servers.

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use tenbin_health::hub::TargetOptions;
use tenbin_health::outcome::CheckResult;
use tenbin_health::{HealthHub, OutlierSpec, PassiveSignal, TargetKey};

fn hub(n: usize) -> (std::sync::Arc<HealthHub>, Vec<String>) {
    let hub = HealthHub::new();
    let now = Instant::now();
    hub.add_pool("app", Some(OutlierSpec::default()), now);
    let names: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
    for s in &names {
        let key = TargetKey::new("app", s);
        hub.add_target(&key, TargetOptions::default(), now);
        hub.report_check(&key, CheckResult::pass("ok"), now);
    }
    (hub, names)
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let (hub, names) = hub(100);
    let passive = hub.passive_handle();
    let mut i = 0usize;
    c.bench_function("passive report (success), 100 servers", |b| {
        b.iter(|| {
            i = (i + 1) % names.len();
            passive.report_names("app", black_box(&names[i]), PassiveSignal::Success);
        })
    });
    let key = TargetKey::new("app", "s7");
    let mut flip = false;
    let now = Instant::now();
    c.bench_function(
        "check result that changes the reason (republish), 100 servers",
        |b| {
            b.iter(|| {
                flip = !flip;
                let reason = if flip { "HTTP 200" } else { "HTTP 204" };
                hub.report_check(&key, CheckResult::pass(reason), now);
            })
        },
    );
}

criterion_group!(hub_benches, benches);
criterion_main!(hub_benches);

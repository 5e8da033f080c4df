//! Runs the DNS tier alone from a TOML file holding a `[dns]`-shaped table at the top level.
//! `cargo run --release -p tenbin-dns --example serve -- CONFIG [THREADS]`
//! Used by `bench/dns.sh`; prints `listening ADDR` lines once bound, stops on Ctrl-C/SIGTERM.

use std::sync::Arc;
use tenbin_config::dns::DnsSection;
use tenbin_dns::{Engine, HealthSnapshot, Sockets};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: serve CONFIG [THREADS]"))?;
    let threads: usize = args.next().map_or(Ok(1), |t| t.parse())?;
    let cfg: DnsSection = toml::from_str(&std::fs::read_to_string(&path)?)?;
    let engine = Arc::new(Engine::new(&cfg)?);
    let udp = if cfg.udp_sockets == 0 {
        threads
    } else {
        cfg.udp_sockets
    };
    let sockets = Sockets::bind(&cfg.listen, udp)?;
    for s in &sockets.udp {
        println!("listening udp {}", s.local_addr()?);
    }
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    rt.block_on(async move {
        let (_tx, rx) = tokio::sync::watch::channel(Arc::new(HealthSnapshot::default()));
        let stop = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        tenbin_dns::serve(engine.clone(), rx, sockets, stop).await?;
        eprintln!("{:?}", engine.stats());
        anyhow::Ok(())
    })
}

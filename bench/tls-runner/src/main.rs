//! `tenbin-tls-bench-runner CONFIG`: serve the config's `mode http` frontends with
//! `[frontend.tls]` as HTTPS (persistence per pool included), its other `mode http` frontends
//! as plain HTTP (the no-TLS baseline) and its L4 frontends through
//! `l4::serve`, until SIGINT/SIGTERM. Benchmark plumbing only.
#![forbid(unsafe_code)]

use std::error::Error;
use std::time::Duration;

use tenbin_config::Mode;
use tenbin_proxy::http::{HttpFrontend, HttpService};
use tenbin_proxy::l4::{pools, serve, ServeOptions};
use tenbin_proxy::tls::l4::terminate_config;
use tenbin_proxy::tls::server::serve_https;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: tenbin-tls-bench-runner CONFIG")?;
    let text = std::fs::read_to_string(&path)?;
    let config = tenbin_config::Config::parse(&text, &path)?;
    let pools = pools(&config);
    let persistence = tenbin_proxy::persist::from_config(&config);
    let (tx, rx) = tokio::sync::watch::channel(false);
    let listeners = serve(&config, &pools, ServeOptions::default(), rx.clone()).await?;
    for l in &listeners {
        eprintln!("listening frontend={} addr={} l4", l.frontend, l.addr);
    }
    for f in config.frontend.iter().filter(|f| f.mode == Mode::Http) {
        let Some(tls) = &f.tls else {
            // Plain HTTP (the benchmark's no-TLS baseline).
            for addr in &f.bind {
                let listener = TcpListener::bind(*addr.get_ref()).await?;
                let fe = HttpFrontend::from_config(f, pools.values().cloned().collect())?;
                let mut stop = rx.clone();
                tokio::spawn(tenbin_proxy::http::serve(listener, fe, async move {
                    let _ = stop.wait_for(|v| *v).await;
                }));
            }
            continue;
        };
        let (server_config, store) = terminate_config(tls)?;
        let _watch = store.watch(Duration::from_secs(2));
        for addr in &f.bind {
            let listener = TcpListener::bind(*addr.get_ref()).await?;
            let mut fe = HttpFrontend::from_config(f, pools.values().cloned().collect())?;
            fe.persistence = tenbin_proxy::persist::for_pools(&persistence, &fe.pools);
            fe.upstream_tls = tenbin_proxy::tls::upstream::for_pools(&config, &fe.pools)?;
            eprintln!(
                "listening frontend={} addr={} https",
                f.name.get_ref(),
                listener.local_addr()?
            );
            let mut stop = rx.clone();
            tokio::spawn(serve_https(
                listener,
                HttpService::new(fe),
                server_config.clone(),
                Duration::from_secs(10),
                async move {
                    let _ = stop.wait_for(|v| *v).await;
                },
            ));
        }
    }
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    let _ = tx.send(true);
    Ok(())
}

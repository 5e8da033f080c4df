//! `tenbin-proxy-bench-runner CONFIG [--splice]`: serve the config's L4 frontends until
//! SIGINT/SIGTERM. Benchmark plumbing only; `tenbin run` is the real entry point.
#![forbid(unsafe_code)]

use std::error::Error;

use tenbin_proxy::l4::{pools, serve, ServeOptions};
use tokio::signal::unix::{signal, SignalKind};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: tenbin-proxy-bench-runner CONFIG [--splice]")?;
    let splice = args.any(|a| a == "--splice");
    let text = std::fs::read_to_string(&path)?;
    let config = tenbin_config::Config::parse(&text, &path)?;
    let pools = pools(&config);
    let (tx, rx) = tokio::sync::watch::channel(false);
    let listeners = serve(&config, &pools, ServeOptions { splice }, rx).await?;
    for l in &listeners {
        eprintln!("listening frontend={} addr={} splice={splice}", l.frontend, l.addr);
    }
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    let _ = tx.send(true);
    Ok(())
}

//! `tenbin-proxy-bench-runner CONFIG [--splice]`: serve the config's L4 frontends (through
//! `l4::serve`) and its `mode http` frontends (through `http::serve`) until SIGINT/SIGTERM.
//! Benchmark plumbing only; `tenbin run` is the real entry point and wires the same calls.
//! bench/proxy.sh runs it for the splice rows (a knob the config file does not carry), with
//! `TENBIN_THREADS` workers like `tenbin run --threads` (1: a current-thread runtime).
#![forbid(unsafe_code)]

use std::error::Error;

use tenbin_config::Mode;
use tenbin_proxy::http::HttpFrontend;
use tenbin_proxy::l4::{pools, serve, ServeOptions};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

fn main() -> Result<(), Box<dyn Error>> {
    let threads: usize = match std::env::var("TENBIN_THREADS") {
        Ok(v) => v.trim().parse()?,
        Err(_) => 2,
    };
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    builder.enable_all().build()?.block_on(serve_all())
}

async fn serve_all() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: tenbin-proxy-bench-runner CONFIG [--splice]")?;
    let splice = args.any(|a| a == "--splice");
    let text = std::fs::read_to_string(&path)?;
    let config = tenbin_config::Config::parse(&text, &path)?;
    let pools = pools(&config);
    let (tx, rx) = tokio::sync::watch::channel(false);
    let listeners = serve(&config, &pools, ServeOptions { splice }, rx.clone()).await?;
    for l in &listeners {
        eprintln!(
            "listening frontend={} addr={} splice={splice}",
            l.frontend, l.addr
        );
    }
    for f in config.frontend.iter().filter(|f| f.mode == Mode::Http) {
        for addr in &f.bind {
            let listener = TcpListener::bind(*addr.get_ref()).await?;
            let fe = HttpFrontend::from_config(f, pools.values().cloned().collect())?;
            eprintln!(
                "listening frontend={} addr={} http",
                f.name.get_ref(),
                listener.local_addr()?
            );
            let mut stop = rx.clone();
            tokio::spawn(tenbin_proxy::http::serve(listener, fe, async move {
                let _ = stop.wait_for(|v| *v).await;
            }));
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

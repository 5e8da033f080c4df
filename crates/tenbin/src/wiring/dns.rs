//! The GSLB DNS tier in a running node: bind its sockets, build the engine from `[dns]`, and
//! feed it a health snapshot.

use std::sync::Arc;

use anyhow::Context as _;
use tenbin_config::dns::DnsSection;
use tenbin_dns::{Engine, HealthSnapshot, Sockets};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running DNS tier.
#[derive(Debug)]
pub struct DnsTier {
    /// Kept so the health channel stays open; VIP checks publish through it.
    _health: watch::Sender<Arc<HealthSnapshot>>,
    pub task: JoinHandle<std::io::Result<()>>,
}

impl DnsTier {
    /// Binds `[dns].listen` and serves until `stop` turns true.
    pub fn start(dns: &DnsSection, mut stop: watch::Receiver<bool>) -> anyhow::Result<DnsTier> {
        let engine = Arc::new(Engine::new(dns).context("dns: cannot build the zones")?);
        let (health, health_rx) = watch::channel(Arc::new(HealthSnapshot::default()));
        let sockets = Sockets::bind(&dns.listen, dns.udp_sockets)
            .with_context(|| format!("dns: cannot bind {:?}", dns.listen))?;
        for addr in &dns.listen {
            tracing::info!(%addr, "listening (dns)");
        }
        let shutdown = async move {
            let _ = stop.wait_for(|v| *v).await;
        };
        let task = tokio::spawn(tenbin_dns::serve(engine, health_rx, sockets, shutdown));
        Ok(DnsTier {
            _health: health,
            task,
        })
    }
}

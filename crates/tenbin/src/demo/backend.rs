//! The demo's embedded HTTP backends: loopback servers with a name, a latency of their own,
//! a `/health` page, and a stop that behaves like a crash (listener and connections gone).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// One running backend.
#[derive(Debug)]
pub struct DemoBackend {
    pub name: String,
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
}

impl DemoBackend {
    /// Starts a backend on 127.0.0.1 that answers after `latency`.
    pub async fn start(name: &str, latency: Duration) -> anyhow::Result<DemoBackend> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let served = Arc::new(AtomicU64::new(0));
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(accept_loop(
            listener,
            name.to_string(),
            latency,
            served,
            stopped,
        ));
        Ok(DemoBackend {
            name: name.into(),
            addr,
            stop,
        })
    }

    /// Crashes the backend: the port refuses connections and open ones are cut.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

async fn accept_loop(
    listener: TcpListener,
    name: String,
    latency: Duration,
    served: Arc<AtomicU64>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let stream = tokio::select! {
            _ = stopped.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((s, _)) => {
                    let _ = s.set_nodelay(true);
                    s
                }
                Err(_) => continue,
            },
        };
        let (name, served, mut stopped) = (name.clone(), Arc::clone(&served), stopped.clone());
        tokio::spawn(async move {
            let svc =
                service_fn(move |req| answer(name.clone(), latency, Arc::clone(&served), req));
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                _ = conn => {}
                _ = stopped.changed() => {}
            }
        });
    }
}

async fn answer(
    name: String,
    latency: Duration,
    served: Arc<AtomicU64>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    served.fetch_add(1, Ordering::Relaxed);
    if req.uri().path() == "/health" {
        return Ok(Response::new(Full::new(Bytes::from_static(b"OK"))));
    }
    tokio::time::sleep(latency).await;
    let resp = Response::builder()
        .header("x-server", name.as_str())
        .body(Full::new(Bytes::from(format!("hello from {name}\n"))))
        .unwrap_or_default();
    Ok(resp)
}

//! Test PKI and TLS peers for the TLS tests: a throwaway CA, leaf certificates written to a
//! per-test temporary directory (removed on drop), TLS backends that answer with their name,
//! and clients that report what they negotiated. Names are under `.test` (RFC 2606).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use tenbin_proxy::tls::CertFiles;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A directory removed when dropped, even if the test fails.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "tenbin-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A certificate authority for one test.
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A leaf's PEM text and DER.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

impl Ca {
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    pub fn der(&self) -> CertificateDer<'static> {
        self.cert.der().clone()
    }

    /// A leaf for `names` (DNS names, `*.x` wildcards or IP addresses).
    pub fn leaf(&self, names: &[&str]) -> Leaf {
        let params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }

    /// A client trusting only this CA, offering `alpn`.
    pub fn client(&self, alpn: &[&str]) -> Arc<ClientConfig> {
        self.client_with(alpn, &[&rustls::version::TLS13, &rustls::version::TLS12])
    }

    pub fn client_with(
        &self,
        alpn: &[&str],
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.der()).unwrap();
        let mut cfg = ClientConfig::builder_with_provider(Arc::new(tenbin_proxy::tls::provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        cfg.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        Arc::new(cfg)
    }
}

impl Leaf {
    /// Writes `<stem>.crt` and `<stem>.key` into `dir`.
    pub fn write(&self, dir: &Path, stem: &str) -> CertFiles {
        let files = CertFiles::new(
            dir.join(format!("{stem}.crt")),
            dir.join(format!("{stem}.key")),
        );
        std::fs::write(&files.cert, &self.cert_pem).unwrap();
        std::fs::write(&files.key, &self.key_pem).unwrap();
        files
    }

    /// A rustls server config presenting this leaf.
    pub fn server_config(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<ServerConfig> {
        let chain = vec![self.der.clone()];
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).unwrap();
        let cfg = ServerConfig::builder_with_provider(Arc::new(tenbin_proxy::tls::provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        Arc::new(cfg)
    }
}

/// What one TLS client connection saw.
pub struct Seen {
    pub peer_cert: CertificateDer<'static>,
    pub alpn: Option<Vec<u8>>,
    pub version: Option<rustls::ProtocolVersion>,
    pub resumed: bool,
    /// The first line the far end sent after the handshake (backend name), if asked for.
    pub line: String,
}

/// Connects to `addr` with SNI `name` (an IP literal sends none), writes `send` and reads
/// until a newline or close.
pub async fn tls_exchange(
    cfg: Arc<ClientConfig>,
    addr: SocketAddr,
    name: &str,
    send: &[u8],
) -> std::io::Result<Seen> {
    let tcp = TcpStream::connect(addr).await?;
    let server_name = ServerName::try_from(name.to_owned()).unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(cfg)
        .connect(server_name, tcp)
        .await?;
    tls.write_all(send).await?;
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while line.len() < 256 {
        match tls.read(&mut b).await {
            Ok(0) | Err(_) => break,
            Ok(_) if b[0] == b'\n' => break,
            Ok(_) => line.push(b[0]),
        }
    }
    let (_, conn) = tls.get_ref();
    Ok(Seen {
        peer_cert: conn.peer_certificates().unwrap()[0].clone().into_owned(),
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        version: conn.protocol_version(),
        resumed: conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        line: String::from_utf8_lossy(&line).into_owned(),
    })
}

/// A TLS server on 127.0.0.1 that answers every connection with `name\n` and closes.
pub async fn tls_backend(
    name: &str,
    cfg: Arc<ServerConfig>,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
    let name = name.to_owned();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, name) = (acceptor.clone(), name.clone());
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let _ = tls.write_all(format!("{name}\n").as_bytes()).await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    (addr, task)
}

/// A passthrough frontend on 127.0.0.1; dropping the sender stops it.
pub async fn passthrough_front(
    pass: tenbin_proxy::tls::passthrough::Passthrough,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let serve = tenbin_proxy::tls::passthrough::serve(listener, Arc::new(pass), async move {
        let _ = rx.await;
    });
    tokio::spawn(serve);
    (addr, tx)
}

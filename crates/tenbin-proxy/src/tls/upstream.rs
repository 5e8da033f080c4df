//! Re-encryption towards servers: a TLS client verifying servers against a CA bundle, with an
//! optional client certificate and the SNI to send.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::certs::{load_chain, load_key};
use super::{CertFiles, TlsError};

/// A pool's re-encryption settings (`[pool.tls]`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamConfig {
    /// PEM bundle of the CAs that sign the servers' certificates.
    pub ca_file: Option<PathBuf>,
    /// Verify the server's chain and name. Off only for lab setups with self-signed servers.
    pub verify: bool,
    pub client_cert: Option<CertFiles>,
    /// Name sent as SNI and verified; absent = the server's IP address is verified, no SNI.
    pub sni: Option<String>,
    pub alpn: Vec<String>,
}

/// Opens TLS sessions to a pool's servers.
#[derive(Clone)]
pub struct Upstream {
    connector: TlsConnector,
    sni: Option<ServerName<'static>>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("sni", &self.sni)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    pub fn new(cfg: &UpstreamConfig) -> Result<Self, TlsError> {
        let provider = Arc::new(super::provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?;
        let builder = if cfg.verify {
            let mut roots = RootCertStore::empty();
            if let Some(ca) = &cfg.ca_file {
                for cert in load_chain(ca)? {
                    roots
                        .add(cert)
                        .map_err(|e| TlsError::Certificate(ca.clone(), e.to_string()))?;
                }
            }
            builder.with_root_certificates(roots)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
        };
        let mut config = match &cfg.client_cert {
            Some(files) => {
                builder.with_client_auth_cert(load_chain(&files.cert)?, load_key(&files.key)?)?
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = cfg.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        let sni = cfg
            .sni
            .as_deref()
            .map(|s| {
                ServerName::try_from(s.to_owned()).map_err(|_| TlsError::ServerName(s.to_owned()))
            })
            .transpose()?;
        Ok(Upstream {
            connector: TlsConnector::from(Arc::new(config)),
            sni,
        })
    }

    /// TLS over an established connection to `addr`. A verification failure is an
    /// `InvalidData` error: the server (or its certificate) is at fault, not the client.
    pub async fn connect(
        &self,
        tcp: TcpStream,
        addr: SocketAddr,
    ) -> io::Result<TlsStream<TcpStream>> {
        let name = self
            .sni
            .clone()
            .unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()));
        self.connector.connect(name, tcp).await
    }
}

/// Accepts any certificate but still checks handshake signatures (verify = false).
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl UpstreamConfig {
    /// From a validated `[pool.tls]`.
    pub fn from_config(t: &tenbin_config::tls::PoolTls) -> Self {
        UpstreamConfig {
            ca_file: t.ca_file.clone(),
            verify: t.verify,
            client_cert: match (&t.client_cert, &t.client_key) {
                (Some(c), Some(k)) => Some(CertFiles::new(c.clone(), k.clone())),
                _ => None,
            },
            sni: t.sni.clone(),
            alpn: t.alpn.clone(),
        }
    }
}

/// Re-encryption per pool index for an L7 frontend over `pools` (for
/// `HttpFrontend::upstream_tls`); `None` for pools without `[pool.tls]`.
pub fn for_pools(
    config: &tenbin_config::Config,
    pools: &[crate::pool::Pool],
) -> Result<Vec<Option<Upstream>>, TlsError> {
    pools
        .iter()
        .map(|p| {
            config
                .pool(p.name())
                .and_then(|c| c.tls.as_ref())
                .map(|t| Upstream::new(&UpstreamConfig::from_config(t)))
                .transpose()
        })
        .collect()
}

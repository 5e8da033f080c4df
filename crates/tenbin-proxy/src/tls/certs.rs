//! Certificates chosen by SNI, reloaded from disk without dropping connections.
//!
//! A [`CertStore`] holds every configured chain and key, indexed by the DNS names of each
//! certificate (exact, and `*.suffix` wildcards matching exactly one label); the first
//! certificate is the default for clients without SNI or with an unknown name. rustls asks it
//! for a certificate on every handshake ([`ResolvesServerCert`]); a reload builds a whole new
//! index and swaps it in atomically (arc-swap), so handshakes in flight and established
//! connections are untouched and a broken file on disk leaves the old certificates serving.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::TlsError;

/// One certificate chain and its key, as PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CertFiles {
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        CertFiles {
            cert: cert.into(),
            key: key.into(),
        }
    }
}

/// Certificates by name, swapped whole on reload. See the module docs.
#[derive(Debug)]
pub struct CertStore {
    files: Vec<CertFiles>,
    provider: Arc<CryptoProvider>,
    index: ArcSwap<CertIndex>,
    /// Modification stamps of the files the current index was built from.
    stamps: Mutex<Vec<Stamp>>,
}

#[derive(Debug, Default)]
struct CertIndex {
    exact: HashMap<String, Arc<CertifiedKey>>,
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
}

/// A file's content fingerprint: certificates are small, and comparing content (not only
/// mtime, whose granularity may hide a quick rewrite) never misses a change.
type Stamp = Option<u64>;

impl CertStore {
    /// Loads every chain; fails on the first unreadable file, key or certificate.
    pub fn load(files: Vec<CertFiles>, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let stamps = stamps(&files);
        let index = build(&files, &provider)?;
        Ok(CertStore {
            files,
            provider,
            index: ArcSwap::from_pointee(index),
            stamps: Mutex::new(stamps),
        })
    }

    /// Re-reads every file and swaps the index in; on error the old index stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let stamps = stamps(&self.files);
        let index = build(&self.files, &self.provider)?;
        self.index.store(Arc::new(index));
        *self.stamps.lock().unwrap_or_else(|e| e.into_inner()) = stamps;
        Ok(())
    }

    /// Reloads when a file's content changed; `Ok(true)` if it did.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let now = stamps(&self.files);
        if *self.stamps.lock().unwrap_or_else(|e| e.into_inner()) == now {
            return Ok(false);
        }
        self.reload().map(|()| true)
    }

    /// Polls the files every `every` and reloads on change, until the store is dropped
    /// elsewhere and only this task holds it. Reload errors are logged and retried.
    pub fn watch(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let store = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(store) = store.upgrade() else { return };
                match store.reload_if_changed() {
                    Ok(true) => tracing::info!("tls: certificates reloaded"),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!("tls: certificate reload failed, keeping the old ones: {e}")
                    }
                }
            }
        })
    }

    /// The certificate for `sni`: exact name, then `*.parent`, then the default.
    pub fn select(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let index = self.index.load();
        if let Some(name) = sni.map(|s| s.trim_end_matches('.').to_ascii_lowercase()) {
            if let Some(c) = index.exact.get(&name) {
                return Some(Arc::clone(c));
            }
            if let Some(c) = name
                .split_once('.')
                .and_then(|(_, p)| index.wildcard.get(p))
            {
                return Some(Arc::clone(c));
            }
        }
        index.default.clone()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.select(hello.server_name())
    }
}

fn stamps(files: &[CertFiles]) -> Vec<Stamp> {
    let stamp = |p: &Path| {
        let bytes = std::fs::read(p).ok()?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut h);
        Some(h.finish())
    };
    files
        .iter()
        .flat_map(|f| [stamp(&f.cert), stamp(&f.key)])
        .collect()
}

fn build(files: &[CertFiles], provider: &CryptoProvider) -> Result<CertIndex, TlsError> {
    let mut index = CertIndex::default();
    for f in files {
        let (key, names) = load_pair(f, provider)?;
        for name in names {
            let name = name.to_ascii_lowercase();
            match name.strip_prefix("*.") {
                Some(parent) => index.wildcard.entry(parent.to_owned()),
                None => index.exact.entry(name),
            }
            .or_insert_with(|| Arc::clone(&key));
        }
        index.default.get_or_insert(key);
    }
    Ok(index)
}

/// Loads a chain and key into a signing [`CertifiedKey`] and returns the leaf's DNS names.
pub(crate) fn load_pair(
    f: &CertFiles,
    provider: &CryptoProvider,
) -> Result<(Arc<CertifiedKey>, Vec<String>), TlsError> {
    let chain = load_chain(&f.cert)?;
    let key = load_key(&f.key)?;
    let signer = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::Key(f.key.clone(), e))?;
    let names = webpki::EndEntityCert::try_from(&chain[0])
        .map_err(|e| TlsError::Certificate(f.cert.clone(), e.to_string()))?
        .valid_dns_names()
        .map(str::to_owned)
        .collect();
    Ok((Arc::new(CertifiedKey::new(chain, signer)), names))
}

pub(crate) fn load_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Pem(path.to_owned(), e.to_string()))?;
    if chain.is_empty() {
        return Err(TlsError::Pem(path.to_owned(), "no certificate".into()));
    }
    Ok(chain)
}

pub(crate) fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Pem(path.to_owned(), e.to_string()))
}

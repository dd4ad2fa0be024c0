//! TLS termination for `coffer serve` (rustls with the aws-lc-rs provider): TLS 1.3 only
//! unless the operator opts into 1.2, HTTP/2 or HTTP/1.1 chosen by ALPN, and a
//! certificate that is replaced without a restart. `Certificates` re-reads its two files
//! on SIGHUP and when their modification times change; a pair that fails to load (a
//! half-copied renewal, a key that does not match) leaves the previous certificate in
//! service and is logged, so a botched renewal never takes the site down.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {why}")]
    Invalid { path: String, why: String },
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The certificate in service and the files it comes from.
pub struct Certificates {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Loaded>,
}

struct Loaded {
    key: Arc<CertifiedKey>,
    modified: (Option<SystemTime>, Option<SystemTime>),
}

impl fmt::Debug for Certificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificates")
            .field("cert", &self.cert_path)
            .field("key", &self.key_path)
            .finish_non_exhaustive()
    }
}

impl Certificates {
    /// Loads the pair; fails if either file is unreadable, holds no certificate or key,
    /// or the key is not the certificate's.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Arc<Certificates>, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let current = read_pair(cert_path, key_path, &provider)?;
        Ok(Arc::new(Certificates {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            provider,
            current: RwLock::new(current),
        }))
    }

    /// The files named by the configuration, if it names them.
    pub fn from_config(config: &Config) -> Result<Option<Arc<Certificates>>, TlsError> {
        match (&config.tls_cert_file, &config.tls_key_file) {
            (Some(cert), Some(key)) => Certificates::load(cert, key).map(Some),
            _ => Ok(None),
        }
    }

    /// Re-reads both files and puts the pair in service; on failure the previous one
    /// stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let loaded = read_pair(&self.cert_path, &self.key_path, &self.provider)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = loaded;
        Ok(())
    }

    /// Reloads when either file's modification time changed since the last load.
    /// Returns whether it reloaded.
    pub fn reload_if_changed(&self) -> Result<bool, TlsError> {
        let now = (modified(&self.cert_path), modified(&self.key_path));
        let before = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .modified;
        if now == before {
            return Ok(false);
        }
        self.reload().map(|()| true)
    }

    /// SHA-256 of the leaf certificate in service (hex), for logs and the audit.
    pub fn fingerprint(&self) -> String {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        current
            .key
            .end_entity_cert()
            .map(|c| crate::digest::sha256_hex_bytes(c.as_ref()))
            .unwrap_or_default()
    }

    /// The rustls server configuration: these certificates, TLS 1.3 (and 1.2 if
    /// `allow_tls12`), ALPN `h2` then `http/1.1`.
    pub fn server_config(self: &Arc<Self>, allow_tls12: bool) -> Result<ServerConfig, TlsError> {
        let versions: &[&'static rustls::SupportedProtocolVersion] = if allow_tls12 {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS13]
        };
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(versions)?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .key
                .clone(),
        )
    }
}

/// TLS as a client of a peer the operator's certificate authority vouches for (the
/// PostgreSQL control plane, another node): the certificates in `ca_file` are the only
/// roots, so a connection reaches the peer it was told of and no one else on the way.
pub fn client_config(ca_file: &Path) -> Result<rustls::ClientConfig, TlsError> {
    let pem = read(ca_file)?;
    let invalid = |why: String| TlsError::Invalid {
        path: ca_file.display().to_string(),
        why,
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        roots
            .add(cert.map_err(|e| invalid(e.to_string()))?)
            .map_err(|e| invalid(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(invalid("no certificate in it".into()));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn modified(path: &Path) -> Option<SystemTime> {
    #[allow(clippy::disallowed_methods, reason = "the operator's TLS files")]
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn read_pair(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<Loaded, TlsError> {
    let stamps = (modified(cert), modified(key));
    let invalid = |path: &Path, why: String| TlsError::Invalid {
        path: path.display().to_string(),
        why,
    };
    let chain = CertificateDer::pem_slice_iter(&read(cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(cert, format!("not a PEM certificate chain ({e})")))?;
    if chain.is_empty() {
        return Err(invalid(cert, "holds no certificate".into()));
    }
    let private = PrivateKeyDer::from_pem_slice(&read(key)?)
        .map_err(|e| invalid(key, format!("not a PEM private key ({e})")))?;
    let certified = CertifiedKey::from_der(chain, private, provider)
        .map_err(|e| invalid(key, format!("does not fit the certificate ({e})")))?;
    Ok(Loaded {
        key: Arc::new(certified),
        modified: stamps,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    #[allow(clippy::disallowed_methods, reason = "the operator's TLS files")]
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

#[cfg(test)]
#[allow(
    clippy::disallowed_methods,
    reason = "the test writes the operator's TLS files"
)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path) {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        std::fs::write(dir.join("c.pem"), made.cert.pem()).unwrap();
        std::fs::write(dir.join("k.pem"), made.signing_key.serialize_pem()).unwrap();
    }

    #[test]
    fn a_changed_pair_is_picked_up_and_a_broken_one_keeps_the_old() {
        let dir = tempfile::tempdir().unwrap();
        write_pair(dir.path());
        let certs =
            Certificates::load(&dir.path().join("c.pem"), &dir.path().join("k.pem")).unwrap();
        let first = certs.fingerprint();
        assert!(!certs.reload_if_changed().unwrap(), "nothing changed yet");
        write_pair(dir.path());
        assert!(certs.reload_if_changed().unwrap());
        let second = certs.fingerprint();
        assert_ne!(first, second);
        std::fs::write(dir.path().join("c.pem"), "not a certificate").unwrap();
        assert!(certs.reload_if_changed().is_err());
        assert_eq!(
            certs.fingerprint(),
            second,
            "the previous pair stays in service"
        );
        // A key from another pair does not fit.
        let other = tempfile::tempdir().unwrap();
        write_pair(other.path());
        std::fs::copy(other.path().join("c.pem"), dir.path().join("c.pem")).unwrap();
        let err = certs.reload().unwrap_err().to_string();
        assert!(err.contains("does not fit"), "{err}");
        assert_eq!(certs.fingerprint(), second);
    }
}

//! Layer 1: HTTPS with rustls (ring provider only), TLS 1.2 and 1.3.
//!
//! How a certificate and key (found by `config::serve`: `--tls-cert`/
//! `--tls-key`, else `SWML_SSL_*` as in the SignalWire Python SDK) become a
//! `rustls::ServerConfig`. Every failure names the flag or variable and the
//! file, and is found at start, including a key that does not belong to the
//! certificate. The reverse-proxy setup (TLS at nginx/Caddy) needs none of
//! this; see `deploy/`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::vars::SSL_ENABLED as ENABLED_VAR;

/// A certificate or key file and the flag or variable that named it.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: &'static str,
    pub path: PathBuf,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` (`{}`)", self.name, self.path.display())
    }
}

/// Why HTTPS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("`{ENABLED_VAR}` must be `true` or `false`, not `{0}`")]
    BadEnabled(String),
    #[error("`{ENABLED_VAR}` is true but `{0}` is not set")]
    Unset(&'static str),
    #[error("{0}: cannot read: {1}")]
    Read(Source, std::io::Error),
    #[error("{0}: no PEM certificate found")]
    NoCertificate(Source),
    #[error("{0}: not a valid PEM certificate chain: {1}")]
    BadCertificate(Source, String),
    #[error("{0}: no PEM private key (PKCS#8, RSA or EC) found")]
    NoKey(Source),
    #[error("{0}: the private key is encrypted; swagent cannot ask for its passphrase (`openssl pkey -in KEY -out PLAIN` decrypts it; keep that file mode 0600)")]
    EncryptedKey(Source),
    #[error("{key} does not match the certificate in {cert}")]
    Mismatch { key: Source, cert: Source },
    #[error("{key} cannot be used with the certificate in {cert}: {reason}")]
    Unusable {
        key: Source,
        cert: Source,
        reason: String,
    },
}

/// The key file's mode when others on the host can read it.
pub fn readable_by_others(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o7777;
    (mode & 0o004 != 0).then_some(mode)
}

/// Reads the certificate chain and key and builds the rustls configuration.
pub fn server_config(cert: &Source, key: &Source) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    // Bounded, and no FIFO: a PEM chain is a few KiB.
    let read = |s: &Source| {
        crate::files::read_regular(&s.path, 1024 * 1024).map_err(|e| TlsError::Read(s.clone(), e))
    };
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::BadCertificate(cert.clone(), e.to_string()))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(cert.clone()));
    }
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
        if key_pem.windows(9).any(|w| w == b"ENCRYPTED") {
            TlsError::EncryptedKey(key.clone())
        } else {
            TlsError::NoKey(key.clone())
        }
    })?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        // TLS 1.2 and 1.3 only: rustls has nothing older, and says so here.
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Unusable {
            key: key.clone(),
            cert: cert.clone(),
            reason: e.to_string(),
        })?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => TlsError::Mismatch {
                key: key.clone(),
                cert: cert.clone(),
            },
            other => TlsError::Unusable {
                key: key.clone(),
                cert: cert.clone(),
                reason: other.to_string(),
            },
        })?;
    Ok(Arc::new(config))
}

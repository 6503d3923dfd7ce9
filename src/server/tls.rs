//! Layer 1: HTTPS with rustls (ring provider only), TLS 1.2 and 1.3.
//!
//! Where the certificate and key come from (`--tls-cert`/`--tls-key`, else
//! `SWML_SSL_ENABLED` with `SWML_SSL_CERT_PATH`/`SWML_SSL_KEY_PATH`, as in the
//! SignalWire Python SDK) and how they become a `rustls::ServerConfig`. Every
//! failure names the flag or variable and the file, and is found at start,
//! including a key that does not belong to the certificate. The reverse-proxy
//! setup (TLS at nginx/Caddy) needs none of this; see `deploy/`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::auth::non_empty_env;

/// Turns on HTTPS from the environment (`true`, `1` or `yes`).
pub const ENABLED_VAR: &str = "SWML_SSL_ENABLED";
/// PEM certificate chain, leaf first.
pub const CERT_VAR: &str = "SWML_SSL_CERT_PATH";
/// PEM private key: PKCS#8, RSA (PKCS#1) or EC (SEC1).
pub const KEY_VAR: &str = "SWML_SSL_KEY_PATH";

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

/// Where the certificate and key are, if HTTPS is on.
pub fn sources(
    flag_cert: Option<&Path>,
    flag_key: Option<&Path>,
) -> Result<Option<(Source, Source)>, TlsError> {
    if let (Some(cert), Some(key)) = (flag_cert, flag_key) {
        return Ok(Some((
            Source {
                name: "--tls-cert",
                path: cert.to_owned(),
            },
            Source {
                name: "--tls-key",
                path: key.to_owned(),
            },
        )));
    }
    let enabled = crate::environment::flag(ENABLED_VAR).map_err(TlsError::BadEnabled)?;
    if !enabled {
        return Ok(None);
    }
    let get = |name: &'static str| {
        non_empty_env(name)
            .map(|p| Source {
                name,
                path: PathBuf::from(p),
            })
            .ok_or(TlsError::Unset(name))
    };
    Ok(Some((get(CERT_VAR)?, get(KEY_VAR)?)))
}

/// A certificate or key variable that is set while HTTPS is off, which an
/// operator may take for HTTPS being on.
pub fn ignored_paths() -> Option<String> {
    if crate::environment::flag(ENABLED_VAR).unwrap_or(true) {
        return None;
    }
    let set: Vec<String> = [CERT_VAR, KEY_VAR]
        .into_iter()
        .filter(|v| non_empty_env(v).is_some())
        .map(|v| format!("`{v}`"))
        .collect();
    (!set.is_empty()).then(|| {
        format!(
            "{} set, but `{ENABLED_VAR}` is not true: serving plain HTTP",
            set.join(" and ") + if set.len() == 1 { " is" } else { " are" }
        )
    })
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

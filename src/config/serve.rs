//! `serve`'s configuration: the flags, the environment and `.env`, read and
//! checked once into a [`ServeConfig`], in the style of miniserve's
//! `try_from_args`. Whatever would make `serve` fail later is an error here;
//! what would only weaken it is a finding ([`super::findings`]).

use std::path::{Path, PathBuf};

use super::env::{boolean, flag, non_empty};
use super::settings::Settings;
use super::vars;
use crate::cli::ServeArgs;
use crate::server::tls::{self, Source, TlsError};

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    pub host: String,
    pub port: u16,
}

/// Everything `serve` runs with, validated. Paths are as given: the files
/// behind them are opened when the server's state is built.
#[derive(Debug)]
pub struct ServeConfig {
    pub listen: Listen,
    pub settings: Settings,
    /// The audit log (`-`: stdout), and whether a failed write refuses requests.
    pub audit_log: Option<PathBuf>,
    pub audit_required: bool,
    /// The folder replicas share for used confirmation codes.
    pub confirm_store: Option<PathBuf>,
    /// Where summaries wait until delivered (`None`: in memory), and how
    /// many may.
    pub outbox: Option<PathBuf>,
    pub outbox_limits: crate::outbox::Limits,
    /// The kill-switch state file to watch.
    pub state_file: Option<PathBuf>,
    /// Serve `/metrics` without Basic Auth.
    pub metrics_public: bool,
    /// Refuse to start while a hardening finding fails.
    pub production: bool,
    /// For the findings: the TLS key, and its mode when others can read it.
    pub(super) tls_key: Option<Source>,
    pub(super) tls_key_exposed: Option<(Source, u32)>,
    /// For the findings: certificate variables set while HTTPS is off.
    pub(super) ignored_tls: Option<String>,
}

impl ServeConfig {
    /// A configuration with these settings and nothing else on (no audit
    /// log, no kill-switch file, an in-memory confirmation store), for
    /// embedding swagent and for in-process tests of the app.
    pub fn new(settings: Settings) -> ServeConfig {
        ServeConfig {
            listen: Listen {
                host: "127.0.0.1".into(),
                port: 0,
            },
            settings,
            audit_log: None,
            audit_required: false,
            confirm_store: None,
            outbox: None,
            outbox_limits: crate::outbox::Limits::default(),
            state_file: None,
            metrics_public: false,
            production: false,
            tls_key: None,
            tls_key_exposed: None,
            ignored_tls: None,
        }
    }

    /// Reads and checks everything `serve` is given.
    pub fn from_args(args: &ServeArgs) -> anyhow::Result<ServeConfig> {
        let trust_proxy = trust_proxy(args.trust_proxy)?;
        let mut settings = Settings::from_env(trust_proxy, args.allow_weak_password)?;
        let (tls_key, tls_key_exposed, ignored_tls) =
            match tls_sources(args.tls_cert.as_deref(), args.tls_key.as_deref())? {
                Some((cert, key)) => {
                    settings.tls = Some(tls::server_config(&cert, &key)?);
                    let exposed = tls::readable_by_others(&key.path).map(|m| (key.clone(), m));
                    (Some(key), exposed, None)
                }
                None => (None, None, ignored_tls_paths()),
            };
        if let Some(path) = &args.state_file {
            // Found out now, not by the first `disable` in an incident.
            if !crate::files::folder_of(path).is_dir() {
                anyhow::bail!(
                    "the folder of `--state-file` `{}` does not exist, so `swagent disable` could not write it",
                    path.display()
                );
            }
        }
        Ok(ServeConfig {
            listen: Listen {
                host: args.host.clone(),
                port: args.port,
            },
            settings,
            audit_log: args.audit_log.clone(),
            audit_required: args.audit_required,
            confirm_store: args.confirm_store.clone(),
            outbox: args.outbox.clone(),
            outbox_limits: outbox_limits()?,
            state_file: args.state_file.clone(),
            metrics_public: args.metrics_public,
            production: args.production,
            tls_key,
            tls_key_exposed,
            ignored_tls,
        })
    }
}

/// `SWAGENT_OUTBOX_MAX`: a count, a size (`512MiB`), or both, comma-separated;
/// what it leaves out keeps its default.
fn outbox_limits() -> anyhow::Result<crate::outbox::Limits> {
    let mut limits = crate::outbox::Limits::default();
    let Some(value) = non_empty(vars::OUTBOX_MAX) else {
        return Ok(limits);
    };
    let bad = || {
        anyhow::anyhow!(
            "`{}` must be a count of summaries, a size such as `512MiB`, or both comma-separated (`10000,1GiB`), not `{value}`",
            vars::OUTBOX_MAX
        )
    };
    for part in value.split(',').map(str::trim) {
        let count = !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        let n = match count {
            true => part.parse().map_err(|_| bad())?,
            false => crate::agent::units::parse_size(part).map_err(|_| bad())?,
        };
        if n == 0 {
            return Err(bad());
        }
        match count {
            true => limits.entries = n,
            false => limits.bytes = n,
        }
    }
    Ok(limits)
}

/// `--trust-proxy` (or `SWML_TRUST_PROXY`, which clap reads into it), or
/// the SDK's `SWML_TRUST_PROXY_HEADERS`: one setting under two names, so
/// when both variables are given they must agree, or an explicit "no"
/// would be overruled.
fn trust_proxy(flag_or_ours: bool) -> anyhow::Result<bool> {
    let sdk = flag(vars::TRUST_PROXY_HEADERS, false)?;
    let ours = non_empty(vars::TRUST_PROXY).and_then(|v| boolean(&v));
    if non_empty(vars::TRUST_PROXY_HEADERS).is_some() && ours.is_some_and(|ours| ours != sdk) {
        anyhow::bail!(
            "`{}` and `{}` disagree; they are one setting: keep one",
            vars::TRUST_PROXY,
            vars::TRUST_PROXY_HEADERS
        );
    }
    Ok(flag_or_ours || sdk)
}

/// Where the certificate and key are, if HTTPS is on: the flags, else
/// `SWML_SSL_ENABLED` with `SWML_SSL_CERT_PATH` and `SWML_SSL_KEY_PATH`,
/// as in the SignalWire Python SDK.
fn tls_sources(
    flag_cert: Option<&Path>,
    flag_key: Option<&Path>,
) -> Result<Option<(Source, Source)>, TlsError> {
    if let (Some(cert), Some(key)) = (flag_cert, flag_key) {
        let source = |name, path: &Path| Source {
            name,
            path: path.to_owned(),
        };
        return Ok(Some((source("--tls-cert", cert), source("--tls-key", key))));
    }
    let enabled = match non_empty(vars::SSL_ENABLED) {
        None => false,
        Some(v) => boolean(&v).ok_or(TlsError::BadEnabled(v))?,
    };
    if !enabled {
        return Ok(None);
    }
    let get = |name: &'static str| {
        non_empty(name)
            .map(|p| Source {
                name,
                path: PathBuf::from(p),
            })
            .ok_or(TlsError::Unset(name))
    };
    Ok(Some((get(vars::SSL_CERT_PATH)?, get(vars::SSL_KEY_PATH)?)))
}

/// A certificate or key variable that is set while HTTPS is off, which an
/// operator may take for HTTPS being on.
fn ignored_tls_paths() -> Option<String> {
    let set: Vec<String> = [vars::SSL_CERT_PATH, vars::SSL_KEY_PATH]
        .into_iter()
        .filter(|v| non_empty(v).is_some())
        .map(|v| format!("`{v}`"))
        .collect();
    (!set.is_empty()).then(|| {
        format!(
            "{} set, but `{}` is not true: serving plain HTTP",
            set.join(" and ") + if set.len() == 1 { " is" } else { " are" },
            vars::SSL_ENABLED
        )
    })
}

//! Hardening findings: what a configuration leaves weaker than production
//! needs. One list, made once from the validated configuration: `serve`
//! says each failing one at start (and with `--production` refuses to
//! start), and `check --production` prints every one as a checklist item,
//! so the two cannot disagree.

use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::Path;

use serde::Serialize;

use super::env::non_empty;
use super::serve::ServeConfig;
use super::settings::untrusted_proxy;
use super::vars;
use crate::agent::{Agent, Handler};
use crate::auth::Origin;

/// Below this many characters a password fails, and below this many bytes
/// a token secret does (`gen-creds` makes 48 and 64).
const STRONG: usize = 32;
/// Below this many bytes an HMAC key can be guessed offline from one token.
const GUESSABLE: usize = 16;

/// Whether a finding passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    /// Nothing here can tell; a person must look.
    CannotTell,
}

/// One item of the hardening checklist.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub id: &'static str,
    pub title: &'static str,
    pub status: Status,
    /// Why, in one line: the problems joined by `; ` when it fails.
    pub why: String,
    /// Each problem on its own, as `serve` warns of them.
    #[serde(skip)]
    pub problems: Vec<String>,
}

impl Finding {
    pub fn pass(id: &'static str, title: &'static str, why: impl Into<String>) -> Finding {
        Finding::with(id, title, Status::Pass, why.into(), Vec::new())
    }

    pub fn cannot_tell(id: &'static str, title: &'static str, why: impl Into<String>) -> Finding {
        Finding::with(id, title, Status::CannotTell, why.into(), Vec::new())
    }

    /// Fails with `problems`, or passes saying `ok` when there are none.
    pub fn unless(
        id: &'static str,
        title: &'static str,
        problems: Vec<String>,
        ok: impl Into<String>,
    ) -> Finding {
        if problems.is_empty() {
            return Finding::pass(id, title, ok);
        }
        Finding::with(id, title, Status::Fail, problems.join("; "), problems)
    }

    fn with(
        id: &'static str,
        title: &'static str,
        status: Status,
        why: String,
        problems: Vec<String>,
    ) -> Finding {
        Finding {
            id,
            title,
            status,
            why,
            problems,
        }
    }

    pub fn failed(&self) -> bool {
        self.status == Status::Fail
    }
}

impl ServeConfig {
    /// The hardening findings of this configuration serving `agent`.
    pub fn findings(&self, agent: &Agent) -> Vec<Finding> {
        vec![
            self.https(),
            self.password(),
            token_secret(self.settings.secret_origin),
            signing_key(),
            self.proxy_trust(),
            Finding::unless(
                "perimeter_limits",
                "Address and failure limits are on",
                self.settings.perimeter().weakened(),
                "`SWML_RATE_LIMIT` and `SWAGENT_AUTH_FAILURE_LIMIT` count per minute",
            ),
            env_mode(),
            audit_log(self.audit_log.as_deref()),
            confirm_store(agent, self.confirm_store.as_deref()),
            outbox(agent, self.outbox.as_deref()),
            webhook_signing(agent, self.settings.webhook.is_some()),
        ]
    }

    fn https(&self) -> Finding {
        let (id, title) = ("https", "HTTPS");
        let mut problems: Vec<String> = self.ignored_tls.iter().cloned().collect();
        let ok = match (&self.settings.tls, &self.settings.proxy_base) {
            (Some(_), _) => {
                if let Some((key, mode)) = &self.tls_key_exposed {
                    problems.push(format!("{key}: the private key has mode {mode:04o}: others on this host can read it (`chmod 600` it)"));
                }
                match &self.tls_key {
                    Some(key) if key.name.starts_with("--") => {
                        "`--tls-cert` and `--tls-key`: swagent serves HTTPS itself"
                    }
                    _ => "`SWML_SSL_ENABLED` with a certificate and key",
                }
            }
            (None, Some(p)) if p.starts_with("https://") => {
                "TLS at the proxy: `SWML_PROXY_URL_BASE` is https"
            }
            (None, Some(_)) => {
                problems.insert(
                    0,
                    "`SWML_PROXY_URL_BASE` is not https, and swagent's own TLS is off".into(),
                );
                ""
            }
            (None, None) => {
                problems.insert(0, "neither `SWML_SSL_ENABLED` (with cert and key) nor an https `SWML_PROXY_URL_BASE`".into());
                ""
            }
        };
        Finding::unless(id, title, problems, ok)
    }

    fn password(&self) -> Finding {
        let (id, title) = ("password", "Basic Auth password");
        let creds = &self.settings.creds;
        let len = creds.password().chars().count();
        let problem = match creds.origin {
            Origin::Generated => Some(format!(
                "`{}` is not set: a password is generated at each start (development only)",
                vars::PASSWORD
            )),
            Origin::Configured if len < STRONG => Some(format!(
                "configured but {len} characters; use {STRONG}+ (`swagent gen-creds`)"
            )),
            Origin::Configured => None,
        };
        Finding::unless(
            id,
            title,
            problem.into_iter().collect(),
            format!("configured, {len} characters"),
        )
    }

    fn proxy_trust(&self) -> Finding {
        let s = &self.settings;
        let problem = untrusted_proxy(s.proxy_base.is_some(), s.trust_proxy);
        let ok = match s.proxy_base {
            Some(_) => "`--trust-proxy`: limits count each client's own address",
            None => "no `SWML_PROXY_URL_BASE`: limits count each connection's address",
        };
        Finding::unless(
            "proxy_trust",
            "Client addresses behind the proxy",
            problem.into_iter().collect(),
            ok,
        )
    }
}

/// Kept as it is, as the SDK keeps it, so a mixed fleet agrees; but a
/// pasted space or line break is a classic cause of "every token is refused".
fn token_secret(origin: Origin) -> Finding {
    let name = vars::SECRET;
    let mut problems = Vec::new();
    match (origin, non_empty(name)) {
        (Origin::Configured, Some(s)) => {
            if s.len() < GUESSABLE {
                problems.push(format!("`{name}` is {} bytes: an HMAC key this short can be guessed offline from one token; use at least {STRONG} (`swagent gen-creds` makes 64)", s.len()));
            } else if s.len() < STRONG {
                problems.push(format!(
                    "`{name}` is {} bytes; use at least {STRONG} (`swagent gen-creds` makes 64)",
                    s.len()
                ));
            }
            if s.trim() != s {
                problems.push(format!("`{name}` starts or ends with whitespace, which is part of the secret; every replica and `token mint` must use it exactly"));
            }
        }
        _ => problems.push(format!("no `{name}`; a random token secret is used, so tokens stop verifying after a restart and across replicas")),
    }
    Finding::unless(
        "token_secret",
        "Function token secret",
        problems,
        "configured",
    )
}

fn signing_key() -> Finding {
    let name = vars::SIGNING_KEY;
    let problem = match non_empty(name) {
        None => Some(format!(
            "no `{name}`; request signature validation is off"
        )),
        Some(k) if k.trim() != k => Some(format!("`{name}` starts or ends with whitespace, which is part of the key; SignalWire's signatures will not match unless its key has it too")),
        Some(_) => None,
    };
    Finding::unless(
        "signing_key",
        "SignalWire request signatures",
        problem.into_iter().collect(),
        format!("`{name}` is set"),
    )
}

/// The file's mode when its group can write it.
pub fn group_writable(meta: &std::fs::Metadata) -> Option<u32> {
    Some(meta.mode() & 0o7777).filter(|m| m & 0o020 != 0)
}

/// `.env` sets credentials and where webhooks point: its group should not
/// be able to change it (the loader refuses one others can write).
fn env_mode() -> Finding {
    let mode = std::fs::metadata(".env")
        .ok()
        .and_then(|m| group_writable(&m));
    Finding::unless(
        "env_mode",
        "`.env` only its owner can change",
        mode.map(|mode| format!("`.env` has mode {mode:04o}: its group can change swagent's settings (`chmod 600 .env`)")).into_iter().collect(),
        "no `.env` here, or one its group cannot write",
    )
}

fn audit_log(path: Option<&Path>) -> Finding {
    let (id, title) = ("audit_log", "Audit log");
    let Some(path) = path.filter(|p| !p.as_os_str().is_empty()) else {
        return Finding::unless(
            id,
            title,
            vec!["no audit log (`--audit-log`, `SWAGENT_AUDIT_LOG`): nothing records what was called or refused".into()],
            "",
        );
    };
    let problem = (path != Path::new("-"))
        .then(|| unwritable(path).or_else(|| crate::audit::exposure(path)))
        .flatten()
        .map(|p| format!("`{}` {p}", path.display()));
    Finding::unless(
        id,
        title,
        problem.into_iter().collect(),
        "the audit log is set",
    )
}

/// Why `serve` could not open the audit log at `path`, judged as `serve`
/// opens it (through links) but without creating or opening anything that
/// is not a regular file (a finding changes nothing, not even a FIFO
/// reader's end of file).
fn unwritable(path: &Path) -> Option<String> {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => Some(
            "is not a regular file (a FIFO, socket, device or folder): `serve` refuses it".into(),
        ),
        Ok(_) => std::fs::OpenOptions::new()
            .append(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
            .err()
            .map(|e| format!("cannot be opened for writing: {e}")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // `serve` creates it, through a link where its target will be.
            let target = crate::files::resolve(path).ok()?;
            let folder = crate::files::folder_of(&target);
            (!folder.is_dir())
                .then(|| format!("is in `{}`, which is not a folder", folder.display()))
        }
        Err(e) => Some(format!("cannot be looked at: {e}")),
    }
}

/// Whether a summary that reached swagent survives a restart: only in an
/// outbox folder.
fn outbox(agent: &Agent, dir: Option<&Path>) -> Finding {
    let (id, title) = ("outbox", "Summaries survive a restart");
    if agent.summary.is_none() {
        return Finding::pass(id, title, "the agent delivers no summary");
    }
    let problems = match dir.filter(|d| !d.as_os_str().is_empty()) {
        None => vec!["no `--outbox`: summaries wait in memory, and a restart loses the undelivered (`SWAGENT_OUTBOX`)".to_owned()],
        Some(dir) if dir.exists() && !dir.is_dir() => vec![format!(
            "`{}` is not a folder: `serve` would refuse to start",
            dir.display()
        )],
        Some(_) => Vec::new(),
    };
    Finding::unless(
        id,
        title,
        problems,
        "summaries wait in the `--outbox` folder until delivered",
    )
}

/// Whether a confirmation code works once everywhere: within one process
/// it always does; across replicas and restarts only with a shared folder
/// that others cannot clear.
fn confirm_store(agent: &Agent, dir: Option<&Path>) -> Finding {
    let (id, title) = (
        "confirm_store",
        "Confirmation codes are single use across replicas",
    );
    if !agent.functions.values().any(|f| f.confirm) {
        return Finding::pass(id, title, "no function needs confirmation");
    }
    let Some(dir) = dir.filter(|d| !d.as_os_str().is_empty()) else {
        return Finding::cannot_tell(
            id,
            title,
            "no `--confirm-store`: a code is single use within one process; with replicas or restarts inside a code's lifetime, give them one shared folder (`SWAGENT_CONFIRM_STORE`)",
        );
    };
    let problem = if dir.is_dir() {
        crate::guard::store_exposure(dir).map(|p| format!("`{}` {p}", dir.display()))
    } else {
        Some(format!(
            "`{}` is not a folder: `serve` would refuse to start",
            dir.display()
        ))
    };
    Finding::unless(
        id,
        title,
        problem.into_iter().collect(),
        format!("`{}` records used codes", dir.display()),
    )
}

/// Whether backends can tell a request came from swagent. Without a secret
/// this is not a failure: a backend may check a credential of its own (an
/// `Authorization` header from `${env:...}`), which nothing here can see.
fn webhook_signing(agent: &Agent, secret: bool) -> Finding {
    let (id, title) = ("webhook_signing", "Requests to backends are signed");
    let signed: Vec<&str> = agent
        .handlers()
        .filter(|f| matches!(&f.handler, Handler::Http(h) if h.sign))
        .map(|f| f.key_in_file())
        .collect();
    if signed.is_empty() {
        return Finding::pass(id, title, "no http handler, or each has `sign: false`");
    }
    if secret {
        return Finding::pass(id, title, format!("`{}` is set", vars::WEBHOOK_SECRET));
    }
    Finding::cannot_tell(
        id,
        title,
        format!(
            "no `{}`: the backends of these handlers cannot tell a request came from swagent, unless they check a credential of their own: {}",
            vars::WEBHOOK_SECRET,
            signed.join(", ")
        ),
    )
}

/// With `--production`, the failing findings as one error; `Ok` when none fails.
pub fn refuse_failing(findings: &[Finding]) -> anyhow::Result<()> {
    let failing: Vec<String> = findings
        .iter()
        .filter(|f| f.failed())
        .map(|f| format!("  {}: {}", f.title, f.why))
        .collect();
    if failing.is_empty() {
        return Ok(());
    }
    anyhow::bail!(
        "`--production` refuses to start: {} hardening finding(s) fail (`swagent check --production` lists them all):\n{}",
        failing.len(),
        failing.join("\n")
    )
}

//! Server settings: what `serve` reads from the environment (the SignalWire
//! SDK's variable names) and its flags, checked once at start. Request
//! handling only ever sees the resulting [`Settings`].

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::HeaderValue;

use super::descriptors::MAX_CONNECTIONS_VAR;
use super::perimeter::AllowedHosts;
use super::unverified::{DEFAULT_UNVERIFIED_BODIES, UNVERIFIED_BODIES_VAR};
use crate::auth::{non_empty_env, Credentials, Origin};
use crate::signature::{SigningKey, SIGNING_KEY_VAR};
use crate::token::Secret;

/// Name of the token secret variable, as in the SignalWire Python SDK.
pub const SECRET_VAR: &str = "SIGNALWIRE_SWAIG_SECRET";
/// Default body limit when `SWML_MAX_REQUEST_SIZE` is unset.
pub const DEFAULT_MAX_REQUEST: usize = 1024 * 1024;
/// Default `SWML_RATE_LIMIT`, requests per minute per client address. A flood
/// guard only: SignalWire calls from few addresses, so a low value would
/// throttle a busy agent.
pub const DEFAULT_RATE_LIMIT: u32 = 6000;
/// Default `SWAGENT_AUTH_FAILURE_LIMIT`, failures per minute per address.
pub const DEFAULT_AUTH_FAILURE_LIMIT: u32 = 10;
/// Default `SWML_HSTS_MAX_AGE`, one year.
pub const DEFAULT_HSTS_MAX_AGE: u64 = 31_536_000;
/// Internal: the interval of the per-address and failure limits instead of a
/// minute (`2s`, `500ms`). Not in `--help`; it lets tests see a limit recover
/// without waiting a minute.
pub const RATE_WINDOW_VAR: &str = "SWAGENT_RATE_WINDOW";
/// How long a request body may take to arrive, once its head has: the
/// platform's bodies are a few kilobytes, sent at once.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Internal, like [`RATE_WINDOW_VAR`]: the body timeout instead of 10 s.
pub const BODY_TIMEOUT_VAR: &str = "SWAGENT_BODY_TIMEOUT";
/// The longest `SWAGENT_BODY_TIMEOUT`.
const MAX_BODY_TIMEOUT: Duration = Duration::from_secs(600);
/// The smallest `SWML_MAX_REQUEST_SIZE`: a SignalWire webhook body with the
/// call's details is about a kilobyte or two.
const MIN_MAX_REQUEST: usize = 4096;
/// Below this many bytes, `SIGNALWIRE_SWAIG_SECRET` is warned about.
const MIN_SECRET: usize = 16;

/// Server settings resolved from the environment and flags.
#[derive(Debug)]
pub struct Settings {
    pub creds: Credentials,
    pub secret: Secret,
    pub secret_origin: Origin,
    /// `SWML_PROXY_URL_BASE`, without a trailing slash.
    pub proxy_base: Option<String>,
    pub trust_proxy: bool,
    pub max_request_size: usize,
    /// HTTPS, when `serve` was given a certificate (see [`tls`]).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// `SWML_DOMAIN`: the host of webhook URLs when serving HTTPS.
    pub domain: Option<String>,
    /// `SWML_HSTS_MAX_AGE` when `SWML_USE_HSTS` is on (the default).
    pub hsts_max_age: Option<u64>,
    /// `SIGNALWIRE_SIGNING_KEY`: when set, webhooks must be signed with it.
    pub signing_key: Option<SigningKey>,
    /// `SWML_ALLOWED_HOSTS`.
    pub allowed_hosts: AllowedHosts,
    /// `SWML_RATE_LIMIT` (0: off).
    pub rate_limit: u32,
    /// `SWAGENT_AUTH_FAILURE_LIMIT` (0: off).
    pub auth_failure_limit: u32,
    /// The interval of both limits: a minute, unless `SWAGENT_RATE_WINDOW`.
    pub rate_window: Duration,
    /// How long a body may take to arrive (408 after).
    pub body_timeout: Duration,
    /// `SWAGENT_MAX_CONNECTIONS`, when set; otherwise the open-file limit
    /// decides (see [`super::descriptors`]).
    pub max_connections: Option<usize>,
    /// `SWAGENT_UNVERIFIED_BODIES`: bytes that bodies read before their
    /// sender is known may hold at once (see [`super::unverified`]).
    pub unverified_bodies: usize,
}

fn env_number<T: std::str::FromStr>(name: &str, default: T, what: &str) -> anyhow::Result<T> {
    match non_empty_env(name) {
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("`{name}` must be {what}, not `{v}`")),
        None => Ok(default),
    }
}

/// Behind a proxy (`SWML_PROXY_URL_BASE`) whose headers are not trusted,
/// every request is the proxy's address: one client's failed logins lock
/// everyone out, SignalWire included. The SDK trusts them whenever the
/// base is set; swagent asks for `--trust-proxy`, so a server reachable
/// without the proxy does not take a client's word for its address.
pub fn untrusted_proxy(proxy_base: bool, trust_proxy: bool) -> Option<String> {
    (proxy_base && !trust_proxy).then(|| {
        "`SWML_PROXY_URL_BASE` is set but the proxy's headers are not trusted (`--trust-proxy`, `SWML_TRUST_PROXY`): every request counts as from the proxy's address, so one client's failed logins lock out every caller, SignalWire included".to_owned()
    })
}

/// The perimeter's limits, as `serve` reads them and `check` judges them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerimeterLimits {
    /// `SWML_RATE_LIMIT` (0: off).
    pub rate_limit: u32,
    /// `SWAGENT_AUTH_FAILURE_LIMIT` (0: off).
    pub auth_failure_limit: u32,
    /// [`RATE_WINDOW_VAR`], a minute unless a test shortens it.
    pub rate_window: Duration,
}

impl PerimeterLimits {
    pub fn from_env() -> anyhow::Result<PerimeterLimits> {
        Ok(PerimeterLimits {
            rate_limit: env_number(
                "SWML_RATE_LIMIT",
                DEFAULT_RATE_LIMIT,
                "a number of requests per minute (0 turns it off)",
            )?,
            auth_failure_limit: env_number(
                "SWAGENT_AUTH_FAILURE_LIMIT",
                DEFAULT_AUTH_FAILURE_LIMIT,
                "a number of failures per minute (0 turns it off)",
            )?,
            rate_window: env_duration(RATE_WINDOW_VAR, Duration::from_secs(60))?,
        })
    }

    /// A rate limit low enough to throttle the platform: SignalWire sends
    /// every call's webhooks from a few shared addresses. SDK agents read
    /// `SWML_RATE_LIMIT` without applying it, so a value copied from an SDK
    /// setup (its docs say 60) would start refusing calls here.
    pub fn throttling(&self) -> Option<String> {
        (self.rate_limit > 0 && self.rate_limit < 600).then(|| {
            format!(
                "`SWML_RATE_LIMIT` is {} requests a minute per address: SignalWire sends every call's webhooks from a few shared addresses, so a busy agent would get 429s (the default is {DEFAULT_RATE_LIMIT}; SDK agents do not apply it)",
                self.rate_limit
            )
        })
    }

    /// What the environment turned off or loosened: a warning at start,
    /// and a failed `check --production`. A limit turned off for a
    /// benchmark and left so in production is otherwise silent.
    pub fn weakened(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.rate_limit == 0 {
            out.push("`SWML_RATE_LIMIT` is 0: no address is limited in its requests".to_owned());
        }
        if self.auth_failure_limit == 0 {
            out.push(
                "`SWAGENT_AUTH_FAILURE_LIMIT` is 0: failed logins, forged tokens and bad signatures are never locked out"
                    .to_owned(),
            );
        }
        if self.rate_window != Duration::from_secs(60) {
            out.push(format!(
                "`{RATE_WINDOW_VAR}` is set: the address and failure limits count per {:?}, not per minute (it is meant for tests)",
                self.rate_window
            ));
        }
        out
    }
}

/// A non-zero duration such as `2s` or `500ms`.
fn env_duration(name: &str, default: Duration) -> anyhow::Result<Duration> {
    match non_empty_env(name) {
        Some(v) => crate::agent::model::parse_duration(&v)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| anyhow::anyhow!("`{name}` must be a duration such as `2s`, not `{v}`")),
        None => Ok(default),
    }
}

fn env_bool(name: &str, default: bool) -> anyhow::Result<bool> {
    match non_empty_env(name) {
        None => Ok(default),
        Some(v) => match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => anyhow::bail!("`{name}` must be `true` or `false`, not `{v}`"),
        },
    }
}

impl Settings {
    /// Settings with configured credentials and secret and every other value
    /// at its documented default, as `from_env` gives with nothing else set
    /// (for embedding swagent, and for in-process tests of [`app`]).
    pub fn new(creds: Credentials, secret: Secret) -> Settings {
        Settings {
            creds,
            secret,
            secret_origin: Origin::Configured,
            proxy_base: None,
            trust_proxy: false,
            max_request_size: DEFAULT_MAX_REQUEST,
            tls: None,
            domain: None,
            hsts_max_age: Some(DEFAULT_HSTS_MAX_AGE),
            signing_key: None,
            allowed_hosts: AllowedHosts::parse(""),
            rate_limit: DEFAULT_RATE_LIMIT,
            auth_failure_limit: DEFAULT_AUTH_FAILURE_LIMIT,
            rate_window: Duration::from_secs(60),
            body_timeout: DEFAULT_BODY_TIMEOUT,
            max_connections: None,
            unverified_bodies: DEFAULT_UNVERIFIED_BODIES,
        }
    }

    /// Reads `SWML_*` and `SIGNALWIRE_SWAIG_SECRET` (empty counts as unset).
    pub fn from_env(trust_proxy: bool, allow_weak_password: bool) -> anyhow::Result<Settings> {
        let creds = Credentials::from_env(allow_weak_password)?;
        let (secret, secret_origin) = match non_empty_env(SECRET_VAR) {
            Some(s) => {
                // Kept as it is, as the SDK keeps it, so a mixed fleet agrees;
                // but a pasted space or line break is a classic cause of
                // "every token is refused", so it is said once at start.
                if s.trim() != s {
                    log::warn!(
                        "`{SECRET_VAR}` starts or ends with whitespace, which is part of the secret; every replica and `token mint` must use it exactly"
                    );
                }
                if s.len() < MIN_SECRET {
                    log::warn!(
                        "`{SECRET_VAR}` is {} bytes: an HMAC key this short can be guessed offline from one token; use at least {MIN_SECRET} (`swagent gen-creds` makes 64)",
                        s.len()
                    );
                }
                (Secret::new(&s), Origin::Configured)
            }
            None => (Secret::new(&crate::random::hex(32)), Origin::Generated),
        };
        let proxy_base = non_empty_env("SWML_PROXY_URL_BASE")
            .map(|base| base_url("`SWML_PROXY_URL_BASE`", &base))
            .transpose()?;
        let max_request_size = match non_empty_env("SWML_MAX_REQUEST_SIZE") {
            Some(v) => v
                .trim()
                .parse()
                .ok()
                .filter(|&n: &usize| n >= MIN_MAX_REQUEST)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "`SWML_MAX_REQUEST_SIZE` must be a number of bytes from {MIN_MAX_REQUEST} (below that, SignalWire's own webhooks are refused), not `{v}`"
                    )
                })?,
            None => DEFAULT_MAX_REQUEST,
        };
        let domain = match non_empty_env("SWML_DOMAIN") {
            Some(d) => {
                let d = d.trim().to_owned();
                let ok = d
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
                if !ok {
                    anyhow::bail!("`SWML_DOMAIN` must be a host name, not `{d}`");
                }
                Some(d)
            }
            None => None,
        };
        let hsts_max_age = if env_bool("SWML_USE_HSTS", true)? {
            Some(env_number(
                "SWML_HSTS_MAX_AGE",
                DEFAULT_HSTS_MAX_AGE,
                "a number of seconds",
            )?)
        } else {
            None
        };
        // Room for one body of the largest size, at least.
        let unverified_bodies = env_number(
            UNVERIFIED_BODIES_VAR,
            DEFAULT_UNVERIFIED_BODIES.max(max_request_size),
            "a number of bytes",
        )?;
        if unverified_bodies < max_request_size {
            anyhow::bail!(
                "`{UNVERIFIED_BODIES_VAR}` is {unverified_bodies} bytes, less than one body of `SWML_MAX_REQUEST_SIZE` ({max_request_size} bytes); raise it or lower `SWML_MAX_REQUEST_SIZE`"
            );
        }
        let PerimeterLimits {
            rate_limit,
            auth_failure_limit,
            rate_window,
        } = PerimeterLimits::from_env()?;
        let body_timeout = env_duration(BODY_TIMEOUT_VAR, DEFAULT_BODY_TIMEOUT)?;
        if body_timeout > MAX_BODY_TIMEOUT {
            // Longer is no timeout: slow senders would hold connections at will.
            anyhow::bail!(
                "`{BODY_TIMEOUT_VAR}` is at most {} s, not `{}`",
                MAX_BODY_TIMEOUT.as_secs(),
                non_empty_env(BODY_TIMEOUT_VAR).unwrap_or_default()
            );
        }
        let allowed_hosts = std::env::var("SWML_ALLOWED_HOSTS").unwrap_or_default();
        if let Some(why) = AllowedHosts::misfit(&allowed_hosts) {
            anyhow::bail!(
                "`SWML_ALLOWED_HOSTS`: {why}; give names only (`agent.example.com`, `*.example.com`), without scheme, port or path"
            );
        }
        let signing_key = non_empty_env(SIGNING_KEY_VAR);
        if signing_key.as_ref().is_some_and(|k| k.trim() != k) {
            log::warn!(
                "`{SIGNING_KEY_VAR}` starts or ends with whitespace, which is part of the key; SignalWire's signatures will not match unless its key has it too"
            );
        }
        let max_connections = match non_empty_env(MAX_CONNECTIONS_VAR) {
            Some(v) => Some(
                v.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "`{MAX_CONNECTIONS_VAR}` must be a number of connections above 0, not `{v}`"
                        )
                    })?,
            ),
            None => None,
        };
        Ok(Settings {
            creds,
            secret,
            secret_origin,
            proxy_base,
            trust_proxy,
            max_request_size,
            tls: None,
            domain,
            hsts_max_age,
            signing_key: signing_key.map(|k| SigningKey::new(&k)),
            allowed_hosts: AllowedHosts::parse(&allowed_hosts),
            rate_limit,
            auth_failure_limit,
            rate_window,
            body_timeout,
            max_connections,
            unverified_bodies,
        })
    }

    /// The limits these settings were read with, for the start-up warnings.
    pub fn perimeter(&self) -> PerimeterLimits {
        PerimeterLimits {
            rate_limit: self.rate_limit,
            auth_failure_limit: self.auth_failure_limit,
            rate_window: self.rate_window,
        }
    }

    /// `Strict-Transport-Security`, when serving HTTPS with HSTS on.
    pub fn hsts_header(&self) -> Option<HeaderValue> {
        let max_age = self.hsts_max_age?;
        self.tls.as_ref()?;
        HeaderValue::from_str(&format!("max-age={max_age}; includeSubDomains")).ok()
    }
}

/// A public base URL for webhooks (`SWML_PROXY_URL_BASE`, `swml
/// --base-url`), without its trailing `/`. `what` names it in errors, which
/// never repeat the URL: it may hold a password.
pub fn base_url(what: &str, base: &str) -> anyhow::Result<String> {
    let parsed = url::Url::parse(base).map_err(|e| anyhow::anyhow!("{what} is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        anyhow::bail!("{what} must be an http(s) URL with a host");
    }
    // swagent puts its own `user:password@` in front of the host; a second
    // one would make URLs that parsers read differently.
    if !parsed.username().is_empty() || parsed.password().is_some() {
        anyhow::bail!("{what} must not hold credentials; swagent adds the Basic Auth ones itself");
    }
    // Webhook paths are appended to it: a query or fragment would swallow
    // them (`…?x=1/swaig/?__token=…`).
    if parsed.query().is_some() || parsed.fragment().is_some() {
        anyhow::bail!("{what} must not have a query or fragment");
    }
    if base.chars().any(|c| c.is_whitespace() || c.is_control()) {
        anyhow::bail!("{what} must not contain spaces or control characters");
    }
    Ok(base.trim_end_matches('/').to_owned())
}

//! [`Settings`]: what request handling reads of the configuration, checked
//! once at start. Its variables are the SignalWire SDK's where it has them.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::HeaderValue;

use super::env::{flag, non_empty};
use super::hosts::AllowedHosts;
use super::vars;
use crate::auth::{Credentials, CredentialsError, Origin, DEFAULT_USER, MIN_PASSWORD_LEN};
use crate::signature::SigningKey;
use crate::token::Secret;
use crate::webhook::Signer;

/// Default body limit when `SWML_MAX_REQUEST_SIZE` is unset.
pub const DEFAULT_MAX_REQUEST: usize = 1024 * 1024;
/// Default `SWML_RATE_LIMIT`, requests per minute per client. A flood guard
/// only: SignalWire calls from few addresses, so a low value would throttle
/// a busy agent.
pub const DEFAULT_RATE_LIMIT: u32 = 6000;
/// Default `SWAGENT_AUTH_FAILURE_LIMIT`, failures per minute per client.
pub const DEFAULT_AUTH_FAILURE_LIMIT: u32 = 10;
/// Default `SWML_HSTS_MAX_AGE`, one year.
pub const DEFAULT_HSTS_MAX_AGE: u64 = 31_536_000;
/// How long a request body may take to arrive, once its head has: the
/// platform's bodies are a few kilobytes, sent at once.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes that unverified bodies may hold at once: thousands of webhook bodies.
pub const DEFAULT_UNVERIFIED_BODIES: usize = 16 * 1024 * 1024;
/// The longest `SWAGENT_BODY_TIMEOUT`.
const MAX_BODY_TIMEOUT: Duration = Duration::from_secs(600);
/// The smallest `SWML_MAX_REQUEST_SIZE`: a SignalWire webhook body with the
/// call's details is about a kilobyte or two.
const MIN_MAX_REQUEST: usize = 4096;

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
    /// HTTPS, when `serve` was given a certificate.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// `SWML_DOMAIN`: the host of webhook URLs when serving HTTPS.
    pub domain: Option<String>,
    /// `SWML_HSTS_MAX_AGE` when `SWML_USE_HSTS` is on (the default).
    pub hsts_max_age: Option<u64>,
    /// `SIGNALWIRE_SIGNING_KEY`: when set, webhooks must be signed with it.
    pub signing_key: Option<SigningKey>,
    /// `SWAGENT_WEBHOOK_SECRET`: when set, outbound requests are signed.
    pub webhook: Option<Arc<Signer>>,
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
    /// decides (see `server::descriptors`).
    pub max_connections: Option<usize>,
    /// `SWAGENT_UNVERIFIED_BODIES`: bytes that bodies read before their
    /// sender is known may hold at once (see `server::unverified`).
    pub unverified_bodies: usize,
}

/// A number variable: `default` when unset; `what` says what it must be.
fn number<T: std::str::FromStr>(name: &str, default: T, what: &str) -> anyhow::Result<T> {
    match non_empty(name) {
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("`{name}` must be {what}, not `{v}`")),
        None => Ok(default),
    }
}

/// A non-zero duration such as `2s` or `500ms`.
fn duration(name: &str, default: Duration) -> anyhow::Result<Duration> {
    match non_empty(name) {
        Some(v) => crate::agent::units::parse_duration(&v)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| anyhow::anyhow!("`{name}` must be a duration such as `2s`, not `{v}`")),
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

/// The perimeter's limits, as `serve` reads them and its findings judge them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerimeterLimits {
    /// `SWML_RATE_LIMIT` (0: off).
    pub rate_limit: u32,
    /// `SWAGENT_AUTH_FAILURE_LIMIT` (0: off).
    pub auth_failure_limit: u32,
    /// `SWAGENT_RATE_WINDOW`, a minute unless a test shortens it.
    pub rate_window: Duration,
}

impl PerimeterLimits {
    fn from_env() -> anyhow::Result<PerimeterLimits> {
        Ok(PerimeterLimits {
            rate_limit: number(
                vars::RATE_LIMIT,
                DEFAULT_RATE_LIMIT,
                "a number of requests per minute (0 turns it off)",
            )?,
            auth_failure_limit: number(
                vars::AUTH_FAILURE_LIMIT,
                DEFAULT_AUTH_FAILURE_LIMIT,
                "a number of failures per minute (0 turns it off)",
            )?,
            rate_window: duration(vars::RATE_WINDOW, Duration::from_secs(60))?,
        })
    }

    /// What the environment turned off or loosened, each in a sentence. A
    /// rate limit under 600 throttles the platform: SignalWire sends every
    /// call's webhooks from a few shared addresses, and SDK agents read
    /// `SWML_RATE_LIMIT` without applying it, so a value copied from an SDK
    /// setup (its docs say 60) would start refusing calls here.
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
                "`{}` is set: the address and failure limits count per {:?}, not per minute (it is meant for tests)",
                vars::RATE_WINDOW,
                self.rate_window
            ));
        }
        if self.rate_limit > 0 && self.rate_limit < 600 {
            out.push(format!(
                "`SWML_RATE_LIMIT` is {} requests a minute per address: SignalWire sends every call's webhooks from a few shared addresses, so a busy agent would get 429s (the default is {DEFAULT_RATE_LIMIT}; SDK agents do not apply it)",
                self.rate_limit
            ));
        }
        out
    }
}

/// `SWML_BASIC_AUTH_USER`/`SWML_BASIC_AUTH_PASSWORD`; without a password, a
/// generated one.
fn credentials(allow_weak: bool) -> Result<Credentials, CredentialsError> {
    let user = non_empty(vars::USER).unwrap_or_else(|| DEFAULT_USER.to_owned());
    if user.contains(':') {
        return Err(CredentialsError::BadUser);
    }
    match non_empty(vars::PASSWORD) {
        Some(p) if p.chars().count() < MIN_PASSWORD_LEN && !allow_weak => {
            Err(CredentialsError::WeakPassword {
                len: p.chars().count(),
            })
        }
        Some(p) => Ok(Credentials::new(user, p, Origin::Configured)),
        None => Ok(Credentials::new(
            user,
            crate::random::password(43),
            Origin::Generated,
        )),
    }
}

impl Settings {
    /// Settings with configured credentials and secret and every other value
    /// at its documented default, as `from_env` gives with nothing else set
    /// (for embedding swagent, and for in-process tests of the app).
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
            webhook: None,
            allowed_hosts: AllowedHosts::parse(""),
            rate_limit: DEFAULT_RATE_LIMIT,
            auth_failure_limit: DEFAULT_AUTH_FAILURE_LIMIT,
            rate_window: Duration::from_secs(60),
            body_timeout: DEFAULT_BODY_TIMEOUT,
            max_connections: None,
            unverified_bodies: DEFAULT_UNVERIFIED_BODIES,
        }
    }

    /// Reads the variables of [`Settings`] (empty counts as unset). TLS is
    /// set by the caller, which knows the flags.
    pub fn from_env(trust_proxy: bool, allow_weak_password: bool) -> anyhow::Result<Settings> {
        let creds = credentials(allow_weak_password)?;
        let (secret, secret_origin) = match non_empty(vars::SECRET) {
            // Kept as it is, as the SDK keeps it, so a mixed fleet agrees.
            Some(s) => (Secret::new(&s), Origin::Configured),
            None => (Secret::new(&crate::random::hex(32)), Origin::Generated),
        };
        let proxy_base = non_empty(vars::PROXY_URL_BASE)
            .map(|base| base_url("`SWML_PROXY_URL_BASE`", &base))
            .transpose()?;
        let max_request_size = max_request_size()?;
        let domain = domain()?;
        let hsts_max_age = if flag(vars::USE_HSTS, true)? {
            Some(number(
                vars::HSTS_MAX_AGE,
                DEFAULT_HSTS_MAX_AGE,
                "a number of seconds",
            )?)
        } else {
            None
        };
        // Room for one body of the largest size, at least.
        let unverified_bodies = number(
            vars::UNVERIFIED_BODIES,
            DEFAULT_UNVERIFIED_BODIES.max(max_request_size),
            "a number of bytes",
        )?;
        if unverified_bodies < max_request_size {
            anyhow::bail!(
                "`{}` is {unverified_bodies} bytes, less than one body of `SWML_MAX_REQUEST_SIZE` ({max_request_size} bytes); raise it or lower `SWML_MAX_REQUEST_SIZE`",
                vars::UNVERIFIED_BODIES
            );
        }
        let PerimeterLimits {
            rate_limit,
            auth_failure_limit,
            rate_window,
        } = PerimeterLimits::from_env()?;
        let body_timeout = body_timeout()?;
        let allowed_hosts = allowed_hosts()?;
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
            signing_key: non_empty(vars::SIGNING_KEY).map(|k| SigningKey::new(&k)),
            webhook: webhook_signer()?,
            allowed_hosts,
            rate_limit,
            auth_failure_limit,
            rate_window,
            body_timeout,
            max_connections: max_connections()?,
            unverified_bodies,
        })
    }

    /// The limits these settings were read with, for the findings.
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

/// `SWAGENT_WEBHOOK_SECRET`, parsed: `None` when unset. The error names
/// the variable and what is wrong, never the secret.
pub fn webhook_signer() -> anyhow::Result<Option<Arc<Signer>>> {
    let text = std::env::var(vars::WEBHOOK_SECRET).unwrap_or_default();
    match Signer::parse(&text) {
        Ok(signer) => Ok(signer.map(Arc::new)),
        Err(e) => anyhow::bail!(
            "`{}`: {e}; give `whsec_` and the base64 of 32 random bytes (`swagent gen-creds` makes one)",
            vars::WEBHOOK_SECRET
        ),
    }
}

fn max_request_size() -> anyhow::Result<usize> {
    match non_empty(vars::MAX_REQUEST_SIZE) {
        Some(v) => v
            .trim()
            .parse()
            .ok()
            .filter(|&n: &usize| n >= MIN_MAX_REQUEST)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "`SWML_MAX_REQUEST_SIZE` must be a number of bytes from {MIN_MAX_REQUEST} (below that, SignalWire's own webhooks are refused), not `{v}`"
                )
            }),
        None => Ok(DEFAULT_MAX_REQUEST),
    }
}

fn domain() -> anyhow::Result<Option<String>> {
    let Some(d) = non_empty(vars::DOMAIN) else {
        return Ok(None);
    };
    let d = d.trim().to_owned();
    if !d
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c))
    {
        anyhow::bail!("`SWML_DOMAIN` must be a host name, not `{d}`");
    }
    Ok(Some(d))
}

fn body_timeout() -> anyhow::Result<Duration> {
    let timeout = duration(vars::BODY_TIMEOUT, DEFAULT_BODY_TIMEOUT)?;
    if timeout > MAX_BODY_TIMEOUT {
        // Longer is no timeout: slow senders would hold connections at will.
        anyhow::bail!(
            "`{}` is at most {} s, not `{}`",
            vars::BODY_TIMEOUT,
            MAX_BODY_TIMEOUT.as_secs(),
            non_empty(vars::BODY_TIMEOUT).unwrap_or_default()
        );
    }
    Ok(timeout)
}

fn allowed_hosts() -> anyhow::Result<AllowedHosts> {
    let value = std::env::var(vars::ALLOWED_HOSTS).unwrap_or_default();
    if let Some(why) = AllowedHosts::misfit(&value) {
        anyhow::bail!(
            "`SWML_ALLOWED_HOSTS`: {why}; give names only (`agent.example.com`, `*.example.com`), without scheme, port or path"
        );
    }
    Ok(AllowedHosts::parse(&value))
}

fn max_connections() -> anyhow::Result<Option<usize>> {
    let Some(v) = non_empty(vars::MAX_CONNECTIONS) else {
        return Ok(None);
    };
    v.trim()
        .parse::<usize>()
        .ok()
        .filter(|&n| n > 0)
        .map(Some)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "`{}` must be a number of connections above 0, not `{v}`",
                vars::MAX_CONNECTIONS
            )
        })
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

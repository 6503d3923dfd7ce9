//! The HTTP server: shared state, the one `App` factory, and start-up.
//!
//! [`app`] is used by `serve` and by the tests, so what is tested is what
//! runs. Routes live in [`routes`], the Basic Auth gate in [`gate`], the
//! perimeter in front of it (security headers, rate limit, allowed hosts,
//! signatures) in [`guard`], HTTPS set-up in [`tls`].

pub mod error;
mod gate;
pub mod guard;
pub mod routes;
pub mod tls;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::HeaderValue;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};

use crate::agent::Agent;
use crate::auth::{non_empty_env, Credentials, Origin};
use crate::handlers::Runtime;
use crate::limits::Limits;
use crate::signature::{SigningKey, SIGNING_KEY_VAR};
use crate::token::{random_hex, Secret};
use guard::AllowedHosts;

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
    /// Reads `SWML_*` and `SIGNALWIRE_SWAIG_SECRET` (empty counts as unset).
    pub fn from_env(trust_proxy: bool, allow_weak_password: bool) -> anyhow::Result<Settings> {
        let creds = Credentials::from_env(allow_weak_password)?;
        let (secret, secret_origin) = match non_empty_env(SECRET_VAR) {
            Some(s) => (Secret::new(&s), Origin::Configured),
            None => (Secret::new(&random_hex(32)), Origin::Generated),
        };
        let proxy_base = match non_empty_env("SWML_PROXY_URL_BASE") {
            Some(base) => {
                let parsed = url::Url::parse(&base).map_err(|e| {
                    anyhow::anyhow!("`SWML_PROXY_URL_BASE` is not a URL (`{base}`): {e}")
                })?;
                if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                    anyhow::bail!("`SWML_PROXY_URL_BASE` must be an http(s) URL with a host");
                }
                Some(base.trim_end_matches('/').to_owned())
            }
            None => None,
        };
        let max_request_size = match non_empty_env("SWML_MAX_REQUEST_SIZE") {
            Some(v) => v.parse().map_err(|_| {
                anyhow::anyhow!("`SWML_MAX_REQUEST_SIZE` must be a number of bytes, not `{v}`")
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
        let rate_window = match non_empty_env(RATE_WINDOW_VAR) {
            Some(v) => crate::agent::model::parse_duration(&v)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "`{RATE_WINDOW_VAR}` must be a duration such as `2s`, not `{v}`"
                    )
                })?,
            None => Duration::from_secs(60),
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
            signing_key: non_empty_env(SIGNING_KEY_VAR).map(|k| SigningKey::new(&k)),
            allowed_hosts: AllowedHosts::parse(
                &std::env::var("SWML_ALLOWED_HOSTS").unwrap_or_default(),
            ),
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
            rate_window,
        })
    }

    /// `Strict-Transport-Security`, when serving HTTPS with HSTS on.
    pub fn hsts_header(&self) -> Option<HeaderValue> {
        let max_age = self.hsts_max_age?;
        self.tls.as_ref()?;
        HeaderValue::from_str(&format!("max-age={max_age}; includeSubDomains")).ok()
    }
}

/// Everything a request handler reads.
pub struct AppState {
    pub agent: Arc<Agent>,
    pub runtime: Runtime,
    pub settings: Settings,
    pub limits: Limits,
}

impl AppState {
    /// Builds the state for an agent.
    pub fn new(agent: Agent, settings: Settings) -> AppState {
        let runtime = Runtime::new(&agent);
        let limits = Limits::new(
            settings.rate_limit,
            settings.auth_failure_limit,
            settings.rate_window,
            &agent,
        );
        AppState {
            agent: Arc::new(agent),
            runtime,
            settings,
            limits,
        }
    }
}

/// The application: every route, behind the perimeter and the Basic Auth gate.
pub fn app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let agent = state.agent.clone();
    App::new()
        .app_data(state)
        // The last `wrap` is the outermost: headers, perimeter, then auth.
        .wrap(from_fn(gate::basic_auth))
        .wrap(from_fn(guard::perimeter))
        .wrap(from_fn(guard::headers))
        .configure(|cfg| routes::configure(cfg, &agent))
}

/// `swagent serve`: binds, prints what it serves, runs until SIGTERM/SIGINT.
pub fn serve(agent: Agent, settings: Settings, host: &str, port: u16) -> anyhow::Result<()> {
    let listener = TcpListener::bind((host, port))
        .map_err(|e| anyhow::anyhow!("cannot listen on `{host}:{port}`: {e}"))?;
    let addr = listener.local_addr()?;
    announce(&agent, &settings, addr);
    let tls = settings.tls.clone();
    let state = web::Data::new(AppState::new(agent, settings));
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(move || app(state.clone()))
            .workers(workers)
            // In-flight requests get this long after SIGTERM/SIGINT.
            .shutdown_timeout(30);
        let server = match tls {
            Some(config) => server.listen_rustls_0_23(listener, (*config).clone())?,
            None => server.listen(listener)?,
        };
        server.run().await
    })?;
    eprintln!("swagent: stopped");
    Ok(())
}

fn announce(agent: &Agent, settings: &Settings, addr: std::net::SocketAddr) {
    let secure: Vec<&str> = agent
        .functions
        .values()
        .filter(|f| f.secure)
        .map(|f| f.name.as_str())
        .collect();
    let open: Vec<&str> = agent
        .functions
        .values()
        .filter(|f| !f.secure)
        .map(|f| f.name.as_str())
        .collect();
    let scheme = if settings.tls.is_some() {
        "https"
    } else {
        "http"
    };
    eprintln!(
        "swagent: serving agent `{}` on {scheme}://{addr}",
        agent.name
    );
    eprintln!(
        "swagent: SWML at `{}`, functions at `{}`, summary at `{}`",
        agent.route,
        agent.sub_path("swaig"),
        agent.sub_path("post_prompt")
    );
    eprintln!(
        "swagent: secure functions: {}; open functions: {}",
        if secure.is_empty() {
            "none".into()
        } else {
            secure.join(", ")
        },
        if open.is_empty() {
            "none".into()
        } else {
            open.join(", ")
        }
    );
    match settings.creds.origin {
        Origin::Configured => eprintln!(
            "swagent: Basic Auth user `{}`, password configured",
            settings.creds.user
        ),
        Origin::Generated => {
            eprintln!(
                "swagent: WARNING: no `SWML_BASIC_AUTH_PASSWORD`; generated one for this run (development only)"
            );
            eprintln!(
                "swagent: Basic Auth user `{}`, password `{}`",
                settings.creds.user,
                settings.creds.password()
            );
        }
    }
    match settings.secret_origin {
        Origin::Configured => eprintln!("swagent: token secret configured"),
        Origin::Generated => eprintln!(
            "swagent: WARNING: no `{SECRET_VAR}`; a random token secret is used, so tokens stop verifying after a restart and across replicas"
        ),
    }
    if let Some(base) = &settings.proxy_base {
        eprintln!("swagent: webhook URLs use `SWML_PROXY_URL_BASE` {base}");
    }
    match settings.signing_key {
        Some(_) => eprintln!("swagent: request signatures required (`{SIGNING_KEY_VAR}`)"),
        None => eprintln!(
            "swagent: WARNING: no `{SIGNING_KEY_VAR}`; request signature validation is off"
        ),
    }
}

//! The HTTP server: shared state, the one `App` factory, and start-up.
//!
//! [`app`] is used by `serve` and by the tests, so what is tested is what
//! runs. Routes live in [`routes`], the Basic Auth gate in [`gate`].

pub mod error;
mod gate;
pub mod routes;
mod swaig;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};

use crate::agent::Agent;
use crate::audit::{Audit, Event};
use crate::auth::{non_empty_env, Credentials, Origin};
use crate::guard::UsedCodes;
use crate::handlers::Runtime;
use crate::token::{random_hex, Secret};
use error::ApiError;

/// Name of the token secret variable, as in the SignalWire Python SDK.
pub const SECRET_VAR: &str = "SIGNALWIRE_SWAIG_SECRET";
/// Default body limit when `SWML_MAX_REQUEST_SIZE` is unset.
pub const DEFAULT_MAX_REQUEST: usize = 1024 * 1024;

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
        Ok(Settings {
            creds,
            secret,
            secret_origin,
            proxy_base,
            trust_proxy,
            max_request_size,
        })
    }
}

/// Everything a request handler reads.
pub struct AppState {
    pub agent: Arc<Agent>,
    pub runtime: Runtime,
    pub settings: Settings,
    pub audit: Audit,
    pub used_codes: UsedCodes,
}

impl AppState {
    /// Builds the state for an agent, with no audit log and an in-memory
    /// confirmation store.
    pub fn new(agent: Agent, settings: Settings) -> AppState {
        let runtime = Runtime::new(&agent);
        AppState {
            agent: Arc::new(agent),
            runtime,
            settings,
            audit: Audit::off(),
            used_codes: UsedCodes::new(None),
        }
    }

    /// Records an audit event. With `--audit-required`, a failed write
    /// refuses the request (503) instead of going on unrecorded.
    pub fn audit_event(&self, event: Event) -> Result<(), ApiError> {
        match self.audit.record(event) {
            Ok(()) => Ok(()),
            Err(_) if self.audit.accepting() => Ok(()),
            Err(_) => Err(ApiError::AuditUnavailable),
        }
    }
}

/// The application: every route, behind the Basic Auth gate.
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
        .wrap(from_fn(gate::basic_auth))
        .configure(|cfg| routes::configure(cfg, &agent))
}

/// `swagent serve`: binds, prints what it serves, runs until SIGTERM/SIGINT.
pub fn serve(state: AppState, host: &str, port: u16) -> anyhow::Result<()> {
    let listener = TcpListener::bind((host, port))
        .map_err(|e| anyhow::anyhow!("cannot listen on `{host}:{port}`: {e}"))?;
    let addr = listener.local_addr()?;
    announce(&state.agent, &state.settings, addr);
    let _ = state.audit.record(started_event(&state, addr));
    let state = web::Data::new(state);
    let audit_state = state.clone();
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || app(state.clone()))
            .workers(workers)
            // In-flight requests get this long after SIGTERM/SIGINT.
            .shutdown_timeout(30)
            .listen(listener)?
            .run()
            .await
    })?;
    let _ = audit_state.audit.record(Event::new("server_stopped", "ok"));
    eprintln!("swagent: stopped");
    Ok(())
}

/// The configuration worth auditing at start: never a secret, only where
/// each one came from.
fn started_event(state: &AppState, addr: std::net::SocketAddr) -> Event {
    let origin = |o: Origin| match o {
        Origin::Configured => "configured",
        Origin::Generated => "generated",
    };
    let agent = &state.agent;
    Event::new("server_started", "ok")
        .field("listen", addr.to_string())
        .field("route", agent.route.clone())
        .field(
            "secure_functions",
            agent
                .functions
                .values()
                .filter(|f| f.secure)
                .map(|f| f.name.clone())
                .collect::<Vec<_>>(),
        )
        .field(
            "open_functions",
            agent
                .functions
                .values()
                .filter(|f| !f.secure)
                .map(|f| f.name.clone())
                .collect::<Vec<_>>(),
        )
        .field("basic_auth_user", state.settings.creds.user.clone())
        .field("password", origin(state.settings.creds.origin))
        .field("token_secret", origin(state.settings.secret_origin))
        .field("proxy_url_base", state.settings.proxy_base.clone())
        .field("trust_proxy", state.settings.trust_proxy)
        .field("max_request_size", state.settings.max_request_size)
        .field("version", env!("CARGO_PKG_VERSION"))
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
    eprintln!("swagent: serving agent `{}` on http://{addr}", agent.name);
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
}

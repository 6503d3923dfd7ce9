//! The HTTP server: shared state, the one `App` factory, and start-up.
//!
//! [`app`] is used by `serve` and by the tests, so what is tested is what
//! runs. Settings come from [`settings`], routes live in [`routes`] and
//! [`swaig`], the Basic Auth gate in [`gate`], the perimeter in front of it
//! (security headers, rate limit, allowed hosts, signatures) in
//! [`perimeter`], HTTPS set-up in [`tls`], signals and the kill-switch
//! watcher in [`ops`].

pub mod body;
pub mod descriptors;
pub mod error;
mod gate;
mod ops;
pub mod perimeter;
pub mod routes;
mod settings;
mod swaig;
pub mod tls;
mod unverified;
pub(crate) mod watchdog;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpRequest, HttpServer};

use arc_swap::ArcSwap;
use prometheus::IntCounter;

use crate::agent::Agent;
use crate::alerts::{Alerts, Fired};
use crate::audit::{Audit, Event};
use crate::auth::Origin;
use crate::guard::UsedCodes;
use crate::handlers::Runtime;
use crate::killswitch::KillSwitch;
use crate::limits::{FunctionLimits, Limits};
use crate::logging::Sampler;
use crate::metrics::{FunctionSeries, Metrics, OpenConnection};
use crate::signature::SIGNING_KEY_VAR;
use crate::swml::{Prepared, Userinfo};
use error::ApiError;
pub use settings::{
    base_url, untrusted_proxy, PerimeterLimits, Settings, BODY_TIMEOUT_VAR,
    DEFAULT_AUTH_FAILURE_LIMIT, DEFAULT_BODY_TIMEOUT, DEFAULT_HSTS_MAX_AGE, DEFAULT_MAX_REQUEST,
    DEFAULT_RATE_LIMIT, RATE_WINDOW_VAR, SECRET_VAR,
};

/// What a reload replaces as one: the agent and what was built from it.
pub struct Live {
    pub agent: Agent,
    pub runtime: Runtime,
    pub alerts: Alerts,
    pub function_limits: FunctionLimits,
    /// The SWML document, serialized once.
    pub swml: Prepared,
    /// Each function's hot metric series, in `agent.functions` order.
    pub series: Vec<FunctionSeries>,
}

impl Live {
    /// The live state of `agent`. On a reload, `previous` is the agent it
    /// replaces, whose unchanged function rate limits, concurrency
    /// slots and alert counters carry over.
    pub fn new(agent: Agent, metrics: &Metrics, previous: Option<&Live>) -> Live {
        Live {
            series: agent
                .functions
                .keys()
                .map(|name| metrics.function_series(name))
                .collect(),
            runtime: Runtime::carried(&agent, previous.map(|p| &p.runtime)),
            alerts: Alerts::carried(agent.alerts.clone(), previous.map(|p| &p.alerts)),
            function_limits: FunctionLimits::carried(&agent, previous.map(|p| &p.function_limits)),
            swml: Prepared::new(&agent),
            agent,
        }
    }
}

/// One WARN line a second per kind of refusal: a flood of bad passwords
/// must not fill the disk with log (the audit log keeps every event).
#[derive(Default)]
pub struct LogSamplers {
    pub auth: Sampler,
    pub token: Sampler,
    pub signature: Sampler,
    pub overloaded: Sampler,
}

/// A served path, its `route` label and its `status="200"` series, looked
/// up once: [`perimeter::outer`] counts every request.
pub(crate) struct RouteSeries {
    path: String,
    pub label: &'static str,
    pub ok: IntCounter,
}

/// The served paths and their labels: `swml`, `swaig`, `post_prompt` (each
/// with and without a trailing slash), `health`, `ready`, `metrics`.
fn route_series(agent: &Agent, metrics: &Metrics) -> Vec<RouteSeries> {
    let mut paths: Vec<(String, &'static str)> = routes::server_routes()
        .into_iter()
        .map(|(path, label, ..)| (path.to_owned(), label))
        .collect();
    for (path, label, ..) in routes::agent_routes(agent) {
        paths.extend(routes::both_forms(path).into_iter().map(|p| (p, label)));
    }
    paths
        .into_iter()
        .map(|(path, label)| RouteSeries {
            ok: metrics.requests.with_label_values(&[label, "200"]),
            path,
            label,
        })
        .collect()
}

/// Everything a request handler reads.
pub struct AppState {
    live: ArcSwap<Live>,
    pub settings: Settings,
    pub audit: Audit,
    /// Samples audit events a flood could multiply.
    pub audit_sampler: Sampler,
    /// Samples WARN lines a flood of refusals could multiply.
    pub log_sampler: LogSamplers,
    pub used_codes: UsedCodes,
    pub kill: KillSwitch,
    pub metrics: Metrics,
    /// Serve `/metrics` without Basic Auth.
    pub metrics_public: bool,
    /// Request path → the `route` label of `requests_total` (fixed at start,
    /// like the routes themselves).
    routes: Vec<RouteSeries>,
    pub limits: Limits,
    /// The credentials as the webhook URLs of every document carry them.
    userinfo: Userinfo,
    /// How descriptors were shared at start; unset before `serve`.
    pub descriptors: std::sync::OnceLock<descriptors::Budget>,
    /// What bodies read before Basic Auth may hold at once.
    pub unverified: unverified::Unverified,
}

impl AppState {
    /// Builds the state for an agent, with no audit log, an in-memory
    /// confirmation store and no kill-switch file.
    pub fn new(agent: Agent, settings: Settings) -> AppState {
        let metrics = Metrics::new();
        let routes = route_series(&agent, &metrics);
        let limits = Limits::new(
            settings.rate_limit,
            settings.auth_failure_limit,
            settings.rate_window,
        );
        let userinfo = Userinfo::new(&settings.creds.user, settings.creds.password());
        let unverified =
            unverified::Unverified::new(settings.unverified_bodies, settings.max_request_size);
        AppState {
            live: ArcSwap::from_pointee(Live::new(agent, &metrics, None)),
            settings,
            audit: Audit::off(),
            audit_sampler: Sampler::default(),
            log_sampler: LogSamplers::default(),
            used_codes: UsedCodes::new(None),
            kill: KillSwitch::off(),
            metrics,
            metrics_public: false,
            routes,
            userinfo,
            limits,
            descriptors: std::sync::OnceLock::new(),
            unverified,
        }
    }

    /// The served route of a request path; `None` counts as `other`, so
    /// callers cannot add label values.
    pub(crate) fn route(&self, path: &str) -> Option<&RouteSeries> {
        self.routes.iter().find(|r| r.path == path)
    }

    /// The agent now; a request keeps the one it started with.
    pub fn live(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// The agent now, for a request that does not await while it holds it:
    /// no shared reference count is touched.
    pub(crate) fn live_now(&self) -> arc_swap::Guard<Arc<Live>> {
        self.live.load()
    }

    /// Replaces the agent atomically. The route cannot change without a
    /// restart: the routes are registered once.
    pub fn replace(&self, agent: Agent) -> Result<(), String> {
        let current = self.live();
        if agent.route != current.agent.route {
            return Err(format!(
                "`route` changed from `{}` to `{}`; restart to serve a new route",
                current.agent.route, agent.route
            ));
        }
        self.audit.set_agent(&agent.name);
        self.live
            .store(Arc::new(Live::new(agent, &self.metrics, Some(&current))));
        self.refresh_disabled_gauge();
        Ok(())
    }

    /// Sets `function_disabled` for every function of the current agent.
    pub fn refresh_disabled_gauge(&self) {
        let kill = self.kill.current();
        self.metrics.disabled.reset();
        for name in self.live().agent.functions.keys() {
            self.metrics
                .disabled
                .with_label_values(&[name.as_str()])
                .set(i64::from(kill.is_disabled(name)));
        }
    }

    /// Records an audit event. With `--audit-required`, a failed write
    /// refuses the request (503) instead of going on unrecorded. The event
    /// is built only when there is an audit log to write it to: building one
    /// (strings, redacted arguments) was a visible share of a request's cost.
    pub fn audit_event(&self, event: impl FnOnce() -> Event) -> Result<(), ApiError> {
        if !self.audit.enabled() {
            return Ok(());
        }
        match self.audit.record(event()) {
            Ok(()) => Ok(()),
            Err(_) if self.audit.accepting() => Ok(()),
            Err(_) => Err(ApiError::AuditUnavailable),
        }
    }

    /// Records what a handler did, after it ran. A failed write must not
    /// turn the reply into an error: the side effect happened, and a caller
    /// told otherwise would try again and do it twice. So the reply goes
    /// out, the loss is said on stderr with what was lost, and a required
    /// log takes no new call until it can be written again (`/ready` is 503).
    pub fn audit_after(&self, event: impl FnOnce() -> Event) {
        if !self.audit.enabled() {
            return;
        }
        let event = event();
        let what = event.describe();
        if self.audit.record(event).is_err() && !self.audit.accepting() {
            log::error!(
                "audit log: {what} was not recorded, and the function had already run; new calls are refused until the log can be written"
            );
        }
    }

    /// False while a required audit log cannot be written. Each call while
    /// it cannot tries one `audit_recovered` line, so the server recovers by
    /// itself once the disk has room again, even when the only requests still
    /// arriving are a load balancer's `/ready` probes.
    pub fn audit_writable(&self) -> bool {
        self.audit.accepting()
            || self
                .audit
                .record(Event::new(crate::audit::RECOVERED, "ok"))
                .is_ok()
    }

    /// Raises alerts: an audit event, a WARN line and a metric each.
    pub fn raise(
        &self,
        fired: &[Fired],
        call_id: Option<&str>,
        function: Option<&str>,
        client: Option<std::net::IpAddr>,
    ) -> Result<(), ApiError> {
        for f in fired {
            log::warn!(
                "ALERT `{}`: observed {} (threshold {}) in call `{}`",
                f.rule,
                f.observed,
                f.threshold,
                crate::text::printable(call_id.unwrap_or("-"))
            );
            self.metrics
                .alerts
                .with_label_values(&[f.rule.as_str()])
                .inc();
            let mut e = Event::new("alert", if f.block { "blocked" } else { "raised" })
                .call(call_id)
                .client(client)
                .field("rule", f.rule.clone())
                .field("observed", f.observed.clone())
                .field("threshold", f.threshold.clone());
            if let Some(func) = function {
                e = e.function(func);
            }
            self.audit_event(|| e)?;
        }
        Ok(())
    }
}

/// The server's state, borrowed from a request. Layers and handlers borrow it
/// rather than extract or clone the `web::Data`: a clone is an atomic
/// increment on a counter every worker shares, on every request.
pub(crate) fn state_of(req: &HttpRequest) -> &web::Data<AppState> {
    req.app_data::<web::Data<AppState>>()
        .expect("the app factory sets the state")
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
    let live = state.live();
    let agent = &live.agent;
    App::new()
        .app_data(state)
        // The last `wrap` is the outermost: headers and counting, then the
        // perimeter, which ends with the Basic Auth gate.
        .wrap(from_fn(perimeter::perimeter))
        .wrap(from_fn(perimeter::outer))
        .configure(|cfg| routes::configure(cfg, agent))
}

/// Connections the kernel queues once `serve` is at its connection cap:
/// actix's own default, where `std` listens with 128. The kernel holds it to
/// `net.core.somaxconn`. Past the queue, a client's connect waits on its SYN
/// retries, seconds apart.
pub const LISTEN_BACKLOG: i32 = 2048;

/// A listening socket on `host:port` (the first of its addresses that
/// binds), with [`LISTEN_BACKLOG`].
fn listen(host: &str, port: u16) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let mut last = None;
    for addr in std::net::ToSocketAddrs::to_socket_addrs(&(host, port))? {
        let bound = Socket::new(Domain::for_address(addr), Type::STREAM, None).and_then(|s| {
            // As `std` does: a restart may bind while old connections linger.
            s.set_reuse_address(true)?;
            s.bind(&addr.into())?;
            s.listen(LISTEN_BACKLOG)?;
            Ok(s)
        });
        match bound {
            Ok(s) => return Ok(s.into()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::NotFound, "no address to listen on")
    }))
}

/// `swagent serve`: binds, prints what it serves, runs until SIGTERM/SIGINT.
/// SIGHUP reloads the agent and reopens the audit log; SIGUSR1 disables
/// every function.
pub fn serve(state: AppState, host: &str, port: u16) -> anyhow::Result<()> {
    let listener =
        listen(host, port).map_err(|e| anyhow::anyhow!("cannot listen on `{host}:{port}`: {e}"))?;
    let addr = listener.local_addr()?;
    let tls = state.settings.tls.clone();
    let state = web::Data::new(state);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let budget = descriptors::Budget::for_this_process(workers, state.settings.max_connections)?;
    let ops = state.clone();
    actix_web::rt::System::new().block_on(async move {
        // Handlers first: a SIGHUP or SIGUSR1 that arrives once we have said
        // we are up must not hit the default action, which ends the process.
        let signals = ops::Signals::install()?;
        // With `--audit-required`, an audit log that cannot take its first
        // line stops the start-up: better than a server that is up and
        // refuses every request. Without it, the failure is logged and we go on.
        if let Err(e) = state.audit.record(started_event(&state, addr)) {
            if !state.audit.accepting() {
                anyhow::bail!("{e}; `--audit-required` does not start without an audit log");
            }
        }
        announce(&state.live().agent, &state.settings, addr);
        announce_budget(&budget);
        if let Some(short) = budget.shortfall(&state.live().agent) {
            crate::say!("swagent: WARNING: {short}");
        }
        let _ = state.descriptors.set(budget);
        state.refresh_disabled_gauge();
        let open = state.metrics.connections_open.clone();
        // Past twice the body's own timeout, nothing legitimate is left.
        let idle = state.settings.body_timeout * 3;
        state
            .metrics
            .connections_max
            .set(budget.connections() as i64);
        let server = HttpServer::new(move || app(ops.clone()))
            .workers(workers)
            .max_connections(budget.per_worker)
            .on_connect(move |io, data| {
                data.insert(OpenConnection::new(&open));
                if let Some(watched) = watchdog::Watched::start(io, idle) {
                    data.insert(watched);
                }
            })
            // In-flight requests get this long after SIGTERM/SIGINT.
            .shutdown_timeout(30);
        let server = match tls {
            Some(config) => server.listen_rustls_0_23(listener, (*config).clone())?,
            None => server.listen(listener)?,
        }
        .run();
        actix_web::rt::spawn(signals.handle(state.clone()));
        if state.kill.path().is_some() {
            actix_web::rt::spawn(ops::watch_kill_switch(state.clone()));
        }
        if state.audit.path().is_some() {
            actix_web::rt::spawn(ops::watch_audit_log(state.clone()));
        }
        server.await?;
        let _ = state.audit.record(Event::new("server_stopped", "ok"));
        Ok::<(), anyhow::Error>(())
    })?;
    crate::say!("swagent: stopped");
    Ok(())
}

/// The configuration worth auditing at start: never a secret, only where
/// each one came from.
fn started_event(state: &AppState, addr: std::net::SocketAddr) -> Event {
    let origin = |o: Origin| match o {
        Origin::Configured => "configured",
        Origin::Generated => "generated",
    };
    let live = state.live();
    let agent = &live.agent;
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

fn announce_budget(budget: &descriptors::Budget) {
    match budget.limit {
        Some(limit) => crate::say!(
            "swagent: up to {} connections at once (open-file limit {limit}; {} descriptors kept for handlers and logs)",
            budget.connections(),
            budget.reserve
        ),
        None => crate::say!("swagent: up to {} connections at once", budget.connections()),
    }
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
    crate::say!(
        "swagent: serving agent `{}` on {scheme}://{addr}",
        agent.name
    );
    crate::say!(
        "swagent: SWML at `{}`, functions at `{}`, summary at `{}`",
        agent.route,
        agent.sub_path("swaig"),
        agent.sub_path("post_prompt")
    );
    crate::say!(
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
        Origin::Configured => crate::say!(
            "swagent: Basic Auth user `{}`, password configured",
            settings.creds.user
        ),
        Origin::Generated => {
            crate::say!(
                "swagent: WARNING: no `SWML_BASIC_AUTH_PASSWORD`; generated one for this run (development only)"
            );
            crate::say!(
                "swagent: Basic Auth user `{}`, password `{}`",
                settings.creds.user,
                settings.creds.password()
            );
        }
    }
    match settings.secret_origin {
        Origin::Configured => crate::say!("swagent: token secret configured"),
        Origin::Generated => crate::say!(
            "swagent: WARNING: no `{SECRET_VAR}`; a random token secret is used, so tokens stop verifying after a restart and across replicas"
        ),
    }
    if let Some(base) = &settings.proxy_base {
        crate::say!("swagent: webhook URLs use `SWML_PROXY_URL_BASE` {base}");
    }
    match settings.signing_key {
        Some(_) => crate::say!("swagent: request signatures required (`{SIGNING_KEY_VAR}`)"),
        None => crate::say!(
            "swagent: WARNING: no `{SIGNING_KEY_VAR}`; request signature validation is off"
        ),
    }
}

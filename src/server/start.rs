//! Start-up: bind the listening socket, share the open-file limit, say what
//! is served, run the server with its signal handlers and watchers until
//! SIGTERM or SIGINT.

use std::net::TcpListener;

use actix_web::{web, HttpServer};

use super::{app, descriptors, ops, watchdog, AppState};
use crate::agent::Agent;
use crate::audit::Event;
use crate::auth::Origin;
use crate::config::Settings;
use crate::metrics::OpenConnection;

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
    // The connection cap is the running server's: shared once the listening
    // socket is open, so it is counted (`swagent call` builds no server).
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
        if state.live().agent.summary.is_some() && !state.outbox.durable() {
            crate::say!("swagent: WARNING: no `--outbox`: summaries wait in memory, and a restart loses the undelivered");
        }
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
        actix_web::rt::spawn(signals.handle(state.clone(), budget));
        if state.kill.path().is_some() {
            actix_web::rt::spawn(ops::watch_kill_switch(state.clone()));
        }
        if state.audit.path().is_some() {
            actix_web::rt::spawn(ops::watch_audit_log(state.clone()));
        }
        actix_web::rt::spawn(crate::outbox::worker::run(
            state.clone(),
            state.outbox.clone(),
        ));
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
        .hooked()
        .filter(|f| f.secure)
        .map(|f| f.name.as_str())
        .collect();
    let open: Vec<&str> = agent
        .hooked()
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
        // Said once, for development: the finding says it is no production setup.
        Origin::Generated => crate::say!(
            "swagent: Basic Auth user `{}`, password `{}`",
            settings.creds.user,
            settings.creds.password()
        ),
    }
    if settings.secret_origin == Origin::Configured {
        crate::say!("swagent: token secret configured");
    }
    if let Some(base) = &settings.proxy_base {
        crate::say!("swagent: webhook URLs use `SWML_PROXY_URL_BASE` {base}");
    }
    if settings.signing_key.is_some() {
        crate::say!(
            "swagent: request signatures required (`{}`)",
            crate::config::vars::SIGNING_KEY
        );
    }
}

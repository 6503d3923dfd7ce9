//! The running service's shared state: the live agent and everything built
//! from it, the settings, the audit log, metrics, limiters, the kill switch
//! and the confirmation store. The HTTP server reads it through its routes
//! and layers; the call pipeline ([`crate::call`]) through its gates.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use arc_swap::ArcSwap;
use prometheus::IntCounter;

use crate::agent::Agent;
use crate::alerts::{Alerts, Fired};
use crate::audit::{Audit, Event};
use crate::config::{ServeConfig, Settings};
use crate::guard::UsedCodes;
use crate::handlers::Runtime;
use crate::killswitch::KillSwitch;
use crate::limits::{FunctionLimits, Limits};
use crate::logging::Sampler;
use crate::metrics::{FunctionSeries, Metrics};
use crate::server::paths;
use crate::server::unverified::Unverified;
use crate::swml::{Prepared, Userinfo};
use crate::text::printable;

/// A required audit log that cannot be written: the request is refused (503).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditUnavailable;

/// What a reload replaces as one: the agent and what was built from it.
pub struct Live {
    pub agent: Agent,
    pub runtime: Runtime,
    pub alerts: Alerts,
    pub function_limits: FunctionLimits,
    /// The SWML document, serialized once.
    pub swml: Prepared,
    /// Each function's hot metric series, in [`Agent::hooked`] order.
    pub series: Vec<FunctionSeries>,
}

impl Live {
    /// The live state of `agent`, its requests signed as `settings` say. On
    /// a reload, `previous` is the agent it replaces, whose unchanged
    /// function rate limits, concurrency slots and alert counters carry over.
    pub fn new(
        agent: Agent,
        metrics: &Metrics,
        settings: &Settings,
        previous: Option<&Live>,
    ) -> Live {
        Live {
            series: agent
                .hooked()
                .map(|f| metrics.function_series(&f.name))
                .collect(),
            runtime: Runtime::carried(
                &agent,
                previous.map(|p| &p.runtime),
                settings.webhook.clone(),
            ),
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
/// up once: the outermost layer counts every request.
pub(crate) struct RouteSeries {
    path: String,
    pub label: &'static str,
    pub ok: IntCounter,
}

/// The served paths and their labels: `swml`, `swaig`, `post_prompt` (each
/// with and without a trailing slash), `health`, `ready`, `metrics`.
fn route_series(agent: &Agent, metrics: &Metrics) -> Vec<RouteSeries> {
    let mut paths: Vec<(String, &'static str)> = paths::SERVER
        .into_iter()
        .map(|(path, label)| (path.to_owned(), label))
        .collect();
    for (path, label) in paths::of_agent(agent) {
        paths.extend(paths::both_forms(path).into_iter().map(|p| (p, label)));
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
    pub(crate) userinfo: Userinfo,
    /// What bodies read before Basic Auth may hold at once.
    pub unverified: Unverified,
    /// Where summaries wait until delivered.
    pub outbox: Arc<crate::outbox::Outbox>,
}

impl AppState {
    /// Builds everything the server runs with: the limiters, the metrics,
    /// the audit log, the confirmation store and the kill switch. Files are
    /// opened here, so a path that will not do stops the start.
    pub fn new(agent: Agent, config: ServeConfig) -> anyhow::Result<AppState> {
        let audit = match &config.audit_log {
            Some(path) => Audit::open(path, &agent.name, config.audit_required)
                .with_context(|| format!("cannot open the audit log `{}`", path.display()))?,
            None => Audit::off(),
        };
        let kill = match &config.state_file {
            Some(path) => KillSwitch::from_file(path)?,
            None => KillSwitch::off(),
        };
        let used_codes = UsedCodes::new(confirm_store(config.confirm_store.as_deref())?);
        let outbox = crate::outbox::open(config.outbox.as_deref(), config.outbox_limits)
            .context("`--outbox`")?;
        let settings = config.settings;
        let metrics = Metrics::new();
        Ok(AppState {
            routes: route_series(&agent, &metrics),
            limits: Limits::new(
                settings.rate_limit,
                settings.auth_failure_limit,
                settings.rate_window,
            ),
            userinfo: Userinfo::new(&settings.creds.user, settings.creds.password()),
            unverified: Unverified::new(settings.unverified_bodies, settings.max_request_size),
            live: ArcSwap::from_pointee(Live::new(agent, &metrics, &settings, None)),
            settings,
            audit,
            audit_sampler: Sampler::default(),
            log_sampler: LogSamplers::default(),
            used_codes,
            kill,
            metrics,
            metrics_public: config.metrics_public,
            outbox,
        })
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
        self.live.store(Arc::new(Live::new(
            agent,
            &self.metrics,
            &self.settings,
            Some(&current),
        )));
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
    pub fn audit_event(&self, event: impl FnOnce() -> Event) -> Result<(), AuditUnavailable> {
        if !self.audit.enabled() {
            return Ok(());
        }
        match self.audit.record(event()) {
            Ok(()) => Ok(()),
            Err(_) if self.audit.accepting() => Ok(()),
            Err(_) => Err(AuditUnavailable),
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
    ) -> Result<(), AuditUnavailable> {
        for f in fired {
            log::warn!(
                "ALERT `{}`: observed {} (threshold {}) in call `{}`",
                f.rule,
                f.observed,
                f.threshold,
                printable(call_id.unwrap_or("-"))
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

    /// Counts a failed authentication toward `auth_failures_per_minute`:
    /// every kind does, forged tokens included. The refusal stands whether
    /// or not the alert is written.
    pub fn auth_failed_alert(&self, client: Option<std::net::IpAddr>) {
        let fired = self.live().alerts.auth_failed(chrono::Utc::now());
        let _ = self.raise(&fired, None, None, client);
    }
}

/// `--confirm-store`, a folder, resolved once: a link on the way that is
/// swapped later does not move the records of a running server.
fn confirm_store(dir: Option<&Path>) -> anyhow::Result<Option<PathBuf>> {
    let Some(dir) = dir else {
        return Ok(None);
    };
    if !dir.is_dir() {
        anyhow::bail!("`--confirm-store` `{}` is not a folder", dir.display());
    }
    std::fs::canonicalize(dir)
        .map(Some)
        .with_context(|| format!("cannot resolve `--confirm-store` `{}`", dir.display()))
}

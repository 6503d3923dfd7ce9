//! The call pipeline: what the platform asks of a call (its start, a
//! function, its summary) turned into a decision, outside HTTP.
//!
//! A function call passes one gate after another, in the order the docs
//! state (`docs/security.md`): body, function, token, kill switch, rate
//! limit, call id, arguments, alerts, caller verification, confirmation,
//! handler, grant. Each gate is a short function returning
//! `Result<_, Refusal>`; [`Refusal`] says in one place what each refusal
//! is over HTTP, in the audit log and metrics, and to the AI ([`say`]).
//! The HTTP routes (`server::swaig`, `server::summary`, `server::swml`)
//! adapt requests to it and do nothing else; `swagent call` runs the same
//! pipeline with the guards it skips named in [`Guards`].

mod actions;
pub mod arguments;
pub mod body;
mod confirmation;
mod end;
pub(crate) use end::call_of;
mod gates;
mod handler;
pub mod refusal;
pub mod say;
mod start;
mod summary;
mod verification;

use std::net::IpAddr;
use std::time::Instant;

use serde_json::Value;

use crate::agent::{Agent, Function};
use crate::handlers::Reply;
use crate::state::{AppState, Live};
use crate::token::Verdict;
pub use arguments::{validate_arguments, InvalidArguments};
pub use body::CallBody;
pub use refusal::Refusal;
pub use start::{start, start_id, start_looked_up};
pub use summary::{summary, SummaryPost};

/// Which guards a run applies. `serve` applies all of them; `swagent call`
/// runs a handler by hand and says which ones it skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guards {
    pub token: bool,
    pub kill_switch: bool,
    pub rate_limits: bool,
    pub alerts: bool,
    /// Caller verification: the lock-out, the grant it needs, the grant it gives.
    pub verification: bool,
    pub confirmation: bool,
}

impl Guards {
    /// Every guard: what `serve` runs.
    pub const ALL: Guards = Guards {
        token: true,
        kill_switch: true,
        rate_limits: true,
        alerts: true,
        verification: true,
        confirmation: true,
    };

    /// What `swagent call` applies: the kill switch (unless told to ignore
    /// it) and the argument schema, which every run has.
    pub fn local(kill_switch: bool) -> Guards {
        Guards {
            token: false,
            kill_switch,
            rate_limits: false,
            alerts: false,
            verification: false,
            confirmation: false,
        }
    }

    /// The guards that would apply to `function` but are off here, named
    /// for a person.
    pub fn skipped(&self, agent: &Agent, function: &Function) -> Vec<&'static str> {
        [
            (!self.confirmation && function.confirm, "confirmation"),
            (
                !self.verification && function.requires_verification,
                "caller verification",
            ),
            (
                !self.rate_limits && function.rate_limit != Default::default(),
                "rate limits",
            ),
            (
                !self.alerts && agent.alerts.iter().any(|a| a.applies_to(&function.name)),
                "alert rules",
            ),
        ]
        .into_iter()
        .filter_map(|(skipped, what)| skipped.then_some(what))
        .collect()
    }
}

/// One function call, as the platform sent it.
pub struct FunctionCall<'a> {
    pub body: &'a CallBody,
    /// The body as sent: the whole payload, for `on_call_end`.
    pub sent: &'a [u8],
    /// The token of the request's query (`__token`, else `token`), or why
    /// it cannot be read.
    pub token: Result<String, Verdict>,
    pub client: Option<IpAddr>,
}

/// What the gates of one function call share.
struct Call<'a> {
    state: &'a AppState,
    live: &'a Live,
    function: &'a Function,
    /// The function's index in the agent, for its metric series.
    index: usize,
    /// The call id audit events name: as sent before the call-id gate,
    /// the checked one after it.
    audit_call_id: Option<&'a str>,
    /// The call id once checked; empty for an unguarded function without one.
    call_id: &'a str,
    client: Option<IpAddr>,
    started: Instant,
    /// The clock, read once: codes and grants are judged at one instant.
    now: u64,
    global_data: &'a Value,
    meta_data: &'a Value,
    /// The number the call came from, when it is an E.164 number.
    caller: Option<&'a str>,
}

static NULL: Value = Value::Null;

/// Runs one function call through every gate `guards` applies, in order.
/// Refusals before the handler are recorded (log, metric, audit) as they
/// happen; the handler step records its own outcome.
pub async fn function(
    state: &AppState,
    live: &Live,
    request: FunctionCall<'_>,
    guards: Guards,
) -> Result<Reply, Refusal> {
    let started = Instant::now();
    let (index, function) = gates::function(&live.agent, request.body)?;
    let mut call = Call {
        state,
        live,
        function,
        index,
        audit_call_id: request.body.call_id(),
        call_id: "",
        client: request.client,
        started,
        now: crate::clock::now(),
        global_data: request.body.global_data.as_ref().unwrap_or(&NULL),
        meta_data: request.body.meta_data.as_ref().unwrap_or(&NULL),
        caller: request.body.caller_number(),
    };
    if guards.token && function.secure {
        gates::token(&call, request.token)?;
    }
    // Before the rate limit: a disabled function says so (and uses up none
    // of its allowance), rather than "too many requests".
    if guards.kill_switch {
        call.check(gates::kill_switch(&call))?;
    }
    if guards.rate_limits {
        call.check(gates::rate_limit(&call))?;
    }
    call.call_id = gates::call_id(function, call.audit_call_id)?;
    call.audit_call_id = Some(call.call_id).filter(|c| !c.is_empty());
    if let Some(end) = live.agent.on_call_end.as_ref() {
        if index == live.agent.functions.len() {
            return Ok(end::notify(&call, end, request.sent).await);
        }
    }
    let (args, code) = call.check(gates::arguments(&call, request.body))?;
    if guards.alerts {
        call.check(gates::alerts(&call, &args))?;
    }
    let identity = crate::guard::identity_of(&function.identity, &args);
    let checking = match guards.verification {
        true => call.check(verification::attempt(&call, identity.as_deref(), &args))?,
        false => None,
    };
    if guards.verification && function.requires_verification {
        call.check(verification::required(&call, identity.as_deref()))?;
    }
    if guards.confirmation && function.confirm {
        call.check(confirmation::confirmed(&call, code.as_deref(), &args))?;
    }
    handler::run(&call, &args, identity.as_deref(), checking, guards).await
}

impl Call<'_> {
    /// Records a gate's refusal as [`Refusal`] says: its log line, metric
    /// and audit event. An audit log that cannot take it refuses the call.
    fn check<T>(&self, outcome: Result<T, Refusal>) -> Result<T, Refusal> {
        outcome.map_err(|refusal| self.record(refusal))
    }

    fn record(&self, refusal: Refusal) -> Refusal {
        record(
            self.state,
            refusal,
            &self.function.name,
            self.audit_call_id,
            self.client,
            &self.bound_names(),
        )
    }

    /// The arguments a verifier binds, for log lines (names, never values).
    fn bound_names(&self) -> String {
        let names: Vec<String> = self
            .function
            .identity
            .iter()
            .map(|(_, arg)| format!("`{arg}`"))
            .collect();
        names.join(", ")
    }

    /// An audit event about this call.
    fn event(&self, name: &'static str, outcome: &'static str) -> crate::audit::Event {
        crate::audit::Event::new(name, outcome)
            .call(self.audit_call_id)
            .function(&self.function.name)
            .client(self.client)
    }
}

/// Records a refusal of `function` as [`Refusal`] says: its log line, metric
/// and audit event; `bound` names the arguments a verifier binds. An audit
/// log that cannot take the event turns the refusal into a 503.
fn record(
    state: &AppState,
    refusal: Refusal,
    function: &str,
    call_id: Option<&str>,
    client: Option<IpAddr>,
    bound: &str,
) -> Refusal {
    if let Some(line) = refusal.log_line(function, bound) {
        log::warn!("{line}");
    }
    // Written first: a refusal that becomes a 503 is not counted as itself.
    if let Some(event) = refusal.audit() {
        let audited = state.audit_event(|| event.call(call_id).function(function).client(client));
        if let Err(unavailable) = audited {
            return unavailable.into();
        }
    }
    let metrics = &state.metrics;
    match refusal.metric() {
        Some(refusal::Metric::FunctionCalls(outcome)) => metrics
            .function_calls
            .with_label_values(&[function, outcome])
            .inc(),
        Some(refusal::Metric::RateLimited(limit)) => {
            metrics.rate_limited.with_label_values(&[limit]).inc()
        }
        Some(refusal::Metric::TokenRejections(verdict)) => {
            metrics.token_rejections.with_label_values(&[verdict]).inc()
        }
        None => {}
    }
    refusal
}

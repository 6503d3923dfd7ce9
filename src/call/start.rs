//! A call's start: the platform fetches the agent's SWML document. The call
//! id is checked before anything is counted (a refused request starts no
//! call and raises no `calls_per_minute` alert), then the start is counted,
//! its alert rules judged, and the document prepared at load filled in.
//! An agent with `on_call_start` runs its lookup first and renders the
//! document for the call, its data in `global_data`; a lookup that fails
//! never leaves the caller in silence.

use std::net::IpAddr;

use serde_json::{json, Map, Value};

use super::Refusal;
use crate::agent::CallStart;
use crate::audit::Event;
use crate::handlers::{CallInput, HandlerError};
use crate::state::{AppState, Live};
use crate::swml::{PerCall, Prepared, RenderContext};
use crate::token;

/// The call id a start names, checked; a fresh one when it names none.
pub fn start_id(sent: Option<String>) -> Result<String, Refusal> {
    let call_id = sent.unwrap_or_else(|| crate::random::hex(16));
    token::check_call_id(&call_id).map_err(Refusal::InvalidCallId)?;
    Ok(call_id)
}

/// The SWML document of call `call_id` (checked by [`start_id`]), with
/// webhook URLs under `base_url`.
pub fn start(
    state: &AppState,
    live: &Live,
    call_id: &str,
    base_url: &str,
    client: Option<IpAddr>,
) -> Result<String, Refusal> {
    started(state, live, call_id, client)?;
    live.swml
        .render(&render_context(state, base_url, call_id))
        .map_err(Refusal::InvalidCallId)
}

/// [`start`] for an agent with `on_call_start`: the lookup first, with the
/// call as the SWML request reported it (`call`).
pub async fn start_looked_up(
    state: &AppState,
    live: &Live,
    call_id: &str,
    base_url: &str,
    client: Option<IpAddr>,
    call: Option<&Value>,
) -> Result<String, Refusal> {
    started(state, live, call_id, client)?;
    let ctx = render_context(state, base_url, call_id);
    let Some(lookup) = live.agent.on_call_start.as_ref() else {
        return live.swml.render(&ctx).map_err(Refusal::InvalidCallId);
    };
    let call = call
        .cloned()
        .unwrap_or_else(|| json!({ "call_id": call_id }));
    match looked_up(live, lookup, call_id, &call).await {
        Ok(found) => {
            let per_call = PerCall {
                global_data: Some(&found.global_data),
                context: found.context.as_deref(),
            };
            Prepared::for_call(&live.agent, per_call)
                .render(&ctx)
                .map_err(Refusal::InvalidCallId)
        }
        Err(reason) => {
            state.audit_after(|| {
                Event::new("call_start_failed", reason)
                    .call(Some(call_id))
                    .client(client)
            });
            if lookup.required {
                log::warn!("`on_call_start` failed ({reason}); the call gets `after_failure`");
                let verbs = &lookup.after_failure;
                return Ok(json!({ "version": "1.0.0", "sections": { "main": verbs } }).to_string());
            }
            log::warn!("`on_call_start` failed ({reason}); the call is answered with the file's own `global_data`");
            live.swml.render(&ctx).map_err(Refusal::InvalidCallId)
        }
    }
}

/// Counts the start and judges its alert rules.
fn started(
    state: &AppState,
    live: &Live,
    call_id: &str,
    client: Option<IpAddr>,
) -> Result<(), Refusal> {
    state.metrics.calls_started.inc();
    let fired = live.alerts.call_started(chrono::Utc::now());
    Ok(state.raise(&fired, Some(call_id), None, client)?)
}

fn render_context<'a>(
    state: &'a AppState,
    base_url: &'a str,
    call_id: &'a str,
) -> RenderContext<'a> {
    RenderContext {
        base_url,
        userinfo: &state.userinfo,
        secret: &state.settings.secret,
        call_id,
        now: crate::clock::now(),
    }
}

/// What a lookup decided for its call.
struct Found {
    /// The file's `global_data` with the lookup's JSON object merged in.
    global_data: Map<String, Value>,
    /// The context the call starts in, when not `default`.
    context: Option<String>,
}

/// What the lookup decided, or why it failed (for the audit log). Its
/// `context` key picks the starting context, which must be the file's.
async fn looked_up(
    live: &Live,
    lookup: &CallStart,
    call_id: &str,
    call: &Value,
) -> Result<Found, &'static str> {
    let input = CallInput {
        // The program reads the call on stdin, as a function reads its arguments.
        args: call,
        call_id,
        global_data: &Value::Null,
        meta_data: &Value::Null,
        call: Some(call),
        payload: None,
    };
    let reply = live
        .runtime
        .run(&live.agent, &lookup.function, input)
        .await
        .map_err(|e| {
            log::error!("{e}");
            match e {
                HandlerError::Timeout { .. } => "timeout",
                HandlerError::Busy { .. } => "busy",
                HandlerError::Failed { .. } => "error",
            }
        })?;
    if reply.refused {
        return Err("refused");
    }
    let Some(Value::Object(mut found)) = reply.data else {
        return Err("not_an_object");
    };
    if found.keys().any(|k| k.starts_with(crate::guard::GRANT_KEY)) {
        return Err("reserved_key");
    }
    let context = match found.remove("context") {
        None => None,
        Some(Value::String(name)) if is_context(&live.agent, &name) => {
            Some(name).filter(|n| n != "default")
        }
        Some(_) => return Err("unknown_context"),
    };
    let mut global_data = live.agent.ai.global_data.clone().unwrap_or_default();
    global_data.extend(found);
    Ok(Found {
        global_data,
        context,
    })
}

fn is_context(agent: &crate::agent::Agent, name: &str) -> bool {
    agent
        .contexts
        .as_ref()
        .is_some_and(|c| c.0.contains_key(name))
}

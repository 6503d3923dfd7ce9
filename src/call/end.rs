//! The call's end: the platform's `hangup_hook`, once its token and the
//! kill switch let it through. `on_call_end`'s handler is told the hangup
//! payload; what it answers is ignored, and the platform gets an empty
//! reply whatever happened: nobody is left on the call to hear it.

use serde_json::{Map, Value};

use super::Call;
use crate::agent::CallEnd;
use crate::handlers::{CallInput, HandlerError, Reply};

/// What the payload carries of the conversation, kept only with `call_log: true`.
const CALL_LOG: [&str; 2] = ["call_log", "raw_call_log"];

/// Runs the hook's handler with the payload `sent` and records how it went.
pub(super) async fn notify(call: &Call<'_>, end: &CallEnd, sent: &[u8]) -> Reply {
    // The body parsed as a JSON object before it reached a gate.
    let mut payload = match serde_json::from_slice(sent) {
        Ok(Value::Object(payload)) => payload,
        _ => Map::new(),
    };
    if !end.call_log {
        for key in CALL_LOG {
            payload.remove(key);
        }
    }
    let the_call = Value::Object(call_of(&payload, call.call_id));
    let payload = Value::Object(payload);
    let input = CallInput {
        // A program reads the whole payload on stdin.
        args: &payload,
        call_id: call.call_id,
        global_data: call.global_data,
        meta_data: call.meta_data,
        call: Some(&the_call),
        payload: Some(&payload),
    };
    match super::handler::timed(call, input).await {
        Ok(_) => {
            call.live.series[call.index].ok.inc();
            call.state.audit_after(|| {
                call.event("call_end_notified", "ok")
                    .duration(call.started.elapsed())
            });
        }
        Err(e) => {
            log::error!("{e}");
            let label = super::handler::outcome_label(&e);
            call.state
                .metrics
                .function_calls
                .with_label_values(&[call.function.name.as_str(), label])
                .inc();
            let reason = match e {
                HandlerError::Failed { .. } => "error",
                _ => label,
            };
            call.state.audit_after(|| {
                call.event("call_end_failed", reason)
                    .duration(call.started.elapsed())
            });
        }
    }
    Reply::text("")
}

/// The call as the hangup payload reports it: the platform's `SWMLCall`
/// (with `params.swaig_post_swml_vars`), its `call_id`, and `from` as the
/// caller id the payload names when `SWMLCall` has none.
pub(crate) fn call_of(payload: &Map<String, Value>, call_id: &str) -> Map<String, Value> {
    let mut the_call = match payload.get("SWMLCall") {
        Some(Value::Object(c)) => c.clone(),
        _ => Map::new(),
    };
    if !call_id.is_empty() {
        the_call.insert("call_id".into(), Value::String(call_id.to_owned()));
    }
    if let Some(from) = payload.get("caller_id_num").filter(|v| v.is_string()) {
        the_call.entry("from").or_insert_with(|| from.clone());
    }
    the_call
}

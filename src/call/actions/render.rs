//! The file's actions for one call, in the shapes the SDK's
//! `FunctionResult` gives them: a `transfer` is its `connect`, a text its
//! `send_sms`, both `SWML` actions. Destinations come from the file;
//! templates are filled as data from the arguments, the handler's JSON and
//! the call.

use serde_json::{json, Map, Value};

use crate::agent::actions::{Action, Destination, SmsTo};
use crate::call::{Call, Refusal};
use crate::handlers::HandlerError;
use crate::template::{Context, Encoding, RenderError};

/// Each of the function's actions, rendered, and apart the ones this call
/// cannot take ([`Refusal::ActionUnavailable`]).
pub(super) fn all(
    call: &Call<'_>,
    args: &Value,
    data: Option<&Value>,
    actions: &[Action],
) -> Result<(Vec<Value>, Vec<Refusal>), Refusal> {
    let no_env = |_: &str| None;
    let ctx = Context {
        args,
        call_id: call.call_id,
        global_data: call.global_data,
        meta_data: call.meta_data,
        response: data,
        call: None,
        payload: None,
        item: None,
        list: None,
        env: &no_env,
    };
    let (mut rendered, mut unavailable) = (Vec::new(), Vec::new());
    for action in actions {
        match one(call, action, &ctx) {
            Ok(value) => rendered.push(value),
            Err(refusal @ Refusal::ActionUnavailable { .. }) => unavailable.push(refusal),
            Err(refusal) => return Err(refusal),
        }
    }
    Ok((rendered, unavailable))
}

fn one(call: &Call<'_>, action: &Action, ctx: &Context<'_>) -> Result<Value, Refusal> {
    let failed = |e: RenderError| Refusal::Failed {
        error: HandlerError::Failed {
            function: call.function.name.clone(),
            detail: crate::text::printable(&format!("an action: {e}")),
        },
        locked: false,
    };
    Ok(match action {
        Action::Say(text) => json!({ "say": text.render(ctx, Encoding::Text).map_err(failed)? }),
        Action::Hangup => json!({ "hangup": true }),
        Action::Stop => json!({ "stop": true }),
        Action::Transfer { to, final_ } => {
            let to = destination(to, ctx.args, "transfer")?;
            json!({
                "SWML": { "sections": { "main": [{ "connect": { "to": to } }] }, "version": "1.0.0" },
                "transfer": if *final_ { "true" } else { "false" },
            })
        }
        Action::SendSms {
            to,
            from,
            body,
            media,
        } => {
            let mut sms = Map::new();
            let to = match to {
                SmsTo::Caller => call.caller.ok_or_else(|| {
                    unavailable(
                        "send_sms",
                        "the call has no number to text (anonymous, or a SIP address)",
                    )
                })?,
                SmsTo::Fixed(number) => number.as_str(),
            };
            sms.insert("to_number".into(), json!(to));
            sms.insert(
                "from_number".into(),
                json!(destination(from, ctx.args, "send_sms")?),
            );
            if let Some(body) = body {
                sms.insert(
                    "body".into(),
                    json!(body.render(ctx, Encoding::Text).map_err(failed)?),
                );
            }
            if !media.is_empty() {
                sms.insert("media".into(), json!(media));
            }
            swml("send_sms", Value::Object(sms))
        }
        Action::SetGlobalData(data) => {
            json!({ "set_global_data": data.render(ctx).map_err(failed)? })
        }
        Action::SetMetaData(data) => json!({ "set_meta_data": data.render(ctx).map_err(failed)? }),
        Action::UnsetGlobalData(keys) => json!({ "unset_global_data": keys }),
        Action::UnsetMetaData(keys) => json!({ "unset_meta_data": keys }),
        Action::ToggleFunctions(list) => {
            let toggles: Vec<Value> = list
                .iter()
                .map(|(f, on)| json!({ "function": f, "active": on }))
                .collect();
            json!({ "toggle_functions": toggles })
        }
        Action::ChangeStep(step) => json!({ "change_step": step }),
        Action::ChangeContext(context) => json!({ "change_context": context }),
        Action::RecordCall(settings) => swml("record_call", Value::Object(settings.clone())),
        Action::StopRecordCall(id) => {
            let params = id
                .as_ref()
                .map_or_else(|| json!({}), |id| json!({ "control_id": id }));
            swml("stop_record_call", params)
        }
        Action::PlayBackground { file, wait: true } => {
            json!({ "playback_bg": { "file": file, "wait": true } })
        }
        Action::PlayBackground { file, wait: false } => json!({ "playback_bg": file }),
        Action::StopBackground => json!({ "stop_playback_bg": true }),
        Action::Hold(timeout) => json!({ "hold": timeout }),
    })
}

/// The SDK's `execute_swml` of one verb.
fn swml(verb: &str, params: Value) -> Value {
    json!({ "SWML": { "version": "1.0.0", "sections": { "main": [{ verb: params }] } } })
}

/// Where the action goes: the file's destination, picked by the argument
/// a `map` names (its `enum` is the map's keys, so it is one of them).
fn destination<'a>(
    to: &'a Destination,
    args: &Value,
    kind: &'static str,
) -> Result<&'a str, Refusal> {
    match to {
        Destination::Fixed(to) => Ok(to),
        Destination::Off { variable } => Err(unavailable(
            kind,
            &format!("`${{env:{variable}}}` was empty or unset when the agent loaded"),
        )),
        Destination::ByArgument { argument, map } => {
            let value = args
                .get(argument)
                .and_then(Value::as_str)
                .unwrap_or_default();
            match map.iter().find(|(k, _)| k == value) {
                Some((_, to)) => destination(to, args, kind),
                None => Err(unavailable(kind, "the argument picked no destination")),
            }
        }
    }
}

fn unavailable(kind: &'static str, why: &str) -> Refusal {
    Refusal::ActionUnavailable {
        kind,
        why: why.to_owned(),
    }
}

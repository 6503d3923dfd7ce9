//! What a program or an upstream returned besides its words is admitted
//! only as its function's `actions_from_output` allows (kind, targets), in
//! the form the platform takes, and never touching swagent's own keys.

use serde_json::Value;

use crate::agent::actions::{OutputKind, NEVER};
use crate::call::{Call, Refusal};

/// Every action of the output admitted, or the refusal of the first that
/// is not.
pub(super) fn admit(call: &Call<'_>, output: &[Value]) -> Result<(), Refusal> {
    for action in output {
        check(call, action).map_err(|kind| Refusal::ActionRefused { kind })?;
    }
    Ok(())
}

/// Why one action is refused, as the kind the audit log names.
fn check(call: &Call<'_>, action: &Value) -> Result<(), &'static str> {
    let map = action.as_object().ok_or("malformed")?;
    // A kind that moves or bills the call is named as itself, however it
    // is dressed (`connect` puts `transfer` beside its `SWML`).
    if let Some(never) = NEVER
        .iter()
        .find(|n| map.contains_key(**n) && **n != "SWML")
    {
        return Err(never);
    }
    let (key, value) = match map.iter().next() {
        Some(entry) if map.len() == 1 => entry,
        _ if map.contains_key("SWML") => return Err("SWML"),
        _ => return Err("malformed"),
    };
    let kind = match OutputKind::of_key(key) {
        Some(OutputKind::UserEvent) if user_events(value) => OutputKind::UserEvent,
        Some(OutputKind::UserEvent) => return Err("SWML"),
        Some(kind) => kind,
        None => {
            return Err(NEVER
                .iter()
                .find(|n| **n == key)
                .copied()
                .unwrap_or("other"))
        }
    };
    let targets = call
        .function
        .output_actions
        .allows(kind)
        .ok_or(kind.name())?;
    if !well_formed(kind, key, value) || !targets_allowed(call, kind, value, targets) {
        return Err(kind.name());
    }
    let grant_key = |k: &str| k.starts_with(crate::guard::GRANT_KEY);
    let touches_grant = match kind {
        OutputKind::SetGlobalData => value
            .as_object()
            .is_some_and(|m| m.keys().any(|k| grant_key(k))),
        // A key, or a list of keys (the SDK's form).
        OutputKind::UnsetGlobalData => match value {
            Value::String(k) => grant_key(k),
            Value::Array(keys) => keys.iter().filter_map(Value::as_str).any(grant_key),
            _ => false,
        },
        _ => false,
    };
    if touches_grant {
        return Err(kind.name());
    }
    Ok(())
}

/// A `SWML` action whose document holds `user_event` verbs and nothing else.
fn user_events(value: &Value) -> bool {
    let verbs = value["sections"]["main"].as_array();
    let only_main = value["sections"].as_object().is_some_and(|s| s.len() == 1);
    only_main
        && verbs.is_some_and(|v| {
            !v.is_empty()
                && v.iter().all(|verb| {
                    verb.get("user_event").is_some()
                        && verb.as_object().is_some_and(|o| o.len() == 1)
                })
        })
}

/// The action in the form the platform takes: its member of the schema's
/// `Action` union, or the SDK's form of it.
fn well_formed(kind: OutputKind, key: &str, value: &Value) -> bool {
    use crate::swml::schema::action_valid;
    match kind {
        OutputKind::UserEvent => value["sections"]["main"].as_array().is_some_and(|verbs| {
            verbs
                .iter()
                .all(|v| crate::swml::schema::definition("UserEvent").is_valid(v))
        }),
        _ => action_valid(key, value, kind.definition()),
    }
}

/// The names a `change_step`, `change_context` or `toggle_functions` action
/// carries are the file's, and among `targets` when it lists them.
fn targets_allowed(
    call: &Call<'_>,
    kind: OutputKind,
    value: &Value,
    targets: Option<&[String]>,
) -> bool {
    let agent = &call.live.agent;
    let contexts = agent.contexts.as_ref();
    let names: Vec<&str> = match kind {
        OutputKind::ChangeStep | OutputKind::ChangeContext => value.as_str().into_iter().collect(),
        OutputKind::ToggleFunctions => value
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|t| match &t["function"] {
                Value::String(name) => vec![name.as_str()],
                Value::Array(names) => names.iter().filter_map(Value::as_str).collect(),
                _ => vec![""],
            })
            .collect(),
        _ => return true,
    };
    names.iter().all(|name| {
        let in_file = match kind {
            OutputKind::ChangeStep => contexts.is_some_and(|c| {
                c.0.values()
                    .any(|c| c.steps.iter().any(|s| s.name == *name))
            }),
            OutputKind::ChangeContext => contexts.is_some_and(|c| c.0.contains_key(*name)),
            _ => agent.functions.contains_key(*name),
        };
        in_file && targets.is_none_or(|t| t.iter().any(|t| t == name))
    })
}

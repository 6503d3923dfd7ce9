//! `swagent call FILE FUNCTION`: one function run by hand, through the same
//! call pipeline `serve` runs, with the guards a local run cannot apply
//! (token, rate limits, alerts, verification, confirmation) named as skipped.

use serde_json::Value;

use anyhow::Context as _;

use crate::auth::{Credentials, Origin};
use crate::call::{self, CallBody, FunctionCall, Guards, Refusal};
use crate::cli::CallArgs;
use crate::config::settings::webhook_signer;
use crate::config::{ServeConfig, Settings};
use crate::state::AppState;
use crate::token::Secret;

pub(super) fn run(args: &CallArgs) -> anyhow::Result<u8> {
    // `serve` answers a call id it could not bind into a token with a 400.
    crate::token::check_call_id(&args.call_id).map_err(|e| anyhow::anyhow!("`--call-id`: {e}"))?;
    let agent = super::load_agent(&args.file)?;
    let Some(function) = agent.functions.get(&args.function) else {
        anyhow::bail!("agent `{}` has no function `{}`", agent.name, args.function);
    };
    let input = parse_args(args, &function.parameters)?;
    let guards = Guards::local(!args.ignore_kill_switch);
    let skipped = guards.skipped(&agent, function);
    if let Some(path) = &args.state_file {
        // A mistyped path reads as "nothing disabled": say so.
        if !path.exists() {
            crate::say!(
                "note: the kill-switch state file `{}` does not exist: nothing is disabled",
                path.display()
            );
        }
    }
    let state = AppState::new(agent, local_config(args)?)?;
    let body = CallBody::local(&args.function, &args.call_id, input);
    let request = FunctionCall {
        body: &body,
        sent: b"{}",
        token: Ok(String::new()),
        client: None,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = rt.block_on(call::function(&state, &state.live(), request, guards));
    // During an incident a disabled function stays off, from here too.
    if let Err(Refusal::Disabled) = outcome {
        crate::say!(
            "error: `{}` is disabled by the kill switch (`{}`): `swagent enable` it, or pass `--ignore-kill-switch`",
            args.function,
            args.state_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
        return Ok(1);
    }
    if !skipped.is_empty() {
        crate::say!(
            "note: `call` runs the handler directly; not applied here: {}",
            skipped.join(", ")
        );
    }
    report(args, outcome)
}

/// A configuration for one local run: throwaway credentials (no token or
/// grant is checked or made), the kill switch's state file, and the webhook
/// secret, so a backend that checks signatures takes a run by hand too.
fn local_config(args: &CallArgs) -> anyhow::Result<ServeConfig> {
    let creds = Credentials::new(
        "swagent-call".into(),
        crate::random::password(43),
        Origin::Generated,
    );
    let mut settings = Settings::new(creds, Secret::new(&crate::random::hex(32)));
    settings.webhook = webhook_signer()?;
    let mut config = ServeConfig::new(settings);
    config.state_file = args.state_file.clone();
    Ok(config)
}

/// Prints the reply, or why there is none.
fn report(args: &CallArgs, outcome: Result<crate::handlers::Reply, Refusal>) -> anyhow::Result<u8> {
    match outcome {
        Ok(reply) => {
            super::print_out(&format!("{}\n", serde_json::to_string_pretty(&reply)?))?;
            Ok(0)
        }
        Err(Refusal::InvalidArguments { invalid, .. }) => {
            crate::say!(
                "error: invalid arguments for `{}`: {invalid}",
                args.function
            );
            crate::say!("the AI would be told: {}", invalid.for_ai());
            Ok(1)
        }
        Err(Refusal::Failed { error, .. }) => {
            crate::say!("error: {error}");
            crate::say!("the caller would hear: {}", error.spoken());
            Ok(1)
        }
        Err(Refusal::Busy) => {
            crate::say!(
                "error: function `{}` is at its concurrency limit",
                args.function
            );
            crate::say!("the caller would hear: {}", call::say::BUSY);
            Ok(1)
        }
        Err(other) => Err(anyhow::anyhow!("{}", other.message()))
            .with_context(|| format!("`{}` was not run", args.function)),
    }
}

/// Parses `--arg NAME=VALUE` values: the text itself for an argument
/// declared `type: string` (so `account=12345678` stays a string), else
/// JSON when it parses, else a string.
fn parse_args(args: &CallArgs, parameters: &Value) -> anyhow::Result<Value> {
    let mut map = match &args.args_json {
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => m,
            Ok(_) => anyhow::bail!("`--args-json` must be a JSON object"),
            Err(e) => anyhow::bail!("`--args-json` is not valid JSON: {e}"),
        },
        None => serde_json::Map::new(),
    };
    for pair in &args.args {
        let (name, value) = pair
            .split_once('=')
            .with_context(|| format!("`--arg {pair}` must be NAME=VALUE"))?;
        let declared_string = parameters
            .pointer(&format!(
                "/properties/{}/type",
                name.replace('~', "~0").replace('/', "~1")
            ))
            .is_some_and(|t| t == "string");
        let value = if declared_string {
            Value::String(value.to_owned())
        } else {
            serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()))
        };
        map.insert(name.to_owned(), value);
    }
    Ok(Value::Object(map))
}

//! One function per subcommand. Each turns typed CLI args into calls of the
//! library and returns the exit code; none re-implements what `serve` does.

mod check;
mod creds;
mod tokens;
mod validate;

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use clap::CommandFactory as _;
use serde_json::Value;

use crate::agent::{self, Agent, LoadOptions};
use crate::audit::Audit;
use crate::auth::{Origin, PASSWORD_VAR};
use crate::cli::{
    CallArgs, Command, CompletionsArgs, ServeArgs, SwitchArgs, SwmlArgs, TokenCommand,
};
use crate::guard::UsedCodes;
use crate::killswitch::{KillState, KillSwitch};
use crate::server::{self, routes, AppState, Live, Settings, SECRET_VAR};

/// Runs one subcommand and returns its exit code.
pub fn dispatch(command: Command) -> anyhow::Result<u8> {
    match command {
        Command::Serve(args) => serve(args),
        Command::Validate(args) => validate::run(&args),
        Command::Schema => {
            print_out(&crate::agent::model::schema_json())?;
            Ok(0)
        }
        Command::GenCreds(args) => creds::run(&args),
        Command::VerifyToken(args) => tokens::verify(&args),
        Command::Token(TokenCommand::Mint(args)) => tokens::mint(&args),
        Command::Swml(args) => swml(&args),
        Command::Call(args) => call(&args),
        Command::Completions(args) => completions(&args),
        Command::Disable(args) => switch(&args, false),
        Command::Enable(args) => switch(&args, true),
        Command::Check(args) => check::run(&args),
    }
}

/// Writes to stdout, surfacing a broken pipe as an error `main` recognizes.
fn print_out(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write the output")
}

/// Says on stdout what a command did, once it is done. A stdout that cannot
/// take it is a warning, not a failure: the change stands, and a script
/// that retried on exit 2 would make it again (rotate twice).
fn report_done(text: &str) {
    if let Err(e) = print_out(text) {
        if !crate::closed_pipe(&e) {
            crate::say!("warning: {e:#} (the change was made)");
        }
    }
}

/// Loads an agent for a command that needs a valid one, printing warnings.
fn load_agent(path: &Path) -> anyhow::Result<Agent> {
    let (agent, report) = agent::load(path, LoadOptions::default())?;
    if !report.findings.is_empty() {
        crate::say_raw!("{}", report.human());
    }
    Ok(agent)
}

/// `--trust-proxy`, or the SDK's name for it, so a migrated setup keeps its
/// proxy.
fn trust_proxy(flag: bool) -> anyhow::Result<bool> {
    let sdk = crate::environment::flag("SWML_TRUST_PROXY_HEADERS").map_err(|v| {
        anyhow::anyhow!("`SWML_TRUST_PROXY_HEADERS` must be `true` or `false`, not `{v}`")
    })?;
    // The two names are one setting: when both are given they must agree,
    // or an explicit "no" would be overruled (read as clap reads the flag's
    // variable, `off` and `n` included).
    let ours = crate::auth::non_empty_env("SWML_TRUST_PROXY").and_then(|v| {
        use clap::builder::TypedValueParser as _;
        clap::builder::BoolishValueParser::new()
            .parse_ref(
                &clap::Command::new("swagent"),
                None,
                std::ffi::OsStr::new(&v),
            )
            .ok()
    });
    if crate::auth::non_empty_env("SWML_TRUST_PROXY_HEADERS").is_some()
        && ours.is_some_and(|ours| ours != sdk)
    {
        anyhow::bail!(
            "`SWML_TRUST_PROXY` and `SWML_TRUST_PROXY_HEADERS` disagree; they are one setting: keep one"
        );
    }
    Ok(flag || sdk)
}

fn serve(args: ServeArgs) -> anyhow::Result<u8> {
    crate::logging::init();
    let agent = load_agent(&args.file)?;
    let trust_proxy = trust_proxy(args.trust_proxy)?;
    let mut settings = Settings::from_env(trust_proxy, args.allow_weak_password)?;
    if let Some(problem) = server::untrusted_proxy(settings.proxy_base.is_some(), trust_proxy) {
        crate::say!("swagent: WARNING: {problem}");
    }
    if let Some((cert, key)) =
        server::tls::sources(args.tls_cert.as_deref(), args.tls_key.as_deref())?
    {
        settings.tls = Some(server::tls::server_config(&cert, &key)?);
        if let Some(mode) = server::tls::readable_by_others(&key.path) {
            crate::say!(
                "swagent: WARNING: {key}: the private key has mode {mode:04o}: others on this host can read it (`chmod 600` it)"
            );
        }
    } else if let Some(problem) = server::tls::ignored_paths() {
        crate::say!("swagent: WARNING: {problem}");
    }
    let limits = settings.perimeter();
    for problem in limits.weakened().into_iter().chain(limits.throttling()) {
        crate::say!("swagent: WARNING: {problem}");
    }
    let audit = match &args.audit_log {
        Some(path) => Audit::open(path, &agent.name, args.audit_required)
            .with_context(|| format!("cannot open the audit log `{}`", path.display()))?,
        None => Audit::off(),
    };
    if let Some(problem) = args.audit_log.as_deref().and_then(crate::audit::exposure) {
        crate::say!("swagent: WARNING: the audit log {problem}");
    }
    if let Some(dir) = &args.confirm_store {
        if !dir.is_dir() {
            anyhow::bail!("`--confirm-store` `{}` is not a folder", dir.display());
        }
        if let Some(problem) = crate::guard::store_exposure(dir) {
            crate::say!(
                "swagent: WARNING: `--confirm-store` `{}` {problem}",
                dir.display()
            );
        }
    }
    let mut state = AppState::new(agent, settings);
    state.audit = audit;
    // Resolved once: a link on the way that is swapped later does not move
    // the records of a running server.
    let store = match &args.confirm_store {
        Some(dir) => Some(
            std::fs::canonicalize(dir)
                .with_context(|| format!("cannot resolve `--confirm-store` `{}`", dir.display()))?,
        ),
        None => None,
    };
    state.used_codes = UsedCodes::new(store);
    state.metrics_public = args.metrics_public;
    match &args.state_file {
        Some(path) => {
            // Found out now, not by the first `disable` in an incident.
            let folder = crate::files::folder_of(path);
            if !folder.is_dir() {
                anyhow::bail!(
                    "the folder of `--state-file` `{}` does not exist, so `swagent disable` could not write it",
                    path.display()
                );
            }
            state.kill = KillSwitch::from_file(path)?;
            crate::say!("swagent: kill switch: watching `{}`", path.display());
            let now = state.kill.current();
            if now.all || !now.disabled.is_empty() {
                crate::say!("swagent: WARNING: kill switch: {}", now.describe());
            }
        }
        None => crate::say!(
            "swagent: no `--state-file`: `swagent disable` cannot reach this server, and SIGUSR1 disables functions until it restarts"
        ),
    }
    if let Some(path) = &args.audit_log {
        crate::say!("swagent: audit log `{}`", path.display());
    }
    server::serve(state, &args.host, args.port)?;
    Ok(0)
}

fn swml(args: &SwmlArgs) -> anyhow::Result<u8> {
    let agent = match agent::load(&args.file, LoadOptions::default()) {
        Ok((agent, _)) => agent,
        Err(agent::LoadError::Invalid { report }) => {
            crate::say_raw!("{}", report.human());
            return Ok(1);
        }
        Err(e) => return Err(e.into()),
    };
    let base = args
        .base_url
        .as_deref()
        .map(|b| server::base_url("`--base-url`", b))
        .transpose()?;
    let settings = Settings::from_env(false, true)?;
    // As `serve` would answer, or a document that could never be served.
    if settings.creds.origin == Origin::Generated || settings.secret_origin == Origin::Generated {
        crate::say!(
            "warning: no `{PASSWORD_VAR}` or no `{SECRET_VAR}`: this document's password or tokens are throwaway values that no server shares"
        );
    }
    let base = base
        .or_else(|| settings.proxy_base.clone())
        .unwrap_or_else(|| "http://127.0.0.1:3000".into());
    let call_id = args
        .call_id
        .clone()
        .unwrap_or_else(|| crate::random::hex(16));
    let doc = crate::swml::render(
        &agent,
        &crate::swml::RenderContext {
            base_url: base.trim_end_matches('/'),
            userinfo: &crate::swml::Userinfo::new(&settings.creds.user, settings.creds.password()),
            secret: &settings.secret,
            call_id: &call_id,
            now: crate::clock::now(),
        },
    )
    .with_context(|| format!("cannot render SWML for call id `{call_id}`"))?;
    print_out(&format!("{}\n", serde_json::to_string_pretty(&doc)?))?;
    Ok(0)
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

fn call(args: &CallArgs) -> anyhow::Result<u8> {
    // `serve` answers a call id it could not bind into a token with a 400.
    crate::token::check_call_id(&args.call_id).map_err(|e| anyhow::anyhow!("`--call-id`: {e}"))?;
    let agent = load_agent(&args.file)?;
    if !agent.functions.contains_key(&args.function) {
        anyhow::bail!("agent `{}` has no function `{}`", agent.name, args.function);
    }
    let input = parse_args(args, &agent.functions[&args.function].parameters)?;
    // During an incident a disabled function stays off, from here too.
    if let Some(path) = &args.state_file {
        // A mistyped path reads as "nothing disabled": say so.
        if !path.exists() {
            crate::say!(
                "note: the kill-switch state file `{}` does not exist: nothing is disabled",
                path.display()
            );
        }
        let kill = crate::killswitch::KillState::read(path)?;
        if kill.is_disabled(&args.function) && !args.ignore_kill_switch {
            crate::say!(
                "error: `{}` is disabled by the kill switch (`{}`): `swagent enable` it, or pass `--ignore-kill-switch`",
                args.function,
                path.display()
            );
            return Ok(1);
        }
    }
    let function = &agent.functions[&args.function];
    let skipped: Vec<&str> = [
        (function.confirm, "confirmation"),
        (function.requires_verification, "caller verification"),
        (function.rate_limit != Default::default(), "rate limits"),
        (
            agent.alerts.iter().any(|a| a.applies_to(&function.name)),
            "alert rules",
        ),
    ]
    .into_iter()
    .filter_map(|(on, what)| on.then_some(what))
    .collect();
    if !skipped.is_empty() {
        crate::say!(
            "note: `call` runs the handler directly; not applied here: {}",
            skipped.join(", ")
        );
    }
    // Metrics of their own: nothing reads them in a one-off call.
    let live = Live::new(agent, &crate::metrics::Metrics::new(), None);
    let body = crate::server::body::CallBody::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let function = &live.agent.functions[&args.function];
    let outcome = rt.block_on(routes::run_function(
        &live,
        function,
        &input,
        &args.call_id,
        &body,
    ));
    match outcome {
        Ok(Ok(reply)) => {
            print_out(&format!("{}\n", serde_json::to_string_pretty(&reply)?))?;
            Ok(0)
        }
        Ok(Err(invalid)) => {
            crate::say!(
                "error: invalid arguments for `{}`: {invalid}",
                args.function
            );
            crate::say!("the AI would be told: {}", invalid.for_ai());
            Ok(1)
        }
        Err(e) => {
            crate::say!("error: {e}");
            crate::say!("the caller would hear: {}", e.spoken());
            Ok(1)
        }
    }
}

fn completions(args: &CompletionsArgs) -> anyhow::Result<u8> {
    let mut cmd = crate::cli::Cli::command();
    // Into a buffer: `generate` panics when it cannot write.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "swagent", &mut script);
    print_out(&String::from_utf8_lossy(&script))?;
    Ok(0)
}

fn switch(args: &SwitchArgs, enable: bool) -> anyhow::Result<u8> {
    if let Some(path) = &args.agent {
        let agent = load_agent(path)?;
        for f in &args.functions {
            if !agent.functions.contains_key(f) {
                anyhow::bail!("agent `{}` has no function `{f}`", agent.name);
            }
        }
    }
    for f in &args.functions {
        if !crate::template::is_name(f) {
            anyhow::bail!("`{f}` is not a function name");
        }
    }
    // A mistyped path makes a file no server watches: say it is new.
    let created = std::fs::symlink_metadata(&args.state_file).is_err();
    let (state, kept) = KillState::update(&args.state_file, args.all, |state| {
        match (enable, args.all) {
            (false, true) => state.all = true,
            (false, false) => state.disabled.extend(args.functions.iter().cloned()),
            (true, true) => {
                state.all = false;
                state.disabled.clear();
            }
            (true, false) => {
                for f in &args.functions {
                    state.disabled.remove(f);
                }
            }
        }
        state.updated_at =
            Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
        state.updated_by = std::env::var("USER")
            .ok()
            .or_else(|| Some("swagent".into()));
    })?;
    if let Some(kept) = kept {
        crate::say!(
            "warning: `{}` did not parse; it was replaced, and the old content kept at `{}`",
            args.state_file.display(),
            kept.display()
        );
    }
    if created {
        crate::say!(
            "note: `{}` did not exist and was created; only servers started with this `--state-file` follow it",
            args.state_file.display()
        );
    }
    if args.agent.is_none() && !args.functions.is_empty() {
        crate::say!(
            "note: the names were not checked against an agent; pass `--agent FILE` to catch a typo"
        );
    }
    if enable && !args.all && state.all {
        crate::say!("note: `--all` is still in force; `swagent enable --all` lifts it");
    }
    report_done(&format!(
        "{}: {}\n",
        args.state_file.display(),
        state.describe()
    ));
    Ok(0)
}

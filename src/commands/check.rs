//! `swagent check FILE --production`: the production hardening checklist.
//!
//! Each item is pass, fail or cannot-tell, with why. The environment is read
//! as `serve` would read it (real environment over `.env`). Items that no
//! program can check from here (firewall, log shipping, reviews) are listed
//! as cannot-tell with what a person must verify; they never fail the run.

use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::Context as _;

use serde::Serialize;
use serde_json::Value;

use crate::agent::{self, Agent, Handler, LoadOptions, Method, Prompt};
use crate::auth::{non_empty_env, PASSWORD_VAR};
use crate::cli::{CheckArgs, CheckFormat};
use crate::server::SECRET_VAR;
use crate::template::Var;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Status {
    Pass,
    Fail,
    CannotTell,
}

#[derive(Debug, Serialize)]
struct Item {
    id: &'static str,
    title: &'static str,
    status: Status,
    why: String,
}

fn item(id: &'static str, title: &'static str, status: Status, why: impl Into<String>) -> Item {
    Item {
        id,
        title,
        status,
        why: why.into(),
    }
}

/// An item that passes when `offenders` is empty, saying `ok`, and else
/// fails, saying `bad` and then who.
fn none_of(
    id: &'static str,
    title: &'static str,
    offenders: &[String],
    ok: &str,
    bad: &str,
) -> Item {
    if offenders.is_empty() {
        item(id, title, Status::Pass, ok)
    } else {
        item(
            id,
            title,
            Status::Fail,
            format!("{bad}: {}", offenders.join(", ")),
        )
    }
}

fn pass_if(ok: bool) -> Status {
    if ok {
        Status::Pass
    } else {
        Status::Fail
    }
}

/// Functions whose handler may change something: any shell program (we
/// cannot know what it does) and http methods other than GET.
fn changes_something(h: &Handler) -> bool {
    match h {
        Handler::Shell(_) => true,
        Handler::Http(h) => h.method != Method::Get,
        Handler::Static(_) => false,
    }
}

/// Argument names a shell or http handler uses: for a shell handler every
/// declared one, since each reaches the program on stdin and as
/// `SWAIG_ARG_*` whether its command line names it or not.
fn used_args(f: &agent::Function) -> Vec<String> {
    let mut names = Vec::new();
    if let Handler::Shell(_) = &f.handler {
        if let Some(props) = f.parameters.get("properties").and_then(Value::as_object) {
            names.extend(props.keys().cloned());
        }
    }
    names.extend(
        f.handler
            .action_templates()
            .iter()
            .flat_map(|t| t.vars())
            .filter_map(|(v, _)| match v {
                Var::Args(name, _) => Some(name.clone()),
                _ => None,
            }),
    );
    names.sort();
    names.dedup();
    names
}

/// True when a property schema constrains its value.
fn constrained(p: &Value) -> bool {
    let has = |k: &str| p.get(k).is_some();
    match p.get("type").and_then(Value::as_str) {
        Some("string") => {
            let anchored = p
                .get("pattern")
                .and_then(Value::as_str)
                .is_some_and(agent::is_anchored);
            let named =
                anchored || has("enum") || has("maxLength") || has("format") || has("const");
            // `^.*$` is anchored and constrains nothing: the schema itself is
            // asked whether it takes any text at all.
            named && !takes_anything(p)
        }
        Some("number" | "integer") => {
            (has("minimum") || has("exclusiveMinimum"))
                && (has("maximum") || has("exclusiveMaximum"))
                || has("enum")
        }
        Some("boolean") => true,
        _ => has("enum") || has("const"),
    }
}

/// Whether a string schema accepts every one of some very different texts
/// (shell metacharacters, quotes, a leading dash, a long run): then its
/// `pattern` or `format` narrows nothing a handler should fear, even if it
/// refuses a line break as `^.*$` does.
fn takes_anything(schema: &Value) -> bool {
    let Ok(validator) = agent::schema_validator(schema) else {
        return false;
    };
    let long = "x".repeat(300);
    ["", "-rf /", "a;b|c&d$(e)`f`", "'\"\\", "é ✓", long.as_str()]
        .iter()
        .all(|probe| validator.is_valid(&Value::from(*probe)))
}

fn has_rate_limit(f: &agent::Function) -> bool {
    f.rate_limit.per_call.is_some() || f.rate_limit.global.is_some()
}

fn prompt_text(agent: &Agent) -> String {
    fn walk(s: &agent::Section, out: &mut String) {
        for t in [&s.title, &s.body].into_iter().flatten() {
            out.push_str(t);
            out.push('\n');
        }
        for b in s.bullets.iter().flatten() {
            out.push_str(b);
            out.push('\n');
        }
        for sub in s.subsections.iter().flatten() {
            walk(sub, out);
        }
    }
    let mut out = String::new();
    match &agent.prompt {
        Prompt::Text(t) => out.push_str(t),
        Prompt::Pom(sections) => sections.iter().for_each(|s| walk(s, &mut out)),
    }
    out.to_lowercase()
}

fn git_tracks(file: &Path) -> Option<bool> {
    let dir = crate::files::folder_of(file);
    let inside = Command::new("git")
        .args(["rev-parse", "--is-inside-work-tree"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    if !inside.success() {
        return Some(false);
    }
    let tracked = Command::new("git")
        .args(["ls-files", "--error-unmatch", "--"])
        .arg(file.file_name()?)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .ok()?;
    Some(tracked.success())
}

fn checklist(agent: &Agent, args: &CheckArgs) -> anyhow::Result<Vec<Item>> {
    let mut items = Vec::new();
    let env_true = |k: &str| {
        non_empty_env(k)
            .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
    };

    // HTTPS
    let proxy = non_empty_env("SWML_PROXY_URL_BASE");
    let tls = env_true("SWML_SSL_ENABLED")
        && non_empty_env("SWML_SSL_CERT_PATH").is_some()
        && non_empty_env("SWML_SSL_KEY_PATH").is_some();
    items.push(match (&proxy, tls) {
        (_, true) => item(
            "https",
            "HTTPS",
            Status::Pass,
            "`SWML_SSL_ENABLED` with a certificate and key",
        ),
        (Some(p), false) if p.starts_with("https://") => item(
            "https",
            "HTTPS",
            Status::Pass,
            "TLS at the proxy: `SWML_PROXY_URL_BASE` is https",
        ),
        (Some(_), false) => item(
            "https",
            "HTTPS",
            Status::Fail,
            "`SWML_PROXY_URL_BASE` is not https, and swagent's own TLS is off",
        ),
        (None, false) => item(
            "https",
            "HTTPS",
            Status::Fail,
            "neither `SWML_SSL_ENABLED` (with cert and key) nor an https `SWML_PROXY_URL_BASE`",
        ),
    });

    // Credentials
    items.push(match non_empty_env(PASSWORD_VAR) {
        Some(p) if p.chars().count() >= 32 => item(
            "password",
            "Basic Auth password",
            Status::Pass,
            format!("configured, {} characters", p.chars().count()),
        ),
        Some(p) => item(
            "password",
            "Basic Auth password",
            Status::Fail,
            format!(
                "configured but {} characters; use 32+ (`swagent gen-creds`)",
                p.chars().count()
            ),
        ),
        None => item(
            "password",
            "Basic Auth password",
            Status::Fail,
            format!("`{PASSWORD_VAR}` is not set: a password would be generated at each start"),
        ),
    });
    items.push(match non_empty_env(SECRET_VAR) {
        Some(s) if s.len() >= 32 => item(
            "token_secret",
            "Function token secret",
            Status::Pass,
            "configured",
        ),
        Some(_) => item(
            "token_secret",
            "Function token secret",
            Status::Fail,
            format!("`{SECRET_VAR}` is shorter than 32 characters"),
        ),
        None => item(
            "token_secret",
            "Function token secret",
            Status::Fail,
            format!("`{SECRET_VAR}` is not set: tokens would break on restart and across replicas"),
        ),
    });
    items.push(item(
        "signing_key",
        "SignalWire request signatures",
        pass_if(non_empty_env("SIGNALWIRE_SIGNING_KEY").is_some()),
        if non_empty_env("SIGNALWIRE_SIGNING_KEY").is_some() {
            "`SIGNALWIRE_SIGNING_KEY` is set"
        } else {
            "`SIGNALWIRE_SIGNING_KEY` is not set: requests are not proven to come from SignalWire"
        },
    ));

    let untrusted =
        crate::server::untrusted_proxy(proxy.is_some(), super::trust_proxy(args.trust_proxy)?);
    items.push(item(
        "proxy_trust",
        "Client addresses behind the proxy",
        pass_if(untrusted.is_none()),
        untrusted.unwrap_or_else(|| match proxy {
            Some(_) => "`--trust-proxy`: limits count each client's own address".to_owned(),
            None => "no `SWML_PROXY_URL_BASE`: limits count each connection's address".to_owned(),
        }),
    ));
    let weakened = crate::server::PerimeterLimits::from_env()?.weakened();
    items.push(item(
        "perimeter_limits",
        "Address and failure limits are on",
        pass_if(weakened.is_empty()),
        if weakened.is_empty() {
            "`SWML_RATE_LIMIT` and `SWAGENT_AUTH_FAILURE_LIMIT` count per minute".to_owned()
        } else {
            weakened.join("; ")
        },
    ));
    let env_file = Path::new(".env");
    let group_writable = std::fs::metadata(env_file)
        .ok()
        .and_then(|m| crate::environment::group_writable(&m));
    items.push(item(
        "env_mode",
        "`.env` only its owner can change",
        pass_if(group_writable.is_none()),
        match group_writable {
            Some(mode) => format!("`.env` has mode {mode:04o}: its group can change swagent's settings (`chmod 600 .env`)"),
            None => "no `.env` here, or one its group cannot write".to_owned(),
        },
    ));

    // Functions that change something
    let mut unguarded = Vec::new();
    let mut open = Vec::new();
    let mut loose = Vec::new();
    for f in agent.functions.values() {
        if changes_something(&f.handler) {
            if !f.secure {
                open.push(f.name.clone());
            }
            if !f.confirm && f.confirm_reason.is_none() {
                unguarded.push(f.name.clone());
            }
        }
        let props = f.parameters.get("properties");
        for arg in used_args(f) {
            let p = props.and_then(|p| p.get(&arg)).unwrap_or(&Value::Null);
            if !constrained(p) {
                loose.push(format!("`{}.{arg}`", f.name));
            }
        }
    }
    items.push(none_of(
        "secure_changes",
        "Functions that change something are secure",
        &open,
        "every shell function and non-GET http function needs a token",
        "`secure: false` on",
    ));
    items.push(none_of(
        "confirmation",
        "Functions that change something are confirmed",
        &unguarded,
        "each has `confirm: true` or `confirm: false` with a `reason`",
        "neither `confirm: true` nor a `reason` for `confirm: false`",
    ));
    items.push(verification_bound(agent));
    items.push(verification_lockout(agent));
    items.push(none_of(
        "constrained_arguments",
        "Arguments used by handlers are constrained",
        &loose,
        "every string has an anchored pattern, enum, format or maxLength, every number a minimum and maximum",
        "no anchored pattern (`^...$`), enum, format, maxLength or min/max on",
    ));
    let plain: Vec<String> = agent
        .functions
        .values()
        .filter_map(|f| match &f.handler {
            Handler::Http(h) => {
                let url = url::Url::parse(&h.url.to_string()).ok()?;
                let local = match url.host()? {
                    url::Host::Domain(d) => d == "localhost",
                    url::Host::Ipv4(ip) => ip.is_loopback(),
                    url::Host::Ipv6(ip) => ip.is_loopback(),
                };
                (url.scheme() == "http" && !local).then(|| f.name.clone())
            }
            _ => None,
        })
        .collect();
    items.push(none_of(
        "https_upstreams",
        "Upstreams are called over HTTPS",
        &plain,
        "every http function calls https or loopback",
        "plain http (arguments and headers in clear on the network)",
    ));
    let unlimited: Vec<String> = agent
        .functions
        .values()
        .filter(|f| f.secure && !has_rate_limit(f))
        .map(|f| f.name.clone())
        .collect();
    items.push(none_of(
        "rate_limits",
        "Secure functions have rate limits",
        &unlimited,
        "every secure function has `rate_limit`",
        "no `rate_limit` on",
    ));
    let audit_log = args
        .audit_log
        .as_ref()
        .map(|p| p.display().to_string())
        .filter(|p| !p.is_empty());
    let loose = audit_log
        .as_deref()
        .filter(|p| *p != "-")
        .and_then(|p| unwritable(Path::new(p)).or_else(|| crate::audit::exposure(Path::new(p))));
    items.push(match (&audit_log, loose) {
        (None, _) => item(
            "audit_log",
            "Audit log",
            Status::Fail,
            "no audit log: `serve` needs `--audit-log` or `SWAGENT_AUDIT_LOG` (give `check` the same)",
        ),
        (Some(path), Some(problem)) => item(
            "audit_log",
            "Audit log",
            Status::Fail,
            format!("`{path}` {problem}"),
        ),
        (Some(_), None) => item(
            "audit_log",
            "Audit log",
            Status::Pass,
            "the audit log is set",
        ),
    });
    items.push(confirm_store(agent, args.confirm_store.as_deref()));
    let text = prompt_text(agent);
    let data_rule = text.contains("data") && text.contains("instruction");
    let confirm_rule = text.contains("confirm");
    items.push(item(
        "prompt_boundaries",
        "Prompt sets security boundaries",
        pass_if(data_rule && confirm_rule),
        match (data_rule, confirm_rule) {
            (true, true) => "the prompt says caller speech is data, not instructions, and that actions need confirmation".to_string(),
            (false, _) => "the prompt does not say that what the caller says is data, never instructions".to_string(),
            (true, false) => "the prompt does not say that sensitive actions need the caller's confirmation".to_string(),
        },
    ));
    items.push(item(
        "literal_secrets",
        "No literal secrets in the agent file",
        Status::Pass,
        "the loader refuses literal credentials",
    ));
    items.push(match (env_file.exists(), git_tracks(env_file)) {
        (false, _) => item("env_untracked", "`.env` not tracked by git", Status::Pass, "no `.env` here"),
        (true, Some(false)) => item("env_untracked", "`.env` not tracked by git", Status::Pass, "`.env` exists and git does not track it"),
        (true, Some(true)) => item("env_untracked", "`.env` not tracked by git", Status::Fail, "git tracks `.env`: remove it (`git rm --cached .env`) and rotate every credential in it"),
        (true, None) => item("env_untracked", "`.env` not tracked by git", Status::CannotTell, "git is not available to ask"),
    });
    items.push(item(
        "alerts",
        "Alert rules",
        pass_if(!agent.alerts.is_empty()),
        if agent.alerts.is_empty() {
            "no `alerts:` in the agent file".to_string()
        } else {
            format!("{} rule(s)", agent.alerts.len())
        },
    ));
    let max_age = crate::agent::model::parse_duration(&args.max_credential_age)
        .map_err(|e| anyhow::anyhow!("`--max-credential-age`: {e}"))?;
    let from_env_file = env_file.exists()
        && std::fs::read_to_string(env_file).is_ok_and(|t| {
            t.lines().any(|l| {
                l.trim_start()
                    .trim_start_matches("export ")
                    .starts_with(PASSWORD_VAR)
            })
        });
    items.push(if from_env_file {
        let age = std::fs::metadata(env_file).and_then(|m| m.modified()).ok().and_then(|m| m.elapsed().ok());
        match age {
            Some(age) if age <= max_age => item("credential_age", "Credentials rotated recently", Status::Pass, format!("`.env` is {} days old (limit {} days)", age.as_secs() / 86400, max_age.as_secs() / 86400)),
            Some(age) => item("credential_age", "Credentials rotated recently", Status::Fail, format!("`.env` is {} days old (limit {} days): rotate with `swagent gen-creds --write .env --rotate`", age.as_secs() / 86400, max_age.as_secs() / 86400)),
            None => item("credential_age", "Credentials rotated recently", Status::CannotTell, "cannot read the age of `.env`"),
        }
    } else {
        item("credential_age", "Credentials rotated recently", Status::CannotTell, "credentials do not come from `.env` here; check their age where they are managed")
    });
    for (id, title, why) in [
        ("firewall", "Network exposure", "verify by hand that only SignalWire (and your proxy) can reach swagent's port"),
        ("log_collection", "Log collection", "verify by hand that the audit log is shipped off the host and retained"),
        ("security_review", "Security review", "verify by hand that the agent's functions and scripts had a review and a penetration test"),
    ] {
        items.push(item(id, title, Status::CannotTell, why));
    }
    Ok(items)
}

/// A verifier that binds an account keeps its lock-out, and a global rate
/// limit: guesses spread over many accounts lock none of them.
/// Why `serve` could not open the audit log at `path`, judged as `serve`
/// opens it (through links) but without creating or opening anything that
/// is not a regular file (`check` changes nothing, not even a FIFO
/// reader's end of file).
fn unwritable(path: &Path) -> Option<String> {
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => Some(
            "is not a regular file (a FIFO, socket, device or folder): `serve` refuses it".into(),
        ),
        Ok(_) => std::fs::OpenOptions::new()
            .append(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
            .err()
            .map(|e| format!("cannot be opened for writing: {e}")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // `serve` creates it, through a link where its target will be.
            let target = crate::files::resolve(path).ok()?;
            let folder = crate::files::folder_of(&target);
            (!folder.is_dir())
                .then(|| format!("is in `{}`, which is not a folder", folder.display()))
        }
        Err(e) => Some(format!("cannot be looked at: {e}")),
    }
}

fn verification_lockout(agent: &agent::Agent) -> Item {
    let (id, title) = (
        "verification_lockout",
        "Failed verifications lock the account out",
    );
    let binding: Vec<&agent::Function> = agent
        .functions
        .values()
        .filter(|f| f.verifies_caller && !f.identity.is_empty())
        .collect();
    if binding.is_empty() {
        return item(id, title, Status::Pass, "no verifier binds an account");
    }
    let mut problems = Vec::new();
    for f in binding {
        if f.max_failures.is_none() {
            problems.push(format!("`{}` has `max_failures: false`", f.name));
        }
        if f.rate_limit.global.is_none() {
            problems.push(format!(
                "`{}` has no `rate_limit.global`, so guesses spread over many accounts have no limit",
                f.name
            ));
        }
    }
    if problems.is_empty() {
        item(
            id,
            title,
            Status::Pass,
            "each verifier that binds an account counts its failures (`max_failures`) and has a global rate limit",
        )
    } else {
        item(id, title, Status::Fail, problems.join("; "))
    }
}

/// Whether a confirmation code works once everywhere: within one process
/// it always does; across replicas and restarts only with a shared folder
/// that others cannot clear.
fn confirm_store(agent: &agent::Agent, dir: Option<&Path>) -> Item {
    let (id, title) = (
        "confirm_store",
        "Confirmation codes are single use across replicas",
    );
    if !agent.functions.values().any(|f| f.confirm) {
        return item(id, title, Status::Pass, "no function needs confirmation");
    }
    let Some(dir) = dir.filter(|d| !d.as_os_str().is_empty()) else {
        return item(
            id,
            title,
            Status::CannotTell,
            "no `--confirm-store`: a code is single use within one process; with replicas or restarts inside a code's lifetime, give them one shared folder (`SWAGENT_CONFIRM_STORE`)",
        );
    };
    if !dir.is_dir() {
        return item(
            id,
            title,
            Status::Fail,
            format!(
                "`{}` is not a folder: `serve` would refuse to start",
                dir.display()
            ),
        );
    }
    match crate::guard::store_exposure(dir) {
        Some(problem) => item(
            id,
            title,
            Status::Fail,
            format!("`{}` {problem}", dir.display()),
        ),
        None => item(
            id,
            title,
            Status::Pass,
            format!("`{}` records used codes", dir.display()),
        ),
    }
}

/// A verifier whose grant holds for the whole call, though it checks
/// something named by an argument (an account, a customer number): a PIN
/// right for one account would open every other for the rest of the call.
fn verification_bound(agent: &agent::Agent) -> Item {
    let title = "Verification is bound to what was verified";
    if !agent.functions.values().any(|f| f.requires_verification) {
        return item(
            "verification_bound",
            title,
            Status::Pass,
            "no function requires verification",
        );
    }
    let mut unbound = Vec::new();
    for f in agent
        .functions
        .values()
        .filter(|f| f.verifies_caller && f.identity.is_empty())
    {
        let props = f.parameters.get("properties").and_then(Value::as_object);
        let all: Vec<(&str, bool)> = props
            .into_iter()
            .flatten()
            .map(|(name, schema)| {
                (
                    name.as_str(),
                    schema.get("sensitive") == Some(&Value::Bool(true)),
                )
            })
            .collect();
        // The secret alone (a PIN) verifies the caller. Anything beside it
        // says what the secret was checked for, sensitive or not (account
        // numbers are often marked sensitive too).
        let mut named: Vec<&str> = all.iter().filter(|(_, s)| !s).map(|(n, _)| *n).collect();
        if named.is_empty() && all.len() > 1 {
            named = all.iter().map(|(n, _)| *n).collect();
        }
        if all.is_empty() {
            unbound.push(format!(
                "`{}` declares no arguments, so nothing says what it checks, and its grant holds for the whole call",
                f.name
            ));
            continue;
        }
        if let Some(first) = named.first() {
            unbound.push(format!(
                "`{}` checks `{}` but its grant holds for the whole call (`verifies_caller: {{ binds: [{first}] }}`)",
                f.name,
                named.join("`, `")
            ));
        }
    }
    if unbound.is_empty() {
        item(
            "verification_bound",
            title,
            Status::Pass,
            "each verifier binds what it checks, or takes nothing but its secret",
        )
    } else {
        item(
            "verification_bound",
            title,
            Status::Fail,
            unbound.join("; "),
        )
    }
}

pub(super) fn run(args: &CheckArgs) -> anyhow::Result<u8> {
    if !args.production {
        anyhow::bail!("say which checklist: `--production`");
    }
    let agent = match agent::load(&args.file, LoadOptions::default()) {
        Ok((agent, _)) => agent,
        Err(e) => return Err(e.into()),
    };
    // Settings `serve` would refuse are refused here the same way: the
    // checklist judges a configuration that starts. (The password's length
    // is an item of its own.)
    crate::server::Settings::from_env(super::trust_proxy(args.trust_proxy)?, true)
        .context("`serve` would refuse these settings")?;
    let items = checklist(&agent, args)?;
    let failed = items.iter().filter(|i| i.status == Status::Fail).count();
    let out = match args.format {
        CheckFormat::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&serde_json::json!({
                "agent": agent.name,
                "passed": failed == 0,
                "items": items,
            }))?
        ),
        CheckFormat::Human => {
            let mut s = String::new();
            for i in &items {
                let mark = match i.status {
                    Status::Pass => "pass",
                    Status::Fail => "FAIL",
                    Status::CannotTell => "????",
                };
                s.push_str(&format!("[{mark}] {}: {}\n", i.title, i.why));
            }
            let unknown = items
                .iter()
                .filter(|i| i.status == Status::CannotTell)
                .count();
            s.push_str(&format!(
                "checklist: {} pass, {failed} fail, {unknown} cannot tell\n",
                items.len() - failed - unknown
            ));
            s
        }
    };
    super::print_out(&out)?;
    Ok(if failed == 0 { 0 } else { 1 })
}

//! `swagent check FILE --production`: the production hardening checklist.
//!
//! Each item is pass, fail or cannot-tell, with why. The configuration's
//! items are the findings `serve` warns of at start ([`ServeConfig::findings`]),
//! read from the environment as `serve` reads it (real environment over
//! `.env`). The agent's items are [`agent`]'s. Items that no program can
//! check from here (firewall, log shipping, reviews) are listed as
//! cannot-tell with what a person must verify; they never fail the run.

mod agent;

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::Context as _;

use crate::agent::LoadOptions;
use crate::cli::{CheckArgs, CheckFormat, ServeArgs};
use crate::config::vars::PASSWORD as PASSWORD_VAR;
use crate::config::{Finding, ServeConfig, Status};

/// `serve`'s arguments as `check` is told them: its audit log, confirmation
/// store, outbox and proxy trust. A short password is an item, not a refusal.
fn as_served(args: &CheckArgs) -> ServeArgs {
    ServeArgs {
        file: args.file.clone(),
        host: "127.0.0.1".into(),
        port: 0,
        trust_proxy: args.trust_proxy,
        allow_weak_password: true,
        tls_cert: None,
        tls_key: None,
        audit_log: args.audit_log.clone(),
        audit_required: false,
        confirm_store: args.confirm_store.clone(),
        outbox: args.outbox.clone(),
        state_file: None,
        metrics_public: false,
        production: false,
    }
}

/// The items of this host: `.env` under git, the credentials' age, and
/// what a person must verify.
fn host_items(args: &CheckArgs) -> anyhow::Result<Vec<Finding>> {
    let env_file = Path::new(".env");
    let title = "`.env` not tracked by git";
    let untracked = match (env_file.exists(), git_tracks(env_file)) {
        (false, _) => Finding::pass("env_untracked", title, "no `.env` here"),
        (true, Some(false)) => Finding::pass("env_untracked", title, "`.env` exists and git does not track it"),
        (true, Some(true)) => Finding::unless("env_untracked", title, vec!["git tracks `.env`: remove it (`git rm --cached .env`) and rotate every credential in it".into()], ""),
        (true, None) => Finding::cannot_tell("env_untracked", title, "git is not available to ask"),
    };
    let mut items = vec![
        untracked,
        credential_age(env_file, &args.max_credential_age)?,
    ];
    for (id, title, why) in [
        ("firewall", "Network exposure", "verify by hand that only SignalWire (and your proxy) can reach swagent's port"),
        ("log_collection", "Log collection", "verify by hand that the audit log is shipped off the host and retained"),
        ("security_review", "Security review", "verify by hand that the agent's functions and scripts had a review and a penetration test"),
    ] {
        items.push(Finding::cannot_tell(id, title, why));
    }
    Ok(items)
}

/// Credentials older than `max_age`, judged from the age of a `.env` that
/// sets the password.
fn credential_age(env_file: &Path, max_age: &str) -> anyhow::Result<Finding> {
    let (id, title) = ("credential_age", "Credentials rotated recently");
    let max_age = crate::agent::units::parse_duration(max_age)
        .map_err(|e| anyhow::anyhow!("`--max-credential-age`: {e}"))?;
    let from_env_file = env_file.exists()
        && std::fs::read_to_string(env_file).is_ok_and(|t| {
            t.lines().any(|l| {
                l.trim_start()
                    .trim_start_matches("export ")
                    .starts_with(PASSWORD_VAR)
            })
        });
    if !from_env_file {
        return Ok(Finding::cannot_tell(
            id,
            title,
            "credentials do not come from `.env` here; check their age where they are managed",
        ));
    }
    let age = std::fs::metadata(env_file)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|m| m.elapsed().ok());
    let days = |d: std::time::Duration| d.as_secs() / 86400;
    Ok(match age {
        Some(age) if age <= max_age => Finding::pass(id, title, format!("`.env` is {} days old (limit {} days)", days(age), days(max_age))),
        Some(age) => Finding::unless(id, title, vec![format!("`.env` is {} days old (limit {} days): rotate with `swagent gen-creds --write .env --rotate`", days(age), days(max_age))], ""),
        None => Finding::cannot_tell(id, title, "cannot read the age of `.env`"),
    })
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

pub(super) fn run(args: &CheckArgs) -> anyhow::Result<u8> {
    if !args.production {
        anyhow::bail!("say which checklist: `--production`");
    }
    let (agent, _) = crate::agent::load(&args.file, LoadOptions::default())?;
    // Settings `serve` would refuse are refused here the same way: the
    // checklist judges a configuration that starts. Its findings are the
    // very ones `serve` warns of.
    let config =
        ServeConfig::from_args(&as_served(args)).context("`serve` would refuse these settings")?;
    let mut items = config.findings(&agent);
    items.extend(agent::items(&agent));
    items.extend(host_items(args)?);
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

//! `swagent disable` and `swagent enable`: the kill switch's state file,
//! changed under its lock.

use crate::cli::SwitchArgs;
use crate::killswitch::KillState;

pub(super) fn run(args: &SwitchArgs, enable: bool) -> anyhow::Result<u8> {
    if let Some(path) = &args.agent {
        let agent = super::load_agent(path)?;
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
    super::report_done(&format!(
        "{}: {}\n",
        args.state_file.display(),
        state.describe()
    ));
    Ok(0)
}

//! `swagent serve FILE`: the agent, the configuration stage and its
//! hardening findings, the server's state, then the server.

use crate::cli::ServeArgs;
use crate::config::findings::refuse_failing;
use crate::config::ServeConfig;
use crate::server::{self, AppState};

pub(super) fn run(args: &ServeArgs) -> anyhow::Result<u8> {
    crate::logging::init();
    let agent = super::load_agent(&args.file)?;
    let config = ServeConfig::from_args(args)?;
    let findings = config.findings(&agent);
    // Before anything is opened or created: a refused start leaves no trace.
    if config.production {
        refuse_failing(&findings)?;
    }
    let (listen, audit_log) = (config.listen.clone(), config.audit_log.clone());
    let state = AppState::new(agent, config)?;
    for problem in findings
        .iter()
        .filter(|f| f.failed())
        .flat_map(|f| &f.problems)
    {
        crate::say!("swagent: WARNING: {problem}");
    }
    match state.kill.path() {
        Some(path) => {
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
    if let Some(path) = audit_log {
        crate::say!("swagent: audit log `{}`", path.display());
    }
    server::serve(state, &listen.host, listen.port)?;
    Ok(0)
}

//! Operating a running server without a restart: signals and the
//! kill-switch file watcher.
//!
//! SIGHUP re-reads the agent file through the same loader as `validate`;
//! only a valid agent replaces the running one (requests in flight finish on
//! the old one), and the audit log is reopened for logrotate. SIGUSR1
//! disables every function. The state file is polled twice a second, so a
//! change made by `swagent disable` applies within a second on every replica
//! that shares the file.

use std::time::Duration;

use actix_web::web;
use tokio::signal::unix::{signal, SignalKind};

use super::AppState;
use crate::agent::{self, LoadOptions};
use crate::audit::Event;

const POLL: Duration = Duration::from_millis(500);

/// SIGHUP and SIGUSR1, installed before the server says it is up.
pub(super) struct Signals {
    hup: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
}

impl Signals {
    pub(super) fn install() -> anyhow::Result<Signals> {
        let err = |e| anyhow::anyhow!("cannot install signal handlers: {e}");
        Ok(Signals {
            hup: signal(SignalKind::hangup()).map_err(err)?,
            usr1: signal(SignalKind::user_defined1()).map_err(err)?,
        })
    }

    pub(super) async fn handle(mut self, state: web::Data<AppState>) {
        loop {
            tokio::select! {
                _ = self.hup.recv() => reload(&state),
                _ = self.usr1.recv() => {
                    let now = state.kill.disable_all("SIGUSR1");
                    log::warn!("SIGUSR1: {}", now.describe());
                    state.refresh_disabled_gauge();
                    let _ = state.audit.record(
                        Event::new("kill_switch_changed", "applied")
                            .field("state", now.describe())
                            .field("source", "SIGUSR1"),
                    );
                }
            }
        }
    }
}

/// Reopens the audit log, then reloads the agent if its file is valid.
pub(super) fn reload(state: &AppState) {
    if let Err(e) = state.audit.reopen() {
        log::error!("SIGHUP: {e}");
    }
    let path = state.live().agent.path.clone();
    let outcome = agent::load(&path, LoadOptions::default())
        .map_err(|e| e.to_string())
        .and_then(|(agent, report)| {
            // A reload can bring in a risky line: its warnings are said as
            // at start, not lost.
            for finding in &report.findings {
                log::warn!("SIGHUP: {}", report.headline(finding));
            }
            state.replace(agent)
        });
    match outcome {
        Ok(()) => {
            log::info!("SIGHUP: reloaded `{}`", path.display());
            let _ = state.audit.record(
                Event::new("agent_reloaded", "ok").field("file", path.display().to_string()),
            );
        }
        Err(e) => {
            log::error!("SIGHUP: reload failed, the previous agent keeps serving: {e}");
            let _ = state.audit.record(
                Event::new("reload_failed", "error")
                    .field("file", path.display().to_string())
                    .field("error", e),
            );
        }
    }
}

pub(super) async fn watch_kill_switch(state: web::Data<AppState>) {
    let mut last_error: Option<String> = None;
    loop {
        tokio::time::sleep(POLL).await;
        match state.kill.poll() {
            Ok(Some(now)) => {
                last_error = None;
                log::warn!("kill switch changed: {}", now.describe());
                state.refresh_disabled_gauge();
                let _ = state.audit.record(
                    Event::new("kill_switch_changed", "applied")
                        .field("state", now.describe())
                        .field("source", "state_file"),
                );
            }
            Ok(None) => {}
            Err(e) => {
                // Once per distinct problem, not twice a second.
                if last_error.as_deref() != Some(e.as_str()) {
                    log::error!("kill switch: {e}");
                    last_error = Some(e);
                }
            }
        }
    }
}

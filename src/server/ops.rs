//! Operating a running server without a restart: signals and the
//! kill-switch file watcher.
//!
//! SIGHUP re-reads the agent file through the same loader as `validate`;
//! only a valid agent replaces the running one (requests in flight finish on
//! the old one), and the audit log is reopened for logrotate. SIGUSR1
//! disables every function. The state file is polled twice a second, so a
//! change made by `swagent disable` applies within a second on every replica
//! that shares the file. The audit log's path is checked once a second: a
//! file moved or deleted without a SIGHUP is reopened at its path.

use std::time::Duration;

use actix_web::web;
use tokio::signal::unix::{signal, SignalKind};

use super::descriptors::Budget;
use super::AppState;
use crate::agent::{self, LoadOptions};
use crate::audit::{Event, Follow, RECOVERED};

const POLL: Duration = Duration::from_millis(500);
const AUDIT_FOLLOW: Duration = Duration::from_secs(1);

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

    /// Answers signals for the life of the server; `budget` is how its
    /// descriptors were shared at start, which a reload is judged against.
    pub(super) async fn handle(mut self, state: web::Data<AppState>, budget: Budget) {
        loop {
            tokio::select! {
                _ = self.hup.recv() => {
                    // Off the server's own thread and not awaited: a file on
                    // a stalled network mount must hold up neither SIGTERM
                    // nor a SIGUSR1 sent after it.
                    let state = state.clone();
                    actix_web::rt::task::spawn_blocking(move || reload(&state, &budget));
                }
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
/// One at a time: two SIGHUPs close together never interleave.
pub(super) fn reload(state: &AppState, budget: &Budget) {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    match state.audit.reopen() {
        // As when a line, a probe or the path check brings it back: the
        // file itself says when it stopped missing lines.
        Ok(true) => {
            log::warn!("SIGHUP: the audit log is back at its path");
            let _ = state.audit.record(Event::new(RECOVERED, "ok"));
        }
        Ok(false) => {}
        Err(e) => log::error!("SIGHUP: {e}"),
    }
    let path = state.live().agent.path.clone();
    let outcome = agent::load(&path, LoadOptions::default())
        .map_err(|e| e.brief())
        .and_then(|(agent, report)| {
            // A reload can bring in a risky line: its warnings are said as
            // at start, not lost.
            for finding in &report.findings {
                log::warn!("SIGHUP: {}", report.headline(finding));
            }
            if let Some(short) = budget.shortfall(&agent) {
                log::warn!("SIGHUP: {short}");
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

/// Runs `f` on the blocking pool, as SIGHUP's reload does: a file on a
/// stalled mount must hold up neither the server's thread nor its signals.
async fn off_thread<T: Send + 'static>(
    state: &web::Data<AppState>,
    f: impl FnOnce(&AppState) -> T + Send + 'static,
) -> Option<T> {
    let state = state.clone();
    actix_web::rt::task::spawn_blocking(move || f(&state))
        .await
        .ok()
}

/// Checks once a second that the audit log's path still names the file
/// lines go to (see [`crate::audit::Audit::follow`]).
pub(super) async fn watch_audit_log(state: web::Data<AppState>) {
    loop {
        tokio::time::sleep(AUDIT_FOLLOW).await;
        let Some(found) = off_thread(&state, |s| s.audit.follow()).await else {
            continue;
        };
        match found {
            Follow::Same => {}
            Follow::Reopened => {
                log::warn!("the audit log was moved or deleted without a SIGHUP: reopened it at its path");
                let _ = state.audit.record(
                    Event::new("audit_log_reopened", "ok")
                        .field("reason", "the file at its path was not the one open"),
                );
            }
            Follow::Back => {
                log::warn!("the audit log is back at its path");
                let _ = state.audit.record(Event::new(RECOVERED, "ok"));
            }
            Follow::Failed(e) => log::error!(
                "the audit log was moved or deleted without a SIGHUP and cannot be reopened: {e}; lines go to the file it had open until its path can be opened again"
            ),
        }
    }
}

pub(super) async fn watch_kill_switch(state: web::Data<AppState>) {
    let mut last_error: Option<String> = None;
    loop {
        tokio::time::sleep(POLL).await;
        let Some(outcome) = off_thread(&state, |s| s.kill.poll()).await else {
            continue;
        };
        match outcome {
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

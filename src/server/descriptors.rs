//! How the open-file limit is shared between connections and everything
//! else swagent opens: shell handlers' pipes, http handlers' sockets, the
//! audit log, the kill switch's state file, the agent file on reload.
//!
//! Left alone, actix accepts connections until the limit is reached. Past it
//! every `accept` fails, and so does every handler that needs a pipe, on
//! connections that were open before too. Idle connections need no
//! credentials, so anyone who can reach the port could fail every call in
//! progress. Connections are therefore capped below the limit, leaving a
//! reserve that no connection can take. Past the cap, new connections wait
//! in the listen queue until one closes.

use anyhow::bail;

use crate::agent::{Agent, Handler};

/// Caps connections below what the open-file limit allows.
pub const MAX_CONNECTIONS_VAR: &str = "SWAGENT_MAX_CONNECTIONS";
/// actix's own default cap, per worker.
const ACTIX_PER_WORKER: usize = 25_000;
/// The least kept for the rest, whatever the limit.
const MIN_RESERVE: u64 = 64;
/// What a running shell handler holds: its stdout and stderr pipes and a
/// pidfd (measured on Linux 6.18 with 10 programs running).
const PER_SHELL_RUN: u64 = 3;
/// What a running http request holds: its socket (an idle pooled one is
/// reused before another is opened).
const PER_HTTP_REQUEST: u64 = 1;

/// The split, decided once at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The soft open-file limit (`ulimit -n`); `None` when unlimited.
    pub limit: Option<u64>,
    /// Descriptors kept for the rest.
    pub reserve: u64,
    /// Connections each worker accepts at most (actix counts per worker).
    pub per_worker: usize,
    pub workers: usize,
}

impl Budget {
    /// The limit as this process has it, less what is open already.
    pub fn for_this_process(workers: usize, wanted: Option<usize>) -> anyhow::Result<Budget> {
        Budget::split(open_file_limit(), open_descriptors(), workers, wanted)
    }

    /// At least a quarter of what is free, and at least [`MIN_RESERVE`], is
    /// kept; connections get the rest, or `wanted` if it is no more than that
    /// (and what they do not take is kept too).
    pub fn split(
        limit: Option<u64>,
        in_use: u64,
        workers: usize,
        wanted: Option<usize>,
    ) -> anyhow::Result<Budget> {
        let workers = workers.max(1);
        let ceiling = workers * ACTIX_PER_WORKER;
        let (least_kept, room) = match limit {
            Some(limit) => {
                let free = limit.saturating_sub(in_use);
                let least_kept = (free / 4).max(MIN_RESERVE);
                let room = usize::try_from(free.saturating_sub(least_kept)).unwrap_or(usize::MAX);
                (least_kept, room.min(ceiling))
            }
            None => (0, ceiling),
        };
        let total = match wanted {
            Some(n) if n > room => match limit {
                Some(limit) => bail!(
                    "`{MAX_CONNECTIONS_VAR}` is {n}, but the open-file limit ({limit}) leaves room for {room} connections; raise `ulimit -n` (`LimitNOFILE=` under systemd) or ask for fewer"
                ),
                None => bail!("`{MAX_CONNECTIONS_VAR}` is {n}, above the most swagent serves, {room}"),
            },
            Some(n) if n < workers => bail!(
                "`{MAX_CONNECTIONS_VAR}` must be at least {workers}, one per worker, not {n}"
            ),
            Some(n) => n,
            None => room,
        };
        if total < workers {
            let limit = limit.unwrap_or_default();
            bail!(
                "the open-file limit ({limit}) is too low to serve: {in_use} descriptors are open and {least_kept} are kept for handlers and logs, which leaves {total} for connections; raise `ulimit -n` (`LimitNOFILE=` under systemd)"
            );
        }
        let per_worker = total / workers;
        let reserve = match limit {
            Some(limit) => limit
                .saturating_sub(in_use)
                .saturating_sub((per_worker * workers) as u64),
            None => least_kept,
        };
        Ok(Budget {
            limit,
            reserve,
            per_worker,
            workers,
        })
    }

    /// Said when `agent`'s shell and http functions, all at their
    /// `concurrency`, would hold more descriptors than the reserve: past it,
    /// a program fails to start and a request fails to connect.
    pub fn shortfall(&self, agent: &Agent) -> Option<String> {
        self.limit?;
        let (mut programs, mut requests) = (0u64, 0u64);
        for f in agent.handlers() {
            match &f.handler {
                Handler::Shell(s) => programs += u64::from(s.concurrency),
                Handler::Http(h) => requests += u64::from(h.concurrency),
                Handler::Static(_) => {}
            }
        }
        let need = programs * PER_SHELL_RUN + requests * PER_HTTP_REQUEST;
        (need > self.reserve).then(|| {
            format!(
                "functions may run {programs} programs and {requests} http requests at once, which hold up to {need} descriptors, more than the {} kept beside connections; raise `ulimit -n`, lower `concurrency` or set `{MAX_CONNECTIONS_VAR}`",
                self.reserve
            )
        })
    }

    /// Connections accepted at once, over all workers.
    pub fn connections(&self) -> usize {
        self.per_worker * self.workers
    }
}

/// The soft `RLIMIT_NOFILE`; `None` when unlimited or unknown.
fn open_file_limit() -> Option<u64> {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } != 0 {
        return None;
    }
    // `rlim_t` is 32 bits wide on some 32-bit targets.
    #[allow(clippy::unnecessary_cast)]
    (rl.rlim_cur != libc::RLIM_INFINITY).then_some(rl.rlim_cur as u64)
}

/// Descriptors open now. Where `/proc/self/fd` cannot be read, a generous
/// guess: the reserve is there for what this misses.
fn open_descriptors() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(32, |dir| dir.count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quarter_of_what_is_free_is_kept() {
        let b = Budget::split(Some(1024), 24, 2, None).unwrap();
        assert_eq!((b.reserve, b.per_worker, b.connections()), (250, 375, 750));
    }

    #[test]
    fn a_low_limit_still_keeps_the_minimum() {
        let b = Budget::split(Some(128), 16, 2, None).unwrap();
        assert_eq!((b.reserve, b.connections()), (64, 48));
    }

    #[test]
    fn a_high_or_no_limit_stops_at_actix_default() {
        let b = Budget::split(Some(1 << 20), 24, 2, None).unwrap();
        assert_eq!(b.connections(), 50_000);
        let b = Budget::split(None, 24, 2, None).unwrap();
        assert_eq!((b.reserve, b.connections()), (0, 50_000));
    }

    #[test]
    fn wanted_is_taken_when_there_is_room() {
        let b = Budget::split(Some(1024), 24, 2, Some(101)).unwrap();
        assert_eq!((b.per_worker, b.connections(), b.reserve), (50, 100, 900));
    }

    #[test]
    fn wanted_beyond_the_limit_is_refused() {
        let e = Budget::split(Some(1024), 24, 2, Some(5000)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`SWAGENT_MAX_CONNECTIONS` is 5000, but the open-file limit (1024) leaves room for 750 connections; raise `ulimit -n` (`LimitNOFILE=` under systemd) or ask for fewer"
        );
        let e = Budget::split(Some(1024), 24, 2, Some(1)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "`SWAGENT_MAX_CONNECTIONS` must be at least 2, one per worker, not 1"
        );
    }

    #[test]
    fn a_limit_too_low_to_serve_is_refused() {
        let e = Budget::split(Some(70), 20, 2, None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the open-file limit (70) is too low to serve: 20 descriptors are open and 64 are kept for handlers and logs, which leaves 0 for connections; raise `ulimit -n` (`LimitNOFILE=` under systemd)"
        );
    }
}

//! The shell handler: a program started directly with its argv.
//!
//! No `sh -c`, ever: each argv element is one rendered template, so a value
//! can never become another word. The process runs in its own process group
//! with an empty environment (PATH, the allowlist, the SWAIG_* variables), so
//! swagent's secrets never reach it, and the whole group is ended on timeout,
//! on too much output, and after the program exits (a lingering background
//! child must neither hang the request nor outlive it).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::time::{timeout, Instant};

use super::{reply_from_output, HandlerError, Reply};
use crate::agent::{ShellSpec, MAX_ARG_STRLEN};
use crate::template::{value_to_text, Context, Encoding};

/// How much stderr is kept for the server log.
const STDERR_KEEP: usize = 2048;
/// Grace between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(1);

fn signal_group(pgid: u32, signal: libc::c_int) {
    // 0 would be swagent's own group.
    if pgid == 0 {
        return;
    }
    // SAFETY: killpg has no memory-safety preconditions; a stale group is ESRCH.
    unsafe {
        libc::killpg(pgid as libc::pid_t, signal);
    }
}

/// Kills the program's process group when the call is over, however it
/// ends: also when the call's future is dropped (the server stopping, or a
/// task cancelled), where `kill_on_drop` would reach the direct child only
/// and leave its children running, orphaned.
struct GroupGuard(u32);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        signal_group(self.0, libc::SIGKILL);
    }
}

/// Reads at most `keep` bytes and drains the rest. Returns what was kept and
/// whether more was offered. With `stop_on_overflow` it returns as soon as the
/// limit is passed, so the caller can kill the producer.
async fn read_limited<R: AsyncRead + Unpin>(
    mut r: R,
    keep: usize,
    stop_on_overflow: bool,
) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let mut overflow = false;
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = keep.saturating_sub(out.len());
                out.extend_from_slice(&buf[..n.min(room)]);
                if n > room {
                    overflow = true;
                    if stop_on_overflow {
                        break;
                    }
                }
            }
        }
    }
    (out, overflow)
}

/// Marks every descriptor this process was started with, past stdin,
/// stdout and stderr, close-on-exec. Those swagent opens are already; one it
/// inherited (a supervisor's pipe, a wrapper's log) would otherwise reach
/// every program a shell handler runs. Once, before anything is spawned.
pub fn seal_inherited_descriptors() {
    // SAFETY: with CLOSE_RANGE_CLOEXEC, close_range only sets a flag on the
    // descriptors in the range; it closes none and touches no memory.
    let sealed = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    } == 0;
    if sealed {
        return;
    }
    // Before Linux 5.11: one at a time, as `/proc` lists them.
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        crate::say!("swagent: WARNING: cannot mark inherited descriptors close-on-exec (no `close_range`, no `/proc/self/fd`); programs run by shell handlers may inherit them");
        return;
    };
    let fds: Vec<libc::c_int> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: fcntl on a descriptor number touches no memory; one that
        // is no longer open (the listing's own) fails with EBADF.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
}

/// The command line, each argument rendered from its template. One that no
/// `exec` can carry is said here, naming it: the spawn error would blame
/// the program.
fn argv(function: &str, spec: &ShellSpec, ctx: &Context<'_>) -> Result<Vec<String>, HandlerError> {
    let argv = spec
        .args
        .iter()
        .map(|t| t.render(ctx, Encoding::Text))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| HandlerError::render(function, e))?;
    for (i, arg) in argv.iter().enumerate() {
        let why = if arg.contains('\0') {
            "holds a NUL byte, which no argument can carry".to_owned()
        } else if arg.len() >= MAX_ARG_STRLEN {
            format!(
                "would be {} bytes, and an argument may hold at most {}; \
                 a long value is better read from the JSON on stdin",
                arg.len(),
                MAX_ARG_STRLEN - 1
            )
        } else {
            continue;
        };
        return Err(HandlerError::failed(
            function,
            format!("argument {} of `{}` {why}", i + 1, spec.program.display()),
        ));
    }
    Ok(argv)
}

/// The program with its arguments, in its own process group, with nothing
/// of swagent's environment but `PATH`, the variables `env` names and the
/// call's own (`SWAIG_*`).
fn command(
    dir: &Path,
    function: &str,
    spec: &ShellSpec,
    ctx: &Context<'_>,
    argv: &[String],
) -> Command {
    let mut cmd = Command::new(&spec.program);
    cmd.args(argv)
        .current_dir(dir)
        .env_clear()
        .env(
            "PATH",
            std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into()),
        )
        .env("SWAIG_FUNCTION", function)
        .env("SWAIG_CALL_ID", ctx.call_id)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for name in &spec.env {
        if let Some(v) = std::env::var_os(name) {
            cmd.env(name, v);
        }
    }
    // A value with a NUL, or too long for one variable, would make the spawn
    // fail, for a program that may not even read it: such a value is on
    // stdin only, where every argument is, as JSON.
    for (arg, var) in &spec.arg_env {
        if let Some(v) = ctx.args.get(arg) {
            let value = value_to_text(v);
            if var.len() + 1 + value.len() < MAX_ARG_STRLEN && !value.contains('\0') {
                cmd.env(var, value);
            }
        }
    }
    cmd
}

pub(super) async fn run(
    dir: &Path,
    function: &str,
    spec: &ShellSpec,
    ctx: &Context<'_>,
) -> Result<Reply, HandlerError> {
    let argv = argv(function, spec, ctx)?;
    let mut cmd = command(dir, function, spec, ctx, &argv);
    let mut child = cmd.spawn().map_err(|e| {
        HandlerError::failed(
            function,
            format!("cannot start `{}`: {e}", spec.program.display()),
        )
    })?;
    let pgid = child.id().unwrap_or(0);
    let _group = GroupGuard(pgid);

    let stdin_json = serde_json::to_vec(ctx.args).unwrap_or_default();
    if let Some(mut stdin) = child.stdin.take() {
        // A program that ignores stdin closes the pipe; that is not an error.
        tokio::spawn(async move {
            let _ = stdin.write_all(&stdin_json).await;
        });
    }
    let max = usize::try_from(spec.max_output).unwrap_or(usize::MAX);
    let mut out_task = tokio::spawn(read_limited(child.stdout.take().expect("piped"), max, true));
    let err_task = tokio::spawn(read_limited(
        child.stderr.take().expect("piped"),
        STDERR_KEEP,
        false,
    ));

    let deadline = Instant::now() + spec.timeout;
    let mut out: Option<Vec<u8>> = None;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            r = &mut out_task, if out.is_none() => {
                let (bytes, overflow) = r.unwrap_or_default();
                if overflow {
                    signal_group(pgid, libc::SIGKILL);
                    let _ = child.wait().await;
                    return Err(HandlerError::failed(
                        function,
                        format!("output exceeded `max_output` ({} bytes); process killed", spec.max_output),
                    ));
                }
                out = Some(bytes);
            }
            _ = tokio::time::sleep_until(deadline) => {
                signal_group(pgid, libc::SIGTERM);
                if timeout(GRACE, child.wait()).await.is_err() {
                    signal_group(pgid, libc::SIGKILL);
                    let _ = child.wait().await;
                }
                signal_group(pgid, libc::SIGKILL);
                return Err(HandlerError::timed_out(function, spec.timeout));
            }
        }
    };
    // Whatever the program left running in its group goes with it; that also
    // closes any pipe a background child was holding open.
    signal_group(pgid, libc::SIGKILL);
    let status = status.map_err(|e| HandlerError::failed(function, format!("wait failed: {e}")))?;
    let out = match out {
        Some(o) => o,
        None => match timeout(GRACE, out_task).await {
            Ok(Ok((bytes, false))) => bytes,
            Ok(Ok((_, true))) => {
                return Err(HandlerError::failed(
                    function,
                    format!("output exceeded `max_output` ({} bytes)", spec.max_output),
                ))
            }
            _ => Vec::new(),
        },
    };
    // Exit status 1 with a `response` on stdout is the program's refusal,
    // in words the caller should hear.
    if status.code() == Some(1) {
        if let Some(reply) = super::refusal(&out) {
            return Ok(reply);
        }
    }
    if !status.success() {
        let (stderr, _) = timeout(GRACE, err_task)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        return Err(HandlerError::failed(
            function,
            format!(
                "exited with {status}; stderr: {}",
                String::from_utf8_lossy(&stderr).trim()
            ),
        ));
    }
    let text = String::from_utf8_lossy(&out);
    Ok(Reply {
        data: super::json_object(&text),
        ..reply_from_output(&text)
    })
}

//! The audit log: one JSON object per line, for security events.
//!
//! Lines are written whole under a mutex with one `write` each, straight to
//! the file (no userspace buffer), so they reach the OS before the response is
//! sent and never interleave between workers; a line a full disk cut short is
//! taken back. SIGHUP reopens the file for
//! logrotate, and a file moved or deleted without one is noticed within a
//! second ([`Audit::follow`]). What is never written is decided by the callers' types: no
//! field here takes a password, secret, key, whole token or header.

use std::fs::File;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use serde_json::{Map, Value};

mod redact;

pub use redact::{logged_arguments, redact, unredacted_markers};

/// Where audit lines go.
enum Sink {
    Off,
    Stdout,
    File(File),
}

/// The audit log of one server.
pub struct Audit {
    sink: Mutex<Sink>,
    /// The sink is not `Off`; read on every request without the lock.
    on: bool,
    path: Option<PathBuf>,
    agent: Mutex<String>,
    /// With `--audit-required`, a failed write makes the server refuse requests.
    required: bool,
    healthy: AtomicBool,
    /// A reopen failed: lines still go to the file that was open, which is
    /// no longer the one at `path` (rotated or deleted), so the log counts
    /// as failing, and each line tries the reopen again.
    stale: AtomicBool,
}

/// The event that says a failing log works again.
pub const RECOVERED: &str = "audit_recovered";

/// What [`Audit::follow`] found.
#[derive(Debug)]
pub enum Follow {
    /// Lines go to the file at the path (or the log is not a file).
    Same,
    /// The file had been moved or deleted; a new one is open at the path.
    Reopened,
    /// It had been moved or deleted, and the path cannot be opened: lines
    /// go to the old file, and the log counts as failing.
    Failed(AuditError),
    /// A path that could not be opened before can be now.
    Back,
}

/// Why an audit line could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the audit log `{path}`: {source}")]
pub struct AuditError {
    path: String,
    source: std::io::Error,
}

/// One audit event. Build with [`Event::new`] and the setters.
#[derive(Debug, Default)]
pub struct Event {
    event: &'static str,
    call_id: Option<String>,
    function: Option<String>,
    client_ip: Option<IpAddr>,
    outcome: &'static str,
    duration_ms: Option<u64>,
    fields: Map<String, Value>,
}

impl Event {
    pub fn new(event: &'static str, outcome: &'static str) -> Event {
        Event {
            event,
            outcome,
            ..Event::default()
        }
    }

    pub fn call(mut self, call_id: Option<&str>) -> Event {
        self.call_id = call_id.map(str::to_owned);
        self
    }

    pub fn function(mut self, function: &str) -> Event {
        self.function = Some(function.to_owned());
        self
    }

    pub fn client(mut self, ip: Option<IpAddr>) -> Event {
        self.client_ip = ip;
        self
    }

    pub fn duration(mut self, d: std::time::Duration) -> Event {
        self.duration_ms = Some(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self
    }

    pub fn field(mut self, k: &str, v: impl Into<Value>) -> Event {
        self.fields.insert(k.to_owned(), v.into());
        self
    }

    /// The event name (`auth_failed`, ...).
    pub fn name(&self) -> &'static str {
        self.event
    }

    /// `name` for `function` in call `id`, for a log line about this event.
    pub fn describe(&self) -> String {
        let mut said = format!("`{}`", self.event);
        if let Some(f) = &self.function {
            said.push_str(&format!(" for `{f}`"));
        }
        if let Some(c) = &self.call_id {
            said.push_str(&format!(" in call `{}`", crate::text::printable(c)));
        }
        said
    }
}

impl Audit {
    /// No audit log.
    pub fn off() -> Audit {
        Audit {
            sink: Mutex::new(Sink::Off),
            on: false,
            path: None,
            agent: Mutex::new(String::new()),
            required: false,
            healthy: AtomicBool::new(true),
            stale: AtomicBool::new(false),
        }
    }

    /// Opens `path` for appending (mode 0600 when created), or stdout for `-`.
    pub fn open(path: &Path, agent: &str, required: bool) -> std::io::Result<Audit> {
        let (sink, path) = if path == Path::new("-") {
            (Sink::Stdout, None)
        } else {
            (
                Sink::File(crate::files::open_append(path)?),
                Some(path.to_path_buf()),
            )
        };
        Ok(Audit {
            sink: Mutex::new(sink),
            on: true,
            path,
            agent: Mutex::new(agent.to_owned()),
            required,
            healthy: AtomicBool::new(true),
            stale: AtomicBool::new(false),
        })
    }

    /// True when audit lines are written somewhere (fixed when opened:
    /// a reopen replaces a file with a file).
    pub fn enabled(&self) -> bool {
        self.on
    }

    /// The log's file (`None`: off or stdout).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// True with `--audit-required`.
    pub fn required(&self) -> bool {
        self.required
    }

    /// With `--audit-required`: false once a write failed (until one succeeds).
    pub fn accepting(&self) -> bool {
        !self.required || self.healthy.load(Ordering::Relaxed)
    }

    /// Renames the agent in later lines (after a reload).
    pub fn set_agent(&self, agent: &str) {
        *self.agent.lock().unwrap_or_else(|e| e.into_inner()) = agent.to_owned();
    }

    /// Reopens the file (SIGHUP), so a rotated file is let go. True when
    /// the log was failing before: the caller says it is back, in the file.
    pub fn reopen(&self) -> Result<bool, AuditError> {
        let Some(path) = &self.path else {
            return Ok(false);
        };
        let file = crate::files::open_append(path).map_err(|source| {
            self.stale.store(true, Ordering::Relaxed);
            self.fail(source)
        })?;
        *self.sink.lock().unwrap_or_else(|e| e.into_inner()) = Sink::File(file);
        let was_stale = self.stale.swap(false, Ordering::Relaxed);
        let was_healthy = self.healthy.swap(true, Ordering::Relaxed);
        Ok(was_stale || !was_healthy)
    }

    /// Whether lines still go to the file at the log's path. A file moved
    /// away or deleted without a SIGHUP (logrotate without `postrotate`, a
    /// clean-up by hand) would otherwise take every line until the next
    /// SIGHUP, unseen; it is reopened at its path instead.
    pub fn follow(&self) -> Follow {
        use std::os::unix::fs::MetadataExt as _;
        let Some(path) = &self.path else {
            return Follow::Same;
        };
        let stale = self.stale.load(Ordering::Relaxed);
        if !stale {
            let sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
            let Sink::File(open) = &*sink else {
                return Follow::Same;
            };
            let id = |m: std::fs::Metadata| (m.dev(), m.ino());
            let open = open.metadata().map(id);
            // `stat` outside the lock: a stalled mount must not hold up lines.
            drop(sink);
            if let (Ok(open), Ok(there)) = (open, std::fs::metadata(path).map(id)) {
                if open == there {
                    return Follow::Same;
                }
            }
        }
        match self.reopen() {
            Ok(_) if stale => Follow::Back,
            Ok(_) => Follow::Reopened,
            Err(_) if stale => Follow::Same,
            Err(e) => Follow::Failed(e),
        }
    }

    /// One event as one JSON line, with its newline.
    fn line(&self, e: Event) -> Vec<u8> {
        let mut line = Map::new();
        line.insert(
            "ts".into(),
            Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        );
        line.insert("event".into(), Value::String(e.event.into()));
        line.insert(
            "agent".into(),
            Value::String(self.agent.lock().unwrap_or_else(|e| e.into_inner()).clone()),
        );
        line.insert(
            "call_id".into(),
            e.call_id.map_or(Value::Null, Value::String),
        );
        line.insert(
            "function".into(),
            e.function.map_or(Value::Null, Value::String),
        );
        line.insert(
            "client_ip".into(),
            e.client_ip
                .map_or(Value::Null, |ip| Value::String(ip.to_string())),
        );
        line.insert("outcome".into(), Value::String(e.outcome.into()));
        line.insert(
            "duration_ms".into(),
            e.duration_ms.map_or(Value::Null, Value::from),
        );
        for (k, v) in e.fields {
            line.entry(k).or_insert(v);
        }
        let mut text = serde_json::to_string(&Value::Object(line)).unwrap_or_default();
        // Valid JSON either way, but readers that split lines the way
        // Unicode does (Python's `splitlines`, many editors) would see a
        // caller's U+2028 as the end of a record.
        if text.contains(['\u{85}', '\u{2028}', '\u{2029}']) {
            text = text
                .replace('\u{85}', "\\u0085")
                .replace('\u{2028}', "\\u2028")
                .replace('\u{2029}', "\\u2029");
        }
        let mut bytes = text.into_bytes();
        bytes.push(b'\n');
        bytes
    }

    fn fail(&self, source: std::io::Error) -> AuditError {
        self.healthy.store(false, Ordering::Relaxed);
        AuditError {
            path: self
                .path
                .as_ref()
                .map_or_else(|| "-".into(), |p| p.display().to_string()),
            source,
        }
    }

    /// Writes one event as one line. A failure is logged loudly; the caller
    /// decides whether to go on (see [`Audit::accepting`]).
    pub fn record(&self, e: Event) -> Result<(), AuditError> {
        if !self.on {
            return Ok(());
        }
        // Outside the lock: an open on a stalled mount must not hold up
        // every other line.
        let reopened = if self.stale.load(Ordering::Relaxed) {
            self.path
                .as_deref()
                .and_then(|p| crate::files::open_append(p).ok())
        } else {
            None
        };
        let mut sink = self.sink.lock().unwrap_or_else(|e| e.into_inner());
        let mut bytes = Vec::new();
        if let Some(file) = reopened {
            *sink = Sink::File(file);
            self.stale.store(false, Ordering::Relaxed);
            log::warn!("the audit log is back at its path");
            // Whichever line brings the log back, the file says so, as it
            // does when a probe or the path check brings it back.
            if e.event != RECOVERED {
                bytes = self.line(Event::new(RECOVERED, "ok"));
            }
        }
        bytes.extend(self.line(e));
        let result = match &mut *sink {
            Sink::Off => Ok(()),
            Sink::Stdout => std::io::stdout().lock().write_all(&bytes),
            Sink::File(f) => append_line(f, &bytes),
        };
        drop(sink);
        match result {
            // Kept, but not where the operator looks for it.
            Ok(()) if self.stale.load(Ordering::Relaxed) => Err(self.fail(std::io::Error::other(
                "it could not be reopened at its path, so lines go to the file it had open",
            ))),
            Ok(()) => {
                self.healthy.store(true, Ordering::Relaxed);
                Ok(())
            }
            Err(source) => {
                let err = self.fail(source);
                log::error!("AUDIT LOG WRITE FAILED, events are being lost: {err}");
                Err(err)
            }
        }
    }
}

/// Appends one line, or nothing: on a full disk a write can be short, and the
/// part written is taken back, so that the file stays one JSON object per
/// line and the next line written does not join a torn one.
fn append_line(f: &mut File, line: &[u8]) -> std::io::Result<()> {
    let mut written = 0;
    let error = loop {
        if written == line.len() {
            return Ok(());
        }
        match f.write(&line[written..]) {
            Ok(0) => break std::io::Error::from(std::io::ErrorKind::WriteZero),
            Ok(n) => written += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break e,
        }
    };
    if written > 0 {
        let end = f.metadata()?.len();
        f.set_len(end.saturating_sub(written as u64))?;
    }
    Err(error)
}

/// What lets others on the host tamper with the audit log at `path`, said
/// after "the audit log" or its path: a file group or others may write
/// (forged lines), or a folder others may write without the sticky bit
/// (the file, or a link to it, replaced; also before the file exists).
pub fn exposure(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &Path| Some(std::fs::metadata(p).ok()?.permissions().mode() & 0o7777);
    if let Some(m) = mode(path).filter(|m| m & 0o022 != 0) {
        return Some(format!(
            "has mode {m:04o}: others on this host can add forged lines (`chmod 600` it)"
        ));
    }
    // The folder of the path as given (where a link, or the file still to
    // be created, sits) and the folder of the file a link leads to.
    let given = path.parent().map(|p| {
        if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        }
    });
    let folders = [
        given.and_then(|p| std::fs::canonicalize(p).ok()),
        std::fs::canonicalize(path)
            .ok()
            .and_then(|real| real.parent().map(Path::to_path_buf)),
    ];
    folders.into_iter().flatten().find_map(|folder| {
        let m = mode(&folder).filter(|m| m & 0o002 != 0 && m & 0o1000 == 0)?;
        Some(format!(
            "is in `{}`, mode {m:04o}: anyone on this host can replace it (`chmod o-w` the folder)",
            folder.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::{Audit, Event};
    use serde_json::Value;

    #[test]
    fn writes_whole_lines_with_the_fixed_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::open(&path, "bank", false).unwrap();
        audit
            .record(Event::new("auth_failed", "denied").field("reason", "mismatch"))
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let line: Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(line["event"], "auth_failed");
        assert_eq!(line["agent"], "bank");
        assert_eq!(line["outcome"], "denied");
        assert_eq!(line["reason"], "mismatch");
        assert_eq!(line["call_id"], Value::Null);
        assert!(line["ts"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn unicode_line_breaks_in_values_are_escaped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let audit = Audit::open(&path, "bank", false).unwrap();
        let said = "a\u{2028}{\"event\":\"x\"}\u{85}b\u{2029}c";
        audit
            .record(Event::new("function_called", "ok").field("note", said))
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert_eq!(
            text.chars()
                .filter(|c| ['\u{85}', '\u{2028}', '\u{2029}'].contains(c))
                .count(),
            0,
            "{text}"
        );
        assert!(
            text.contains(r#""note":"a\u2028{\"event\":\"x\"}\u0085b\u2029c""#),
            "{text}"
        );
        let line: Value = serde_json::from_str(text.trim_end()).unwrap();
        assert_eq!(line["note"], said);
    }
}

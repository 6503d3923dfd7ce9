//! The emergency kill switch: which functions are disabled, from a small
//! state file that `swagent disable`/`enable` write and `serve` watches.
//!
//! The file is JSON, replaced atomically (write then rename), so a reader
//! never sees half of it and replicas that share its volume converge within
//! one poll. A disabled function is never run; the agent still talks.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

/// The state file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillState {
    /// Every function is disabled.
    #[serde(default)]
    pub all: bool,
    /// These functions are disabled.
    #[serde(default)]
    pub disabled: BTreeSet<String>,
    /// When and by whom it was last changed (informational).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
}

impl KillState {
    /// True when `function` must not run.
    pub fn is_disabled(&self, function: &str) -> bool {
        self.all || self.disabled.contains(function)
    }

    /// Reads the file; a missing file means nothing is disabled.
    pub fn read(path: &Path) -> anyhow::Result<KillState> {
        Self::from_bytes(path, read_state(path)?.as_deref())
    }

    /// The state in `bytes` read from `path` (`None`: no file there). An
    /// empty file is refused like any that does not parse: servers keep
    /// the state they had before it emptied, and a reader that took it as
    /// "nothing disabled" (a restart, `call`, a change to one function)
    /// would turn back on what they still refuse.
    fn from_bytes(path: &Path, bytes: Option<&[u8]>) -> anyhow::Result<KillState> {
        match bytes {
            Some(b) => Self::parse(b).map_err(|e| {
                anyhow::anyhow!("`{}` is not a kill-switch state file: {e}", path.display())
            }),
            None => Ok(KillState::default()),
        }
    }

    /// The content as written by [`KillState::write`]. An empty file is not
    /// one: the writer never leaves one, so a file that became empty was
    /// truncated by something else, and must not turn every function back on.
    fn parse(bytes: &[u8]) -> Result<KillState, String> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err("it is empty (`swagent enable --all` enables everything)".into());
        }
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }

    /// Reads, changes and replaces the file under an exclusive lock on
    /// `{path}.lock`: two `disable`s at once each read the file before the
    /// other wrote it, and one change was lost (a function meant to be off
    /// stayed on). The lock is released when its file closes.
    ///
    /// A change that sets the whole state (`--all`) does not need the old
    /// one: when the file does not parse, it is copied aside (the copy's
    /// path is returned) and replaced, because `disable --all` in an
    /// incident must not fail on a file someone broke.
    pub fn update(
        path: &Path,
        whole: bool,
        change: impl FnOnce(&mut KillState),
    ) -> anyhow::Result<(KillState, Option<PathBuf>)> {
        // The real file's lock: a replica given the file by another name
        // (a symlink) takes the same one.
        let real = crate::files::resolve(path)
            .map_err(|e| anyhow::anyhow!("cannot resolve `{}`: {e}", path.display()))?;
        // The lock is made beside the real file: as root, only where no
        // other user chooses where that is.
        crate::files::root_may_write(path, &real)
            .map_err(|e| anyhow::anyhow!("cannot change `{}`: {e}", path.display()))?;
        let mut name = real.into_os_string();
        name.push(".lock");
        let lock_path = PathBuf::from(name);
        let lock = crate::files::open_lock(&lock_path).map_err(|e| {
            use std::os::unix::fs::MetadataExt as _;
            // Made by another user (root, before the service ran): say whose.
            let whose = std::fs::symlink_metadata(&lock_path)
                .ok()
                .filter(|_| e.kind() == std::io::ErrorKind::PermissionDenied)
                .map(|m| format!(" (it belongs to uid {}: remove it, or give it to the user the servers run as)", m.uid()))
                .unwrap_or_default();
            anyhow::anyhow!("cannot open `{}`: {e}{whose}", lock_path.display())
        })?;
        lock_within(&lock, LOCK_WAIT)
            .map_err(|e| anyhow::anyhow!("cannot lock `{}`: {e}", lock_path.display()))?;
        let mut kept = None;
        let bytes = read_state(path)?;
        let mut state = match Self::from_bytes(path, bytes.as_deref()) {
            Ok(state) => state,
            Err(e) if !whole => {
                return Err(anyhow::anyhow!(
                    "{e:#}; a change to one function needs the state it changes, and `--all` replaces the file (keeping a copy)"
                ))
            }
            Err(e) => {
                // Only a file that is there can fail to parse.
                let bytes = bytes.unwrap_or_default();
                let mut name = path.as_os_str().to_owned();
                name.push(format!(".unreadable-{}", crate::random::hex(4)));
                // Private: the file a link named may have been anyone's.
                let copy = crate::files::replace(Path::new(&name), &bytes, 0o600)
                    .map_err(|c| anyhow::anyhow!("{e:#}; and cannot keep a copy of it: {c}"))?;
                kept = Some(copy);
                KillState::default()
            }
        };
        change(&mut state);
        state.write(path)?;
        Ok((state, kept))
    }

    /// Writes the file atomically (temp file in the same folder, then
    /// rename), through a symlink to the file it names.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        crate::files::replace(path, text.as_bytes(), 0o644)
            .map(drop)
            .map_err(|e| anyhow::anyhow!("cannot replace `{}`: {e}", path.display()))
    }

    /// A one-line description for logs and the audit log.
    pub fn describe(&self) -> String {
        match (self.all, self.disabled.is_empty()) {
            (true, _) => "all functions disabled".into(),
            (false, true) => "all functions enabled".into(),
            (false, false) => format!(
                "disabled: {}",
                self.disabled.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

/// The largest state file read: a list of every function of a big agent
/// fits many times over, and a link to `/dev/zero` is refused.
const MAX_STATE_FILE: u64 = 1024 * 1024;

/// How long `disable`/`enable` wait for another one's lock. A change
/// takes milliseconds; a lock held longer is a stuck process, and an
/// operator in an incident is better told so than left waiting.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Takes an exclusive `flock` on `file`, waiting at most `wait`.
fn lock_within(file: &std::fs::File, wait: std::time::Duration) -> std::io::Result<()> {
    use std::os::fd::AsRawFd as _;
    let deadline = std::time::Instant::now() + wait;
    loop {
        // SAFETY: flock on a descriptor the caller owns; no memory-safety
        // preconditions.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(e);
        }
        if std::time::Instant::now() >= deadline {
            return Err(std::io::Error::other(format!(
                "another process has held it for {} s (a `swagent disable` or `enable` that is stuck?)",
                wait.as_secs()
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The file's bytes, `None` when it does not exist.
fn read_state(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    match crate::files::read_regular(path, MAX_STATE_FILE) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::anyhow!("cannot read `{}`: {e}", path.display())),
    }
}

/// The live kill switch of a server.
pub struct KillSwitch {
    state: ArcSwap<KillState>,
    path: Option<PathBuf>,
    last_seen: Mutex<Option<Vec<u8>>>,
}

impl KillSwitch {
    /// A switch with nothing disabled and no file.
    pub fn off() -> KillSwitch {
        KillSwitch {
            state: ArcSwap::from_pointee(KillState::default()),
            path: None,
            last_seen: Mutex::new(None),
        }
    }

    /// Starts from the file's current content.
    pub fn from_file(path: &Path) -> anyhow::Result<KillSwitch> {
        let last = read_state(path)?;
        let state = KillState::from_bytes(path, last.as_deref())?;
        Ok(KillSwitch {
            state: ArcSwap::from_pointee(state),
            path: Some(path.to_path_buf()),
            last_seen: Mutex::new(last),
        })
    }

    /// The current state.
    pub fn current(&self) -> Arc<KillState> {
        self.state.load_full()
    }

    /// The watched file, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Re-reads the file when its bytes changed. Returns the new state when it
    /// changed; a file that does not parse keeps the current state (and says so).
    pub fn poll(&self) -> Result<Option<Arc<KillState>>, String> {
        let Some(path) = &self.path else {
            return Ok(None);
        };
        let bytes = read_state(path).map_err(|e| e.to_string())?;
        let mut last = self.last_seen.lock().unwrap_or_else(|e| e.into_inner());
        if *last == bytes {
            return Ok(None);
        }
        let parsed = match &bytes {
            Some(b) => KillState::parse(b).map_err(|e| {
                format!(
                    "`{}` does not parse, keeping the current state: {e}",
                    path.display()
                )
            }),
            None => Ok(KillState::default()),
        };
        *last = bytes;
        let state = parsed?;
        if *self.state.load_full() == state {
            return Ok(None);
        }
        let state = Arc::new(state);
        self.state.store(state.clone());
        Ok(Some(state))
    }

    /// Disables everything at once (SIGUSR1), in memory and in the file if
    /// there is one, so `swagent enable --all` is how it is undone.
    pub fn disable_all(&self, by: &str) -> Arc<KillState> {
        let all = |state: &mut KillState| {
            state.all = true;
            state.updated_at =
                Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            state.updated_by = Some(by.to_owned());
        };
        let mut state = (*self.current()).clone();
        all(&mut state);
        if let Some(path) = &self.path {
            // Under the file's lock, from the file: a `disable` of the last
            // moment, not yet polled, is kept.
            match KillState::update(path, true, all) {
                Ok((written, kept)) => {
                    if let Some(kept) = kept {
                        log::warn!(
                            "kill switch: `{}` did not parse; replaced, with a copy kept at `{}`",
                            path.display(),
                            kept.display()
                        );
                    }
                    state = written;
                    *self.last_seen.lock().unwrap_or_else(|e| e.into_inner()) =
                        read_state(path).ok().flatten();
                }
                Err(e) => log::error!(
                    "kill switch: {e:#}; all functions are disabled in this process only"
                ),
            }
        }
        let state = Arc::new(state);
        self.state.store(state.clone());
        state
    }
}

#[cfg(test)]
mod tests {
    use super::{KillState, KillSwitch};

    #[test]
    fn poll_picks_up_changes_and_keeps_state_on_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let ks = KillSwitch::from_file(&path).unwrap();
        assert!(!ks.current().is_disabled("f"));
        let mut s = KillState::default();
        s.disabled.insert("f".into());
        s.write(&path).unwrap();
        assert!(ks.poll().unwrap().is_some());
        assert!(ks.current().is_disabled("f"));
        assert!(ks.poll().unwrap().is_none());
        for garbage in ["{not json", "", "\n\n"] {
            std::fs::write(&path, garbage).unwrap();
            assert!(ks.poll().is_err(), "{garbage:?}");
            assert!(
                ks.current().is_disabled("f"),
                "{garbage:?} keeps the last good state"
            );
        }
        std::fs::remove_file(&path).unwrap();
        assert!(ks.poll().unwrap().is_some());
        assert!(!ks.current().is_disabled("f"));
    }
}

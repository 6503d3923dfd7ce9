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
        match std::fs::read(path) {
            Ok(bytes) => Self::parse(&bytes).map_err(|e| {
                anyhow::anyhow!("`{}` is not a kill-switch state file: {e}", path.display())
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KillState::default()),
            Err(e) => Err(anyhow::anyhow!("cannot read `{}`: {e}", path.display())),
        }
    }

    fn parse(bytes: &[u8]) -> Result<KillState, serde_json::Error> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(KillState::default());
        }
        serde_json::from_slice(bytes)
    }

    /// Reads, changes and replaces the file under an exclusive lock on
    /// `{path}.lock`: two `disable`s at once each read the file before the
    /// other wrote it, and one change was lost (a function meant to be off
    /// stayed on). The lock is released when its file closes.
    pub fn update(path: &Path, change: impl FnOnce(&mut KillState)) -> anyhow::Result<KillState> {
        use std::os::fd::AsRawFd as _;
        let mut name = path.as_os_str().to_owned();
        name.push(".lock");
        let lock_path = PathBuf::from(name);
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| anyhow::anyhow!("cannot open `{}`: {e}", lock_path.display()))?;
        // SAFETY: flock on a descriptor this function owns; no memory-safety
        // preconditions.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            let e = std::io::Error::last_os_error();
            anyhow::bail!("cannot lock `{}`: {e}", lock_path.display());
        }
        let mut state = KillState::read(path)?;
        change(&mut state);
        state.write(path)?;
        Ok(state)
    }

    /// Writes the file atomically (temp file in the same folder, then rename).
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = dir.join(format!(".swagent-state-{}", crate::token::random_hex(6)));
        let mut text = serde_json::to_string_pretty(self)?;
        text.push('\n');
        std::fs::write(&tmp, text)
            .map_err(|e| anyhow::anyhow!("cannot write `{}`: {e}", tmp.display()))?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            anyhow::anyhow!("cannot replace `{}`: {e}", path.display())
        })
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
        let state = KillState::read(path)?;
        let last = std::fs::read(path).ok();
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
        let bytes = match std::fs::read(path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("cannot read `{}`: {e}", path.display())),
        };
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
            match KillState::update(path, all) {
                Ok(written) => {
                    state = written;
                    *self.last_seen.lock().unwrap_or_else(|e| e.into_inner()) =
                        std::fs::read(path).ok();
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
        std::fs::write(&path, "{not json").unwrap();
        assert!(ks.poll().is_err());
        assert!(
            ks.current().is_disabled("f"),
            "garbage keeps the last good state"
        );
        std::fs::remove_file(&path).unwrap();
        assert!(ks.poll().unwrap().is_some());
        assert!(!ks.current().is_disabled("f"));
    }
}

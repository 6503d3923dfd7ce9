//! The outbox as a folder: `pending/` holds what waits for delivery,
//! `dead/` what was given up on, one JSON file per summary. A file is
//! written whole in `tmp/`, synced, then renamed into place and the folder
//! synced, so an entry `put` returned for survives a crash, and a reader
//! never sees half of one.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use super::{now_ms, Dead, Entry, Listed, Store, StoreError};

/// An outbox folder.
pub struct Files {
    root: PathBuf,
}

const PENDING: &str = "pending";
const DEAD: &str = "dead";
const TMP: &str = "tmp";

impl Files {
    /// The outbox in `root`, made (with its sub-folders, mode 0700) when
    /// missing. Checked writable now, not by the first summary.
    pub fn open(root: &Path) -> Result<Files, StoreError> {
        let files = Files {
            root: root.to_path_buf(),
        };
        for sub in [PENDING, DEAD, TMP] {
            let dir = root.join(sub);
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| files.io(&dir, e))?;
        }
        let probe = root
            .join(TMP)
            .join(format!(".probe-{}", crate::random::hex(6)));
        File::create(&probe).map_err(|e| files.io(&probe, e))?;
        let _ = std::fs::remove_file(&probe);
        Ok(files)
    }

    /// The outbox in `root`, which must be one already: an operator's
    /// command never makes a folder where a path was mistyped.
    pub fn existing(root: &Path) -> Result<Files, StoreError> {
        let files = Files {
            root: root.to_path_buf(),
        };
        for sub in [PENDING, DEAD, TMP] {
            let dir = root.join(sub);
            if !dir.is_dir() {
                return Err(StoreError::NotAnOutbox(root.display().to_string()));
            }
        }
        Ok(files)
    }

    fn io(&self, path: &Path, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    fn path(&self, sub: &str, id: &str) -> PathBuf {
        self.root.join(sub).join(format!("{id}.json"))
    }

    /// Writes `entry` to `sub`: whole in `tmp/`, synced, renamed, the
    /// folder synced.
    fn write(&self, sub: &str, entry: &Entry) -> Result<(), StoreError> {
        let tmp = self.path(TMP, &entry.id);
        let target = self.path(sub, &entry.id);
        let bytes = entry.to_json();
        let written = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &target)?;
            File::open(self.root.join(sub))?.sync_all()
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.map_err(|e| self.io(&target, e))
    }

    /// The entries of `sub` by name and size, oldest first. Only regular
    /// files named as entries count; anything else is left alone.
    fn ids(&self, sub: &str) -> Result<Vec<Listed>, StoreError> {
        let dir = self.root.join(sub);
        let mut listed = Vec::new();
        for item in std::fs::read_dir(&dir).map_err(|e| self.io(&dir, e))? {
            let item = item.map_err(|e| self.io(&dir, e))?;
            let name = item.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            // Gone meanwhile (delivered, dropped), or not a file: skipped.
            let Ok(meta) = item.metadata() else { continue };
            if Entry::valid_id(id) && meta.is_file() {
                listed.push(Listed {
                    id: id.to_owned(),
                    bytes: meta.len(),
                });
            }
        }
        listed.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(listed)
    }

    /// One entry of `sub`, read and parsed.
    fn read(&self, sub: &str, id: &str) -> Result<Entry, StoreError> {
        let path = self.path(sub, id);
        let bytes = std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::NotFound(id.to_owned()),
            _ => self.io(&path, e),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| StoreError::Io {
            path: path.display().to_string(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        })
    }

    /// The entries of `sub`, whole; one that cannot be read is skipped
    /// with a warning, never deleted.
    fn list(&self, sub: &str) -> Result<Vec<Entry>, StoreError> {
        let mut entries = Vec::new();
        for listed in self.ids(sub)? {
            match self.read(sub, &listed.id) {
                Ok(entry) => entries.push(entry),
                Err(StoreError::NotFound(_)) => {}
                Err(e) => log::warn!("outbox: {e}; left alone"),
            }
        }
        Ok(entries)
    }

    fn unlink(&self, path: &Path) -> Result<bool, StoreError> {
        match std::fs::remove_file(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.io(path, e)),
        }
    }
}

impl Store for Files {
    fn put(&self, entry: &Entry) -> Result<(), StoreError> {
        self.write(PENDING, entry)
    }

    fn get(&self, id: &str) -> Result<Entry, StoreError> {
        self.read(PENDING, id)
    }

    fn pending_ids(&self) -> Result<Vec<Listed>, StoreError> {
        self.ids(PENDING)
    }

    fn dead_ids(&self) -> Result<Vec<Listed>, StoreError> {
        self.ids(DEAD)
    }

    fn pending(&self) -> Result<Vec<Entry>, StoreError> {
        self.list(PENDING)
    }

    fn dead(&self) -> Result<Vec<Entry>, StoreError> {
        self.list(DEAD)
    }

    fn remove(&self, id: &str) -> Result<(), StoreError> {
        if !Entry::valid_id(id) {
            return Err(StoreError::NotFound(id.to_owned()));
        }
        let pending = self.unlink(&self.path(PENDING, id))?;
        let dead = self.unlink(&self.path(DEAD, id))?;
        match pending || dead {
            true => Ok(()),
            false => Err(StoreError::NotFound(id.to_owned())),
        }
    }

    fn bury(&self, entry: &Entry, reason: &str) -> Result<(), StoreError> {
        let dead = Entry {
            dead: Some(Dead {
                reason: reason.to_owned(),
                at_ms: now_ms(),
            }),
            ..entry.clone()
        };
        // Written aside first: a crash in between leaves it pending, not lost.
        self.write(DEAD, &dead)?;
        self.unlink(&self.path(PENDING, &entry.id)).map(|_| ())
    }

    fn revive(&self, id: Option<&str>) -> Result<usize, StoreError> {
        if let Some(id) = id.filter(|id| !Entry::valid_id(id)) {
            return Err(StoreError::NotFound(id.to_owned()));
        }
        let dead = self.list(DEAD)?;
        let chosen: Vec<Entry> = dead
            .into_iter()
            .filter(|e| id.is_none_or(|id| e.id == id))
            .collect();
        if let (Some(id), true) = (id, chosen.is_empty()) {
            return Err(StoreError::NotFound(id.to_owned()));
        }
        for entry in &chosen {
            let again = Entry {
                dead: None,
                retried_ms: Some(now_ms()),
                ..entry.clone()
            };
            self.write(PENDING, &again)?;
            self.unlink(&self.path(DEAD, &entry.id))?;
        }
        Ok(chosen.len())
    }

    fn durable(&self) -> bool {
        true
    }
}

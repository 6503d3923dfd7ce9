//! The record of used confirmation codes, so that each works once: in
//! memory, and in a folder replicas share (`--confirm-store`), where each use
//! creates a file named by the code's digest with `O_CREAT|O_EXCL`, which
//! exactly one process can win.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use ring::digest;

/// How long after its code expired a record in the shared folder is kept.
/// Each replica prunes by its own clock: a replica running ahead by more
/// than this could delete a record another replica still needs to refuse a
/// replay. An hour covers any clock that NTP keeps at all; the folder holds
/// at most an hour's used codes more.
pub const PRUNE_AFTER: u64 = 3600;

/// How often the shared folder is pruned, at most, in seconds.
const PRUNE_EVERY: u64 = 60;

/// Codes already used, so each works once.
pub struct UsedCodes {
    memory: Mutex<HashMap<String, u64>>,
    dir: Option<PathBuf>,
    /// When the folder was last pruned, and the thread pruning it.
    pruned_at: AtomicU64,
    pruner: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl UsedCodes {
    /// In memory only, or also in a folder shared by replicas.
    pub fn new(dir: Option<PathBuf>) -> UsedCodes {
        UsedCodes {
            memory: Mutex::new(HashMap::new()),
            dir,
            pruned_at: AtomicU64::new(0),
            pruner: Mutex::new(None),
        }
    }

    /// Marks `code` (valid until `expiry`) used. False when it already was.
    pub fn consume(&self, code: &str, expiry: u64, now: u64) -> Result<bool, std::io::Error> {
        let digest = hex::encode(digest::digest(&digest::SHA256, code.as_bytes()));
        {
            let mut mem = self.memory.lock().unwrap_or_else(|e| e.into_inner());
            // Expired codes are refused by their expiry; forgetting them keeps
            // the map bounded by the codes issued in one lifetime.
            mem.retain(|_, exp| *exp >= now);
            if mem.insert(digest.clone(), expiry).is_some() {
                return Ok(false);
            }
        }
        if let Some(dir) = &self.dir {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(dir.join(format!("{digest}.{expiry}")))
            {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
                Err(e) => return Err(e),
            }
            self.prune_soon(dir, now);
        }
        Ok(true)
    }

    /// Prunes the folder on a thread of its own, at most once a
    /// [`PRUNE_EVERY`] and never twice at once. Listing a folder that
    /// others can fill takes as long as they make it: in review 12, pruning
    /// 200,000 records at every use on a server thread held `/health` for
    /// 2.6 s.
    fn prune_soon(&self, dir: &Path, now: u64) {
        let last = self.pruned_at.load(Ordering::Relaxed);
        // A clock set back (after running ahead) makes it due at once,
        // rather than not until the clock has caught up again.
        if (last..last.saturating_add(PRUNE_EVERY)).contains(&now) {
            return;
        }
        let mut pruner = self.pruner.lock().unwrap_or_else(|e| e.into_inner());
        if pruner.as_ref().is_some_and(|p| !p.is_finished()) {
            return;
        }
        if self
            .pruned_at
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let dir = dir.to_path_buf();
        // A thread that cannot start leaves the records for the next turn.
        *pruner = std::thread::Builder::new()
            .name("swagent-prune".into())
            .spawn(move || prune(&dir, now))
            .ok();
    }

    /// Waits for a prune in progress.
    #[cfg(test)]
    fn pruned(&self) {
        let handle = self.pruner.lock().unwrap().take();
        if let Some(handle) = handle {
            handle.join().unwrap();
        }
    }
}

/// Removes the records in `dir` whose code expired over [`PRUNE_AFTER`] ago.
fn prune(dir: &Path, now: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        // Only names this store writes, `{sha256 hex}.{expiry}`: the
        // folder may hold other files (a rotated `audit.log.1`).
        let expired = name
            .to_str()
            .and_then(|n| n.split_once('.'))
            .filter(|(digest, _)| {
                digest.len() == 64
                    && digest
                        .bytes()
                        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            })
            .and_then(|(_, exp)| exp.parse::<u64>().ok())
            .is_some_and(|exp| exp.saturating_add(PRUNE_AFTER) < now);
        if expired {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// What lets others on the host undo the store at `dir`, said after its
/// name: whoever can delete the record of a used code, or swap the folder
/// (or a link on the way to it) for an empty one, makes that code work
/// again. So the folder must be this user's or root's and writable by no
/// one else (a sticky `/tmp` can still be filled by anyone, which slows
/// every pruning), and so must every folder on the way to it, both as
/// given and after links are followed, unless the sticky bit keeps others
/// from renaming what is not theirs.
pub fn store_exposure(dir: &Path) -> Option<String> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    // SAFETY: geteuid cannot fail and touches no memory.
    let me = unsafe { libc::geteuid() };
    let stranger = |m: &std::fs::Metadata| m.uid() != me && m.uid() != 0;
    let mode = |m: &std::fs::Metadata| m.permissions().mode() & 0o7777;
    let real = std::fs::canonicalize(dir).ok()?;
    let meta = std::fs::metadata(&real).ok()?;
    if stranger(&meta) {
        return Some(format!(
            "belongs to another user (uid {}), who can delete the record of a used code, which then works again",
            meta.uid()
        ));
    }
    let m = mode(&meta);
    if m & 0o022 != 0 {
        return Some(format!(
            "has mode {m:04o}: others on this host can delete or add records of used codes (`chmod go-w` it)"
        ));
    }
    let given = std::path::absolute(dir).ok()?;
    let mut folders: Vec<&Path> = given.ancestors().skip(1).collect();
    folders.extend(real.ancestors().skip(1));
    folders.into_iter().find_map(|folder| {
        let meta = std::fs::metadata(folder).ok()?;
        let m = mode(&meta);
        // The sticky bit does not hold back the folder's owner.
        if stranger(&meta) {
            Some(format!(
                "is in `{}`, which belongs to another user (uid {}), who can swap it for an empty folder, and a used code works again",
                folder.display(),
                meta.uid()
            ))
        } else if m & 0o022 != 0 && m & 0o1000 == 0 {
            Some(format!(
                "is in `{}`, mode {m:04o}: others on this host can swap it for an empty folder, and a used code works again (`chmod go-w` that folder)",
                folder.display()
            ))
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::{UsedCodes, PRUNE_AFTER, PRUNE_EVERY};

    #[test]
    fn codes_work_once_even_across_stores_sharing_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let a = UsedCodes::new(Some(dir.path().to_path_buf()));
        let b = UsedCodes::new(Some(dir.path().to_path_buf()));
        assert!(a.consume("1000-abc", 1000, 900).unwrap());
        assert!(!a.consume("1000-abc", 1000, 900).unwrap());
        assert!(!b.consume("1000-abc", 1000, 900).unwrap());
        let mem = UsedCodes::new(None);
        assert!(mem.consume("x", 1000, 900).unwrap());
        assert!(!mem.consume("x", 1000, 900).unwrap());
    }

    /// Pruning removes only this store's expired files, never other files
    /// whose names happen to end in a number.
    #[test]
    fn pruning_leaves_other_files_alone() {
        let dir = tempfile::tempdir().unwrap();
        let others = ["audit.log.1", "db.20240101", "notes.5"];
        for name in others {
            std::fs::write(dir.path().join(name), "keep").unwrap();
        }
        // Not ours, though it looks it: an expiry past `u64::MAX` less
        // `PRUNE_AFTER` must neither wrap into the past nor panic.
        let far = format!("{}.{}", "a".repeat(64), u64::MAX);
        std::fs::write(dir.path().join(&far), "").unwrap();
        let store = UsedCodes::new(Some(dir.path().to_path_buf()));
        assert!(store.consume("1000-abc", 1000, 900).unwrap());
        store.pruned();
        // Within `PRUNE_AFTER` of its expiry a record stays (another
        // replica's clock may be behind); long after, a new use prunes it.
        assert!(store.consume("2000-xyz", 2000, 1000 + PRUNE_AFTER).unwrap());
        store.pruned();
        let first = hex::encode(ring::digest::digest(&ring::digest::SHA256, b"1000-abc"));
        assert!(dir.path().join(format!("{first}.1000")).exists());
        assert!(store.consume("9000-def", 9000, 8000).unwrap());
        store.pruned();
        std::fs::remove_file(dir.path().join(&far)).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let ours: Vec<&String> = left
            .iter()
            .filter(|n| !others.contains(&n.as_str()))
            .collect();
        assert_eq!(left.len(), 4, "{left:?}");
        assert_eq!(ours.len(), 1, "{left:?}");
        assert!(ours[0].ends_with(".9000"), "{left:?}");
    }

    /// A folder is listed at most once a minute, off the caller's thread.
    #[test]
    fn pruning_runs_at_most_once_a_minute() {
        let dir = tempfile::tempdir().unwrap();
        let store = UsedCodes::new(Some(dir.path().to_path_buf()));
        let expired = |n: u64| format!("{}.{n}", "b".repeat(63) + &(n % 10).to_string());
        std::fs::write(dir.path().join(expired(1)), "").unwrap();
        assert!(store.consume("5000-a", 5000, 4000).unwrap());
        store.pruned();
        assert!(!dir.path().join(expired(1)).exists());
        // Within the minute, a use leaves the folder alone.
        std::fs::write(dir.path().join(expired(2)), "").unwrap();
        assert!(store
            .consume("5000-b", 5000, 4000 + PRUNE_EVERY - 1)
            .unwrap());
        store.pruned();
        assert!(dir.path().join(expired(2)).exists());
        assert!(store.consume("5000-c", 5000, 4000 + PRUNE_EVERY).unwrap());
        store.pruned();
        assert!(!dir.path().join(expired(2)).exists());
        // A clock that ran ahead and was set back does not stop pruning.
        assert!(store.consume("99999-d", 99999, 90000).unwrap());
        store.pruned();
        std::fs::write(dir.path().join(expired(3)), "").unwrap();
        assert!(store.consume("9000-e", 9000, 8000).unwrap());
        store.pruned();
        assert!(!dir.path().join(expired(3)).exists());
    }
}

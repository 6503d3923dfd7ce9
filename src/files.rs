//! The small files an operator hands swagent (`.env`, the agent file, the
//! kill-switch state file, keys): read without ever blocking on a FIFO or
//! reading without bound, and replaced atomically through a symlink rather
//! than over it, so replicas that share the real file see the change.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

/// Opens a file for reading, refusing anything but a regular file: a FIFO
/// (which would block until someone writes to it), a device or a folder.
/// The open itself does not block (`O_NONBLOCK`, which regular files ignore).
pub fn open_regular(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let kind = file.metadata()?.file_type();
    if kind.is_dir() {
        return Err(std::io::Error::other("is a directory"));
    }
    if !kind.is_file() {
        return Err(not_regular());
    }
    Ok(file)
}

/// The whole of a regular file or a pipe (`<(pass show ...)`, `/dev/stdin`
/// fed by a pipe), at most `limit` bytes: for a secret handed over without
/// touching the disk. Devices are refused (`/dev/zero` never ends), and a
/// FIFO nobody writes to reads as empty instead of blocking.
pub fn read_file_or_pipe(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::os::fd::AsRawFd as _;
    use std::os::unix::fs::FileTypeExt as _;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let kind = file.metadata()?.file_type();
    if kind.is_fifo() {
        // Open without blocking, then read as a pipe is read: until its
        // writer is done (at once, when it has none).
        // SAFETY: fcntl on a descriptor this function owns.
        unsafe {
            let flags = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
            if flags < 0
                || libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
        }
    } else if kind.is_dir() {
        return Err(std::io::Error::other("is a directory"));
    } else if !kind.is_file() {
        return Err(std::io::Error::other(
            "is not a regular file or a pipe (a socket or device)",
        ));
    }
    read_bounded(file, limit)
}

/// All of `file`, refused unread past `limit` bytes (one byte past it is
/// read, no more).
fn read_bounded(file: File, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::other(format!(
            "is larger than {} KiB",
            limit.div_ceil(1024)
        )));
    }
    Ok(bytes)
}

fn not_regular() -> std::io::Error {
    std::io::Error::other("is not a regular file (a FIFO, socket or device)")
}

/// The whole of a regular file of at most `limit` bytes.
pub fn read_regular(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    read_regular_with_meta(path, limit).map(|(bytes, _)| bytes)
}

/// [`read_regular`], with the metadata of the file that was read: judging
/// the owner or mode by the path instead would judge whatever the path
/// names a moment later (a link its folder's owner swapped meanwhile).
pub fn read_regular_with_meta(
    path: &Path,
    limit: u64,
) -> std::io::Result<(Vec<u8>, std::fs::Metadata)> {
    let file = open_regular(path)?;
    let meta = file.metadata()?;
    Ok((read_bounded(file, limit)?, meta))
}

/// Opens (creating it, mode 0600) a lock file for `flock`. Never through a
/// symlink, whose target someone with write access to the folder chose, and
/// never a FIFO, whose open would block `disable` in an incident.
pub fn open_lock(path: &Path) -> std::io::Result<File> {
    regular_for_writing(
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ELOOP) => std::io::Error::other("is a symbolic link"),
                _ => e,
            }),
    )
}

/// The file a non-blocking open for writing gave, if it is a regular file.
fn regular_for_writing(opened: std::io::Result<File>) -> std::io::Result<File> {
    let file = opened.map_err(|e| match e.raw_os_error() {
        // What a FIFO with no reader or a socket answers a non-blocking
        // open for writing.
        Some(libc::ENXIO) => not_regular(),
        _ => e,
    })?;
    if !file.metadata()?.file_type().is_file() {
        return Err(not_regular());
    }
    Ok(file)
}

/// Opens a log file for appending (creating it, mode 0600), through a
/// symlink if there is one, refusing anything but a regular file: a FIFO
/// would block the open or every write, and `/dev/null` would swallow every
/// line while looking healthy.
pub fn open_append(path: &Path) -> std::io::Result<File> {
    regular_for_writing(
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NONBLOCK)
            .open(path),
    )
}

/// The file a path names, through any symlinks, also one whose file does
/// not exist yet (so the first write creates the file the link points to).
pub fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    let mut at = path.to_path_buf();
    // As many links as the kernel follows before ELOOP.
    for _ in 0..40 {
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let to = std::fs::read_link(&at)?;
                at = match at.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                };
            }
            Ok(_) => return Ok(at),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(at),
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other(
        "has too many levels of symbolic links",
    ))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Run as root, writes only where no other user can choose what a path
/// names: the folder of `path` and of the file it resolves to, and every
/// folder above them, must be root's, and none writable by others (but for
/// a sticky folder above, like `/tmp`, where no one can move root's
/// entries). Otherwise another user could point a link, or swap a folder,
/// at any file root can write, or read what root writes. Run as the user
/// who owns the folder instead.
pub fn root_may_write(path: &Path, target: &Path) -> std::io::Result<()> {
    if !is_root() {
        return Ok(());
    }
    for folder in [folder_of(path), folder_of(target)] {
        let real = std::fs::canonicalize(folder)?;
        for (i, at) in real.ancestors().enumerate() {
            let meta = std::fs::metadata(at)?;
            let others_write = meta.mode() & 0o022 != 0;
            let sticky = meta.mode() & 0o1000 != 0;
            if meta.uid() != 0 || (others_write && (i == 0 || !sticky)) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!(
                        "`{}` is owned by uid {} with mode {:04o}: as root, swagent writes only in folders no other user can change (they could point the file anywhere, or read it); run this as that folder's owner",
                        at.display(),
                        meta.uid(),
                        meta.mode() & 0o7777
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The folder `path` is in: `.` for a bare file name.
pub fn folder_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Replaces the file `path` names (through symlinks) with `bytes`: written
/// to a new file of `mode` beside it, synced, then renamed over it, so a
/// reader never sees half of it and the mode holds from the first byte.
/// Returns the file written.
///
/// A file it replaces keeps its group's read permission when others had
/// none (0640, chosen for a service's group), not when a umask gave it
/// (0644). The new file is the writer's: it never takes another owner,
/// since whoever owns the folder can swap what the path names.
pub fn replace(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<PathBuf> {
    let target = resolve(path)?;
    root_may_write(path, &target)?;
    let dir = folder_of(&target);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.swagent-{}", crate::random::hex(6)));
    let old = std::fs::metadata(&target).ok();
    // Group read kept only where it was chosen: in 0640, not in a umask's 0644.
    let group_read = old.as_ref().is_some_and(|m| m.mode() & 0o044 == 0o040);
    let mode = if group_read { mode | 0o040 } else { mode };
    let written = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "cannot create a file in `{}`, where the new content is written before it is renamed over the old: {e}",
                        dir.display()
                    ),
                )
            })?;
        // Root's file in root's own folder (checked above): a service group
        // chosen for it (root:svc 0640) is kept, or the service is locked out.
        if let Some(old) = old.as_ref().filter(|_| group_read && is_root()) {
            std::os::unix::fs::fchown(&f, None, Some(old.gid()))?;
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &target)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map(|()| target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_fifo_without_blocking_and_a_file_too_big() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path this test owns.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let err = read_regular(&fifo, 10).unwrap_err();
        assert_eq!(
            err.to_string(),
            "is not a regular file (a FIFO, socket or device)"
        );
        assert_eq!(
            read_regular(dir.path(), 10).unwrap_err().to_string(),
            "is a directory"
        );
        let big = dir.path().join("big");
        std::fs::write(&big, [b'x'; 11]).unwrap();
        assert_eq!(
            read_regular(&big, 10).unwrap_err().to_string(),
            "is larger than 1 KiB"
        );
        assert_eq!(read_regular(&big, 11).unwrap().len(), 11);
    }

    #[test]
    fn replaces_through_a_symlink() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        std::fs::write(&real, "old").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let written = replace(&link, b"new", 0o640).unwrap();
        assert_eq!(written, real);
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
        let mode = std::fs::metadata(&real).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        // Nothing left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
        // A link whose file is still to be made: the file is made.
        let later = dir.path().join("later.json");
        let dangling = dir.path().join("dangling.json");
        std::os::unix::fs::symlink("later.json", &dangling).unwrap();
        assert_eq!(replace(&dangling, b"first", 0o644).unwrap(), later);
        assert_eq!(std::fs::read_to_string(&later).unwrap(), "first");
        assert!(std::fs::symlink_metadata(&dangling)
            .unwrap()
            .file_type()
            .is_symlink());
    }
}

//! A state directory's lock: one process writes a state directory at a time (`lock`, holding
//! the holder's process id, `flock`ed while it runs).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

use crate::trustchain::Failure;

/// The lock file's name in a state directory.
pub(crate) const LOCK_FILE: &str = "lock";

/// Takes `dir`'s lock, held while the returned file lives; if another process holds it, the
/// failure `in_use` words from the holder's process id.
pub(crate) fn lock_dir(dir: &Path, in_use: impl FnOnce(&str) -> String) -> Result<File, Failure> {
    lock_file(&dir.join(LOCK_FILE), in_use)
}

/// Takes the lock file at `path` (created if missing), as [`lock_dir`] takes a directory's.
pub(crate) fn lock_file(path: &Path, in_use: impl FnOnce(&str) -> String) -> Result<File, Failure> {
    let path = path.to_path_buf();
    let mut lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Failure(format!("cannot open lock file {}: {e}", path.display())))?;
    if lock.try_lock().is_err() {
        let mut holder = String::new();
        let _ = lock.read_to_string(&mut holder);
        return Err(Failure(in_use(holder.trim())));
    }
    lock.set_len(0)
        .and_then(|()| write!(lock, "{}", std::process::id()))
        .map_err(|e| Failure(format!("cannot write lock file {}: {e}", path.display())))?;
    Ok(lock)
}

//! A node's durable storage: one directory, one real file per name.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use runtime::{validate_file_name, Storage, StorageError};

use crate::BackendError;

/// How many file handles stay open at once. Protocols use a handful of files; the cap only keeps
/// a misbehaving actor from exhausting the process's descriptors.
const OPEN_FILES_MAX: usize = 64;

/// The largest offset the OS accepts for positional I/O (`off_t` is signed).
const OFFSET_MAX: u64 = i64::MAX as u64;

/// Storage in a directory, with open handles cached by name: the production `Storage`.
#[derive(Debug)]
pub struct DirStorage {
    dir: PathBuf,
    open: BTreeMap<String, File>,
    /// Files created by this process whose directory entry is not yet known to be durable: a
    /// created file survives a power cut only once its directory has been synced too.
    unsynced_entries: BTreeSet<String>,
}

impl DirStorage {
    /// Opens (creating if needed) the directory `dir`.
    pub fn open(dir: &Path) -> Result<Self, BackendError> {
        let fail = |source| BackendError::StorageDir {
            path: dir.to_path_buf(),
            source,
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(fail)?;
        // Entries left by an earlier run, and the directory itself if we just made it, may still
        // be only in the page cache (a process crash does not flush them); make them durable now
        // so later syncs need only track files this process creates.
        sync_dir(dir).map_err(fail)?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent).map_err(fail)?;
        }
        Ok(DirStorage {
            dir: dir.to_path_buf(),
            open: BTreeMap::new(),
            unsynced_entries: BTreeSet::new(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The open handle of `name`, opening it if needed; `None` if it does not exist and
    /// `create` is false.
    fn file(&mut self, name: &str, create: bool) -> Result<Option<&File>, StorageError> {
        validate_file_name(name)?;
        if !self.open.contains_key(name) {
            let path = self.dir.join(name);
            let file = match OpenOptions::new().read(true).write(true).open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
                    let file = OpenOptions::new()
                        .read(true)
                        .write(true)
                        .create(true)
                        .truncate(false)
                        // A node's storage holds its keys: readable by its owner only.
                        .mode(0o600)
                        .open(&path)
                        .map_err(|e| io_error(name, "create", &e))?;
                    self.unsynced_entries.insert(name.to_string());
                    file
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(io_error(name, "open", &e)),
            };
            if self.open.len() >= OPEN_FILES_MAX {
                // Closing loses nothing: written data is in the page cache, and a later sync
                // reopens the file and fsyncs the same inode.
                self.open.pop_first();
            }
            self.open.insert(name.to_string(), file);
        }
        Ok(self.open.get(name))
    }
}

impl Storage for DirStorage {
    /// Up to `len` bytes at `offset`; empty past the end or if the file does not exist.
    fn read_at(&mut self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>, StorageError> {
        let Some(file) = self.file(name, false)? else {
            return Ok(Vec::new());
        };
        let size = file.metadata().map_err(|e| io_error(name, "stat", &e))?.len();
        // Size the buffer by what exists, not by what was asked, so a huge `len` cannot allocate.
        let want = usize::try_from(size.saturating_sub(offset))
            .unwrap_or(usize::MAX)
            .min(len);
        let mut buf = vec![0u8; want];
        let mut filled = 0;
        while filled < want {
            match file.read_at(&mut buf[filled..], offset + filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(name, "read", &e)),
            }
        }
        buf.truncate(filled);
        Ok(buf)
    }

    /// Writes `data` at `offset`, creating the file; the OS zero-fills any gap.
    fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        validate_file_name(name)?;
        if offset
            .checked_add(data.len() as u64)
            .filter(|end| *end <= OFFSET_MAX)
            .is_none()
        {
            return Err(StorageError::Io {
                name: name.to_string(),
                reason: format!(
                    "write of {} bytes at offset {offset} ends beyond the largest file offset",
                    data.len()
                ),
            });
        }
        let Some(file) = self.file(name, true)? else {
            return Err(missing_after_create(name));
        };
        file.write_all_at(data, offset).map_err(|e| io_error(name, "write", &e))
    }

    /// The file's length, 0 if it does not exist.
    fn size(&mut self, name: &str) -> Result<u64, StorageError> {
        match self.file(name, false)? {
            Some(file) => Ok(file.metadata().map_err(|e| io_error(name, "stat", &e))?.len()),
            None => Ok(0),
        }
    }

    /// Sets the file's length, creating it if absent (as the simulator does).
    fn truncate(&mut self, name: &str, len: u64) -> Result<(), StorageError> {
        validate_file_name(name)?;
        if len > OFFSET_MAX {
            return Err(StorageError::Io {
                name: name.to_string(),
                reason: format!("length {len} is beyond the largest file offset"),
            });
        }
        let Some(file) = self.file(name, true)? else {
            return Err(missing_after_create(name));
        };
        file.set_len(len).map_err(|e| io_error(name, "truncate", &e))
    }

    /// Makes the file's contents, and its existence, durable. An absent file has nothing to sync.
    fn sync(&mut self, name: &str) -> Result<(), StorageError> {
        let Some(file) = self.file(name, false)? else {
            return Ok(());
        };
        file.sync_all().map_err(|e| io_error(name, "sync", &e))?;
        if self.unsynced_entries.contains(name) {
            sync_dir(&self.dir).map_err(|e| io_error(name, "sync directory", &e))?;
            // One directory sync makes every entry in it durable.
            self.unsynced_entries.clear();
        }
        Ok(())
    }

    /// Deletes the file and syncs the directory so the deletion survives a crash.
    fn remove(&mut self, name: &str) -> Result<(), StorageError> {
        validate_file_name(name)?;
        self.open.remove(name);
        self.unsynced_entries.remove(name);
        match fs::remove_file(self.dir.join(name)) {
            Ok(()) => sync_dir(&self.dir).map_err(|e| io_error(name, "sync directory", &e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(name, "remove", &e)),
        }
    }

    /// Every regular file with a valid name, sorted. Anything else in the directory (editor
    /// droppings, a stray subdirectory) is not storage an actor could have made, so it is skipped.
    fn list(&mut self) -> Result<Vec<String>, StorageError> {
        let dir_error = |e: io::Error| StorageError::Io {
            name: self.dir.display().to_string(),
            reason: format!("list: {e}"),
        };
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(dir_error)? {
            let entry = entry.map_err(dir_error)?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if validate_file_name(&name).is_err() {
                continue;
            }
            if entry.file_type().map_err(dir_error)?.is_file() {
                names.push(name);
            }
        }
        names.sort_unstable();
        Ok(names)
    }
}

/// Fsyncs a directory, which is what makes entries created or removed in it durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn io_error(name: &str, op: &str, e: &io::Error) -> StorageError {
    StorageError::Io {
        name: name.to_string(),
        reason: format!("{op}: {e}"),
    }
}

fn missing_after_create(name: &str) -> StorageError {
    StorageError::Io {
        name: name.to_string(),
        reason: "file vanished while being created".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_dir::TestDir;

    #[test]
    fn write_sync_read_size_truncate_remove_list() {
        let tmp = TestDir::new("files-roundtrip");
        let mut disk = DirStorage::open(tmp.path()).unwrap();
        assert_eq!(disk.read_at("log", 0, 10).unwrap(), b"");
        assert_eq!(disk.size("log").unwrap(), 0);

        disk.write_at("log", 0, b"hello").unwrap();
        disk.write_at("log", 8, b"world").unwrap();
        disk.sync("log").unwrap();
        assert_eq!(disk.size("log").unwrap(), 13);
        assert_eq!(disk.read_at("log", 0, 100).unwrap(), b"hello\0\0\0world");
        assert_eq!(disk.read_at("log", 8, 3).unwrap(), b"wor");
        assert_eq!(disk.read_at("log", 50, 3).unwrap(), b"");
        assert_eq!(disk.read_at("log", 0, usize::MAX).unwrap().len(), 13);

        disk.truncate("log", 5).unwrap();
        assert_eq!(disk.read_all("log").unwrap(), b"hello");
        disk.truncate("log", 7).unwrap();
        assert_eq!(disk.read_all("log").unwrap(), b"hello\0\0");

        disk.write_all_synced("incarnation", b"7").unwrap();
        assert_eq!(disk.list().unwrap(), vec!["incarnation".to_string(), "log".to_string()]);

        disk.remove("log").unwrap();
        disk.remove("log").unwrap();
        assert_eq!(disk.list().unwrap(), vec!["incarnation".to_string()]);
        assert_eq!(disk.size("log").unwrap(), 0);
    }

    #[test]
    fn data_is_on_disk_for_the_next_incarnation() {
        let tmp = TestDir::new("files-reopen");
        {
            let mut disk = DirStorage::open(tmp.path()).unwrap();
            disk.write_all_synced("state", b"durable").unwrap();
        }
        let mut again = DirStorage::open(tmp.path()).unwrap();
        assert_eq!(again.read_all("state").unwrap(), b"durable");
        assert_eq!(fs::read(tmp.path().join("state")).unwrap(), b"durable");
    }

    #[test]
    fn invalid_names_are_refused_everywhere() {
        let tmp = TestDir::new("files-names");
        let mut disk = DirStorage::open(tmp.path()).unwrap();
        for bad in ["", "../escape", "a/b", ".hidden", "sp ace"] {
            let invalid = StorageError::InvalidName { name: bad.to_string() };
            assert_eq!(disk.write_at(bad, 0, b"x"), Err(invalid.clone()));
            assert_eq!(disk.read_at(bad, 0, 1), Err(invalid.clone()));
            assert_eq!(disk.size(bad), Err(invalid.clone()));
            assert_eq!(disk.truncate(bad, 0), Err(invalid.clone()));
            assert_eq!(disk.sync(bad), Err(invalid.clone()));
            assert_eq!(disk.remove(bad), Err(invalid));
        }
        assert!(!tmp.path().parent().unwrap().join("escape").exists());
        assert_eq!(disk.list().unwrap(), Vec::<String>::new());
    }

    #[test]
    fn list_skips_what_an_actor_could_not_have_made() {
        let tmp = TestDir::new("files-list");
        let mut disk = DirStorage::open(tmp.path()).unwrap();
        fs::write(tmp.path().join(".swap"), b"").unwrap();
        fs::write(tmp.path().join("has space"), b"").unwrap();
        fs::create_dir(tmp.path().join("subdir")).unwrap();
        disk.write_at("b", 0, b"").unwrap();
        disk.write_at("a", 0, b"").unwrap();
        assert_eq!(disk.list().unwrap(), vec!["a".to_string(), "b".to_string()]);
    }

    #[test]
    fn absurd_offsets_are_errors_not_panics() {
        let tmp = TestDir::new("files-offsets");
        let mut disk = DirStorage::open(tmp.path()).unwrap();
        assert!(matches!(
            disk.write_at("f", u64::MAX, b"x"),
            Err(StorageError::Io { .. })
        ));
        assert!(matches!(disk.truncate("f", u64::MAX), Err(StorageError::Io { .. })));
        assert_eq!(disk.read_at("f", u64::MAX, usize::MAX).unwrap(), b"");
    }

    #[test]
    fn a_name_that_is_a_directory_is_an_io_error() {
        let tmp = TestDir::new("files-dir-name");
        let mut disk = DirStorage::open(tmp.path()).unwrap();
        fs::create_dir(tmp.path().join("sub")).unwrap();
        assert!(matches!(disk.write_at("sub", 0, b"x"), Err(StorageError::Io { .. })));
    }

    #[test]
    fn the_handle_cache_is_bounded() {
        let tmp = TestDir::new("files-cache");
        let mut disk = DirStorage::open(tmp.path()).unwrap();
        for i in 0..OPEN_FILES_MAX + 10 {
            disk.write_at(&format!("f{i}"), 0, &[i as u8]).unwrap();
        }
        assert!(disk.open.len() <= OPEN_FILES_MAX);
        for i in 0..OPEN_FILES_MAX + 10 {
            let name = format!("f{i}");
            disk.sync(&name).unwrap();
            assert_eq!(disk.read_all(&name).unwrap(), [i as u8]);
        }
    }

    #[test]
    fn storage_dir_that_cannot_be_created_names_the_path() {
        let tmp = TestDir::new("files-blocked");
        fs::create_dir_all(tmp.path()).unwrap();
        let file = tmp.path().join("plain-file");
        fs::write(&file, b"").unwrap();
        let blocked = file.join("node");
        match DirStorage::open(&blocked) {
            Err(BackendError::StorageDir { path, .. }) => assert_eq!(path, blocked),
            other => panic!("expected StorageDir error, got {other:?}"),
        }
    }
}

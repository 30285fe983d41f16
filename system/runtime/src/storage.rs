//! Durable storage: named files with positional reads and writes and an explicit `sync`.
//!
//! The contract every backend honours: a write is visible to reads at once, but only survives a
//! crash once `sync` on that file has returned `Ok`. Unsynced writes may be lost whole, or in
//! part (a torn write), when the node crashes.

/// The longest file name a backend accepts.
pub const FILE_NAME_BYTES_MAX: usize = 64;

/// Why a storage operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The name is empty, too long, starts with a dot, or has a character outside
    /// `[A-Za-z0-9._-]`.
    #[error("invalid file name {name:?}: use 1 to {FILE_NAME_BYTES_MAX} characters of [A-Za-z0-9._-], not starting with '.'")]
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// The device reported an error (real, or injected by the simulator).
    #[error("I/O error on {name:?}: {reason}")]
    Io {
        /// The file.
        name: String,
        /// What failed.
        reason: String,
    },
}

/// Checks `name` against the rules every backend enforces, so a name that works in simulation
/// works on disk.
pub fn validate_file_name(name: &str) -> Result<(), StorageError> {
    let ok = !name.is_empty()
        && name.len() <= FILE_NAME_BYTES_MAX
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(StorageError::InvalidName { name: name.to_string() })
    }
}

/// A node's private durable storage.
pub trait Storage {
    /// Up to `len` bytes of `name` from `offset`; fewer at the end of the file, none if it does not
    /// exist.
    fn read_at(&mut self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>, StorageError>;
    /// Writes `data` at `offset`, creating the file and zero-filling any gap.
    fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> Result<(), StorageError>;
    /// The file's length, 0 if it does not exist.
    fn size(&mut self, name: &str) -> Result<u64, StorageError>;
    /// Shortens (or zero-extends) the file to `len` bytes.
    fn truncate(&mut self, name: &str, len: u64) -> Result<(), StorageError>;
    /// Makes every earlier write to `name` durable.
    fn sync(&mut self, name: &str) -> Result<(), StorageError>;
    /// Deletes the file, durably; absent files are fine.
    fn remove(&mut self, name: &str) -> Result<(), StorageError>;
    /// Every file's name, sorted.
    fn list(&mut self) -> Result<Vec<String>, StorageError>;

    /// The whole file (empty if absent).
    fn read_all(&mut self, name: &str) -> Result<Vec<u8>, StorageError> {
        let len = self.size(name)?;
        let len = usize::try_from(len).map_err(|_| StorageError::Io {
            name: name.to_string(),
            reason: format!("file of {len} bytes does not fit in memory"),
        })?;
        self.read_at(name, 0, len)
    }

    /// Replaces the file's contents with `data` and syncs it.
    fn write_all_synced(&mut self, name: &str, data: &[u8]) -> Result<(), StorageError> {
        self.truncate(name, 0)?;
        self.write_at(name, 0, data)?;
        self.sync(name)
    }
}

/// Implements [`Storage`] for a type by handing every call to another `Storage` it holds or
/// makes: `delegate_storage!([generics] Type, |this| this.field)`. Environments are bundles of
/// seams, and each forwards its files to whatever backs them (a directory, memory, a protocol's
/// namespace).
#[macro_export]
macro_rules! delegate_storage {
    ([$($generics:tt)*] $ty:ty, |$this:ident| $target:expr) => {
        impl<$($generics)*> $crate::Storage for $ty {
            fn read_at(&mut self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>, $crate::StorageError> {
                let $this = self;
                $crate::Storage::read_at(&mut $target, name, offset, len)
            }
            fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> Result<(), $crate::StorageError> {
                let $this = self;
                $crate::Storage::write_at(&mut $target, name, offset, data)
            }
            fn size(&mut self, name: &str) -> Result<u64, $crate::StorageError> {
                let $this = self;
                $crate::Storage::size(&mut $target, name)
            }
            fn truncate(&mut self, name: &str, len: u64) -> Result<(), $crate::StorageError> {
                let $this = self;
                $crate::Storage::truncate(&mut $target, name, len)
            }
            fn sync(&mut self, name: &str) -> Result<(), $crate::StorageError> {
                let $this = self;
                $crate::Storage::sync(&mut $target, name)
            }
            fn remove(&mut self, name: &str) -> Result<(), $crate::StorageError> {
                let $this = self;
                $crate::Storage::remove(&mut $target, name)
            }
            fn list(&mut self) -> Result<Vec<String>, $crate::StorageError> {
                let $this = self;
                $crate::Storage::list(&mut $target)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_escape_a_directory_are_refused() {
        for bad in ["", ".hidden", "a/b", "..", "a\\b", "é", &"x".repeat(65)] {
            assert!(validate_file_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["incarnation", "ct-log.0001", "a_b-c.d"] {
            validate_file_name(good).unwrap();
        }
    }
}

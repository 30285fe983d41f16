//! An in-memory [`Storage`] for tests and tools, with a crash that keeps synced bytes and a torn
//! prefix of the rest.

use std::collections::BTreeMap;

use crate::{validate_file_name, Storage, StorageError};

/// Storage in memory, with a crash that keeps only synced bytes plus a chosen prefix of the
/// rest (a torn write).
#[derive(Default)]
pub struct MemStorage {
    /// File contents, synced or not.
    pub files: BTreeMap<String, Vec<u8>>,
    synced: BTreeMap<String, usize>,
    refusing: Option<String>,
}

impl MemStorage {
    /// While `prefix` is set, every write to a file whose name starts with it fails, as on a
    /// full or failing disk (`Some("")`: every file). `write_all_synced` truncates before it
    /// writes, and the truncation is kept, as a crash may keep it.
    pub fn refuse_writes(&mut self, prefix: Option<&str>) {
        self.refusing = prefix.map(str::to_string);
    }

    /// Crashes: every file keeps its synced bytes plus up to `unsynced_bytes` more.
    pub fn crash_keeping(&mut self, unsynced_bytes: usize) {
        for (name, data) in &mut self.files {
            let durable = self.synced.get(name).copied().unwrap_or(0);
            data.truncate((durable + unsynced_bytes).min(data.len()));
        }
    }
}

impl Storage for MemStorage {
    fn read_at(&mut self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>, StorageError> {
        let data = self.files.get(name).map(Vec::as_slice).unwrap_or(&[]);
        let start = (offset as usize).min(data.len());
        Ok(data[start..(start + len).min(data.len())].to_vec())
    }
    fn write_at(&mut self, name: &str, offset: u64, bytes: &[u8]) -> Result<(), StorageError> {
        validate_file_name(name)?;
        if self.refusing.as_deref().is_some_and(|p| name.starts_with(p)) {
            return Err(StorageError::Io {
                name: name.into(),
                reason: "write refused (MemStorage::refuse_writes)".into(),
            });
        }
        let data = self.files.entry(name.to_string()).or_default();
        let end = offset as usize + bytes.len();
        if data.len() < end {
            data.resize(end, 0);
        }
        data[offset as usize..end].copy_from_slice(bytes);
        Ok(())
    }
    fn size(&mut self, name: &str) -> Result<u64, StorageError> {
        Ok(self.files.get(name).map_or(0, |d| d.len() as u64))
    }
    fn truncate(&mut self, name: &str, len: u64) -> Result<(), StorageError> {
        self.files.entry(name.to_string()).or_default().resize(len as usize, 0);
        let s = self.synced.entry(name.to_string()).or_default();
        *s = (*s).min(len as usize);
        Ok(())
    }
    fn sync(&mut self, name: &str) -> Result<(), StorageError> {
        let len = self.files.get(name).map_or(0, Vec::len);
        self.synced.insert(name.to_string(), len);
        Ok(())
    }
    fn remove(&mut self, name: &str) -> Result<(), StorageError> {
        self.files.remove(name);
        self.synced.remove(name);
        Ok(())
    }
    fn list(&mut self) -> Result<Vec<String>, StorageError> {
        Ok(self.files.keys().cloned().collect())
    }
}

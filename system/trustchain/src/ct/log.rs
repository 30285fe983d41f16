//! The certificate-transparency log: entries appended to a Merkle tree and to an append-only
//! file through the runtime's `Storage`, so the log survives crash and restart.
//!
//! File format: a sequence of records `len: u32 LE | check: 8 bytes | entry: len bytes`, where
//! `check` is the first 8 bytes of the entry's leaf hash (computed anyway for the tree, so the
//! check is free). On open the records are replayed; a record cut short or failing its check can
//! only be the last, unsynced write torn by a crash, and is truncated away.
//!
//! Durability is explicit: [`CtLog::append`] writes, [`CtLog::commit`] syncs and advances the
//! durable size, and tree heads are only ever signed at the durable size. So a signed tree head
//! never promises an entry a crash could lose, and a batch of appends costs one sync.

use runtime::{Storage, StorageError};

use super::merkle::{leaf_hash, Hash, MerkleTree, ProofError};

/// The largest entry accepted (a DER certificate chain is a few kB).
pub const ENTRY_BYTES_MAX: usize = 64 * 1024;
const HEADER_BYTES: usize = 4 + 8;
/// How much of the file is read at a time when replaying it.
const REPLAY_CHUNK_BYTES: usize = 1 << 20;

/// What went wrong with the log.
#[derive(Debug, thiserror::Error)]
pub enum CtError {
    /// The storage failed.
    #[error("CT log storage: {0}")]
    Storage(#[from] StorageError),
    /// An entry above [`ENTRY_BYTES_MAX`] (or empty).
    #[error("CT entry of {len} bytes refused: entries are 1 to {ENTRY_BYTES_MAX} bytes")]
    EntrySize {
        /// Its length.
        len: usize,
    },
    /// A proof request out of range.
    #[error(transparent)]
    Proof(#[from] ProofError),
}

/// What opening the log found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Entries replayed.
    pub entries: u64,
    /// Bytes of a torn last record removed (0 after a clean shutdown).
    pub truncated_bytes: u64,
}

/// An append-only, persistent Merkle log.
#[derive(Debug)]
pub struct CtLog {
    file: String,
    tree: MerkleTree,
    /// Offset where the next record goes.
    end: u64,
    /// Entries known synced: tree heads are signed at this size only.
    durable: u64,
}

impl CtLog {
    /// Opens (or creates) the log in `file`, replaying it and cutting off a torn tail.
    pub fn open(storage: &mut dyn Storage, file: &str) -> Result<(CtLog, Recovery), CtError> {
        let len = storage.size(file)?;
        let mut tree = MerkleTree::new();
        let mut offset = 0u64;
        let mut buf: Vec<u8> = Vec::new();
        let mut buf_at = 0u64;
        let torn = loop {
            if offset == len {
                break false;
            }
            // Keep at least one whole record in the buffer.
            let need = |buf: &Vec<u8>, buf_at: u64, bytes: usize| offset + bytes as u64 <= buf_at + buf.len() as u64;
            if !need(&buf, buf_at, HEADER_BYTES) {
                buf = storage.read_at(file, offset, REPLAY_CHUNK_BYTES.max(HEADER_BYTES))?;
                buf_at = offset;
                if buf.len() < HEADER_BYTES {
                    break true;
                }
            }
            let at = (offset - buf_at) as usize;
            let entry_len = u32::from_le_bytes(buf[at..at + 4].try_into().expect("4 bytes")) as usize;
            if entry_len == 0 || entry_len > ENTRY_BYTES_MAX {
                break true;
            }
            let record = HEADER_BYTES + entry_len;
            if !need(&buf, buf_at, record) {
                buf = storage.read_at(file, offset, REPLAY_CHUNK_BYTES.max(record))?;
                buf_at = offset;
                if buf.len() < record {
                    break true;
                }
            }
            let at = (offset - buf_at) as usize;
            let entry = &buf[at + HEADER_BYTES..at + record];
            let hash = leaf_hash(entry);
            if hash[..8] != buf[at + 4..at + 12] {
                break true;
            }
            tree.append_hash(hash);
            offset += record as u64;
        };
        let truncated_bytes = len - offset;
        if torn {
            storage.truncate(file, offset)?;
            storage.sync(file)?;
        }
        let entries = tree.size();
        Ok((
            CtLog {
                file: file.to_string(),
                tree,
                end: offset,
                durable: entries,
            },
            Recovery {
                entries,
                truncated_bytes,
            },
        ))
    }

    /// Appends `entry` (not yet durable: see [`CtLog::commit`]); returns its leaf index.
    pub fn append(&mut self, storage: &mut dyn Storage, entry: &[u8]) -> Result<u64, CtError> {
        if entry.is_empty() || entry.len() > ENTRY_BYTES_MAX {
            return Err(CtError::EntrySize { len: entry.len() });
        }
        let hash = leaf_hash(entry);
        let mut record = Vec::with_capacity(HEADER_BYTES + entry.len());
        record.extend_from_slice(&(entry.len() as u32).to_le_bytes());
        record.extend_from_slice(&hash[..8]);
        record.extend_from_slice(entry);
        // Written before the tree changes: a failed write leaves log and tree as they were.
        storage.write_at(&self.file, self.end, &record)?;
        self.end += record.len() as u64;
        Ok(self.tree.append_hash(hash))
    }

    /// Makes every appended entry durable; returns the durable size.
    pub fn commit(&mut self, storage: &mut dyn Storage) -> Result<u64, CtError> {
        if self.durable < self.tree.size() {
            storage.sync(&self.file)?;
            self.durable = self.tree.size();
        }
        Ok(self.durable)
    }

    /// Entries appended (durable or not).
    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    /// Entries known durable.
    pub fn durable_size(&self) -> u64 {
        self.durable
    }

    /// The tree, for roots and proofs.
    pub fn tree(&self) -> &MerkleTree {
        &self.tree
    }

    /// Leaf hash of entry `index`.
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        self.tree.leaf(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runtime::MemStorage as Disk;

    #[test]
    fn committed_entries_survive_a_crash_and_a_torn_tail_is_cut_off() {
        let mut disk = Disk::default();
        let (mut log, rec) = CtLog::open(&mut disk, "ct.log").unwrap();
        assert_eq!(
            rec,
            Recovery {
                entries: 0,
                truncated_bytes: 0
            }
        );
        for i in 0..100u32 {
            log.append(&mut disk, format!("certificate {i}").as_bytes()).unwrap();
        }
        assert_eq!(log.commit(&mut disk).unwrap(), 100);
        let root = log.tree().root();
        log.append(&mut disk, b"not yet synced").unwrap();
        assert_eq!(log.durable_size(), 100);
        // The crash keeps 7 bytes of the unsynced record: a torn write.
        disk.crash_keeping(7);
        let (log, rec) = CtLog::open(&mut disk, "ct.log").unwrap();
        assert_eq!(
            rec,
            Recovery {
                entries: 100,
                truncated_bytes: 7
            }
        );
        assert_eq!(log.tree().root(), root);
        assert_eq!(log.durable_size(), 100);
        // And the log goes on from there.
        let mut log = log;
        assert_eq!(log.append(&mut disk, b"after restart").unwrap(), 100);
    }

    #[test]
    fn a_record_whose_check_fails_ends_the_log() {
        let mut disk = Disk::default();
        let (mut log, _) = CtLog::open(&mut disk, "ct.log").unwrap();
        log.append(&mut disk, b"first").unwrap();
        log.append(&mut disk, b"second").unwrap();
        log.commit(&mut disk).unwrap();
        let data = disk.files.get_mut("ct.log").unwrap();
        let last = data.len() - 1;
        data[last] ^= 0xff;
        let (log, rec) = CtLog::open(&mut disk, "ct.log").unwrap();
        assert_eq!(rec.entries, 1);
        assert_eq!(rec.truncated_bytes, (HEADER_BYTES + 6) as u64);
        assert_eq!(log.size(), 1);
    }

    #[test]
    fn oversized_and_empty_entries_are_refused_and_nothing_is_written() {
        let mut disk = Disk::default();
        let (mut log, _) = CtLog::open(&mut disk, "ct.log").unwrap();
        assert!(matches!(log.append(&mut disk, &[]), Err(CtError::EntrySize { len: 0 })));
        let big = vec![1u8; ENTRY_BYTES_MAX + 1];
        assert!(matches!(log.append(&mut disk, &big), Err(CtError::EntrySize { .. })));
        assert_eq!(disk.size("ct.log").unwrap(), 0);
        assert_eq!(log.size(), 0);
    }

    #[test]
    fn replay_spans_many_read_chunks() {
        let mut disk = Disk::default();
        let (mut log, _) = CtLog::open(&mut disk, "ct.log").unwrap();
        let entry = vec![7u8; 40_000];
        for _ in 0..60 {
            log.append(&mut disk, &entry).unwrap();
        }
        log.commit(&mut disk).unwrap();
        let root = log.tree().root();
        let (again, rec) = CtLog::open(&mut disk, "ct.log").unwrap();
        assert_eq!(rec.entries, 60);
        assert_eq!(again.tree().root(), root);
    }
}

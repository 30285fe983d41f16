//! The certificate-transparency log: entries appended to a Merkle tree and to an append-only
//! file through the runtime's `Storage`, so the log survives crash and restart.
//!
//! File format: a sequence of records `len: u32 LE | check: 8 bytes | entry: len bytes`, where
//! `check` is the first 8 bytes of the entry's leaf hash (computed anyway for the tree, so the
//! check is free, and a flipped bit anywhere in a record fails it).
//!
//! Durability is explicit: [`CtLog::append`] writes, [`CtLog::commit`] syncs, then records the
//! committed size (entries and bytes) in a small checksummed marker (`FILE.committed`, two slots,
//! see [`crate::durable`]), and advances the durable size; tree heads are only ever signed at the
//! durable size. So a signed tree head never promises an entry a crash could lose, and a batch of
//! appends costs one sync of the log and one of the marker.
//!
//! On open the records are replayed. A bad record past the committed size can only be a write
//! a crash tore or lost before its commit, and is cut off. A bad record *within* the committed
//! size is damage to entries signed tree heads may cover: cutting there would reuse their indices
//! and break consistency with published heads, so opening refuses with [`CtError::Corrupt`],
//! naming the offset; [`verify`] checks every record for the operator.
//!
//! A failed write or sync is fatal for the log, as PostgreSQL treats a failed fsync since the
//! 2018 "fsyncgate" findings: the kernel may have dropped the unsynced pages, so a retried sync
//! that succeeds proves nothing. The log refuses every append and commit ([`CtError::Failed`])
//! until [`CtLog::recover`] has cut the file back to its committed size, durably, and replayed it.

use runtime::{Storage, StorageError};

use super::sth::SignedTreeHead;
use crate::durable;

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
    /// A write or sync failed earlier: nothing more is appended or committed until
    /// [`CtLog::recover`] succeeds.
    #[error(
        "CT log {file}: an earlier write or sync failed, so what was not committed may be lost; \
         appends are refused until the log is recovered to its committed size ({committed} entries)"
    )]
    Failed {
        /// The log file.
        file: String,
        /// Entries known durable.
        committed: u64,
    },
    /// A committed record is damaged: the log cannot be opened without losing entries that
    /// signed tree heads may cover.
    #[error(
        "CT log {file}: the record at byte {offset} (entry {entry}) is damaged ({what}), within the \
         {committed} committed entries; refusing to cut committed entries. Restore the file from a \
         backup, then run `trustchain ct verify` to check every record and published tree head"
    )]
    Corrupt {
        /// The log file.
        file: String,
        /// Where the damaged record starts.
        offset: u64,
        /// Its entry index.
        entry: u64,
        /// Entries the marker says were committed.
        committed: u64,
        /// What is wrong with it.
        what: &'static str,
    },
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
    /// Where the durable entries end in the file.
    durable_end: u64,
    /// The marker's sequence number (see [`crate::durable`]).
    marker_seq: u64,
    /// A write or sync failed since the last recovery.
    failed: bool,
}

/// What the marker says was committed: entries, and the bytes they take.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
struct Committed {
    entries: u64,
    bytes: u64,
}

fn marker_name(file: &str) -> String {
    format!("{file}.committed")
}

fn load_marker(storage: &mut dyn Storage, file: &str) -> Result<(u64, Option<Committed>), CtError> {
    let Some((seq, body)) = durable::load(storage, &marker_name(file))? else {
        return Ok((0, None));
    };
    let committed = (body.len() == 16).then(|| Committed {
        entries: u64::from_be_bytes(body[..8].try_into().expect("8 bytes")),
        bytes: u64::from_be_bytes(body[8..].try_into().expect("8 bytes")),
    });
    Ok((seq, committed))
}

/// A record found while replaying.
enum Replayed {
    /// A whole record whose check holds: its leaf hash and length.
    Record(Hash, u64),
    /// The end of the file.
    End,
    /// A record cut short or failing its check.
    Bad(&'static str),
}

/// Reads the log's records in order, a chunk at a time.
struct Replay<'a> {
    storage: &'a mut dyn Storage,
    file: &'a str,
    len: u64,
    offset: u64,
    buf: Vec<u8>,
    buf_at: u64,
}

impl Replay<'_> {
    fn has(&self, bytes: usize) -> bool {
        self.offset + bytes as u64 <= self.buf_at + self.buf.len() as u64
    }

    fn fill(&mut self, bytes: usize) -> Result<bool, StorageError> {
        if !self.has(bytes) {
            self.buf = self
                .storage
                .read_at(self.file, self.offset, REPLAY_CHUNK_BYTES.max(bytes))?;
            self.buf_at = self.offset;
        }
        Ok(self.has(bytes))
    }

    fn next(&mut self) -> Result<Replayed, StorageError> {
        if self.offset >= self.len {
            return Ok(Replayed::End);
        }
        if !self.fill(HEADER_BYTES)? {
            return Ok(Replayed::Bad("cut short in its header"));
        }
        let at = (self.offset - self.buf_at) as usize;
        let entry_len = u32::from_le_bytes(self.buf[at..at + 4].try_into().expect("4 bytes")) as usize;
        if entry_len == 0 || entry_len > ENTRY_BYTES_MAX {
            return Ok(Replayed::Bad("impossible length"));
        }
        let record = HEADER_BYTES + entry_len;
        if !self.fill(record)? {
            return Ok(Replayed::Bad("cut short"));
        }
        let at = (self.offset - self.buf_at) as usize;
        let hash = leaf_hash(&self.buf[at + HEADER_BYTES..at + record]);
        if hash[..8] != self.buf[at + 4..at + 12] {
            return Ok(Replayed::Bad("check failed"));
        }
        self.offset += record as u64;
        Ok(Replayed::Record(hash, record as u64))
    }
}

impl CtLog {
    /// Opens (or creates) the log in `file`, replaying it and cutting off a torn tail past the
    /// committed size. A damaged committed record is an error ([`CtError::Corrupt`]), as is a
    /// file shorter than what was committed.
    pub fn open(storage: &mut dyn Storage, file: &str) -> Result<(CtLog, Recovery), CtError> {
        let (marker_seq, committed) = load_marker(storage, file)?;
        let len = storage.size(file)?;
        let mut tree = MerkleTree::new();
        let mut replay = Replay {
            storage,
            file,
            len,
            offset: 0,
            buf: Vec::new(),
            buf_at: 0,
        };
        let bad = loop {
            match replay.next()? {
                Replayed::Record(hash, _) => {
                    tree.append_hash(hash);
                }
                Replayed::End => break None,
                Replayed::Bad(what) => break Some(what),
            }
        };
        let offset = replay.offset;
        // Without a marker (a log written before markers existed) the whole valid prefix counts
        // as committed: nothing in it is cut.
        let committed = committed.unwrap_or(Committed {
            entries: tree.size(),
            bytes: offset,
        });
        if tree.size() < committed.entries {
            return Err(CtError::Corrupt {
                file: file.to_string(),
                offset,
                entry: tree.size(),
                committed: committed.entries,
                what: bad.unwrap_or("missing: the file ends before its committed entries"),
            });
        }
        let truncated_bytes = len - offset;
        if bad.is_some() {
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
                durable_end: offset,
                marker_seq,
                failed: false,
            },
            Recovery {
                entries,
                truncated_bytes,
            },
        ))
    }

    /// Brings a failed log back to its committed entries: cuts the file at the committed size,
    /// durably, and replays it. Entries appended since the last commit are gone (none of them
    /// was handed out: [`crate::logged`] hands a certificate out only once it is committed).
    pub fn recover(&mut self, storage: &mut dyn Storage) -> Result<Recovery, CtError> {
        storage.truncate(&self.file, self.durable_end)?;
        storage.sync(&self.file)?;
        let (log, recovery) = CtLog::open(storage, &self.file)?;
        *self = log;
        Ok(recovery)
    }

    /// Whether a write or sync failed since the log was opened or last recovered.
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    fn refuse_if_failed(&self) -> Result<(), CtError> {
        if self.failed {
            return Err(CtError::Failed {
                file: self.file.clone(),
                committed: self.durable,
            });
        }
        Ok(())
    }

    /// Appends `entry` (not yet durable: see [`CtLog::commit`]); returns its leaf index.
    pub fn append(&mut self, storage: &mut dyn Storage, entry: &[u8]) -> Result<u64, CtError> {
        self.refuse_if_failed()?;
        if entry.is_empty() || entry.len() > ENTRY_BYTES_MAX {
            return Err(CtError::EntrySize { len: entry.len() });
        }
        let hash = leaf_hash(entry);
        let mut record = Vec::with_capacity(HEADER_BYTES + entry.len());
        record.extend_from_slice(&(entry.len() as u32).to_le_bytes());
        record.extend_from_slice(&hash[..8]);
        record.extend_from_slice(entry);
        // Written before the tree changes: a failed write leaves the tree as it was, and the log
        // failed (part of the record may be in the file).
        if let Err(e) = storage.write_at(&self.file, self.end, &record) {
            self.failed = true;
            return Err(e.into());
        }
        self.end += record.len() as u64;
        Ok(self.tree.append_hash(hash))
    }

    /// Makes every appended entry durable; returns the durable size.
    pub fn commit(&mut self, storage: &mut dyn Storage) -> Result<u64, CtError> {
        self.refuse_if_failed()?;
        if self.durable < self.tree.size() {
            let committed = Committed {
                entries: self.tree.size(),
                bytes: self.end,
            };
            let mut marker = committed.entries.to_be_bytes().to_vec();
            marker.extend_from_slice(&committed.bytes.to_be_bytes());
            let synced = storage
                .sync(&self.file)
                .and_then(|()| durable::save(storage, &marker_name(&self.file), self.marker_seq + 1, &marker));
            self.marker_seq += 1;
            if let Err(e) = synced {
                self.failed = true;
                return Err(e.into());
            }
            self.durable = committed.entries;
            self.durable_end = committed.bytes;
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

/// What [`verify`] found, record by record and head by head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    /// Whole records whose check holds, from the start.
    pub entries: u64,
    /// The bytes they take.
    pub bytes: u64,
    /// The file's length.
    pub file_bytes: u64,
    /// Entries the committed marker names (`None`: no marker).
    pub committed: Option<u64>,
    /// Published tree heads checked.
    pub heads_checked: usize,
    /// Everything wrong, in words; empty when the log is sound.
    pub problems: Vec<String>,
}

impl Verification {
    /// Whether every record, the marker and every head check out.
    pub fn is_sound(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks every record of the log in `file` (without changing anything), the committed marker
/// against them, and each of `heads` (tree heads the log published) against the log's public key
/// and the tree the records build: the operator's check after damage, or before trusting a
/// restored backup.
pub fn verify(
    storage: &mut dyn Storage,
    file: &str,
    heads: &[SignedTreeHead],
    log_public_key: &[u8],
) -> Result<Verification, CtError> {
    let (_, committed) = load_marker(storage, file)?;
    let len = storage.size(file)?;
    let mut tree = MerkleTree::new();
    let mut replay = Replay {
        storage,
        file,
        len,
        offset: 0,
        buf: Vec::new(),
        buf_at: 0,
    };
    let mut problems = Vec::new();
    let mut bytes = 0;
    loop {
        match replay.next()? {
            Replayed::Record(hash, record_bytes) => {
                tree.append_hash(hash);
                bytes += record_bytes;
            }
            Replayed::End => break,
            Replayed::Bad(what) => {
                problems.push(format!(
                    "record {} at byte {} is damaged ({what}); {} bytes follow it",
                    tree.size(),
                    replay.offset,
                    len - replay.offset
                ));
                break;
            }
        }
    }
    if let Some(c) = committed {
        if c.entries > tree.size() || c.bytes > bytes {
            problems.push(format!(
                "the marker says {} entries ({} bytes) were committed, but only {} whole records ({bytes} bytes) check out",
                c.entries,
                c.bytes,
                tree.size()
            ));
        }
    }
    for head in heads {
        if head.verify(log_public_key).is_err() {
            problems.push(format!(
                "the tree head of size {} is not signed by this log's key",
                head.tree_size
            ));
        } else if head.tree_size > tree.size() {
            problems.push(format!(
                "the published tree head of size {} covers entries the log no longer holds (it has {})",
                head.tree_size,
                tree.size()
            ));
        } else if tree.root_at(head.tree_size)? != head.root_hash {
            problems.push(format!(
                "the published tree head of size {} has a root the log's records do not build",
                head.tree_size
            ));
        }
    }
    Ok(Verification {
        entries: tree.size(),
        bytes,
        file_bytes: len,
        committed: committed.map(|c| c.entries),
        heads_checked: heads.len(),
        problems,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

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
    fn a_record_whose_check_fails_past_the_committed_size_is_cut_off() {
        let mut disk = Disk::default();
        let (mut log, _) = CtLog::open(&mut disk, "ct.log").unwrap();
        log.append(&mut disk, b"first").unwrap();
        log.commit(&mut disk).unwrap();
        log.append(&mut disk, b"second").unwrap();
        // Written but never committed, and garbled (a crash mid-write).
        let data = disk.files.get_mut("ct.log").unwrap();
        let last = data.len() - 1;
        data[last] ^= 0xff;
        let (log, rec) = CtLog::open(&mut disk, "ct.log").unwrap();
        assert_eq!(rec.entries, 1);
        assert_eq!(rec.truncated_bytes, (HEADER_BYTES + 6) as u64);
        assert_eq!(log.size(), 1);
    }

    #[test]
    fn a_damaged_committed_record_refuses_to_open_names_its_offset_and_cuts_nothing() {
        let mut disk = Disk::default();
        let (mut log, _) = CtLog::open(&mut disk, "ct.log").unwrap();
        for entry in [&b"first"[..], b"second", b"third"] {
            log.append(&mut disk, entry).unwrap();
        }
        log.commit(&mut disk).unwrap();
        let key = crate::ct::LogKey::from_seed(&[3; 32]);
        let head = key.sign(3, 0, log.tree().root_at(3).unwrap());
        // Rot in the middle of the second record.
        let second = (HEADER_BYTES + 5) as u64;
        disk.files.get_mut("ct.log").unwrap()[second as usize + HEADER_BYTES + 2] ^= 0x10;
        let before = disk.files["ct.log"].clone();
        match CtLog::open(&mut disk, "ct.log") {
            Err(CtError::Corrupt {
                offset,
                entry,
                committed,
                ..
            }) => assert_eq!((offset, entry, committed), (second, 1, 3)),
            other => panic!("opened a log with a damaged committed record: {other:?}"),
        }
        assert_eq!(disk.files["ct.log"], before, "a committed entry was cut");
        let report = verify(&mut disk, "ct.log", &[head], &key.public_key()).unwrap();
        assert_eq!(report.entries, 1);
        assert_eq!(report.committed, Some(3));
        assert!(!report.is_sound());
        assert!(
            report.problems.iter().any(|p| p.contains(&format!("at byte {second}"))),
            "{:?}",
            report.problems
        );
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.contains("covers entries the log no longer holds")),
            "{:?}",
            report.problems
        );
    }

    #[test]
    fn a_sound_log_verifies_against_its_published_heads() {
        let mut disk = Disk::default();
        let (mut log, _) = CtLog::open(&mut disk, "ct.log").unwrap();
        let key = crate::ct::LogKey::from_seed(&[3; 32]);
        let mut heads = Vec::new();
        for i in 0..5u32 {
            log.append(&mut disk, format!("certificate {i}").as_bytes()).unwrap();
            let size = log.commit(&mut disk).unwrap();
            heads.push(key.sign(size, 0, log.tree().root_at(size).unwrap()));
        }
        let report = verify(&mut disk, "ct.log", &heads, &key.public_key()).unwrap();
        assert!(report.is_sound(), "{:?}", report.problems);
        assert_eq!((report.entries, report.heads_checked), (5, 5));
        let other = crate::ct::LogKey::from_seed(&[4; 32]);
        let report = verify(&mut disk, "ct.log", &heads[..1], &other.public_key()).unwrap();
        assert!(report.problems[0].contains("not signed by this log's key"));
    }

    /// A write (offset, bytes) or, without bytes, a truncation to the offset.
    type PendingOp = (u64, Option<Vec<u8>>);

    /// A disk that fails syncs as Linux does since "fsyncgate": the writes a failed sync was to
    /// make durable are dropped from writeback (still read back, never written), and a crash
    /// keeps only what was durable.
    #[derive(Default)]
    struct FsyncGate {
        current: BTreeMap<String, Vec<u8>>,
        durable: BTreeMap<String, Vec<u8>>,
        pending: BTreeMap<String, Vec<PendingOp>>,
        fail_syncs: usize,
    }

    impl FsyncGate {
        fn crash(&mut self) {
            self.current = self.durable.clone();
            self.pending.clear();
        }
    }

    impl Storage for FsyncGate {
        fn read_at(&mut self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>, StorageError> {
            let data = self.current.get(name).map(Vec::as_slice).unwrap_or(&[]);
            let start = (offset as usize).min(data.len());
            Ok(data[start..(start + len).min(data.len())].to_vec())
        }
        fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> Result<(), StorageError> {
            apply(self.current.entry(name.into()).or_default(), offset, Some(data));
            self.pending
                .entry(name.into())
                .or_default()
                .push((offset, Some(data.to_vec())));
            Ok(())
        }
        fn size(&mut self, name: &str) -> Result<u64, StorageError> {
            Ok(self.current.get(name).map_or(0, |d| d.len() as u64))
        }
        fn truncate(&mut self, name: &str, len: u64) -> Result<(), StorageError> {
            apply(self.current.entry(name.into()).or_default(), len, None);
            self.pending.entry(name.into()).or_default().push((len, None));
            Ok(())
        }
        fn sync(&mut self, name: &str) -> Result<(), StorageError> {
            let ops = self.pending.remove(name).unwrap_or_default();
            if self.fail_syncs > 0 {
                self.fail_syncs -= 1;
                return Err(StorageError::Io {
                    name: name.into(),
                    reason: "injected EIO on fsync".into(),
                });
            }
            let image = self.durable.entry(name.into()).or_default();
            for (offset, data) in ops {
                apply(image, offset, data.as_deref());
            }
            Ok(())
        }
        fn remove(&mut self, name: &str) -> Result<(), StorageError> {
            self.current.remove(name);
            self.durable.remove(name);
            Ok(())
        }
        fn list(&mut self) -> Result<Vec<String>, StorageError> {
            Ok(self.current.keys().cloned().collect())
        }
    }

    /// A write of `data` at `offset`, or (no data) a truncation to `offset`.
    fn apply(file: &mut Vec<u8>, offset: u64, data: Option<&[u8]>) {
        match data {
            Some(data) => {
                let end = offset as usize + data.len();
                if file.len() < end {
                    file.resize(end, 0);
                }
                file[offset as usize..end].copy_from_slice(data);
            }
            None => file.resize(offset as usize, 0),
        }
    }

    #[test]
    fn a_failed_sync_fails_the_log_until_recovered_and_no_entry_called_durable_is_lost() {
        let mut disk = FsyncGate::default();
        let (mut log, _) = CtLog::open(&mut disk, "ct.log").unwrap();
        log.append(&mut disk, b"first").unwrap();
        assert_eq!(log.commit(&mut disk).unwrap(), 1);
        log.append(&mut disk, b"second").unwrap();
        disk.fail_syncs = 1;
        assert!(log.commit(&mut disk).is_err());
        // A retried sync would succeed and prove nothing: the log refuses instead.
        assert!(matches!(
            log.append(&mut disk, b"third"),
            Err(CtError::Failed { committed: 1, .. })
        ));
        assert!(matches!(log.commit(&mut disk), Err(CtError::Failed { .. })));
        let recovery = log.recover(&mut disk).unwrap();
        assert_eq!(recovery.entries, 1, "back to the committed entries");
        log.append(&mut disk, b"third").unwrap();
        let durable = log.commit(&mut disk).unwrap();
        let root = log.tree().root_at(durable).unwrap();
        disk.crash();
        let (after, _) = CtLog::open(&mut disk, "ct.log").expect("a committed log opens after a crash");
        assert_eq!(after.size(), durable, "an entry the log called durable is gone");
        assert_eq!(after.tree().root_at(durable).unwrap(), root);
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

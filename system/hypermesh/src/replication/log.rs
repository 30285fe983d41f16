//! [`BlockLog`]: the replicated log on a node's `Storage`, one record per committed height.
//!
//! **Layout.** Records go to segment files of [`SEGMENT_BLOCKS`] heights each
//! (`BASE.<first height, 16 hex digits>`), so a snapshot lets whole segments be deleted. Segments
//! end at multiples of [`SEGMENT_BLOCKS`]; only the first may start between them, in a log
//! started again after a snapshot taken from peers ([`BlockLog::restart_at`]). A record
//! is `len: u32 | height: u64 | check: 8 bytes | payload`, where `check` is the first 8 bytes of
//! SHA-256 over height and payload: a torn write, a record from another height, and a flipped
//! bit anywhere all fail it. A checksummed marker (`BASE.committed`, in three copies or two
//! slots: see [`MarkerCopies`] and [`runtime::durable`]) holds the highest height ever committed:
//! the height below which everything was synced, which never moves back.
//!
//! **Durability.** [`BlockLog::append`] writes; [`BlockLog::commit`] syncs every segment written
//! since, then the marker. A failed write or sync fails the log, as a failed fsync is fatal in
//! PostgreSQL since the 2018 "fsyncgate" findings (the kernel may have dropped the pages, so a
//! later successful sync proves nothing): appends and commits are refused until
//! [`BlockLog::recover`] has cut every segment back to what was committed, durably.
//!
//! **Damage.** On open, a bad record with intact ones after it is rot (torn and lost writes are
//! only ever the last ones): it is kept in place and reads as damaged ([`Recovery::holes`]), and
//! the intact records after it stay; the owner decides what a hole costs (a replica fetches the
//! committed block again from peers and keeps the later ones meanwhile). A bad record at the end
//! past the committed height is a write a crash tore or lost, and is cut off. One at the end
//! *below* it is damage to committed blocks (bit rot, a lost write-back): unlike a log whose
//! records exist nowhere else, these blocks are held by every replica and certified by a quorum,
//! so the log is cut at the damage and [`Recovery::lost`] says which heights to fetch again from
//! peers, at every open until they are committed again (the marker keeps its claim: rewriting it
//! at open would depend on a write that may fail, and a
//! failed one could hide the loss from the next open). Nothing damaged is ever returned.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes, BytesMut};
use ring::digest::{digest, SHA256};
use runtime::{durable, Storage, StorageError};

/// Heights per segment file.
pub const SEGMENT_BLOCKS: u64 = 1024;
/// The largest record payload (an encoded block and its certificate).
pub const RECORD_BYTES_MAX: usize = 8 << 20;
const HEADER_BYTES: usize = 4 + 8 + 8;
/// The longest log name: it prefixes segment files, which must fit
/// [`runtime::FILE_NAME_BYTES_MAX`] with a 17-character suffix and a protocol's namespace.
pub const BASE_BYTES_MAX: usize = 24;

/// What went wrong with the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The storage failed.
    #[error("block log storage: {0}")]
    Storage(#[from] StorageError),
    /// A payload above [`RECORD_BYTES_MAX`], or empty.
    #[error("block record of {len} bytes refused: records are 1 to {RECORD_BYTES_MAX} bytes")]
    RecordSize {
        /// Its length.
        len: usize,
    },
    /// Heights are appended in order, each once.
    #[error("block {height} appended where block {expected} is next")]
    OutOfOrder {
        /// The height given.
        height: u64,
        /// The height expected.
        expected: u64,
    },
    /// A record past the commit marker's claim read back damaged twice when it was to be
    /// written again ([`BlockLog::rewrite_uncommitted`]).
    #[error(
        "block log {base}: block {height}, past the commit marker's claim, reads back damaged: it was \
         not written again, and the log is not cut there (the claim may be older than the truth)"
    )]
    Damaged {
        /// The log.
        base: String,
        /// The damaged record's height.
        height: u64,
    },
    /// An earlier write or sync failed: nothing more until [`BlockLog::recover`].
    #[error(
        "block log {base}: an earlier write or sync failed, so what was not committed may be lost; \
         appends are refused until it is recovered to its committed height {committed}"
    )]
    Failed {
        /// The log.
        base: String,
        /// Heights below this are durable.
        committed: u64,
    },
}

/// What opening (or recovering) the log found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// The first height held (after pruning below a snapshot).
    pub first: u64,
    /// The next height to append: heights `first..next` are held, intact but for
    /// [`Recovery::holes`].
    pub next: u64,
    /// Bytes of torn or unsynced records cut off past the committed height.
    pub truncated_bytes: u64,
    /// Committed heights found damaged or missing, cut off: fetch them again from peers.
    pub lost: Option<std::ops::Range<u64>>,
    /// The marker of the highest height committed was found damaged in every copy: heights
    /// past [`Recovery::next`] may have been committed and lost, how many is unknown.
    pub marker_lost: bool,
    /// Records found damaged between intact ones when opening, kept in place so that the intact
    /// ones after them are not lost: each reads as damaged ([`BlockLog::get`] gives `None`).
    /// Recovering reads nothing, and reports 0.
    pub holes: u64,
}

impl Recovery {
    /// How many committed heights were found lost ([`Recovery::lost`]'s length).
    pub fn lost_heights(&self) -> u64 {
        self.lost.as_ref().map_or(0, |r| r.end - r.start)
    }
}

#[derive(Clone, Debug, Default)]
struct Segment {
    /// Where each record of the segment starts, by height - first.
    offsets: Vec<u64>,
    /// Bytes written.
    len: u64,
    /// Bytes written since the last sync.
    dirty: bool,
}

/// A node's replicated log: see the module documentation.
#[derive(Debug)]
pub struct BlockLog {
    base: String,
    first: u64,
    next: u64,
    /// Heights below this are durable (held and synced), and so are the segment lengths in
    /// `durable_lens`.
    committed: u64,
    /// The marker's claim: the highest height ever committed (at least `committed`).
    high_water: u64,
    durable_lens: BTreeMap<u64, u64>,
    segments: BTreeMap<u64, Segment>,
    /// Where the claim is kept.
    marker: Marker,
    failed: bool,
}

fn check(height: u64, payload: &[u8]) -> [u8; 8] {
    let mut buf = Vec::with_capacity(8 + payload.len());
    buf.extend_from_slice(&height.to_be_bytes());
    buf.extend_from_slice(payload);
    digest(&SHA256, &buf).as_ref()[..8].try_into().expect("8 bytes")
}

fn segment_of(height: u64) -> u64 {
    height - height % SEGMENT_BLOCKS
}

/// The first height after the segment that starts at `first` (aligned or not).
fn segment_end(first: u64) -> u64 {
    segment_of(first) + SEGMENT_BLOCKS
}

fn segment_name(base: &str, first: u64) -> String {
    format!("{base}.{first:016x}")
}

/// How a log keeps its marker of the highest height committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkerCopies {
    /// Three copies ([`durable::Mirror`], three syncs a commit): a claim lost in every copy is
    /// reported. For a log whose committed records must never be lost unnoticed.
    Three,
    /// Two slots written in turn ([`durable::save`], one sync a commit): rot of the newest may
    /// understate the claim and hide records lost. For a log whose records may be lost, such as
    /// the proposals a replica voted for (held so that a certified block stays available; a
    /// lost one is fetched from the other voters).
    Two,
}

#[derive(Debug)]
enum Marker {
    Three(durable::Mirror),
    Two { seq: u64 },
}

fn marker_name(base: &str) -> String {
    format!("{base}.committed")
}

impl BlockLog {
    /// Opens (or creates) the log named `base` (at most [`BASE_BYTES_MAX`] bytes of
    /// `[a-z0-9_-]`), replaying every segment.
    ///
    /// # Panics
    /// If `base` is not such a name: it is chosen by code, not read from input.
    pub fn open(storage: &mut dyn Storage, base: &str) -> Result<(BlockLog, Recovery), LogError> {
        BlockLog::open_with(storage, base, MarkerCopies::Three)
    }

    /// [`BlockLog::open`], with its marker kept as `copies` says (a log is always opened with
    /// the same).
    ///
    /// # Panics
    /// As [`BlockLog::open`].
    pub fn open_with(
        storage: &mut dyn Storage,
        base: &str,
        copies: MarkerCopies,
    ) -> Result<(BlockLog, Recovery), LogError> {
        assert!(
            !base.is_empty()
                && base.len() <= BASE_BYTES_MAX
                && base
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'),
            "block log name {base:?}"
        );
        let (marker, claim, marker_lost) = match copies {
            MarkerCopies::Three => {
                let (mirror, claim) = durable::Mirror::load(storage, &marker_name(base))?;
                // Every copy damaged (one torn by a crash while the others rotted): how far the
                // log had committed is unknown, and said so.
                let lost = mirror.lost();
                (Marker::Three(mirror), claim, lost)
            }
            MarkerCopies::Two => {
                let loaded = durable::load(storage, &marker_name(base))?;
                let seq = loaded.as_ref().map_or(0, |(seq, _)| *seq);
                (Marker::Two { seq }, loaded.map(|(_, claim)| claim), false)
            }
        };
        let high_water = match &claim {
            Some(body) if body.len() == 8 => u64::from_be_bytes(body[..8].try_into().expect("8 bytes")),
            _ => 0,
        };
        let prefix = format!("{base}.");
        let mut firsts: Vec<u64> = storage
            .list()?
            .iter()
            .filter_map(|name| name.strip_prefix(&prefix))
            .filter(|rest| rest.len() == 16)
            .filter_map(|hex| u64::from_str_radix(hex, 16).ok())
            .collect();
        firsts.sort_unstable();
        // Only the lowest segment may start between multiples (a log started again after a
        // snapshot); any other such file is the new start of a restart that a crash interrupted
        // before it removed the old segments, and goes (the old log stands).
        // So is an empty one with segments after it: a restart that failed and was never done
        // again (its replica caught up on blocks instead), its file the lowest once pruning
        // took the segments below it.
        let mut lowest = firsts.first().copied();
        if let Some(first) = lowest.filter(|f| f % SEGMENT_BLOCKS != 0 && firsts.len() > 1) {
            if storage.size(&segment_name(base, first))? == 0 {
                lowest = None;
            }
        }
        let mut stray_bytes = 0;
        for first in firsts
            .iter()
            .filter(|f| *f % SEGMENT_BLOCKS != 0 && Some(**f) != lowest)
        {
            let name = segment_name(base, *first);
            stray_bytes += storage.size(&name)?;
            storage.remove(&name)?;
        }
        firsts.retain(|first| first % SEGMENT_BLOCKS == 0 || Some(*first) == lowest);
        let mut log = BlockLog {
            base: base.to_string(),
            first: firsts.first().copied().unwrap_or(0),
            next: 0,
            committed: 0,
            high_water,
            durable_lens: BTreeMap::new(),
            segments: BTreeMap::new(),
            marker,
            failed: false,
        };
        log.next = log.first;
        let mut truncated_bytes = stray_bytes;
        let mut holes = 0;
        let mut damaged_at: Option<u64> = None;
        for (i, first) in firsts.iter().copied().enumerate() {
            let name = segment_name(base, first);
            let len = storage.size(&name)?;
            if damaged_at.is_some() || first != log.next {
                // After a cut, or not adjacent to what came before: nothing here can be used.
                truncated_bytes += len;
                storage.remove(&name)?;
                continue;
            }
            let bytes = storage.read_at(&name, 0, len as usize)?;
            let (segment, damaged, bad) = replay(first, &bytes);
            holes += damaged;
            log.next = first + segment.offsets.len() as u64;
            if bad {
                damaged_at = Some(log.next);
                truncated_bytes += len - segment.len;
                storage.truncate(&name, segment.len)?;
                storage.sync(&name)?;
            } else if log.next < segment_end(first) && i + 1 < firsts.len() {
                // A segment ending early with another after it: the later one cannot follow.
                damaged_at = Some(log.next);
            }
            log.segments.insert(first, segment);
        }
        // A later recovery cuts back only to what was found here, never below: every intact
        // record found is kept. Records past the marker's claim may sit only in the page cache
        // (a sync that failed before a restart without a power cut); losing them in a crash
        // loses nothing committed, but no later sync writes them either: an owner that goes on
        // from them must write them again first (`rewrite_uncommitted`), as the development
        // chain does. A consensus replica does not yet: after a power cut that drops them below
        // a later claim, its next open reports those heights lost, and it fetches them again
        // from its peers. (Cutting back to the claim instead would destroy
        // committed records whenever the claim read lower than the truth, as it does when the
        // newest marker slot has rotted and the older one is read.)
        for (first, segment) in &mut log.segments {
            let held = segment.offsets.len() as u64;
            log.durable_lens.insert(*first, segment.len);
            segment.dirty = first + held > high_water;
        }
        let lost = (log.next < high_water).then_some(log.next..high_water);
        log.committed = high_water.min(log.next);
        let recovery = Recovery {
            first: log.first,
            next: log.next,
            truncated_bytes,
            lost,
            marker_lost,
            holes,
        };
        Ok((log, recovery))
    }

    /// The first height held.
    pub fn first(&self) -> u64 {
        self.first
    }

    /// The next height to append.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Heights below this are durable.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// Whether a write or sync failed since the log was opened or last recovered.
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    fn refuse_if_failed(&self) -> Result<(), LogError> {
        if self.failed {
            return Err(LogError::Failed {
                base: self.base.clone(),
                committed: self.committed,
            });
        }
        Ok(())
    }

    /// Appends the record of `height` (which must be [`BlockLog::next`]); durable after
    /// [`BlockLog::commit`].
    pub fn append(&mut self, storage: &mut dyn Storage, height: u64, payload: &[u8]) -> Result<(), LogError> {
        self.refuse_if_failed()?;
        if payload.is_empty() || payload.len() > RECORD_BYTES_MAX {
            return Err(LogError::RecordSize { len: payload.len() });
        }
        if height != self.next {
            return Err(LogError::OutOfOrder {
                height,
                expected: self.next,
            });
        }
        let mut record = BytesMut::with_capacity(HEADER_BYTES + payload.len());
        record.put_u32(payload.len() as u32);
        record.put_u64(height);
        record.put_slice(&check(height, payload));
        record.put_slice(payload);
        let first = self.segment_key(height);
        let segment = self.segments.entry(first).or_default();
        if let Err(e) = storage.write_at(&segment_name(&self.base, first), segment.len, &record) {
            self.failed = true;
            return Err(e.into());
        }
        segment.offsets.push(segment.len);
        segment.len += record.len() as u64;
        segment.dirty = true;
        self.next += 1;
        Ok(())
    }

    /// Makes every appended record durable; returns the committed height (heights below it).
    pub fn commit(&mut self, storage: &mut dyn Storage) -> Result<u64, LogError> {
        self.refuse_if_failed()?;
        if self.committed == self.next {
            return Ok(self.committed);
        }
        for (first, segment) in &mut self.segments {
            if !segment.dirty {
                continue;
            }
            if let Err(e) = storage.sync(&segment_name(&self.base, *first)) {
                self.failed = true;
                return Err(e.into());
            }
            segment.dirty = false;
            self.durable_lens.insert(*first, segment.len);
        }
        let high_water = self.high_water.max(self.next);
        if let Err(e) = self.save_claim(storage, high_water) {
            self.failed = true;
            return Err(e);
        }
        self.committed = self.next;
        self.high_water = high_water;
        Ok(self.committed)
    }

    /// Saves the marker's claim that heights below `high_water` are committed.
    fn save_claim(&mut self, storage: &mut dyn Storage, high_water: u64) -> Result<(), LogError> {
        // In three copies: the claim only grows, and an older claim read back after the newest rotted
        // would hide committed heights lost to damage (swarm-consensus with storage faults,
        // seed 9: a replica recovered 123 of 215 committed heights and reported none lost).
        let name = marker_name(&self.base);
        let saved = match &mut self.marker {
            Marker::Three(mirror) => mirror.save(storage, &name, &high_water.to_be_bytes()),
            Marker::Two { seq } => {
                // The sequence moves only once a save succeeded: a failed one is tried again in
                // the slot it damaged, and the other keeps the last claim that was durable
                // (moving on after a failure wrote over that one next).
                let saved = durable::save(storage, &name, *seq + 1, &high_water.to_be_bytes());
                if saved.is_ok() {
                    *seq += 1;
                }
                saved
            }
        };
        Ok(saved?)
    }

    /// Writes again, in place, the records past the marker's claim ([`BlockLog::committed`]),
    /// so that the next [`BlockLog::commit`] makes them durable: found at open, they may sit only
    /// in the page cache, dropped from writeback by a sync that failed before the log was opened
    /// again without a power cut ("fsyncgate"), and then no later sync writes them. Each record
    /// read is checked for its height before it is written back, and one that fails is read
    /// once more (rot in the read path passes). One that fails twice is refused
    /// ([`LogError::Damaged`]), neither written back (it would be claimed durable, damaged, by
    /// the next commit) nor cut: the claim may read older than the truth (its newest copy
    /// rotted), so the record may be a committed one, and only its owner knows whether it can
    /// be fetched again. The records before it are written back. The bytes written are the ones
    /// read and checked, so a crash while writing them leaves a record either as it was or torn
    /// past the claim, which the next open cuts. Returns the bytes written.
    pub fn rewrite_uncommitted(&mut self, storage: &mut dyn Storage) -> Result<u64, LogError> {
        self.refuse_if_failed()?;
        let mut written = 0;
        for (first, segment) in &mut self.segments {
            let held = segment.offsets.len() as u64;
            if first + held <= self.committed {
                continue;
            }
            let from = self.committed.saturating_sub(*first);
            let offset = segment.offsets.get(from as usize).copied().unwrap_or(segment.len);
            let name = segment_name(&self.base, *first);
            let bytes = storage.read_at(&name, offset, (segment.len - offset) as usize)?;
            // The records as read, each checked for its height (a short read ends them early),
            // and one that fails read again on its own.
            let mut checked = Vec::with_capacity(bytes.len());
            let mut damaged = None;
            for height in first + from..first + held {
                let at = (segment.offsets[(height - first) as usize] - offset) as usize;
                let end = segment
                    .offsets
                    .get((height - first + 1) as usize)
                    .copied()
                    .unwrap_or(segment.len);
                let len = (end - offset) as usize - at;
                if parse(bytes.get(at..at + len).unwrap_or(&[]), height).is_some() {
                    checked.extend_from_slice(&bytes[at..at + len]);
                    continue;
                }
                let again = storage.read_at(&name, offset + at as u64, len)?;
                if parse(&again, height).is_some() {
                    checked.extend_from_slice(&again);
                    continue;
                }
                damaged = Some(height);
                break;
            }
            if !checked.is_empty() {
                if let Err(e) = storage.write_at(&name, offset, &checked) {
                    self.failed = true;
                    return Err(e.into());
                }
                segment.dirty = true;
                written += checked.len() as u64;
            }
            if let Some(height) = damaged {
                return Err(LogError::Damaged {
                    base: self.base.clone(),
                    height,
                });
            }
        }
        Ok(written)
    }

    /// Brings a failed log back to what is durable: cuts every segment to its durable length
    /// and deletes those started since, durably. Records appended since the last commit are
    /// gone. Nothing is read again: a read may rot what it reads, and a cut found that way below
    /// the heights a replica already applied would leave its log behind its state.
    pub fn recover(&mut self, storage: &mut dyn Storage) -> Result<Recovery, LogError> {
        let lengths: BTreeMap<u64, u64> = self
            .segments
            .keys()
            .map(|first| (*first, self.durable_lens.get(first).copied().unwrap_or(0)))
            .collect();
        self.cut(storage, &lengths)
    }

    /// Cuts the log at `height` (a record found rotted when read back): it and every later
    /// record are deleted, durably, and reported lost up to the highest height ever committed,
    /// to fetch again from peers. A height at or past [`BlockLog::next`] cuts nothing.
    pub fn cut_at(&mut self, storage: &mut dyn Storage, height: u64) -> Result<Recovery, LogError> {
        let height = height.max(self.first);
        let lengths: BTreeMap<u64, u64> = self
            .segments
            .iter()
            .map(|(first, segment)| {
                let len = if *first > height {
                    0
                } else {
                    segment
                        .offsets
                        .get((height - first) as usize)
                        .copied()
                        .unwrap_or(segment.len)
                };
                (*first, len)
            })
            .collect();
        self.cut(storage, &lengths)
    }

    /// Cuts each segment to the length given (a segment after one left short is deleted, and
    /// so is one cut to nothing, unless it is the first), syncs, and sets the log to what is
    /// left; clears a failure.
    fn cut(&mut self, storage: &mut dyn Storage, lengths: &BTreeMap<u64, u64>) -> Result<Recovery, LogError> {
        // Until every cut is durable, nothing more is appended (a retry cuts again).
        self.failed = true;
        let mut truncated_bytes = 0;
        let mut ended = false;
        let mut removed = Vec::new();
        for (first, segment) in &mut self.segments {
            let name = segment_name(&self.base, *first);
            let keep = if ended { 0 } else { lengths[first].min(segment.len) };
            if keep == 0 && *first != self.first {
                storage.remove(&name)?;
                truncated_bytes += segment.len;
                removed.push(*first);
                ended = true;
                continue;
            }
            // Cut and synced even at its own length: a write that failed may have left bytes
            // past it.
            storage.truncate(&name, keep)?;
            storage.sync(&name)?;
            truncated_bytes += segment.len - keep;
            segment.offsets.retain(|offset| *offset < keep);
            segment.len = keep;
            segment.dirty = false;
            ended |= first + segment.offsets.len() as u64 != segment_end(*first);
        }
        for first in removed {
            self.segments.remove(&first);
        }
        self.durable_lens = self.segments.iter().map(|(f, s)| (*f, s.len)).collect();
        self.next = self
            .segments
            .iter()
            .next_back()
            .map_or(self.first, |(f, s)| f + s.offsets.len() as u64);
        self.committed = self.high_water.min(self.next);
        self.failed = false;
        Ok(Recovery {
            first: self.first,
            next: self.next,
            truncated_bytes,
            lost: (self.next < self.high_water).then_some(self.next..self.high_water),
            marker_lost: false,
            holes: 0,
        })
    }

    /// The record of `height`, if held and intact (a record that fails its check now, rotted
    /// since it was written, is reported as `None`, never returned).
    pub fn get(&self, storage: &mut dyn Storage, height: u64) -> Result<Option<Bytes>, LogError> {
        if height < self.first || height >= self.next {
            return Ok(None);
        }
        let first = self.segment_key(height);
        let Some(segment) = self.segments.get(&first) else {
            return Ok(None);
        };
        let offset = segment.offsets[(height - first) as usize];
        let end = segment
            .offsets
            .get((height - first) as usize + 1)
            .copied()
            .unwrap_or(segment.len);
        let bytes = storage.read_at(&segment_name(&self.base, first), offset, (end - offset) as usize)?;
        Ok(parse(&bytes, height).map(|(payload, _)| Bytes::copy_from_slice(payload)))
    }

    /// The records of `from` and up to `count - 1` after it, each if intact (`None` for one that
    /// fails its check), in one read: at most to the end of `from`'s segment, and never past
    /// [`BlockLog::next`]; empty if `from` is not held. One read instead of one per record: a
    /// read is a chance for the medium to rot what it reads.
    pub fn get_many(&self, storage: &mut dyn Storage, from: u64, count: u64) -> Result<Vec<Option<Bytes>>, LogError> {
        if from < self.first || from >= self.next || count == 0 {
            return Ok(Vec::new());
        }
        let first = self.segment_key(from);
        let Some(segment) = self.segments.get(&first) else {
            return Ok(Vec::new());
        };
        let start = (from - first) as usize;
        let end = (start + count as usize).min(segment.offsets.len());
        let begin = segment.offsets[start];
        let stop = segment.offsets.get(end).copied().unwrap_or(segment.len);
        let bytes = storage.read_at(&segment_name(&self.base, first), begin, (stop - begin) as usize)?;
        Ok((start..end)
            .map(|i| {
                let at = (segment.offsets[i] - begin) as usize;
                bytes
                    .get(at..)
                    .and_then(|rest| parse(rest, first + i as u64))
                    .map(|(payload, _)| Bytes::copy_from_slice(payload))
            })
            .collect())
    }

    /// Deletes every segment whose heights are all below `height` (a durable snapshot covers
    /// them); returns the first height still held.
    pub fn prune_below(&mut self, storage: &mut dyn Storage, height: u64) -> Result<u64, LogError> {
        let height = height.min(self.committed);
        let doomed: Vec<u64> = self
            .segments
            .keys()
            .copied()
            .filter(|first| segment_end(*first) <= height)
            .collect();
        for first in doomed {
            storage.remove(&segment_name(&self.base, first))?;
            self.segments.remove(&first);
            self.durable_lens.remove(&first);
            self.first = segment_end(first);
        }
        Ok(self.first)
    }

    /// The key of the segment holding `height`: its aligned start, or the log's first height
    /// if that is later (a first segment started between multiples).
    fn segment_key(&self, height: u64) -> u64 {
        segment_of(height).max(self.first)
    }

    /// Starts the log again, empty, at `height`: every record is deleted and the next one
    /// appended is `height`'s. For a replica that took a snapshot of height `height` from
    /// peers (its own records below are not needed, and the heights between are held by no
    /// record of its own). Done in an order a crash anywhere leaves either the old log or the
    /// new: the new first segment is created first (an unaligned file that an open keeps only
    /// as the lowest), then the old segments are removed from the lowest on, then the marker
    /// claims `height`. A failure fails the log; calling this again finishes the job.
    pub fn restart_at(&mut self, storage: &mut dyn Storage, height: u64) -> Result<(), LogError> {
        self.failed = true;
        let name = segment_name(&self.base, height);
        storage.truncate(&name, 0)?;
        storage.sync(&name)?;
        // What is held in memory follows the disk step by step, so a failure part-way leaves a
        // log that recovers to what the disk holds: the old segments go from the lowest on, as
        // pruning takes them (the log still ends where it did), ...
        let old: Vec<u64> = self.segments.keys().copied().filter(|first| *first != height).collect();
        for first in old {
            storage.remove(&segment_name(&self.base, first))?;
            self.segments.remove(&first);
            self.durable_lens.remove(&first);
            self.first = segment_end(first).min(self.next);
        }
        // ... then the log is the new one, before the marker claims it.
        self.segments.insert(height, Segment::default());
        self.durable_lens.insert(height, 0);
        self.first = height;
        self.next = height;
        self.committed = self.high_water.min(height);
        let high_water = self.high_water.max(height);
        self.save_claim(storage, high_water)?;
        self.committed = height;
        self.high_water = high_water;
        self.failed = false;
        Ok(())
    }
}

/// The payload of the record at the start of `bytes` if it is whole, for `height`, and its
/// check holds; with the record's length.
fn parse(bytes: &[u8], height: u64) -> Option<(&[u8], usize)> {
    let header = bytes.get(..HEADER_BYTES)?;
    let len = u32::from_be_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    if len == 0 || len > RECORD_BYTES_MAX {
        return None;
    }
    if u64::from_be_bytes(header[4..12].try_into().expect("8 bytes")) != height {
        return None;
    }
    let payload = bytes.get(HEADER_BYTES..HEADER_BYTES + len)?;
    (check(height, payload) == header[12..20]).then_some((payload, HEADER_BYTES + len))
}

/// The records of a segment starting at height `first`, how many of them are damaged records
/// kept in place between intact ones (holes), and whether it ended in a bad one (cut short, out
/// of sequence, or failing its check, with no intact record after it).
///
/// A damaged record followed by intact ones is rot, not a torn or lost write (those are only
/// ever the last records written): the intact records after it are kept, and the damaged one
/// reads as damaged ([`BlockLog::get`] gives `None`). Cutting there instead destroyed every
/// later record with it: one flipped bit in a log of voted proposals lost, on each of the three
/// voters, the only copies of a certified block, and no block ever committed again
/// (swarm-consensus-crash-heavy seed 74 at 9f442ed).
fn replay(first: u64, bytes: &[u8]) -> (Segment, u64, bool) {
    let mut segment = Segment::default();
    let mut holes = 0;
    let mut at = 0usize;
    while at < bytes.len() {
        let height = first + segment.offsets.len() as u64;
        if height >= segment_end(first) {
            return (segment, holes, true);
        }
        match parse(&bytes[at..], height) {
            Some((_, record)) => {
                segment.offsets.push(at as u64);
                at += record;
                segment.len = at as u64;
            }
            None => match next_intact(first, bytes, at + 1, height) {
                Some((next_at, next_height)) => {
                    // Every height from the damaged one to the intact one starts at the damage:
                    // each reads as damaged.
                    for _ in height..next_height {
                        segment.offsets.push(at as u64);
                        holes += 1;
                    }
                    at = next_at;
                }
                None => return (segment, holes, true),
            },
        }
    }
    (segment, holes, false)
}

/// The first intact record of the segment starting at `first` at or after byte `from` whose
/// height is above `after`, with that height.
fn next_intact(first: u64, bytes: &[u8], from: usize, after: u64) -> Option<(usize, u64)> {
    (from..bytes.len().saturating_sub(HEADER_BYTES - 1)).find_map(|p| {
        let height = u64::from_be_bytes(bytes[p + 4..p + 12].try_into().expect("8 bytes"));
        (height > after && height < segment_end(first) && parse(&bytes[p..], height).is_some()).then_some((p, height))
    })
}

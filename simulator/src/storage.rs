//! Simulated durable storage with the failure modes of real disks and kernels.
//!
//! Each file keeps what is durable apart from what has merely been written. A crash keeps the
//! durable image plus, at random, a prefix of the unsynced operations, the last of which may be
//! torn (only some of its bytes reached the platter). I/O errors are injected per operation.
//!
//! A failed sync behaves as Linux's does since the 2018 "fsyncgate" findings: the writes it was
//! to make durable are dropped from writeback (reads still see them, from the page cache, but no
//! later sync writes them), so a program that retries the sync and believes it is told "durable"
//! loses them at the next crash. Durable bytes can rot: a read may flip a bit of the image for
//! good. And the simulator can crash a node *at* a mutating call ([`StorageFaults::crash_at_io`]),
//! between a write and its sync, which is where torn and lost writes live.

use std::collections::BTreeMap;
use std::time::Duration;

use runtime::{validate_file_name, DetRng, Entropy, StorageError};

use crate::FaultCounts;

/// Storage faults to inject, per node.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct StorageFaults {
    /// Probability each read, write or sync fails with an I/O error. A failed sync drops the
    /// writes it was to make durable (see the module documentation).
    pub io_error: f64,
    /// Whether a crash may leave a partially written last operation (otherwise unsynced
    /// operations survive whole or not at all).
    pub torn_writes: bool,
    /// Probability the node crashes at each write, truncate or sync, before it takes effect: the
    /// call and everything after it in the same callback never happened. Counted as
    /// `crash_at_io`; the node restarts after [`StorageFaults::crash_restart_after`].
    pub crash_at_io: f64,
    /// How long a node crashed at a storage call stays down.
    pub crash_restart_after: Duration,
    /// Probability a read finds one bit of what it reads flipped on the medium (bit rot): the
    /// flip stays, in the durable image too. Counted as `bit_rot`.
    pub read_bitflip: f64,
}

impl Default for StorageFaults {
    /// No faults; a node crashed at a storage call would restart after one second.
    fn default() -> Self {
        StorageFaults {
            io_error: 0.0,
            torn_writes: false,
            crash_at_io: 0.0,
            crash_restart_after: Duration::from_secs(1),
            read_bitflip: 0.0,
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Write { offset: u64, data: Vec<u8> },
    Truncate { len: u64 },
}

impl Op {
    fn apply(&self, file: &mut Vec<u8>) {
        match self {
            Op::Write { offset, data } => write_into(file, *offset, data),
            Op::Truncate { len } => file.resize(*len as usize, 0),
        }
    }
}

fn write_into(file: &mut Vec<u8>, offset: u64, data: &[u8]) {
    let start = offset as usize;
    let end = start + data.len();
    if file.len() < end {
        file.resize(end, 0);
    }
    file[start..end].copy_from_slice(data);
}

#[derive(Clone, Debug, Default)]
struct SimFile {
    /// What survives a crash; `None` if the file's creation was never synced.
    durable: Option<Vec<u8>>,
    /// What reads see.
    current: Vec<u8>,
    /// Operations since the last sync, oldest first.
    unsynced: Vec<Op>,
}

/// One node's disk.
#[derive(Clone, Debug, Default)]
pub struct SimStorage {
    files: BTreeMap<String, SimFile>,
    faults: StorageFaults,
}

/// The largest simulated file; far above what any protocol here writes, and a guard against a
/// runaway offset allocating the host's memory.
pub const SIM_FILE_BYTES_MAX: u64 = 1 << 30;

impl SimStorage {
    /// An empty disk with `faults`.
    pub fn new(faults: StorageFaults) -> Self {
        SimStorage {
            files: BTreeMap::new(),
            faults,
        }
    }

    /// The faults this disk injects.
    pub fn faults(&self) -> &StorageFaults {
        &self.faults
    }

    /// Injects `faults` from now on (what the disk holds is left as it is).
    pub fn set_faults(&mut self, faults: StorageFaults) {
        self.faults = faults;
    }

    /// Whether the node crashes at the mutating call about to be made (drawn from `rng`).
    pub fn crash_strikes(&self, rng: &mut DetRng) -> bool {
        rng.chance(self.faults.crash_at_io)
    }

    fn inject(&self, name: &str, op: &str, rng: &mut DetRng, counts: &mut FaultCounts) -> Result<(), StorageError> {
        if rng.chance(self.faults.io_error) {
            counts.add("storage_io_error");
            return Err(StorageError::Io {
                name: name.to_string(),
                reason: format!("injected I/O error on {op}"),
            });
        }
        Ok(())
    }

    /// Reads up to `len` bytes at `offset`.
    pub fn read_at(
        &mut self,
        name: &str,
        offset: u64,
        len: usize,
        rng: &mut DetRng,
        counts: &mut FaultCounts,
    ) -> Result<Vec<u8>, StorageError> {
        validate_file_name(name)?;
        self.inject(name, "read", rng, counts)?;
        let rot = self.faults.read_bitflip;
        let Some(file) = self.files.get_mut(name) else {
            return Ok(Vec::new());
        };
        let start = (offset as usize).min(file.current.len());
        let end = start.saturating_add(len).min(file.current.len());
        if end > start && rng.chance(rot) {
            let bit = rng.below((end - start) as u64 * 8);
            let at = start + (bit / 8) as usize;
            let mask = 1u8 << (bit % 8);
            file.current[at] ^= mask;
            // The medium rotted, not the cache: the flip is durable too where the byte is.
            if let Some(byte) = file.durable.as_mut().and_then(|d| d.get_mut(at)) {
                *byte ^= mask;
            }
            counts.add("bit_rot");
        }
        Ok(file.current[start..end].to_vec())
    }

    /// Writes `data` at `offset` (visible now, durable after sync).
    pub fn write_at(
        &mut self,
        name: &str,
        offset: u64,
        data: &[u8],
        rng: &mut DetRng,
        counts: &mut FaultCounts,
    ) -> Result<(), StorageError> {
        validate_file_name(name)?;
        if offset.saturating_add(data.len() as u64) > SIM_FILE_BYTES_MAX {
            return Err(StorageError::Io {
                name: name.to_string(),
                reason: format!("write beyond the {SIM_FILE_BYTES_MAX}-byte file limit"),
            });
        }
        self.inject(name, "write", rng, counts)?;
        let file = self.files.entry(name.to_string()).or_default();
        let op = Op::Write {
            offset,
            data: data.to_vec(),
        };
        op.apply(&mut file.current);
        file.unsynced.push(op);
        Ok(())
    }

    /// The file's current length.
    pub fn size(&self, name: &str) -> Result<u64, StorageError> {
        validate_file_name(name)?;
        Ok(self.files.get(name).map_or(0, |f| f.current.len() as u64))
    }

    /// Sets the file's length.
    pub fn truncate(
        &mut self,
        name: &str,
        len: u64,
        rng: &mut DetRng,
        counts: &mut FaultCounts,
    ) -> Result<(), StorageError> {
        validate_file_name(name)?;
        if len > SIM_FILE_BYTES_MAX {
            return Err(StorageError::Io {
                name: name.to_string(),
                reason: format!("length beyond the {SIM_FILE_BYTES_MAX}-byte file limit"),
            });
        }
        self.inject(name, "truncate", rng, counts)?;
        let file = self.files.entry(name.to_string()).or_default();
        let op = Op::Truncate { len };
        op.apply(&mut file.current);
        file.unsynced.push(op);
        Ok(())
    }

    /// Makes the file's writes since the last sync durable. If it fails, those writes are
    /// dropped from writeback: still read back, never made durable by a later sync (counted as
    /// `writeback_lost`).
    pub fn sync(&mut self, name: &str, rng: &mut DetRng, counts: &mut FaultCounts) -> Result<(), StorageError> {
        validate_file_name(name)?;
        if let Err(e) = self.inject(name, "sync", rng, counts) {
            if let Some(file) = self.files.get_mut(name) {
                counts.add_n("writeback_lost", file.unsynced.len() as u64);
                file.unsynced.clear();
            }
            return Err(e);
        }
        if let Some(file) = self.files.get_mut(name) {
            // Durable is what was durable plus what this sync wrote back, not what reads see:
            // writes a failed sync dropped stay out.
            let mut image = file.durable.take().unwrap_or_default();
            for op in file.unsynced.drain(..) {
                op.apply(&mut image);
            }
            file.durable = Some(image);
        }
        Ok(())
    }

    /// Deletes the file, durably.
    pub fn remove(&mut self, name: &str) -> Result<(), StorageError> {
        validate_file_name(name)?;
        self.files.remove(name);
        Ok(())
    }

    /// Every file name, sorted.
    pub fn list(&self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }

    /// What the disk holds after a power cut: durable images plus a random prefix of each file's
    /// unsynced operations, the last possibly torn. Counts what was lost.
    pub fn crash(&mut self, rng: &mut DetRng, counts: &mut FaultCounts) {
        let torn_writes = self.faults.torn_writes;
        self.files.retain(|_, file| {
            let pending = file.unsynced.len();
            if pending == 0 {
                // Reads may have seen writes a failed sync dropped: the page cache is gone now.
                file.current = file.durable.clone().unwrap_or_default();
                return file.durable.is_some();
            }
            let survived = rng.below(pending as u64 + 1) as usize;
            let was_durable = file.durable.is_some();
            let mut image = file.durable.take().unwrap_or_default();
            for op in &file.unsynced[..survived] {
                op.apply(&mut image);
            }
            let mut lost = pending - survived;
            if torn_writes && survived < pending {
                if let Op::Write { offset, data } = &file.unsynced[survived] {
                    let kept = rng.below(data.len() as u64 + 1) as usize;
                    if kept > 0 && kept < data.len() {
                        write_into(&mut image, *offset, &data[..kept]);
                        counts.add("torn_write");
                        lost -= 1;
                    }
                }
            }
            counts.add_n("unsynced_write_lost", lost as u64);
            let exists = survived > 0 || was_durable || !image.is_empty();
            file.current = image.clone();
            file.durable = Some(image);
            file.unsynced.clear();
            exists
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (SimStorage, DetRng, FaultCounts) {
        (
            SimStorage::new(StorageFaults::default()),
            DetRng::seed_from_u64(1),
            FaultCounts::default(),
        )
    }

    #[test]
    fn synced_data_survives_a_crash() {
        let (mut disk, mut rng, mut counts) = setup();
        disk.write_at("f", 0, b"hello", &mut rng, &mut counts).unwrap();
        disk.sync("f", &mut rng, &mut counts).unwrap();
        disk.crash(&mut rng, &mut counts);
        assert_eq!(disk.read_at("f", 0, 10, &mut rng, &mut counts).unwrap(), b"hello");
        assert_eq!(counts.get("unsynced_write_lost"), 0);
    }

    #[test]
    fn unsynced_writes_can_be_lost_and_are_counted() {
        let mut lost_seen = false;
        for seed in 0..32 {
            let (mut disk, _, mut counts) = setup();
            let mut rng = DetRng::seed_from_u64(seed);
            disk.write_at("f", 0, b"old", &mut rng, &mut counts).unwrap();
            disk.sync("f", &mut rng, &mut counts).unwrap();
            disk.write_at("f", 0, b"new", &mut rng, &mut counts).unwrap();
            disk.crash(&mut rng, &mut counts);
            let after = disk.read_at("f", 0, 3, &mut rng, &mut counts).unwrap();
            assert!(after == b"old" || after == b"new");
            if after == b"old" {
                lost_seen = true;
                assert_eq!(counts.get("unsynced_write_lost"), 1);
            }
        }
        assert!(lost_seen, "no seed lost the unsynced write");
    }

    #[test]
    fn torn_writes_leave_a_prefix() {
        let mut torn_seen = false;
        for seed in 0..64 {
            let mut disk = SimStorage::new(StorageFaults {
                torn_writes: true,
                ..StorageFaults::default()
            });
            let mut rng = DetRng::seed_from_u64(seed);
            let mut counts = FaultCounts::default();
            disk.write_at("f", 0, &[0u8; 8], &mut rng, &mut counts).unwrap();
            disk.sync("f", &mut rng, &mut counts).unwrap();
            disk.write_at("f", 0, &[1u8; 8], &mut rng, &mut counts).unwrap();
            disk.crash(&mut rng, &mut counts);
            let after = disk.read_at("f", 0, 8, &mut rng, &mut counts).unwrap();
            let ones = after.iter().take_while(|b| **b == 1).count();
            assert!(after[ones..].iter().all(|b| *b == 0), "not a prefix: {after:?}");
            if counts.get("torn_write") == 1 {
                torn_seen = true;
                assert!(ones > 0 && ones < 8);
            }
        }
        assert!(torn_seen, "no seed tore the write");
    }

    #[test]
    fn a_never_synced_file_vanishes_on_crash() {
        let (mut disk, mut rng, mut counts) = setup();
        // Seed 1 may keep the write; the file exists afterwards exactly when its bytes survived.
        disk.write_at("g", 0, b"x", &mut rng, &mut counts).unwrap();
        disk.crash(&mut rng, &mut counts);
        let exists = disk.list().contains(&"g".to_string());
        assert_eq!(exists, counts.get("unsynced_write_lost") == 0);
    }

    #[test]
    fn a_file_synced_while_empty_survives_a_crash_that_loses_its_later_writes() {
        let mut lost_seen = false;
        for seed in 0..32 {
            let (mut disk, _, mut counts) = setup();
            let mut rng = DetRng::seed_from_u64(seed);
            disk.truncate("f", 0, &mut rng, &mut counts).unwrap();
            disk.sync("f", &mut rng, &mut counts).unwrap();
            disk.write_at("f", 0, b"x", &mut rng, &mut counts).unwrap();
            disk.crash(&mut rng, &mut counts);
            assert!(
                disk.list().contains(&"f".to_string()),
                "seed {seed}: a durable file vanished"
            );
            lost_seen |= counts.get("unsynced_write_lost") == 1;
        }
        assert!(lost_seen, "no seed lost the write");
    }

    #[test]
    fn injected_io_errors_fail_the_operation_and_are_counted() {
        let mut disk = SimStorage::new(StorageFaults {
            io_error: 1.0,
            ..StorageFaults::default()
        });
        let (mut rng, mut counts) = (DetRng::seed_from_u64(1), FaultCounts::default());
        assert!(disk.write_at("f", 0, b"x", &mut rng, &mut counts).is_err());
        assert_eq!(disk.size("f").unwrap(), 0);
        assert_eq!(counts.get("storage_io_error"), 1);
    }

    #[test]
    fn a_failed_sync_drops_its_writes_and_a_retried_sync_does_not_bring_them_back() {
        let (mut disk, mut rng, mut counts) = setup();
        disk.write_at("f", 0, b"old", &mut rng, &mut counts).unwrap();
        disk.sync("f", &mut rng, &mut counts).unwrap();
        disk.write_at("f", 0, b"new", &mut rng, &mut counts).unwrap();
        disk.faults.io_error = 1.0;
        assert!(disk.sync("f", &mut rng, &mut counts).is_err());
        assert_eq!(counts.get("writeback_lost"), 1);
        disk.faults.io_error = 0.0;
        // Still in the page cache: reads see it, and the retried sync succeeds...
        assert_eq!(disk.read_at("f", 0, 3, &mut rng, &mut counts).unwrap(), b"new");
        disk.sync("f", &mut rng, &mut counts).unwrap();
        // ...but it was never written back: a crash brings back what was durable before.
        disk.crash(&mut rng, &mut counts);
        assert_eq!(disk.read_at("f", 0, 3, &mut rng, &mut counts).unwrap(), b"old");
    }

    #[test]
    fn bit_rot_flips_one_bit_for_good_and_is_counted() {
        let mut disk = SimStorage::new(StorageFaults {
            read_bitflip: 1.0,
            ..StorageFaults::default()
        });
        let (mut rng, mut counts) = (DetRng::seed_from_u64(3), FaultCounts::default());
        disk.write_at("f", 0, &[0u8; 16], &mut rng, &mut counts).unwrap();
        disk.sync("f", &mut rng, &mut counts).unwrap();
        let read = disk.read_at("f", 0, 16, &mut rng, &mut counts).unwrap();
        assert_eq!(read.iter().map(|b| b.count_ones()).sum::<u32>(), 1, "{read:?}");
        assert_eq!(counts.get("bit_rot"), 1);
        disk.faults.read_bitflip = 0.0;
        disk.crash(&mut rng, &mut counts);
        assert_eq!(
            disk.read_at("f", 0, 16, &mut rng, &mut counts).unwrap(),
            read,
            "the flip is durable"
        );
    }
}

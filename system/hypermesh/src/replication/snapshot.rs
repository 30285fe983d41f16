//! Durable snapshots of a state machine: the newest one survives any crash, torn write or
//! flipped bit in the other (two checksummed slots, [`runtime::durable`]), so the log below it
//! can be pruned.

use bytes::Bytes;
use runtime::{durable, Storage, StorageError};

/// A snapshot as stored: the height it was taken at and the machine's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The last height applied to the state it holds.
    pub height: u64,
    /// [`super::StateMachine::snapshot`]'s bytes.
    pub state: Bytes,
}

/// A log's snapshots, under `BASE.snapshot`.
#[derive(Debug)]
pub struct Snapshots {
    name: String,
    seq: u64,
    held: Option<u64>,
}

impl Snapshots {
    /// The snapshots of the log named `base`, and the newest intact one.
    pub fn open(storage: &mut dyn Storage, base: &str) -> Result<(Snapshots, Option<Snapshot>), StorageError> {
        let name = format!("{base}.snapshot");
        let (seq, newest) = match durable::load(storage, &name)? {
            Some((seq, body)) if body.len() >= 8 => {
                let height = u64::from_be_bytes(body[..8].try_into().expect("8 bytes"));
                (
                    seq,
                    Some(Snapshot {
                        height,
                        state: Bytes::copy_from_slice(&body[8..]),
                    }),
                )
            }
            Some((seq, _)) => (seq, None),
            None => (0, None),
        };
        let held = newest.as_ref().map(|s| s.height);
        Ok((Snapshots { name, seq, held }, newest))
    }

    /// Durably stores `snapshot` as the newest. Heights only move forward: an older one is
    /// refused (`Ok(false)`), since the log below the newest may be gone.
    pub fn save(&mut self, storage: &mut dyn Storage, snapshot: &Snapshot) -> Result<bool, StorageError> {
        if self.held.is_some_and(|h| snapshot.height < h) {
            return Ok(false);
        }
        let mut body = snapshot.height.to_be_bytes().to_vec();
        body.extend_from_slice(&snapshot.state);
        // The sequence moves only once a save succeeded: a failed one is tried again in the slot
        // it damaged, and the other keeps the newest snapshot that was durable.
        durable::save(storage, &self.name, self.seq + 1, &body)?;
        self.seq += 1;
        self.held = Some(snapshot.height);
        Ok(true)
    }

    /// Lets the next save store a snapshot older than the one held: for a log started again
    /// after a snapshot taken from peers, where the one held is no longer vouched for by the
    /// log.
    pub fn forget_held(&mut self) {
        self.held = None;
    }

    /// The height of the newest snapshot stored.
    pub fn height(&self) -> Option<u64> {
        self.held
    }
}

#[cfg(test)]
mod tests {
    use runtime::MemStorage;

    use super::*;

    /// Failed saves are tried again in the slot they damaged: moving on to the other slot wrote
    /// over the newest snapshot that was durable, and two failures in a row (a full disk) left
    /// none.
    #[test]
    fn failed_saves_never_touch_the_slot_holding_the_newest_durable_snapshot() {
        let mut disk = MemStorage::default();
        let (mut snaps, _) = Snapshots::open(&mut disk, "blocks").unwrap();
        assert!(snaps.save(&mut disk, &snap(10)).unwrap());
        disk.refuse_writes(Some(""));
        for _ in 0..3 {
            assert!(snaps.save(&mut disk, &snap(20)).is_err());
        }
        assert_eq!(Snapshots::open(&mut disk, "blocks").unwrap().1, Some(snap(10)));
        disk.refuse_writes(None);
        assert!(snaps.save(&mut disk, &snap(20)).unwrap());
        assert!(snaps.save(&mut disk, &snap(30)).unwrap());
        // The two newest, one per slot: rot of the newest falls back to the one before.
        let (_, newest) = Snapshots::open(&mut disk, "blocks").unwrap();
        assert_eq!(newest, Some(snap(30)));
    }

    fn snap(height: u64) -> Snapshot {
        Snapshot {
            height,
            state: Bytes::from(vec![height as u8; 40]),
        }
    }

    #[test]
    fn the_newest_snapshot_loads_an_older_one_is_refused_and_rot_falls_back_a_slot() {
        let mut disk = MemStorage::default();
        let (mut snaps, none) = Snapshots::open(&mut disk, "blocks").unwrap();
        assert_eq!(none, None);
        assert!(snaps.save(&mut disk, &snap(10)).unwrap());
        assert!(snaps.save(&mut disk, &snap(20)).unwrap());
        assert!(
            !snaps.save(&mut disk, &snap(15)).unwrap(),
            "a snapshot older than the newest"
        );
        let (mut snaps, newest) = Snapshots::open(&mut disk, "blocks").unwrap();
        assert_eq!(newest, Some(snap(20)));
        // Saves alternate slots by sequence (1: b, 2: a, 3: b), not by height: 30 goes to b and
        // leaves 20 in a.
        assert!(snaps.save(&mut disk, &snap(30)).unwrap());
        assert_eq!(Snapshots::open(&mut disk, "blocks").unwrap().1, Some(snap(30)));
        let newest_slot = "blocks.snapshot.b";
        disk.files.get_mut(newest_slot).unwrap()[12] ^= 0x04;
        assert_eq!(Snapshots::open(&mut disk, "blocks").unwrap().1, Some(snap(20)));
    }
}

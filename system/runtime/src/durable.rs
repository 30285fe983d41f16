//! Crash-safe replacement of a small state file on the runtime's `Storage`.
//!
//! `Storage::write_all_synced` truncates before it writes, so a crash in between would lose the
//! old state. State is instead written to two slots in turn (`NAME.a`, `NAME.b`), each with a
//! sequence number and a checksum; loading takes the valid slot with the higher sequence. A torn
//! or half-synced write damages only the slot being written, and the other still holds the
//! previous state. [`save_mirrored`] writes both slots in turn instead, for a state whose
//! previous value must never be loaded as current.

use crate::{Storage, StorageError};
use ring::digest::{digest, SHA256};

const SLOTS: [&str; 2] = ["a", "b"];

fn slot_name(base: &str, slot: usize) -> String {
    format!("{base}.{}", SLOTS[slot])
}

fn checksum(body: &[u8]) -> [u8; 8] {
    digest(&SHA256, body).as_ref()[..8].try_into().expect("8 bytes")
}

/// The latest valid state under `base`: its sequence number and bytes, or `None` if neither slot
/// holds a valid one.
pub fn load(storage: &mut dyn Storage, base: &str) -> Result<Option<(u64, Vec<u8>)>, StorageError> {
    let mut best: Option<(u64, Vec<u8>)> = None;
    for slot in 0..SLOTS.len() {
        let bytes = storage.read_all(&slot_name(base, slot))?;
        if bytes.len() < 20 {
            continue;
        }
        let (body, sum) = bytes.split_at(bytes.len() - 8);
        if checksum(body) != sum {
            continue;
        }
        let seq = u64::from_be_bytes(body[..8].try_into().expect("8 bytes"));
        let len = u32::from_be_bytes(body[8..12].try_into().expect("4 bytes")) as usize;
        if len != body.len() - 12 {
            continue;
        }
        if best.as_ref().is_none_or(|(s, _)| seq > *s) {
            best = Some((seq, body[12..].to_vec()));
        }
    }
    Ok(best)
}

/// Writes `data` as sequence `seq` (one more than the last loaded or saved) into the slot the
/// previous sequence did not use, and syncs it.
pub fn save(storage: &mut dyn Storage, base: &str, seq: u64, data: &[u8]) -> Result<(), StorageError> {
    let name = slot_name(base, (seq % 2) as usize);
    storage.write_all_synced(&name, &encode(seq, data))
}

/// Writes `data` as sequence `seq` into both slots, one after the other, syncing each: for a
/// state whose previous value is no fallback (a claim that only grows, such as the last view a
/// validator voted in, or the height a log committed). With [`save`], a newest slot that rots
/// leaves the previous state to be loaded as if current; here its twin holds the same state. A
/// crash tears at most the slot being written while the other holds the previous state (first
/// slot) or this one (second slot), and the caller acts on neither until this returns `Ok`.
/// Costs a second write and sync.
pub fn save_mirrored(storage: &mut dyn Storage, base: &str, seq: u64, data: &[u8]) -> Result<(), StorageError> {
    let body = encode(seq, data);
    for slot in 0..SLOTS.len() {
        storage.write_all_synced(&slot_name(base, slot), &body)?;
    }
    Ok(())
}

fn encode(seq: u64, data: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(data.len() + 20);
    body.extend_from_slice(&seq.to_be_bytes());
    body.extend_from_slice(&(data.len() as u32).to_be_bytes());
    body.extend_from_slice(data);
    let sum = checksum(&body);
    body.extend_from_slice(&sum);
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemStorage as Disk;

    #[test]
    fn the_newest_intact_slot_wins_and_a_torn_write_keeps_the_previous_state() {
        let mut disk = Disk::default();
        assert_eq!(load(&mut disk, "s").unwrap(), None);
        save(&mut disk, "s", 1, b"one").unwrap();
        save(&mut disk, "s", 2, b"two").unwrap();
        assert_eq!(load(&mut disk, "s").unwrap(), Some((2, b"two".to_vec())));
        // Sequence 3 goes to slot b (where 1 was); tear it.
        save(&mut disk, "s", 3, b"three").unwrap();
        let mut torn = disk.read_all("s.b").unwrap();
        torn.truncate(torn.len() - 3);
        disk.write_all_synced("s.b", &torn).unwrap();
        assert_eq!(load(&mut disk, "s").unwrap(), Some((2, b"two".to_vec())));
        disk.write_all_synced("s.b", b"").unwrap();
        assert_eq!(load(&mut disk, "s").unwrap(), Some((2, b"two".to_vec())));
    }

    #[test]
    fn a_mirrored_state_survives_rot_of_either_slot_and_a_tear_of_either_write() {
        for rotted in ["s.a", "s.b"] {
            let mut disk = Disk::default();
            save_mirrored(&mut disk, "s", 1, b"one").unwrap();
            save_mirrored(&mut disk, "s", 2, b"two").unwrap();
            disk.files.get_mut(rotted).unwrap()[13] ^= 0x08;
            assert_eq!(
                load(&mut disk, "s").unwrap(),
                Some((2, b"two".to_vec())),
                "{rotted} rotted"
            );
        }
        // Torn while writing the first slot: the second still holds the previous state; torn
        // while writing the second: the first holds the new one.
        let mut disk = Disk::default();
        save_mirrored(&mut disk, "s", 1, b"one").unwrap();
        save_mirrored(&mut disk, "s", 2, b"two").unwrap();
        let torn = disk.read_all("s.a").unwrap()[..9].to_vec();
        disk.write_all_synced("s.a", &torn).unwrap();
        assert_eq!(load(&mut disk, "s").unwrap(), Some((2, b"two".to_vec())));
        disk.write_all_synced("s.a", &encode(3, b"three")).unwrap();
        disk.write_all_synced("s.b", &torn).unwrap();
        assert_eq!(load(&mut disk, "s").unwrap(), Some((3, b"three".to_vec())));
    }

    #[test]
    fn a_rotted_bit_in_the_newest_slot_is_detected_and_the_previous_state_loads() {
        for byte in 0..(20 + 4) {
            let mut disk = Disk::default();
            save(&mut disk, "s", 1, b"one").unwrap();
            save(&mut disk, "s", 2, b"four").unwrap();
            disk.files.get_mut("s.a").unwrap()[byte] ^= 0x08;
            assert_eq!(
                load(&mut disk, "s").unwrap(),
                Some((1, b"one".to_vec())),
                "a flip in byte {byte} of the newest slot was trusted"
            );
        }
    }
}

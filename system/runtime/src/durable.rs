//! Crash-safe replacement of a small state file on the runtime's `Storage`.
//!
//! `Storage::write_all_synced` truncates before it writes, so a crash in between would lose the
//! old state. State is instead written to two slots in turn (`NAME.a`, `NAME.b`), each with a
//! sequence number and a checksum; loading takes the valid slot with the higher sequence. A torn
//! or half-synced write damages only the slot being written, and the other still holds the
//! previous state. A [`Mirror`] writes three copies in turn instead, for a state whose previous
//! value must never be loaded as current.

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
        if let Some((seq, data)) = decode(&bytes) {
            if best.as_ref().is_none_or(|(s, _)| seq > *s) {
                best = Some((seq, data));
            }
        }
    }
    Ok(best)
}

/// A slot's sequence number and state, if it holds a whole one.
fn decode(bytes: &[u8]) -> Option<(u64, Vec<u8>)> {
    if bytes.len() < 20 {
        return None;
    }
    let (body, sum) = bytes.split_at(bytes.len() - 8);
    if checksum(body) != sum {
        return None;
    }
    let seq = u64::from_be_bytes(body[..8].try_into().expect("8 bytes"));
    let len = u32::from_be_bytes(body[8..12].try_into().expect("4 bytes")) as usize;
    (len == body.len() - 12).then(|| (seq, body[12..].to_vec()))
}

/// Writes `data` as sequence `seq` (one more than the last loaded or saved) into the slot the
/// previous sequence did not use, and syncs it.
pub fn save(storage: &mut dyn Storage, base: &str, seq: u64, data: &[u8]) -> Result<(), StorageError> {
    let name = slot_name(base, (seq % 2) as usize);
    storage.write_all_synced(&name, &encode(seq, data))
}

/// The copies a [`Mirror`] keeps: a crash tears at most the one being written, so two more
/// are needed for one to stay whole when a read finds another rotted.
const COPIES: [&str; 3] = ["a", "b", "c"];

fn copy_name(base: &str, copy: usize) -> String {
    format!("{base}.{}", COPIES[copy])
}

/// A state saved into three copies, one after the other, syncing each: for a state whose
/// previous value is no fallback (a claim that only grows, such as the last view a validator
/// voted in, or the height a log committed). With [`save`], a newest slot that rots leaves the
/// previous state to be loaded as if current; here the other copies hold the same state. With
/// two copies, a crash tearing the one being written while a read found the other rotted lost
/// the state (swarm-consensus seed 57: a validator restarted without its safety record, proposed
/// again in a view and was convicted). Costs two more writes and syncs than [`save`].
///
/// Each save writes the copy known to hold the last state saved (whole and synced) last, once
/// the others are durable, so one copy always holds a whole state: a write fails after
/// `write_all_synced` has truncated its file, and a crash may then keep that truncation, so a
/// save that began with the same copy every time could, after failures, leave none whole.
///
/// **States of one size** ([`Mirror::load_sized`]). A copy shorter than a whole state is torn,
/// emptied or never written; one of a whole state's length that does not verify has rotted (rot
/// flips bits, it does not change lengths). Each save then writes its short copies first, so
/// once a save has completed at most one copy is ever short (only the copy being written can
/// become short, and any short one was written before it). Two short copies and none whole
/// therefore mean no save ever completed, and nothing was acted on: not a loss. Without that
/// rule, a first save torn by a crash, leaving one whole copy that then rotted, halted a
/// replica that had never voted (swarm-consensus-crash-heavy seed 734).
///
/// **Repair.** Copies found damaged stay damaged until the next save, and every load is a
/// read that may rot another: [`Mirror::needs_repair`] says when the state loaded should be
/// saved again at once (swarm-consensus-crash-heavy seed 436: a replica restarted by crashes
/// again and again, without a save in between, found a copy more rotted at each start until
/// none was whole).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mirror {
    seq: u64,
    /// The copy known to hold the last state saved or loaded, whole and synced.
    held_by: usize,
    /// Copies that held bytes but no whole state when loaded.
    damaged: usize,
    /// With states of one size: their encoded length, and the copies known short (torn,
    /// emptied, never written: written first by the next save) and rotted.
    sized: Option<usize>,
    short: [bool; 3],
    rotted: [bool; 3],
}

impl Mirror {
    /// The latest valid state under `base`, and the mirror to save the next in.
    pub fn load(storage: &mut dyn Storage, base: &str) -> Result<(Mirror, Option<Vec<u8>>), StorageError> {
        Mirror::load_with(storage, base, None)
    }

    /// As [`Mirror::load`], for a state that is always `len` bytes (see *States of one size*):
    /// every save must be of that length.
    pub fn load_sized(
        storage: &mut dyn Storage,
        base: &str,
        len: usize,
    ) -> Result<(Mirror, Option<Vec<u8>>), StorageError> {
        Mirror::load_with(storage, base, Some(len + 20))
    }

    fn load_with(
        storage: &mut dyn Storage,
        base: &str,
        sized: Option<usize>,
    ) -> Result<(Mirror, Option<Vec<u8>>), StorageError> {
        let mut best: Option<(u64, usize, Vec<u8>)> = None;
        let mut mirror = Mirror {
            sized,
            ..Mirror::default()
        };
        for copy in 0..COPIES.len() {
            let bytes = storage.read_all(&copy_name(base, copy))?;
            let decoded = decode(&bytes);
            if decoded.is_none() {
                mirror.damaged += usize::from(!bytes.is_empty());
                match sized {
                    Some(whole) if bytes.len() < whole => mirror.short[copy] = true,
                    Some(_) => mirror.rotted[copy] = true,
                    None => {}
                }
            }
            match decoded {
                Some((seq, data)) if best.as_ref().is_none_or(|(s, _, _)| seq > *s) => {
                    best = Some((seq, copy, data));
                }
                _ => {}
            }
        }
        Ok(match best {
            Some((seq, held_by, data)) => (Mirror { seq, held_by, ..mirror }, Some(data)),
            None => (mirror, None),
        })
    }

    /// Whether a state was loaded while some copy held none whole (damaged, or with states of
    /// one size short): saving it again now rewrites them, before more rot finds the rest.
    pub fn needs_repair(&self) -> bool {
        self.seq > 0 && (self.damaged > 0 || self.short.iter().any(|s| *s))
    }

    /// Copies found holding bytes but no whole state when it was loaded (torn or rotted).
    pub fn damaged(&self) -> usize {
        self.damaged
    }

    /// Whether a state saved whole was lost: no copy whole, and more than one damaged. A save
    /// writes one copy at a time and a crash tears only the one being written, so no copy whole
    /// with one damaged and the others empty is a first save cut short (whose caller never
    /// acted on it, as it never returned `Ok`), not a loss; with states of one size, so is no
    /// copy whole with two short (see *States of one size*).
    pub fn lost(&self) -> bool {
        let never_completed = self.sized.is_some() && self.short.iter().filter(|s| **s).count() >= 2;
        self.seq == 0 && self.damaged >= 2 && !never_completed
    }

    /// Saves `data` under `base` as the next state: `Ok` once every copy holds it. After an
    /// error, a copy still holds this state or the one before whole.
    ///
    /// # Panics
    ///
    /// If the mirror was loaded sized ([`Mirror::load_sized`]) and `data` is of another length.
    pub fn save(&mut self, storage: &mut dyn Storage, base: &str, data: &[u8]) -> Result<(), StorageError> {
        self.seq += 1;
        let body = encode(self.seq, data);
        if let Some(whole) = self.sized {
            assert_eq!(body.len(), whole, "a sized mirror's states are all of one length");
        }
        let held = self.held_by;
        // Short copies first, then rotted, then whole ones, the held copy last.
        let mut order: Vec<usize> = (0..COPIES.len()).filter(|c| *c != held).collect();
        order.sort_by_key(|c| (!self.short[*c], !self.rotted[*c]));
        for copy in order.into_iter().chain([held]) {
            if let Err(e) = storage.write_all_synced(&copy_name(base, copy), &body) {
                // Truncated, perhaps, or its pages dropped: short until written whole.
                self.short[copy] = true;
                return Err(e);
            }
            self.short[copy] = false;
            self.rotted[copy] = false;
            self.held_by = copy;
        }
        self.damaged = 0;
        Ok(())
    }
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
        for rotted in ["s.a", "s.b", "s.c"] {
            let mut disk = Disk::default();
            let (mut mirror, none) = Mirror::load(&mut disk, "s").unwrap();
            assert_eq!(none, None);
            mirror.save(&mut disk, "s", b"one").unwrap();
            mirror.save(&mut disk, "s", b"two").unwrap();
            disk.files.get_mut(rotted).unwrap()[13] ^= 0x08;
            // And the copy written last torn by a crash.
            let torn = if rotted == "s.c" { "s.b" } else { "s.c" };
            disk.files.get_mut(torn).unwrap().truncate(9);
            let (mirror, loaded) = Mirror::load(&mut disk, "s").unwrap();
            assert_eq!(loaded.as_deref(), Some(&b"two"[..]), "{rotted} rotted, {torn} torn");
            assert_eq!(mirror.damaged(), 2);
        }
        let mut disk = Disk::default();
        let (mut mirror, _) = Mirror::load(&mut disk, "s").unwrap();
        mirror.save(&mut disk, "s", b"one").unwrap();
        for copy in ["s.a", "s.b", "s.c"] {
            disk.files.get_mut(copy).unwrap()[13] ^= 0x08;
        }
        let (mirror, loaded) = Mirror::load(&mut disk, "s").unwrap();
        assert_eq!(
            (loaded, mirror.damaged(), mirror.lost()),
            (None, 3, true),
            "lost, and said so"
        );
        // A first save torn by a crash in its first copy: nothing was ever saved whole.
        let mut disk = Disk::default();
        disk.write_all_synced("s.b", b"torn").unwrap();
        let (mirror, loaded) = Mirror::load(&mut disk, "s").unwrap();
        assert_eq!((loaded, mirror.damaged(), mirror.lost()), (None, 1, false));
    }

    /// Seed 734 of the crash-heavy swarm fixture: a first save torn by a crash (one copy whole,
    /// one torn, one never written) whose whole copy then rotted halted a replica that had never
    /// voted. With states of one size, two short copies say no save ever completed.
    #[test]
    fn a_sized_mirror_tells_a_first_save_cut_short_from_a_loss() {
        let len = 6;
        let mut disk = Disk::default();
        let (mut mirror, _) = Mirror::load_sized(&mut disk, "s", len).unwrap();
        mirror.save(&mut disk, "s", b"sized1").unwrap();
        // As if the crash came while the second copy was written, before the third.
        let whole = disk.read_all("s.b").unwrap();
        disk.write_all_synced("s.c", &whole[..whole.len() - 5]).unwrap();
        disk.write_all_synced("s.a", b"").unwrap();
        disk.files.get_mut("s.b").unwrap()[13] ^= 0x08;
        let (mirror, loaded) = Mirror::load_sized(&mut disk, "s", len).unwrap();
        assert_eq!((loaded, mirror.damaged(), mirror.lost()), (None, 2, false));
        // Loaded unsized, the same copies read as a loss (they cannot tell torn from rotted).
        let (mirror, _) = Mirror::load(&mut disk, "s").unwrap();
        assert!(mirror.lost());

        // A completed save, then one copy short and two rotted: lost, and said so.
        let mut disk = Disk::default();
        let (mut mirror, _) = Mirror::load_sized(&mut disk, "s", len).unwrap();
        mirror.save(&mut disk, "s", b"sized1").unwrap();
        disk.files.get_mut("s.a").unwrap().truncate(7);
        disk.files.get_mut("s.b").unwrap()[13] ^= 0x08;
        disk.files.get_mut("s.c").unwrap()[14] ^= 0x08;
        let (mirror, loaded) = Mirror::load_sized(&mut disk, "s", len).unwrap();
        assert_eq!((loaded, mirror.lost()), (None, true));
    }

    /// With states of one size, a save writes short copies first: once a save has completed, at
    /// most one copy is ever short, whichever writes fail.
    #[test]
    fn a_sized_mirror_writes_its_short_copies_first() {
        let len = 3;
        let mut disk = Disk::default();
        let (mut mirror, _) = Mirror::load_sized(&mut disk, "s", len).unwrap();
        mirror.save(&mut disk, "s", b"one").unwrap();
        for failing in ["s.a", "s.b", "s.c", "s.a", "s.c", "s.b"] {
            disk.refuse_writes(Some(failing));
            let _ = mirror.save(&mut disk, "s", b"two");
            let short = ["s.a", "s.b", "s.c"]
                .iter()
                .filter(|c| disk.read_all(c).unwrap().len() < len + 20)
                .count();
            assert!(short <= 1, "{short} copies short after {failing} failed");
            // And a restart in between loses nothing of what the mirror knew.
            let (reloaded, loaded) = Mirror::load_sized(&mut disk, "s", len).unwrap();
            assert!(loaded.is_some() && !reloaded.lost());
            mirror = reloaded;
        }
    }

    /// A state loaded from some damaged copies asks to be saved again; once saved, all are whole.
    #[test]
    fn a_mirror_loaded_from_damaged_copies_asks_for_repair() {
        let mut disk = Disk::default();
        let (mut mirror, _) = Mirror::load_sized(&mut disk, "s", 3).unwrap();
        mirror.save(&mut disk, "s", b"one").unwrap();
        let (whole, _) = Mirror::load_sized(&mut disk, "s", 3).unwrap();
        assert!(!whole.needs_repair());
        disk.files.get_mut("s.a").unwrap()[13] ^= 0x08;
        disk.files.get_mut("s.c").unwrap().truncate(0);
        let (mut damaged, loaded) = Mirror::load_sized(&mut disk, "s", 3).unwrap();
        assert!(damaged.needs_repair());
        damaged.save(&mut disk, "s", &loaded.unwrap()).unwrap();
        let (repaired, loaded) = Mirror::load_sized(&mut disk, "s", 3).unwrap();
        assert_eq!(
            (repaired.needs_repair(), repaired.damaged(), loaded.as_deref()),
            (false, 0, Some(&b"one"[..]))
        );
    }

    #[test]
    fn failed_saves_into_either_slot_leave_one_slot_whole() {
        let mut disk = Disk::default();
        let (mut mirror, _) = Mirror::load(&mut disk, "s").unwrap();
        mirror.save(&mut disk, "s", b"one").unwrap();
        // Whichever slot each save writes first fails, then the other: the slot written with
        // the same parity every time would leave both truncated.
        let mut last = b"one".to_vec();
        for (failing, saved) in [
            ("s.a", &b"two"[..]),
            ("s.b", b"three"),
            ("s.c", b"four"),
            ("s.a", b"five"),
        ] {
            disk.refuse_writes(Some(failing));
            let result = mirror.save(&mut disk, "s", saved);
            let (_, loaded) = Mirror::load(&mut disk, "s").unwrap();
            let loaded = loaded.expect("one slot holds a whole state");
            assert!(result.is_err(), "a slot failed");
            assert!(loaded == saved || loaded == last, "{loaded:?} after saving {saved:?}");
            last = loaded;
        }
        disk.refuse_writes(None);
        mirror.save(&mut disk, "s", b"six").unwrap();
        assert_eq!(Mirror::load(&mut disk, "s").unwrap().1.as_deref(), Some(&b"six"[..]));
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

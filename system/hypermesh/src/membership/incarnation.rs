//! The incarnation number on disk: two alternating, checksummed slots.
//!
//! Rewriting one file in place is not safe: a write whose sync fails, followed by a crash, may
//! leave it empty or torn, and a node that restarts at a lower incarnation is outranked by claims
//! about its previous life. With two slots written alternately, a failed or torn write can only
//! damage the slot being written; the other still holds the previous incarnation.

use runtime::{Storage, StorageError};

/// The two slots, written alternately (even incarnations to the first).
pub(crate) const SLOTS: [&str; 2] = ["incarnation.0", "incarnation.1"];

const RECORD_BYTES: usize = 16;

fn checksum(incarnation: u64) -> u64 {
    // SplitMix64's finaliser: any torn prefix of the record fails it.
    let mut z = incarnation ^ 0x6D65_6D62_6572_7368; // "membersh"
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn encode(incarnation: u64) -> [u8; RECORD_BYTES] {
    let mut record = [0u8; RECORD_BYTES];
    record[..8].copy_from_slice(&incarnation.to_be_bytes());
    record[8..].copy_from_slice(&checksum(incarnation).to_be_bytes());
    record
}

fn decode(bytes: &[u8]) -> Option<u64> {
    let record: [u8; RECORD_BYTES] = bytes.try_into().ok()?;
    let incarnation = u64::from_be_bytes(record[..8].try_into().expect("8 bytes"));
    let sum = u64::from_be_bytes(record[8..].try_into().expect("8 bytes"));
    (sum == checksum(incarnation)).then_some(incarnation)
}

/// The highest incarnation durably recorded (0 if none); an I/O error is returned, a damaged
/// slot is skipped.
pub(crate) fn load(env: &mut dyn Storage) -> Result<u64, StorageError> {
    let mut best = 0;
    for slot in SLOTS {
        if let Some(incarnation) = decode(&env.read_all(slot)?) {
            best = best.max(incarnation);
        }
    }
    Ok(best)
}

/// Durably records `incarnation` in its slot.
pub(crate) fn store(env: &mut dyn Storage, incarnation: u64) -> Result<(), StorageError> {
    env.write_all_synced(SLOTS[(incarnation % 2) as usize], &encode(incarnation))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_torn_ones_are_rejected() {
        let record = encode(41);
        assert_eq!(decode(&record), Some(41));
        for cut in 0..RECORD_BYTES {
            assert_eq!(
                decode(&record[..cut]),
                None,
                "a record torn at {cut} bytes was accepted"
            );
        }
        let mut flipped = record;
        flipped[3] ^= 1;
        assert_eq!(decode(&flipped), None);
        // A torn rewrite that keeps the old tail must not pass either.
        let mut mixed = encode(42);
        mixed[8..].copy_from_slice(&record[8..]);
        assert_eq!(decode(&mixed), None);
    }
}

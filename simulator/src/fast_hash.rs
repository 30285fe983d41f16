//! A fixed, fast hash for the simulator's internal lookup tables (pending times, addresses).
//!
//! std's SipHash is keyed at random per process and built to resist hash flooding; neither matters
//! for keys the simulator makes itself, and it showed up at ~8% of a flood run's profile. This is
//! the multiply-rotate scheme of rustc's FxHash, with a final fold so that keys differing only in
//! high bits (timestamps that are whole milliseconds) still spread over the table. It is
//! unkeyed, so lookups cost the same in every run; the simulator never iterates these tables, so
//! their order cannot reach a run's outcome either way.

use std::hash::{BuildHasherDefault, Hasher};

const K: u64 = 0xf135_7aea_2e62_a9c5;

/// The hasher; see the module docs.
#[derive(Default, Clone, Copy)]
pub struct FastHasher {
    state: u64,
}

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.state = (self.state.rotate_left(26) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8-byte chunk")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last) ^ (rest.len() as u64) << 56);
        }
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    #[inline]
    fn write_u16(&mut self, n: u16) {
        self.add(u64::from(n));
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // hashbrown takes the bucket from the low bits and a tag from the top 7: fold the well
        // mixed high half down so both are good.
        self.state ^ (self.state >> 29)
    }
}

/// Builds [`FastHasher`]s, for `HashMap<K, V, FastBuildHasher>`.
pub type FastBuildHasher = BuildHasherDefault<FastHasher>;

#[cfg(test)]
mod tests {
    use std::hash::{BuildHasher, Hash};

    use super::*;

    fn hash<T: Hash>(t: &T) -> u64 {
        FastBuildHasher::default().hash_one(t)
    }

    #[test]
    fn whole_millisecond_times_spread_over_low_bits() {
        let buckets: std::collections::BTreeSet<u64> = (0..1024u64).map(|ms| hash(&(ms * 1_000_000)) & 1023).collect();
        assert!(
            buckets.len() > 600,
            "only {} of 1024 low-bit buckets used",
            buckets.len()
        );
    }
}

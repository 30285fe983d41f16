//! [`Checkpoint`]: a replica's replicated state at one committed height, so a restart reads
//! the state back whole and replays only the blocks after it.
//!
//! The state machine's snapshot alone is not the replicated state: what a replica applies also
//! depends on the transaction ids it committed within `dedup_heights` (a resubmitted
//! transaction is skipped alike on every replica) and on the validators removed so far, which
//! with the committed block that began the current epoch give the epoch's set. A checkpoint
//! holds all of it, with the committed tip, so a
//! replica restored from one decides every later block exactly as one that replayed the whole
//! log. The answers to recent transactions are not in it: they are a courtesy to clients that
//! resubmit, kept within `answer_bytes_max`, and a restored replica answers such a resubmission
//! [`super::AnswerKind::Forgotten`] (never applying it twice).
//!
//! Checkpoints are taken at heights that are multiples of `checkpoint_interval`, the same on
//! every replica, so honest replicas hold byte-identical checkpoints of a height.
//!
//! Encoding (all integers big-endian): `version: u8 (2) | height: u64 | view: u64 |
//! digest: 32 | epoch start: view u64, height u64, digest 32 | isolated: u16, then (validator:
//! u16, height: u64) each | recent heights: u32, then (height: u64, ids: u32, ids × 32) each |
//! state: u64 length, then the bytes`. Every count is checked against the bytes that remain
//! before anything is allocated. Version 1 had no epoch start; it is read while it names no
//! isolated validator (then the epoch is the first, started by genesis).

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::crypto::Digest;
use super::messages::QcSummary;
use super::validators::ValidatorIndex;

const VERSION: u8 = 2;
/// The layout before epochs, still read when it names no isolated validator.
const VERSION_BEFORE_EPOCHS: u8 = 1;

/// A replica's replicated state after applying the block at `height`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The height of the last block applied.
    pub height: u64,
    /// That block's view.
    pub view: u64,
    /// That block's digest.
    pub digest: Digest,
    /// The committed block the epoch of `height` started from (genesis's summary in the
    /// first epoch): the last block of the epoch before.
    pub epoch_start: QcSummary,
    /// Validators isolated so far, with the height of the block whose removal isolated each:
    /// each distinct height ended an epoch, the highest one `epoch_start`'s.
    pub isolated: BTreeMap<ValidatorIndex, u64>,
    /// The ids of the transactions committed within the dedup window, by height, oldest first.
    pub recent: Vec<(u64, Vec<Digest>)>,
    /// The state machine's snapshot ([`crate::replication::StateMachine::snapshot`]).
    pub state: Bytes,
}

/// Why bytes are not a checkpoint: what is wrong, and at which byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("checkpoint refused at byte {offset}: {reason}")]
pub struct CheckpointError {
    /// Where decoding stopped.
    pub offset: usize,
    /// What was wrong.
    pub reason: String,
}

impl Checkpoint {
    /// The canonical encoding.
    pub fn encode(&self) -> Bytes {
        let ids: usize = self.recent.iter().map(|(_, ids)| ids.len()).sum();
        let mut out = BytesMut::with_capacity(
            1 + 8
                + 8
                + 32
                + 48
                + 2
                + self.isolated.len() * 10
                + 4
                + self.recent.len() * 12
                + ids * 32
                + 8
                + self.state.len(),
        );
        out.put_u8(VERSION);
        out.put_u64(self.height);
        out.put_u64(self.view);
        out.put_slice(&self.digest);
        out.put_u64(self.epoch_start.view);
        out.put_u64(self.epoch_start.height);
        out.put_slice(&self.epoch_start.block);
        out.put_u16(u16::try_from(self.isolated.len()).expect("isolated validators are validator indices"));
        for (validator, height) in &self.isolated {
            out.put_u16(*validator);
            out.put_u64(*height);
        }
        out.put_u32(u32::try_from(self.recent.len()).expect("heights in a dedup window fit u32"));
        for (height, ids) in &self.recent {
            out.put_u64(*height);
            out.put_u32(u32::try_from(ids.len()).expect("ids of one block fit u32"));
            for id in ids {
                out.put_slice(id);
            }
        }
        out.put_u64(self.state.len() as u64);
        out.put_slice(&self.state);
        out.freeze()
    }

    /// Decodes a checkpoint, naming what is wrong with bytes that are not one.
    pub fn decode(bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
        let total = bytes.len();
        let mut b = bytes;
        let fail = |b: &[u8], reason: String| CheckpointError {
            offset: total - b.len(),
            reason,
        };
        let need = |b: &[u8], n: usize, what: &str| {
            if b.len() < n {
                Err(fail(b, format!("{what} cut short ({} of {n} bytes)", b.len())))
            } else {
                Ok(())
            }
        };
        need(b, 1 + 8 + 8 + 32, "the header")?;
        let version = b.get_u8();
        if version != VERSION && version != VERSION_BEFORE_EPOCHS {
            return Err(fail(b, format!("version {version}, not {VERSION}")));
        }
        let height = b.get_u64();
        let view = b.get_u64();
        let digest: Digest = b[..32].try_into().expect("32 bytes");
        b.advance(32);
        let epoch_start = if version == VERSION {
            need(b, 48, "the epoch start")?;
            let start_view = b.get_u64();
            let start_height = b.get_u64();
            let block: Digest = b[..32].try_into().expect("32 bytes");
            b.advance(32);
            QcSummary {
                view: start_view,
                height: start_height,
                block,
            }
        } else {
            QcSummary::GENESIS
        };
        need(b, 2, "the count of isolated validators")?;
        let isolated_count = b.get_u16() as usize;
        need(b, isolated_count * 10, "the isolated validators")?;
        let mut isolated = BTreeMap::new();
        for _ in 0..isolated_count {
            let validator = b.get_u16();
            let at = b.get_u64();
            if at > height {
                return Err(fail(
                    b,
                    format!("validator {validator} isolated at height {at}, above {height}"),
                ));
            }
            if isolated.insert(validator, at).is_some() {
                return Err(fail(b, format!("validator {validator} isolated twice")));
            }
        }
        // The epoch's start is the last block that removed validators (genesis if none did), and
        // the checkpoint's own block if taken right there.
        let last_removal = isolated.values().copied().max().unwrap_or(0);
        if epoch_start.height != last_removal || !epoch_start.is_well_formed() {
            return Err(fail(
                b,
                format!(
                    "the epoch starts at height {}, but the last removal is at {last_removal}",
                    epoch_start.height
                ),
            ));
        }
        if epoch_start.height == height && (epoch_start.view, epoch_start.block) != (view, digest) {
            return Err(fail(b, "the epoch starts at this height from another block".into()));
        }
        need(b, 4, "the count of recent heights")?;
        let heights = b.get_u32() as usize;
        need(b, heights.saturating_mul(12), "the recent heights")?;
        let mut recent = Vec::with_capacity(heights);
        let mut previous = None;
        for _ in 0..heights {
            need(b, 12, "a recent height")?;
            let at = b.get_u64();
            if at > height || previous.is_some_and(|p| p >= at) {
                return Err(fail(b, format!("recent height {at} out of order or above {height}")));
            }
            previous = Some(at);
            let count = b.get_u32() as usize;
            need(b, count.saturating_mul(32), "the ids of a recent height")?;
            let ids = (0..count)
                .map(|_| {
                    let id: Digest = b[..32].try_into().expect("32 bytes");
                    b.advance(32);
                    id
                })
                .collect();
            recent.push((at, ids));
        }
        need(b, 8, "the state's length")?;
        let len = b.get_u64();
        if len != b.len() as u64 {
            return Err(fail(b, format!("a state of {len} bytes where {} remain", b.len())));
        }
        Ok(Checkpoint {
            height,
            view,
            digest,
            epoch_start,
            isolated,
            recent,
            state: Bytes::copy_from_slice(b),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        Checkpoint {
            height: 64,
            view: 70,
            digest: [7; 32],
            epoch_start: QcSummary {
                view: 70,
                height: 64,
                block: [7; 32],
            },
            isolated: BTreeMap::from([(2, 40), (5, 64)]),
            recent: vec![(62, vec![[1; 32], [2; 32]]), (63, vec![]), (64, vec![[3; 32]])],
            state: Bytes::from_static(b"machine state"),
        }
    }

    #[test]
    fn a_checkpoint_round_trips_and_every_cut_is_refused_by_name() {
        let checkpoint = sample();
        let bytes = checkpoint.encode();
        assert_eq!(Checkpoint::decode(&bytes), Ok(checkpoint));
        for len in 0..bytes.len() {
            let error = Checkpoint::decode(&bytes[..len]).expect_err("a cut checkpoint");
            assert!(error.offset <= len, "{error}");
        }
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(Checkpoint::decode(&longer).unwrap_err().reason.contains("remain"));
    }

    /// The reason `checkpoint`'s encoding is refused for.
    fn refusal(checkpoint: &Checkpoint) -> String {
        Checkpoint::decode(&checkpoint.encode()).unwrap_err().reason
    }

    #[test]
    fn inconsistent_checkpoints_are_refused() {
        let mut wrong_version = sample().encode().to_vec();
        wrong_version[0] = 9;
        assert!(Checkpoint::decode(&wrong_version)
            .unwrap_err()
            .reason
            .contains("version 9"));

        let mut elsewhere = sample();
        elsewhere.epoch_start.block = [8; 32];
        assert!(refusal(&elsewhere).contains("from another block"));

        let mut unmatched = sample();
        unmatched.isolated.insert(5, 63);
        assert!(refusal(&unmatched).contains("last removal is at 63"));

        let mut late = sample();
        late.isolated.insert(3, 65);
        assert!(refusal(&late).contains("above 64"));

        let mut unordered = sample();
        unordered.recent.swap(0, 2);
        assert!(refusal(&unordered).contains("out of order"));

        // A count far beyond the bytes is refused before anything is allocated.
        let mut huge = sample().encode().to_vec();
        let at = 1 + 8 + 8 + 32 + 48 + 2 + 2 * 10;
        huge[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(Checkpoint::decode(&huge)
            .unwrap_err()
            .reason
            .contains("recent heights cut short"));
    }
}

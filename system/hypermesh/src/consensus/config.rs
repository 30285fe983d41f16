//! A replica's settings: every limit and timeout named, with the defaults the guide implies.

use std::time::Duration;

use super::block::{BLOCK_BYTES_MAX, TRANSACTIONS_PER_BLOCK_MAX};
use super::detection::DetectionConfig;
use super::wire::BLOCKS_PER_MESSAGE_MAX;

/// How a replica runs consensus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsensusConfig {
    /// How long a view lasts without a certificate before the replica times out (doubled after
    /// each consecutive timeout, up to [`ConsensusConfig::view_timeout_max`]).
    pub view_timeout: Duration,
    /// The longest a view lasts.
    pub view_timeout_max: Duration,
    /// Transactions per proposal at most (the guide's `consensus.batch_messages(100)`).
    pub batch_size_max: usize,
    /// How long a leader waits for a full batch before proposing what it has.
    pub batch_delay_max: Duration,
    /// A proposal's block encodes to at most this many bytes: two blocks with their
    /// certificates must fit one catch-up answer ([`ConsensusConfig::fetch_bytes_max`]).
    pub block_bytes_max: usize,
    /// Transactions a replica holds waiting to be proposed; beyond it a submission is refused
    /// as not admitted.
    pub pool_max: usize,
    /// Leaders of the coming views a submitted transaction is forwarded to (besides the replica
    /// that took it).
    pub forward_leaders: usize,
    /// Committed heights a transaction id is remembered for, so a resubmitted or twice-forwarded
    /// transaction is applied once (and its answer given again).
    pub dedup_heights: u64,
    /// Bytes of committed transactions' answers a replica holds for resubmissions at most;
    /// beyond it the oldest are let go (a resubmission of one is answered
    /// [`super::AnswerKind::Forgotten`]), while its id still guards against a second application
    /// for [`ConsensusConfig::dedup_heights`].
    pub answer_bytes_max: usize,
    /// Blocks asked for per catch-up request.
    pub fetch_blocks_max: u16,
    /// Bytes of blocks per catch-up answer at most: it must fit the transport's largest message
    /// (64 KiB over bare datagrams), and hold two blocks with their certificates, since a block
    /// is shown committed by a certified child.
    pub fetch_bytes_max: usize,
    /// How long a catch-up request waits for its answer before another peer is asked.
    pub fetch_timeout: Duration,
    /// Times a replica writes its safety record, a voted proposal or committed blocks before
    /// giving up on them for now (a vote not made, blocks committed later).
    pub storage_attempts: u32,
    /// How long a replica waits before trying a failed storage call again (reading its state
    /// back at start, recovering a log whose write or sync failed).
    pub storage_retry: Duration,
    /// Committed blocks a replica keeps in memory at most after cutting its log at a rotted
    /// record (they are committed again, and served to peers, once the lost one is fetched).
    pub salvage_blocks_max: usize,
    /// Uncommitted blocks a replica holds at most (proposals not yet committed or abandoned).
    pub pending_blocks_max: usize,
    /// Committed heights between checkpoints: after applying a height that is a multiple of
    /// it, a replica saves its replicated state ([`super::checkpoint::Checkpoint`]), and a
    /// restart reads that back and replays only the blocks after it. Each save writes the whole
    /// state machine; the same heights on every replica.
    pub checkpoint_interval: u64,
    /// Committed heights a replica keeps in its log below its newest checkpoint: whole segments
    /// older than that are deleted once the checkpoint is saved, so the log does not grow
    /// without bound. A peer that needs a deleted height takes a checkpoint from `f + 1`
    /// validators instead (snapshot transfer).
    pub log_retain_heights: u64,
    /// The largest checkpoint, in bytes, a replica takes from peers (it is held in memory
    /// while it arrives).
    pub snapshot_bytes_max: u64,
    /// Linearizable reads a replica serves at once at most; beyond it one is refused.
    pub reads_pending_max: usize,
    /// How long a linearizable read may take (a quorum's certificates, then committing up to
    /// the highest) before it is refused as timed out.
    pub read_timeout: Duration,
    /// How long a replica still in a view after voting there waits before sending its vote
    /// again (and the leader its proposal), then again as long as the view lasts. Votes and
    /// proposals travel as datagrams: with every vote needed for a quorum (one validator of
    /// four down or silent), one lost copy otherwise costs the whole view, and the next view a
    /// doubled timeout.
    pub resend_after: Duration,
    /// Votes go to every validator instead of the next leader only: the naive variant of the
    /// `consensus-cpu` scenario, O(n²) messages per decision.
    pub votes_to_all: bool,
    /// Views of a leader this replica suspects of being down are given up on as soon as they
    /// are entered, and votes go past it to the next leader, as for an isolated one. A leader
    /// is suspected once one of its views ended by timeout certificate without its proposal
    /// or its timeout reaching this replica, and trusted again on its proposal, its timeout or
    /// (where this replica collects them) its vote from that view on. Off,
    /// a crashed validator costs two view timeouts per rotation for as long as it is down.
    pub skip_suspected_leaders: bool,
    /// Byzantine detection: the guide's `latency_tolerance`, `clock_skew_max` and
    /// `confirmation_required`.
    pub detection: DetectionConfig,
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        ConsensusConfig {
            view_timeout: Duration::from_millis(1000),
            view_timeout_max: Duration::from_secs(8),
            batch_size_max: 100,
            batch_delay_max: Duration::from_millis(5),
            block_bytes_max: 20 * 1024,
            pool_max: 20_000,
            forward_leaders: 2,
            dedup_heights: 1000,
            answer_bytes_max: 8 << 20,
            fetch_blocks_max: 64,
            fetch_bytes_max: 60 * 1024,
            fetch_timeout: Duration::from_millis(500),
            storage_attempts: 3,
            storage_retry: Duration::from_millis(100),
            salvage_blocks_max: 4096,
            pending_blocks_max: 1024,
            checkpoint_interval: 1024,
            log_retain_heights: 4096,
            snapshot_bytes_max: 256 << 20,
            reads_pending_max: 1024,
            read_timeout: Duration::from_secs(5),
            resend_after: Duration::from_millis(500),
            votes_to_all: false,
            skip_suspected_leaders: true,
            detection: DetectionConfig::default(),
        }
    }
}

/// A setting out of its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("consensus setting {setting}: {problem}")]
pub struct ConfigError {
    /// The setting.
    pub setting: &'static str,
    /// What is wrong.
    pub problem: String,
}

impl ConsensusConfig {
    /// Whether every setting is in range; a replica is built only from a valid config.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |setting, problem: String| Err(ConfigError { setting, problem });
        if self.view_timeout.is_zero() || self.view_timeout > self.view_timeout_max {
            return fail(
                "view_timeout",
                format!(
                    "{:?} must be above zero and at most view_timeout_max ({:?})",
                    self.view_timeout, self.view_timeout_max
                ),
            );
        }
        if self.batch_size_max == 0 || self.batch_size_max > TRANSACTIONS_PER_BLOCK_MAX {
            return fail(
                "batch_size_max",
                format!("{} must be 1..={TRANSACTIONS_PER_BLOCK_MAX}", self.batch_size_max),
            );
        }
        if self.batch_delay_max >= self.view_timeout {
            return fail(
                "batch_delay_max",
                format!(
                    "{:?} must be below view_timeout ({:?}), or every view would time out",
                    self.batch_delay_max, self.view_timeout
                ),
            );
        }
        if self.checkpoint_interval == 0 {
            return fail("checkpoint_interval", "0 heights: must be at least 1".into());
        }
        if self.block_bytes_max < 1024 || self.block_bytes_max > BLOCK_BYTES_MAX {
            return fail(
                "block_bytes_max",
                format!("{} must be 1024..={BLOCK_BYTES_MAX}", self.block_bytes_max),
            );
        }
        if self.answer_bytes_max < super::wire::ANSWER_BYTES_MAX {
            return fail(
                "answer_bytes_max",
                format!(
                    "{} must hold at least one answer of the largest size ({})",
                    self.answer_bytes_max,
                    super::wire::ANSWER_BYTES_MAX
                ),
            );
        }
        if self.pool_max == 0 {
            return fail("pool_max", "must be above zero".into());
        }
        if self.fetch_blocks_max == 0 || usize::from(self.fetch_blocks_max) > BLOCKS_PER_MESSAGE_MAX {
            return fail(
                "fetch_blocks_max",
                format!("{} must be 1..={BLOCKS_PER_MESSAGE_MAX}", self.fetch_blocks_max),
            );
        }
        if self.fetch_bytes_max < self.block_bytes_max * 2 {
            return fail(
                "fetch_bytes_max",
                format!(
                    "{} must hold at least two blocks of block_bytes_max ({})",
                    self.fetch_bytes_max, self.block_bytes_max
                ),
            );
        }
        if self.storage_attempts == 0 {
            return fail("storage_attempts", "must be at least 1".into());
        }
        if self.storage_retry.is_zero() {
            return fail("storage_retry", "must be above zero".into());
        }
        if self.log_retain_heights == 0 {
            return fail(
                "log_retain_heights",
                "must be above zero: a restart needs the block its checkpoint was taken at".into(),
            );
        }
        if self.snapshot_bytes_max == 0 {
            return fail("snapshot_bytes_max", "must be above zero".into());
        }
        if self.resend_after.is_zero() {
            return fail("resend_after", "must be above zero".into());
        }
        if self.fetch_timeout.is_zero() {
            return fail("fetch_timeout", "must be above zero".into());
        }
        if self.reads_pending_max == 0 || self.read_timeout.is_zero() {
            return fail(
                "reads_pending_max",
                "reads_pending_max and read_timeout must be above zero".into(),
            );
        }
        let d = &self.detection;
        if d.latency_tolerance.is_zero() {
            return fail("latency_tolerance", "must be above zero".into());
        }
        if d.confirmation_required == 0 {
            return fail("confirmation_required", "must be at least 1".into());
        }
        if d.window.is_zero() || d.report_interval.is_zero() || d.views_remembered == 0 {
            return fail(
                "detection",
                "window, report_interval and views_remembered must be above zero".into(),
            );
        }
        if self.pending_blocks_max < 4 {
            return fail(
                "pending_blocks_max",
                format!("{} must be at least 4", self.pending_blocks_max),
            );
        }
        Ok(())
    }
}

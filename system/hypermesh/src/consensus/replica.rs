//! [`Replica`]: one validator running chained HotStuff-2 as a [`Protocol`] on a node's host.
//!
//! # Rules (the module documentation of [`super`] gives the protocol)
//!
//! - **Vote** for the proposal of view `v` only while in view `v`, only once (`v` above the last
//!   view voted or timed out in, kept durable before the vote leaves), and only if the proposal
//!   enters `v` with a certificate of `v - 1`, or with a timeout certificate of `v - 1` and a
//!   `justify` at least as high as every high QC it reports ([`Proposal::verify`]). The vote goes
//!   to the leader of `v + 1` alone.
//! - **Commit** block `B` when a certificate arrives for a child of `B` proposed in the view right
//!   after `B`'s (the two-chain rule); `B`'s ancestors commit with it.
//! - **Time out** of view `v` after the view timer: sign a timeout carrying the highest QC known,
//!   send it (and that QC) to every validator; a quorum of timeouts of `v` is a timeout
//!   certificate, which moves every replica to `v + 1`. `f + 1` timeouts of a view ahead make a
//!   replica join them.
//! - A leader builds its timeout certificate only from timeouts whose high QC it holds, so a
//!   Byzantine timeout claiming a certificate that does not exist cannot stop its proposal.
//! - **Catch up** when a certified block's ancestors are missing: ask a peer for committed blocks
//!   from the next height; a block is accepted once its certificate verifies, it links to the
//!   committed chain, and a certified child in the next view shows it committed.
//!
//! # Durability
//!
//! The last view voted or timed out in, the last view proposed in and the highest QC are saved
//! (`safety`, the same record in three copies, so that rot of one never brings back an older
//! one; a replica that finds no copy whole stops, since voting again could equivocate) before
//! any vote, timeout or proposal is sent, so a restarted replica never votes or proposes twice
//! in a view and never reports a lower QC than one it helped certify.
//! Committed blocks go to the [`BlockLog`] with their certificates and are synced before they are
//! applied or answered. Every `checkpoint_interval` heights the replicated state is saved
//! ([`super::checkpoint::Checkpoint`]). A restarted replica restores its newest checkpoint (if
//! its log holds the checkpoint's block) and replays the log after it into the state machine, and
//! re-enters the view it last voted or timed out in (unless a certificate it holds ended that
//! view), where it neither votes nor proposes again but can time out.
//!
//! Storage fails as real disks do. A failed write or sync of a record is tried again
//! (`storage_attempts`), after recovering the log to what is durable; then the vote is not made
//! and the blocks are committed later, while a failed log is recovered every `storage_retry`.
//! Reading back at start is tried again every `storage_retry` until it succeeds, the replica
//! taking part in nothing meanwhile (a read error is never taken for "no record"). A committed
//! block found rotted is cut from the log and fetched again from peers; the intact ones after it
//! are salvaged in memory, committed again once it is, and served to peers meanwhile.
//!
//! # Probes (protocol `consensus`)
//!
//! | name | subject | value |
//! |---|---|---|
//! | `commit` | height | first 8 bytes of the block digest, as `i64` |
//! | `commit_txs` | height | transactions in the block |
//! | `view` | view entered | 1 through a certificate, 2 through a timeout certificate |
//! | `timeout` | view timed out | consecutive timeouts |
//! | `skipped` | view given up on at once | its leader (isolated or suspected) |
//! | `leader_suspected` | the leader's view that ended by timeout certificate without its proposal here | the leader |
//! | `leader_trusted` | view of the message that showed the leader up again | the leader |
//! | `proposal` | view | transactions proposed |
//! | `checkpoint` | height | bytes saved (0: the save failed, the previous checkpoint stays) |
//! | `checkpoint_restored` | height | bytes read back at restart |
//! | `checkpoint_refused` | height | 1 undecodable (or not this validator set's), 2 the log does not hold its block, 3 the machine refused its state, 4 the log below it is damaged (replayed whole to repair it) |
//! | `recovered` | committed height after restart | heights lost to damage, to fetch again ([`RECOVERED_EXTENT_UNKNOWN`]: some, how many unknown) |
//! | `storage_retry` | committed height | 1 reading back at start failed, 2 recovering the failed log did |
//! | `catchup` | first height fetched | blocks committed from the answer |
//! | `refused` | view | why (see [`Refusal`]) |
//! | `halted` | committed height | 1 log failure, 2 a committed block conflicting with the chain, 3 the safety record lost ([`HALTED_SAFETY_LOST`]) |
//! | `misbehaved` | this validator's index | 1: its adversary first changed what it sends (simulation) |
//! | `evidence` | offender's validator index | 1 conflicting votes, 2 conflicting proposals (first time this replica holds proof) |
//! | `report` | accused validator index | [`Reason`] this replica reported it for |
//! | `marked` | validator index | why: a [`Reason`] (confirmed by enough reporters), 4 on evidence, 5 on first-hand proof ([`MARKED_FIRST_HAND`]) |
//! | `isolated` | validator index | height of the block whose removal isolated it (committed) |
//! | `epoch` | epoch entered (its last block committed, or a checkpoint of it taken) | members of its set |
//! | `isolation_proof` | validator index | blocks in the [`IsolationProof`] kept for it (file `removal.<index>`), 0 if storing it failed |
//!
//! # Isolation and epochs
//!
//! A replica that marks a validator submits a [`Removal`] carrying its proof (the evidence, or
//! the signed reports). A committed block with a valid removal of a member (its proof checked
//! against the set of the epoch it was signed in, alike on every replica) is the last block of
//! its epoch: the next epoch's set is the same roster without the removed validators, so
//! nothing they sign counts any more, they lead no view, and the quorum is `n - f` of the
//! members left (two forgers removed from seven leave five, which tolerate one more fault).
//!
//! - **Views.** Epoch `e`'s views start at `e << 40` ([`super::validators::first_view_of`]), so a
//!   message's epoch is known from its view alone. One of a past epoch is dropped as stale, one
//!   of a coming epoch makes this replica fetch committed blocks; neither is checked against
//!   this epoch's set, so a replica on the other side of an epoch's end is never taken for a
//!   forger.
//! - **The end.** Blocks certified after the last block of an epoch, in that epoch, only show
//!   it committed: a commit stops at it, and they are never applied (every replica that applies
//!   the last block ends the epoch there, whichever descendant's certificate committed it). Their
//!   transactions go back to the pool.
//! - **The start.** The new epoch's chain starts from that block, certified by convention
//!   without signatures under the new set ([`QuorumCertificate::start_of`], as genesis is for
//!   the first epoch); the high QC becomes it, and the first view's proposal extends it.
//! - **Catching up across an end.** A fetch answer stops at an epoch's last block and carries
//!   the certified blocks after it that show it committed (the isolation proof kept for it), so
//!   a replica still in that epoch commits the block, enters the next epoch, and asks again.
//!   The proof is kept, in three copies, before the block commits here, and a restart whose
//!   log lost the block commits it again from it: the certificate that committed the block may
//!   have formed only here, and nothing else would show the others.
//! - **Restarts.** Replaying the log ends each epoch again; a checkpoint names the removals and
//!   the current epoch's start, from which the sets are rebuilt.
//!
//! A removed validator stays a peer (its slot and address): it keeps receiving broadcasts and
//! follows commits, but it votes, times out and proposes no more.
//!
//! # Leader suspicion
//!
//! A crashed validator would otherwise cost two view timeouts on every rotation for as long as
//! it is down: its own view, and the one before it, whose votes go to it (one of four down
//! left a cluster committing about one height a second). So a replica that leaves a view
//! through its timeout certificate without having received that view's proposal suspects its
//! leader of being down ([`ConsensusConfig::skip_suspected_leaders`]) and treats it as
//! isolated: it gives up on the leader's views as soon as it enters them, and sends its votes
//! past it, to the leader of the first view it does not skip (and to the suspected one too, in
//! case it is up after all). Whoever collects a quorum of those votes without leading the next
//! view sends the certificate to every validator, so all move into the skipped view and out of
//! it at once, and the leader after it, entering through a timeout certificate, proposes
//! without waiting for a batch or a heartbeat. A leader is not suspected for a view it timed
//! out of itself (its timeout reached this replica, or is in the certificate) or whose
//! proposal this replica voted for before a restart, and is trusted again on a message it
//! signed in the view it was suspected at or later that verifies here: its proposal (from the
//! leader itself, not forwarded: a catch-up answer may be older than its crash), its timeout,
//! or its vote where this replica collects it. A restarted validator, once caught up,
//! times out of the views it is skipped in as everyone does (the others give up on them at
//! once, and `f + 1` timeouts make it join), its timeout reaches everyone, and it leads again
//! from its next turn.
//!
//! Only the leader of a view that failed is suspected, not the one its votes went to: a
//! Byzantine leader that withholds its proposal from some validators spoils its view as surely
//! as a crashed collector, and blaming the collector skipped an honest leader's view, which
//! then failed for want of the skippers' votes and blamed the next one (`withhold` stopped a
//! cluster of four so). A leader whose proposals never reach this replica stays suspected by
//! it for as long as it sends it nothing else: for its votes, that leader is down.
//!
//! Like isolation this is local and safe whatever replicas believe: timing out is always
//! allowed, a vote is the same vote whoever collects it, and a certificate proves the same
//! thing whoever built it. Replicas that disagree about a leader cost a view, as without
//! suspicion.
//!
//! # Reads
//!
//! A [`Query`] reads the state machine at a chosen [`Consistency`]. `Local`: from this
//! replica's committed state as it is, possibly stale. `Linearizable`: the replica asks every
//! validator for its highest certificate (`ReadIndex`), takes the highest height a quorum
//! reports (itself included), and answers once it has committed that height, or refuses after
//! `read_timeout` saying how far it got (`reads_pending_max` bound what it serves at once). A
//! transaction acknowledged before the read was sent committed by the two-chain rule, so a
//! quorum holds a certificate at its height or above, and every quorum shares an honest
//! validator with that one: the answer holds it. Certificates are verified, so a Byzantine
//! validator can only make the read wait for a height that was certified. No leader is trusted
//! with the read (a Byzantine leader could answer stale); a client that does not trust the one
//! replica it asks sends the read to `f + 1` and believes agreeing answers.
//!
//! # Isolation proofs
//!
//! For those outside consensus, a replica that commits a removal live (not replaying its log)
//! keeps an [`IsolationProof`] of it, the shortest certified chain it holds that shows the
//! removal committed, in the durable file `removal.<accused>`: the node hands it to TrustChain's
//! CA, which revokes the isolated validator's certificate on it. A crash between the commit and
//! that file leaves it to the other replicas, each of which keeps its own.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use runtime::durable;
use runtime::host::{Channel, Context, Mount, Protocol};
use runtime::{Clock, Entropy, Instant, Probe, Probes, WallTime};

use super::block::{Block, GENESIS};
use super::certificate::{QcBuilder, QuorumCertificate, TimeoutCertificate, TimeoutEntry};
use super::checkpoint::Checkpoint;
use super::config::ConsensusConfig;
use super::control::{is_control, Proof, Removal};
use super::crypto::{sha256, Digest, ValidatorKey};
use super::detection::{Detector, MARKED_BY_EVIDENCE, MARKED_FIRST_HAND};
use super::evidence::Evidence;
use super::isolation::IsolationProof;
use super::messages::{Proposal, ProposalError, ProposalHeader, QcSummary, Reason, Report, Timeout, Vote};
use super::validators::{epoch_of_view, ValidatorIndex, ValidatorSet};
use super::wire::{
    Answer, AnswerKind, Blocks, CertifiedBlock, Consistency, Fetch, Message, Query, QueryAnswer, SnapshotChunk,
    SnapshotOffer, Submit, SNAPSHOT_CHUNK_BYTES_MAX,
};
use crate::replication::{BlockInfo, BlockLog, LogError, MarkerCopies, Outcome, Snapshot, Snapshots, StateMachine};

/// Where consensus lives on a node: its files and probes are named `consensus`, its messages
/// travel on channel 3 (clients speak to replicas on it too).
pub const MOUNT: Mount = Mount::new("consensus", Channel(3));
/// Log records read back at once while replaying.
const REPLAY_BATCH_RECORDS: u64 = 256;
/// The `halted` probe's value when the safety record was lost (every copy damaged).
pub const HALTED_SAFETY_LOST: i64 = 3;
/// The `halted` probe's value when the state machine refused a checkpoint that `f + 1`
/// validators offered and whose bytes matched the offer (a bug: honest replicas made it).
pub const HALTED_SNAPSHOT_REFUSED: i64 = 4;
/// Failed chunk requests per source of a snapshot before the transfer is given up (offers are
/// asked for again by the next catch-up).
const SNAPSHOT_FAILURES_PER_SOURCE: usize = 3;
/// The `recovered` probe's value when the log's commit marker was lost (every copy damaged):
/// committed heights may have been lost, how many is unknown.
pub const RECOVERED_EXTENT_UNKNOWN: i64 = -1;
/// The safety record's layout: a format byte, then the last view voted or timed out in, the
/// last view proposed in, the highest QC's length (`u32`) and the QC, padded with zeros to the
/// largest QC of the set, so the record is always one size and a torn copy tells itself apart
/// from a rotted one (`durable::Mirror::load_sized`). Format 2 had no length and no padding;
/// the first layout, without the format byte and the proposed view, began with a view's eight
/// bytes, the first of them 0.
const SAFETY_FORMAT: u8 = 3;
/// The format before padding, still read.
const SAFETY_FORMAT_UNPADDED: u8 = 2;
/// Verified certificates remembered so a certificate carried again is not verified again.
pub const VERIFIED_CACHE_MAX: usize = 256;
/// Clients waiting for answers at most, across all transactions.
pub const WAITING_MAX: usize = 20_000;
/// Views ahead of the current one a replica keeps timeouts for.
pub const TIMEOUT_VIEWS_AHEAD_MAX: u64 = 64;

const LOG: &str = "log";
const SAFETY: &str = "safety";
/// Proposals voted for, kept until committed: a certificate's block must outlive crashes of
/// its voters, or a chain built on it could never commit.
const VOTED: &str = "voted";
/// The prefix of the files that keep isolation proofs (`removal.<accused>`).
pub const REMOVAL: &str = "removal";
/// How long before the same missing block is asked for again.
pub const BLOCK_REQUEST_INTERVAL: Duration = Duration::from_millis(200);

/// Why a message was refused; recorded as the `refused` probe's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i64)]
pub enum Refusal {
    /// The bytes did not decode.
    Malformed = 1,
    /// A signature or certificate did not verify.
    Invalid = 2,
    /// A proposal for a view already voted or timed out in.
    AlreadyVoted = 3,
    /// A second, different proposal from one leader for one view.
    Equivocation = 4,
    /// A catch-up answer that did not link to the committed chain.
    BadCatchUp = 5,
    /// A proposal from a validator that does not lead its view.
    NotLeader = 6,
}

/// Timers of the consensus protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// The view timer of `view` (stale once the view moved on).
    View(u64),
    /// The leader's batch timer in `view`.
    Batch(u64),
    /// A catch-up request's timer.
    Fetch(u64),
    /// A message an adversary holds back is due ([`Tamper`]).
    Release(u64),
    /// Storage to try again: reading back at start, or a failed log to recover.
    Storage,
    /// A linearizable read is overdue (its number on this replica).
    Read(u64),
    /// A snapshot transfer's request is overdue, or its install is tried again (its
    /// generation).
    Snapshot(u64),
    /// Time to send this replica's vote (and the leader's proposal) of `view` again, if the
    /// view still lasts ([`ConsensusConfig::resend_after`]).
    Resend(u64),
}

/// A linearizable read being served: the highest certified height a quorum reported, then the
/// answer once this replica has committed it.
struct PendingRead {
    /// Who asked, and its id for the read.
    client: SocketAddr,
    id: u64,
    request: Bytes,
    /// Validators whose highest certificate is in `index`.
    answered: BTreeSet<ValidatorIndex>,
    /// The highest height certified among them.
    index: u64,
}

/// A message leaving a replica, as an adversary lets it go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// Where to.
    pub to: SocketAddr,
    /// The bytes sent.
    pub bytes: Bytes,
    /// How long it is held first.
    pub after: Duration,
}

/// The simulator's Byzantine seam: what an adversary does to the messages its replica sends.
/// An honest replica has none; `hypermesh::testing::adversary` holds the adversaries.
pub trait Tamper: Send {
    /// What actually leaves instead of `message` for `to`: nothing, the message, or others
    /// (signed with the replica's own key, which the adversary holds).
    fn outgoing(&mut self, to: SocketAddr, message: &Message, rng: &mut dyn Entropy, wall: WallTime) -> Vec<Outgoing>;
}

/// What a replica counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplicaStats {
    /// Proposals made.
    pub proposals: u64,
    /// Votes sent.
    pub votes: u64,
    /// Timeouts sent.
    pub timeouts: u64,
    /// Blocks committed.
    pub blocks_committed: u64,
    /// Transactions committed (duplicates included).
    pub transactions_committed: u64,
    /// Messages sent.
    pub messages_sent: u64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Messages refused.
    pub refused: u64,
    /// Signatures verified.
    pub signatures_verified: u64,
    /// Storage calls failed and tried again (reading back at start, recovering the log).
    pub storage_retries: u64,
    /// Votes and proposals sent again because their view lasted past
    /// [`ConsensusConfig::resend_after`].
    pub resent: u64,
    /// Validators this replica holds evidence against.
    pub convicted: u64,
    /// Times a leader came to be suspected of being down (see
    /// [`ConsensusConfig::skip_suspected_leaders`]).
    pub leaders_suspected: u64,
    /// Epochs entered after the first (each at a committed removal).
    pub epochs_entered: u64,
}

/// A committed block's place: what the next committed block must extend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tip {
    height: u64,
    view: u64,
    digest: Digest,
}

const GENESIS_TIP: Tip = Tip {
    height: 0,
    view: 0,
    digest: GENESIS,
};

/// A proposal seen but not committed (kept whole, signature included, so it can be served to a
/// peer missing it).
#[derive(Clone, Debug)]
struct Pending {
    proposal: Proposal,
}

impl Pending {
    fn block(&self) -> &Block {
        &self.proposal.block
    }

    fn justify(&self) -> &QuorumCertificate {
        &self.proposal.justify
    }
}

/// A catch-up request in flight.
#[derive(Clone, Debug)]
struct Fetching {
    generation: u64,
    peer: usize,
    /// Blocks verified and linked past the committed tip, not yet shown committed.
    unproven: Vec<CertifiedBlock>,
}

/// A checkpoint being taken from peers: `f + 1` validators offered it, its bytes come from one
/// of them at a time in order, and they are checked against the offer's digest once whole.
struct Transfer {
    offer: SnapshotOffer,
    sources: Vec<ValidatorIndex>,
    /// The source asked now (an index into `sources`, modulo its length).
    source: usize,
    bytes: BytesMut,
    generation: u64,
    /// Requests unanswered or answered wrong since the last chunk taken.
    failures: usize,
}

/// One validator of a HotStuff-2 cluster applying committed blocks to `M`.
pub struct Replica<M: StateMachine> {
    config: ConsensusConfig,
    /// The set of the epoch this replica is in (the last of `epochs`).
    set: ValidatorSet,
    /// The set of every epoch since the one this replica was made with, oldest first: evidence
    /// and reports are checked against the set of the epoch they were signed in.
    epochs: Vec<ValidatorSet>,
    peers: Vec<SocketAddr>,
    key: ValidatorKey,
    me: ValidatorIndex,
    machine: M,

    halted: bool,
    /// Reading back its durable state (tried again until it succeeds): nothing else runs.
    starting: bool,
    /// Committed heights the log lost to damage at start, fetched again from peers.
    lost_at_start: u64,
    /// The log's commit marker was lost at start: how many heights were lost is unknown.
    marker_lost: bool,
    /// Committed records read back intact after a rotted one, by height: the log was cut at
    /// the rotted one, and these are committed again once it is fetched (and served to peers).
    salvaged: BTreeMap<u64, CertifiedBlock>,
    log: Option<BlockLog>,
    /// The newest checkpoint's two slots (opened at start).
    checkpoints: Option<Snapshots>,
    /// The safety record's copies (see [`durable::Mirror`]).
    safety: durable::Mirror,
    view: u64,
    view_entered: Instant,
    consecutive_timeouts: u32,
    /// The last view this replica timed out in (its timeout of it is then only sent again).
    timed_out_view: u64,
    /// This leader's own proposal whose vote was made durable with it: the vote is signed when
    /// the proposal comes back to this replica, without saving again.
    own_vote_saved: Option<Digest>,
    /// This replica's latest proposal and latest vote (with their views), sent again while
    /// their view lasts.
    own_proposal: Option<Box<Proposal>>,
    own_vote: Option<(u64, Message)>,
    last_voted_view: u64,
    high_qc: QuorumCertificate,
    tip: Tip,
    tip_proof: Option<CertifiedBlock>,
    proposed_view: u64,
    tree: BTreeMap<Digest, Pending>,
    /// Each leader's proposal digest per view, to notice a second one.
    seen_proposals: BTreeMap<u64, Digest>,
    votes: BTreeMap<(u64, Digest), QcBuilder>,
    timeouts: BTreeMap<u64, BTreeMap<ValidatorIndex, Timeout>>,
    /// Digests of the certificates verified last (see `verified_key`).
    verified: VecDeque<Digest>,
    pool: BTreeMap<Digest, (u64, Bytes)>,
    pool_order: BTreeMap<u64, Digest>,
    pool_seq: u64,
    waiting: BTreeMap<Digest, Vec<SocketAddr>>,
    waiting_count: usize,
    recent: BTreeMap<Digest, (u64, AnswerKind)>,
    recent_by_height: VecDeque<(u64, Vec<Digest>)>,
    /// Answers in `recent` whose bodies are still held, oldest first (height, id), and their
    /// bytes: kept within `answer_bytes_max`.
    answers_held: VecDeque<(u64, Digest)>,
    answer_bytes: usize,
    fetching: Option<Fetching>,
    fetch_generation: u64,
    fetch_peer: usize,
    /// The newest checkpoint this replica holds, described and whole: offered to peers that
    /// ask for heights it pruned from its log.
    offered: Option<(SnapshotOffer, Bytes)>,
    /// The checkpoint offered before it, still served: a transfer under way when a newer one
    /// is saved would otherwise find its source silent.
    offered_before: Option<(SnapshotOffer, Bytes)>,
    /// Each validator's latest offer of a checkpoint.
    offers: BTreeMap<ValidatorIndex, SnapshotOffer>,
    /// When offers were last asked of every validator at once.
    offers_asked: Option<Instant>,
    transfer: Option<Transfer>,
    transfer_generation: u64,
    /// The log is being started again, empty (it was pruned below a checkpoint that could not
    /// be restored): done again after a failed storage call before anything else is read.
    restarting_log: bool,
    /// The newest checkpoint read back at start, until it is restored or left aside.
    checkpoint_to_restore: Option<Snapshot>,
    /// Each voter's first vote per view, to notice a second one (as collector).
    votes_by_signer: BTreeMap<(u64, ValidatorIndex), Vote>,
    /// The first verified proposal header per view.
    headers: BTreeMap<u64, ProposalHeader>,
    /// Validators proven Byzantine, with the proof.
    convicted: BTreeMap<ValidatorIndex, Evidence>,
    tamper: Option<Box<dyn Tamper>>,
    tampered: bool,
    held: BTreeMap<u64, (SocketAddr, Bytes)>,
    held_seq: u64,
    detector: Detector,
    /// Isolated validators, with the height of the block whose removal isolated each.
    isolated: BTreeMap<ValidatorIndex, u64>,
    /// Leaders suspected of being down, with their latest view that ended by timeout without
    /// their proposal here (see the module's *Leader suspicion*).
    suspected: BTreeMap<ValidatorIndex, u64>,
    /// Proposals voted for, durable: the log, and each record's sequence number and height.
    voted_log: Option<BlockLog>,
    voted_records: VecDeque<(u64, u64)>,
    /// Transactions committed here that the other replicas learn of only from the next
    /// proposal's certificate: the next proposal should not wait for a heartbeat.
    announce: bool,
    /// The highest timeout certificate formed or received (sent to replicas still behind it).
    last_tc: Option<TimeoutCertificate>,
    /// When each lagging validator was last sent a certificate to catch up its view.
    synced: BTreeMap<ValidatorIndex, Instant>,
    /// Missing blocks asked for, and when.
    requested: BTreeMap<Digest, Instant>,
    request_peer: usize,
    /// The validator whose address the message being handled came from, if any.
    sender: Option<ValidatorIndex>,
    /// The same validator if the channel proves it sent the message: the transport names its
    /// certificate, or the config says source addresses are authentic (the simulator).
    authenticated_sender: Option<ValidatorIndex>,
    /// Linearizable reads being served, by their number here.
    reads: BTreeMap<u64, PendingRead>,
    /// The last read number given.
    read_counter: u64,
    stats: ReplicaStats,
}

impl<M: StateMachine + 'static> Replica<M> {
    /// Validator `me` of `set`, holding `key` (its validator's key), reaching validator `i` at
    /// `peers[i]`, applying committed blocks to `machine` (fresh: the log is replayed into it).
    ///
    /// # Panics
    ///
    /// If the config is invalid, `peers` does not match the set, or `key` is not `me`'s: a
    /// replica is built from checked settings.
    pub fn new(
        config: ConsensusConfig,
        set: ValidatorSet,
        peers: Vec<SocketAddr>,
        me: ValidatorIndex,
        key: ValidatorKey,
        machine: M,
    ) -> Self {
        if let Err(e) = config.validate() {
            panic!("invalid consensus config: {e}");
        }
        assert_eq!(peers.len(), set.len(), "one address per validator");
        let validator = set.get(me).expect("me is a validator of the set");
        assert_eq!(validator.public_key, key.public_key(), "the key is validator {me}'s");
        let detector = Detector::new(config.detection.clone());
        let first_view = set.first_view();
        Replica {
            config,
            epochs: vec![set.clone()],
            set,
            peers,
            key,
            me,
            machine,
            halted: false,
            starting: false,
            lost_at_start: 0,
            marker_lost: false,
            salvaged: BTreeMap::new(),
            log: None,
            checkpoints: None,
            safety: durable::Mirror::default(),
            view: first_view,
            view_entered: Instant::ZERO,
            consecutive_timeouts: 0,
            timed_out_view: 0,
            own_vote_saved: None,
            own_proposal: None,
            own_vote: None,
            last_voted_view: 0,
            high_qc: QuorumCertificate::genesis(),
            tip: GENESIS_TIP,
            tip_proof: None,
            proposed_view: 0,
            tree: BTreeMap::new(),
            seen_proposals: BTreeMap::new(),
            votes: BTreeMap::new(),
            timeouts: BTreeMap::new(),
            verified: VecDeque::new(),
            pool: BTreeMap::new(),
            pool_order: BTreeMap::new(),
            pool_seq: 0,
            waiting: BTreeMap::new(),
            waiting_count: 0,
            recent: BTreeMap::new(),
            recent_by_height: VecDeque::new(),
            answers_held: VecDeque::new(),
            answer_bytes: 0,
            fetching: None,
            fetch_generation: 0,
            fetch_peer: 0,
            offered: None,
            offered_before: None,
            offers: BTreeMap::new(),
            offers_asked: None,
            transfer: None,
            transfer_generation: 0,
            restarting_log: false,
            checkpoint_to_restore: None,
            votes_by_signer: BTreeMap::new(),
            headers: BTreeMap::new(),
            convicted: BTreeMap::new(),
            tamper: None,
            tampered: false,
            held: BTreeMap::new(),
            held_seq: 0,
            detector,
            isolated: BTreeMap::new(),
            suspected: BTreeMap::new(),
            voted_log: None,
            voted_records: VecDeque::new(),
            requested: BTreeMap::new(),
            request_peer: 0,
            last_tc: None,
            synced: BTreeMap::new(),
            announce: false,
            sender: None,
            authenticated_sender: None,
            reads: BTreeMap::new(),
            read_counter: 0,
            stats: ReplicaStats::default(),
        }
    }

    /// The same replica with an adversary between it and the network (simulation only: a
    /// Byzantine validator of a scenario).
    pub fn with_tamper(mut self, tamper: Box<dyn Tamper>) -> Self {
        self.tamper = Some(tamper);
        self
    }

    /// Validators this replica holds proof against, with the proof.
    pub fn convicted(&self) -> &BTreeMap<ValidatorIndex, Evidence> {
        &self.convicted
    }

    /// The state machine, as of the last committed height.
    pub fn machine(&self) -> &M {
        &self.machine
    }

    /// The highest committed height.
    pub fn committed_height(&self) -> u64 {
        self.tip.height
    }

    /// The current view.
    pub fn view(&self) -> u64 {
        self.view
    }

    /// What the replica counted.
    pub fn stats(&self) -> &ReplicaStats {
        &self.stats
    }

    /// Whether the replica stopped (its log failed beyond recovery).
    pub fn is_halted(&self) -> bool {
        self.halted
    }

    /// Transactions waiting in the pool.
    pub fn pool_len(&self) -> usize {
        self.pool.len()
    }

    /// The leader of `view`: the epoch's schedule, the same on every replica whatever each has
    /// committed (see the module's *Isolation and epochs*).
    pub fn leader(&self, view: u64) -> ValidatorIndex {
        self.set.leader(view)
    }

    /// Whether this replica gives up on `view` as soon as it enters it: its leader is isolated,
    /// or suspected of being down (never this replica itself).
    pub fn skips(&self, view: u64) -> bool {
        let leader = self.leader(view);
        self.isolated.contains_key(&leader)
            || (self.config.skip_suspected_leaders && self.suspected.contains_key(&leader))
    }

    /// Leaving `view` through its timeout certificate (of `entries`) without its
    /// proposal: its leader is suspected of being down (see the module's *Leader suspicion*),
    /// unless it showed itself up in that view, by a timeout of it (received, or in the
    /// certificate), or a proposal of it held since before a restart.
    fn suspect_for(&mut self, cx: &mut Context<'_, Timer>, view: u64, entries: &[TimeoutEntry]) {
        let leader = self.leader(view);
        let timed_out = entries.iter().any(|e| e.signer == leader)
            || self.timeouts.get(&view).is_some_and(|t| t.contains_key(&leader));
        // `seen_proposals` starts empty at a restart; the proposals voted for before it are
        // reloaded into the tree.
        let voted_before_restart = || self.tree.values().any(|p| p.block().view == view);
        if leader == self.me || self.seen_proposals.contains_key(&view) || timed_out || voted_before_restart() {
            return;
        }
        match self.suspected.get_mut(&leader) {
            Some(since) => *since = (*since).max(view),
            None => {
                self.suspected.insert(leader, view);
                self.stats.leaders_suspected += 1;
                Self::probe(cx, "leader_suspected", view, i64::from(leader));
            }
        }
    }

    /// A message `signer` signed in `view` verified here: a leader suspected at or before that
    /// view is up (a crashed one signs nothing in the view it was suspected at), and gets its
    /// next view in full.
    fn heard_from(&mut self, cx: &mut Context<'_, Timer>, signer: ValidatorIndex, view: u64) {
        if self.suspected.get(&signer).is_some_and(|since| *since <= view) {
            self.suspected.remove(&signer);
            Self::probe(cx, "leader_trusted", view, i64::from(signer));
        }
    }

    /// The leaders of the views after `view` that are not isolated, nearest first.
    fn active_leaders_after(&self, view: u64) -> impl Iterator<Item = ValidatorIndex> + '_ {
        (1..=self.set.len() as u64)
            .map(move |ahead| self.leader(view.saturating_add(ahead)))
            .filter(|leader| !self.isolated.contains_key(leader))
    }

    /// Whether this replica collects the votes of `view`: it leads the first view after it that
    /// it does not skip, or, voters suspecting leaders it does not, one of the `f + 1` views
    /// after it with a leader not isolated.
    fn collects_votes_of(&self, view: u64) -> bool {
        self.next_leader(view) == self.me
            || (self.config.skip_suspected_leaders
                && self
                    .active_leaders_after(view)
                    .take(self.set.f() + 1)
                    .any(|l| l == self.me))
    }

    /// The leader of the first view after `view` that this replica does not skip: where its
    /// votes of `view` and its waiting transactions go. The next view's leader if every view of
    /// a rotation is skipped (never with fewer than a quorum isolated).
    pub fn next_leader(&self, view: u64) -> ValidatorIndex {
        (1..=self.set.len() as u64)
            .map(|ahead| view.saturating_add(ahead))
            .find(|v| !self.skips(*v))
            .map_or_else(|| self.leader(view.saturating_add(1)), |v| self.leader(v))
    }

    /// Isolated validators, with the height of the block whose removal isolated each.
    pub fn isolated(&self) -> &BTreeMap<ValidatorIndex, u64> {
        &self.isolated
    }

    /// The validator set of the epoch this replica is in.
    pub fn validator_set(&self) -> &ValidatorSet {
        &self.set
    }

    // ---- epochs -----------------------------------------------------------------------------

    /// The set of `epoch`, if this replica knows it (it was in that epoch, or restored a
    /// checkpoint that names the removals which led there).
    fn set_of_epoch(&self, epoch: u64) -> Option<&ValidatorSet> {
        self.epochs.iter().find(|s| s.epoch() == epoch)
    }

    /// Whether this replica signs votes, timeouts and proposals in `view`: it is a member of its
    /// epoch's set, and `view` is of that epoch (a safety record ahead of a damaged log can
    /// put a replica in a view of an epoch it has not reached).
    fn acts_in(&self, view: u64) -> bool {
        self.set.is_member(self.me) && epoch_of_view(view) == self.set.epoch()
    }

    /// Whether a message of `view` is of this replica's epoch. One of a coming epoch says this
    /// replica is behind: it asks peers for the committed blocks that ended its epoch. One of a
    /// past epoch is stale. Neither is checked against this epoch's set, where its signatures
    /// would not verify: it is no forgery, and its sender is not to blame.
    fn in_epoch(&mut self, cx: &mut Context<'_, Timer>, view: u64) -> bool {
        let epoch = epoch_of_view(view);
        if epoch > self.set.epoch() {
            self.start_fetch(cx);
        }
        epoch == self.set.epoch()
    }

    /// Whether `qc` is of another epoch than this replica's: signed in another, or certified
    /// by the convention of another's start. Asks for committed blocks if it may be of a later
    /// one.
    fn foreign_qc(&mut self, cx: &mut Context<'_, Timer>, qc: &QuorumCertificate) -> bool {
        if qc.signers.is_empty() {
            let own = qc.summary() == QcSummary::GENESIS || qc.summary() == self.set.start();
            if !own && qc.view >= self.set.start().view {
                self.start_fetch(cx);
            }
            return !own;
        }
        !self.in_epoch(cx, qc.view)
    }

    /// The removals among a committed block's control transactions, judged alike on every
    /// replica from the committed chain alone, in block order: each a valid removal of a
    /// member, or why not. Transactions committed before (within the dedup window) or twice in
    /// the block are left out, as `apply` skips them. A block with a valid one ends the epoch.
    fn judge_removals(&self, block: &Block) -> Vec<(Digest, Result<Removal, String>)> {
        self.judge_removals_after(block, &|id| self.recent.contains_key(id))
    }

    /// [`Self::judge_removals`], with `committed` saying which transactions the dedup window
    /// holds when the block is applied.
    fn judge_removals_after(
        &self,
        block: &Block,
        committed: &dyn Fn(&Digest) -> bool,
    ) -> Vec<(Digest, Result<Removal, String>)> {
        let mut judged = Vec::new();
        let mut in_block = BTreeSet::new();
        let mut removed = BTreeSet::new();
        for t in block.transactions.iter().filter(|t| is_control(t)) {
            let id = sha256(t);
            if committed(&id) || !in_block.insert(id) {
                continue;
            }
            let verdict = Removal::decode(t).and_then(|removal| {
                self.check_removal(&removal, &removed)?;
                Ok(removal)
            });
            if let Ok(removal) = &verdict {
                removed.insert(removal.accused);
            }
            judged.push((id, verdict));
        }
        judged
    }

    /// Whether `removal` takes a member out of this epoch's set, besides those `removed` by the
    /// same block: its proof checked against the set of the epoch it was signed in (reports
    /// all of one epoch, enough distinct reporters for that set), and a member left after.
    fn check_removal(&self, removal: &Removal, removed: &BTreeSet<ValidatorIndex>) -> Result<(), String> {
        let accused = removal.accused;
        if !self.set.is_member(accused) {
            return Err(format!(
                "validator {accused} is not a member of epoch {}",
                self.set.epoch()
            ));
        }
        if removed.contains(&accused) {
            return Err(format!("validator {accused} is removed by this block already"));
        }
        if self.set.members().iter().all(|m| *m == accused || removed.contains(m)) {
            return Err("removing it would leave no validator".into());
        }
        let epoch = removal.proof_epoch()?;
        let Some(set) = self.set_of_epoch(epoch) else {
            return Err(format!(
                "its proof was signed in epoch {epoch}, which this replica does not know"
            ));
        };
        removal.verify(set, self.detector.threshold(set.f()))
    }

    /// Where `records` (consecutive blocks to commit, from the one after the tip) stop being of
    /// this replica's epoch: how many of them are, up to and including the first that ends it,
    /// and the validators that one removes if one does. Blocks after that one were certified in the epoch it ended and are
    /// never committed (see *Epochs*).
    ///
    /// Each block is judged as `apply` will judge it, after the ones before it: with the dedup
    /// window as it will be then (ids leave it as heights pass, and the earlier blocks' control
    /// transactions join it). Judged against the window at the tip instead, a removal committed
    /// and refused once, and valid when committed again past the window, ended the epoch in
    /// `apply` but not here, and a block after the epoch's end was applied (found in review).
    fn within_epoch(&self, records: &[CertifiedBlock]) -> (usize, Option<Vec<ValidatorIndex>>) {
        let dedup = self.config.dedup_heights;
        let mut joined: BTreeMap<Digest, u64> = BTreeMap::new();
        for (i, record) in records.iter().enumerate() {
            let height = record.block.height;
            // Applying height h drops the ids of heights at or below h - dedup_heights.
            let held = |at: u64| at + dedup >= height;
            let committed = |id: &Digest| {
                self.recent.get(id).is_some_and(|(at, _)| held(*at)) || joined.get(id).is_some_and(|at| held(*at))
            };
            let judged = self.judge_removals_after(&record.block, &committed);
            let removed: Vec<ValidatorIndex> = judged
                .iter()
                .filter_map(|(_, verdict)| verdict.as_ref().ok().map(|r| r.accused))
                .collect();
            if !removed.is_empty() {
                return (i + 1, Some(removed));
            }
            joined.extend(judged.into_iter().map(|(id, _)| (id, height)));
        }
        (records.len(), None)
    }

    /// Enters the epoch of `set`, which the committed block `start` began (or a checkpoint
    /// restored from peers is in): what belonged to the epoch before is dropped (uncommitted
    /// blocks, votes, timeouts, certificates, suspicions; the transactions of those blocks go
    /// back to the pool), the high QC is the new epoch's start, and, running, the replica
    /// enters the epoch's first view.
    fn enter_epoch(&mut self, cx: &mut Context<'_, Timer>, set: ValidatorSet) {
        assert!(set.epoch() > self.set.epoch(), "epochs only go forward");
        debug_assert!(
            set.start().height <= self.tip.height,
            "an epoch starts at a committed block"
        );
        Self::probe(cx, "epoch", set.epoch(), set.member_count() as i64);
        self.stats.epochs_entered += 1;
        self.epochs.push(set.clone());
        self.set = set;
        self.high_qc = QuorumCertificate::start_of(&self.set);
        let abandoned = std::mem::take(&mut self.tree);
        for pending in abandoned.into_values() {
            self.return_to_pool(pending.proposal.block);
        }
        self.votes.clear();
        self.timeouts.clear();
        self.seen_proposals.clear();
        self.headers.clear();
        self.votes_by_signer.clear();
        self.own_proposal = None;
        self.own_vote = None;
        self.own_vote_saved = None;
        self.last_tc = None;
        self.suspected.clear();
        self.synced.clear();
        self.requested.clear();
        self.consecutive_timeouts = 0;
        if let Some(f) = self.fetching.as_mut() {
            f.unproven.clear();
        }
        // Offers count by member: a removed validator's would count toward the smaller f.
        let set = &self.set;
        self.offers.retain(|v, _| set.is_member(*v));
        // Reads being served counted the old set's answers, which make no quorum of the new
        // one: refused, for the client to ask again.
        for (_, read) in std::mem::take(&mut self.reads) {
            let why = format!("epoch {} began while the read was served: ask again", self.set.epoch());
            self.answer_read(cx, read.client, read.id, Err(why));
        }
        self.detector.new_epoch();
        if !self.starting {
            let first = self.set.first_view();
            self.advance_to(cx, first, false);
        }
    }

    /// The leaders of the next `views` views from the current one on that this replica does
    /// not skip, other than itself, each once: where submitted transactions are forwarded.
    fn coming_leaders(&self, views: usize) -> Vec<ValidatorIndex> {
        let mut leaders = Vec::with_capacity(views);
        (0..self.set.len() as u64 + views as u64)
            .map(|ahead| self.view.saturating_add(ahead))
            .filter(|view| !self.skips(*view))
            .take(views)
            .for_each(|view| {
                let leader = self.leader(view);
                if leader != self.me && !leaders.contains(&leader) {
                    leaders.push(leader);
                }
            });
        leaders
    }

    fn probe(cx: &mut Context<'_, Timer>, name: &'static str, subject: u64, value: i64) {
        cx.probe(Probe::new(name, subject, value));
    }

    /// Whether the message being handled, signed by `signer`, came over a channel that
    /// authenticated another validator. Votes, timeouts and reports travel only from their
    /// signer (certificates and evidence carry others' signatures in messages of their own), so
    /// such a one is forged, whether or not its signature verifies: an impersonator's vote
    /// arriving after its victim's was otherwise dropped as a duplicate, unnoticed.
    fn speaks_for_another(&self, signer: ValidatorIndex) -> bool {
        self.authenticated_sender.is_some_and(|sender| sender != signer)
    }

    /// Refuses a vote, timeout, report or proposal whose signature does not verify, or that
    /// came from another validator than its signer. Honest validators send these only signed by
    /// themselves and never relay one that fails, so from an authenticated sender it is
    /// first-hand proof: the sender is marked at once (and reported, since this proof convinces
    /// no other replica).
    fn refuse_forged(&mut self, cx: &mut Context<'_, Timer>) {
        if let Some(sender) = self.authenticated_sender {
            if self.detector.witness(cx.now(), sender) {
                Self::probe(cx, "marked", u64::from(sender), MARKED_FIRST_HAND);
            }
        }
        self.refuse(cx, Refusal::Invalid);
    }

    fn refuse(&mut self, cx: &mut Context<'_, Timer>, why: Refusal) {
        self.stats.refused += 1;
        Self::probe(cx, "refused", self.view, why as i64);
        if matches!(why, Refusal::Malformed | Refusal::Invalid) {
            if let Some(sender) = self.sender {
                self.observe(cx, sender, Reason::BadMessage);
            }
        }
    }

    /// Something a validator did that an honest one on a bad network might also seem to do:
    /// reported, signed, to every validator (rate-limited).
    fn observe(&mut self, cx: &mut Context<'_, Timer>, accused: ValidatorIndex, reason: Reason) {
        // A report is signed in this replica's epoch at its view: in a view of an epoch it has
        // not reached (a safety record ahead of a damaged log), the others would check it
        // against that view's epoch, find the signature of another, and take this replica for
        // a forger (swarm seed 9737). Such a replica signs nothing, reports included.
        if accused == self.me || !self.acts_in(self.view) {
            return;
        }
        if reason == Reason::Slow && !self.detector.slow_again(cx.now(), accused) {
            return;
        }
        if !self.detector.should_report(cx.now(), accused, reason) {
            return;
        }
        let Ok(report) = Report::sign(&self.set, &self.key, accused, reason, self.view) else {
            return;
        };
        Self::probe(cx, "report", u64::from(accused), reason as i64);
        self.broadcast(cx, &Message::Report(report), true);
    }

    fn on_report(&mut self, cx: &mut Context<'_, Timer>, report: Report) {
        if !self.speaks_for_another(report.reporter) && !self.in_epoch(cx, report.view) {
            return;
        }
        if self.speaks_for_another(report.reporter) || report.verify(&self.set).is_err() {
            self.refuse_forged(cx);
            return;
        }
        self.stats.signatures_verified += 1;
        let f = self.set.f();
        let marked_before = self.detector.marked().contains_key(&report.accused);
        if let Some(reports) = self.detector.tally(cx.now(), &report, f) {
            if !marked_before {
                Self::probe(cx, "marked", u64::from(report.accused), report.reason as i64);
            }
            self.propose_removal(cx, report.accused, Proof::Reports(reports));
        }
    }

    fn send(&mut self, cx: &mut Context<'_, Timer>, to: SocketAddr, message: &Message) {
        let bytes = message.encode();
        self.send_bytes(cx, to, message, bytes);
    }

    /// Sends `bytes` (the encoding of `message`), through the adversary if there is one.
    fn send_bytes(&mut self, cx: &mut Context<'_, Timer>, to: SocketAddr, message: &Message, bytes: Bytes) {
        if let Some(tamper) = self.tamper.as_mut() {
            let wall = cx.wall_now();
            let outgoing = tamper.outgoing(to, message, cx, wall);
            let honest = outgoing.len() == 1
                && outgoing[0].to == to
                && outgoing[0].bytes == bytes
                && outgoing[0].after.is_zero();
            if !honest && !self.tampered {
                // The run's record of when this adversary first did something (detection is
                // timed from it).
                self.tampered = true;
                Self::probe(cx, "misbehaved", u64::from(self.me), 1);
            }
            for o in outgoing {
                if o.after.is_zero() {
                    self.transmit(cx, o.to, o.bytes);
                } else {
                    self.held_seq += 1;
                    self.held.insert(self.held_seq, (o.to, o.bytes));
                    let at = cx.now() + o.after;
                    cx.set_timer(at, Timer::Release(self.held_seq));
                }
            }
            return;
        }
        self.transmit(cx, to, bytes);
    }

    fn transmit(&mut self, cx: &mut Context<'_, Timer>, to: SocketAddr, bytes: Bytes) {
        self.stats.messages_sent += 1;
        self.stats.bytes_sent += bytes.len() as u64;
        // A send error (no route, a full queue) is a lost message, which the protocol survives.
        let _ = cx.send_to(to, bytes);
    }

    fn send_to_validator(&mut self, cx: &mut Context<'_, Timer>, to: ValidatorIndex, message: &Message) {
        if to == self.me {
            // Handled in place: the replica is its own peer.
            let bytes = message.encode();
            let from = self.peers[usize::from(self.me)];
            self.on_message(cx, from, bytes);
        } else {
            let addr = self.peers[usize::from(to)];
            self.send(cx, addr, message);
        }
    }

    fn broadcast(&mut self, cx: &mut Context<'_, Timer>, message: &Message, include_me: bool) {
        let bytes = message.encode();
        for i in 0..self.peers.len() {
            if i == usize::from(self.me) {
                continue;
            }
            let to = self.peers[i];
            self.send_bytes(cx, to, message, bytes.clone());
        }
        if include_me {
            let from = self.peers[usize::from(self.me)];
            // An adversary's own copy is what it sends (a lying clock lies to itself too), at
            // once.
            let copies = match self.tamper.as_mut() {
                Some(tamper) => {
                    let wall = cx.wall_now();
                    tamper
                        .outgoing(from, message, cx, wall)
                        .into_iter()
                        .filter(|o| o.to == from)
                        .map(|o| o.bytes)
                        .collect()
                }
                None => vec![bytes],
            };
            for copy in copies {
                self.on_message(cx, from, copy);
            }
        }
    }

    // ---- durability -------------------------------------------------------------------------

    /// Saves the safety record: the last view voted or timed out in, the last view proposed
    /// in, and the highest QC.
    fn save_safety(&mut self, cx: &mut Context<'_, Timer>) -> bool {
        let qc = self.high_qc.encode();
        debug_assert!(qc.len() <= qc_bytes_max(&self.set), "the high QC is of this set");
        let mut data = BytesMut::with_capacity(safety_record_len(&self.set));
        data.put_u8(SAFETY_FORMAT);
        data.put_u64(self.last_voted_view);
        data.put_u64(self.proposed_view);
        data.put_u32(qc.len() as u32);
        data.put_slice(&qc);
        data.resize(safety_record_len(&self.set), 0);
        // In three copies: read back after the newest rotted, the previous record would let this
        // replica vote again in a view it voted in. A failed save is tried again whole.
        (0..self.config.storage_attempts).any(|_| self.safety.save(cx, SAFETY, &data).is_ok())
    }

    /// Reads the safety record back; an error (the read failed) is tried again, never taken
    /// for "no record": a replica that forgot its last vote could vote twice in one view.
    fn load_safety(&mut self, cx: &mut Context<'_, Timer>) -> Result<(), runtime::StorageError> {
        let (safety, data) = durable::Mirror::load_sized(cx, SAFETY, safety_record_len(&self.set))?;
        let lost = safety.lost();
        self.safety = safety;
        let Some(data) = data else {
            if lost {
                // Saved once, and no copy whole: the views it voted and proposed in are unknown,
                // and taking part again could sign twice in one of them.
                self.halt(cx, HALTED_SAFETY_LOST);
            }
            return Ok(());
        };
        let u64_at = |at: usize| u64::from_be_bytes(data[at..at + 8].try_into().expect("8 bytes"));
        let qc_bytes = match data.first() {
            Some(&SAFETY_FORMAT) if data.len() >= 21 => {
                self.last_voted_view = u64_at(1);
                self.proposed_view = self.proposed_view.max(u64_at(9));
                let len = u32::from_be_bytes(data[17..21].try_into().expect("4 bytes")) as usize;
                data.get(21..21 + len).unwrap_or_default()
            }
            Some(&SAFETY_FORMAT_UNPADDED) if data.len() >= 17 => {
                self.last_voted_view = u64_at(1);
                self.proposed_view = self.proposed_view.max(u64_at(9));
                &data[17..]
            }
            _ if data.len() >= 8 => {
                // The first layout: no proposed view (a view voted in bounds it, as before).
                self.last_voted_view = u64_at(0);
                &data[8..]
            }
            _ => return Ok(()),
        };
        if let Ok(qc) = QuorumCertificate::decode(qc_bytes) {
            if qc.verify(&self.set).is_ok() && qc.view > self.high_qc.view {
                self.high_qc = qc;
            }
        }
        if self.safety.needs_repair() {
            // Some copy is damaged: rewritten now, before later reads rot the rest (a replica
            // restarted again and again without voting lost every copy: crash-heavy seed 436).
            // What it holds is what was loaded; if the save fails, the next one repairs.
            self.save_safety(cx);
        }
        Ok(())
    }

    /// Opens the log (once) and replays it into the state machine from the committed tip, so
    /// that an attempt stopped by a failed read resumes where it stopped. A record found rotted
    /// now cuts the log there: the heights from it on are fetched again from peers. Adds the
    /// heights lost to damage to `lost_at_start`.
    fn replay(&mut self, cx: &mut Context<'_, Timer>) -> Result<(), LogError> {
        if self.log.is_none() {
            let (checkpoints, newest) = Snapshots::open(cx, LOG)?;
            let (log, recovery) = BlockLog::open(cx, LOG)?;
            self.lost_at_start += recovery.lost_heights();
            self.marker_lost |= recovery.marker_lost;
            self.log = Some(log);
            self.checkpoints = Some(checkpoints);
            self.checkpoint_to_restore = newest;
        }
        // Until it is restored or left aside: a failed read is tried again with the rest of the
        // start, and a pruned log cannot be replayed without it.
        if let Some(newest) = self.checkpoint_to_restore.clone() {
            self.restore_checkpoint(cx, &newest)?;
            self.checkpoint_to_restore = None;
        }
        let first = self.log.as_ref().expect("opened above").first();
        if first != 0 && self.tip.height < first && !self.restarting_log {
            // Pruned below a checkpoint that could not be restored: the records held cannot be
            // applied without the state before them. The log starts again empty, its heights
            // reported lost, and the state comes from peers (a checkpoint, then blocks).
            // Every height below its end: those below its first went with the pruning.
            let next = self.log.as_ref().expect("opened above").next();
            self.lost_at_start += next.max(1);
            self.restarting_log = true;
            Self::probe(cx, "log_restarted", first, next as i64);
        }
        if self.restarting_log {
            self.log.as_mut().expect("opened above").restart_at(cx, 0)?;
            if let Some(checkpoints) = self.checkpoints.as_mut() {
                checkpoints.forget_held();
            }
            self.restarting_log = false;
        }
        loop {
            let log = self.log.as_mut().expect("opened above");
            // Height h is record h - 1.
            let index = self.tip.height;
            if log.is_failed() {
                // A cut that failed part-way: done again before anything is read.
                let recovery = log.recover(cx)?;
                self.lost_at_start = recovery.lost_heights();
                continue;
            }
            if index >= log.next() {
                return Ok(());
            }
            if index < log.first() {
                // A log pruned past the state it must be replayed onto is started again above;
                // reaching here is a bug of ours, and the replica stops rather than spin.
                debug_assert!(false, "replaying from {index}, below the log's first {}", log.first());
                self.halt(cx, 1);
                return Ok(());
            }
            if log.committed() < log.next() {
                // Records past the marker's claim: written, perhaps never synced (the node
                // crashed before the commit that would have). Applied, they are heights this
                // replica committed, so they are made durable first: a crash before the next
                // commit lost one, and the replica came back behind what it had applied, with
                // nothing reported lost (swarm-consensus seed 9607 at 953c613). If it fails,
                // starting is retried, the log recovered to what was found (the recovery's cut
                // syncs it).
                log.commit(cx)?;
            }
            let batch = log.get_many(cx, index, REPLAY_BATCH_RECORDS)?;
            let mut damaged = None;
            for (i, raw) in batch.into_iter().enumerate() {
                let Some(bytes) = raw else {
                    damaged = Some(index + i as u64);
                    break;
                };
                // The log checks every record: one that passes its check but does not decode
                // or link is a bug of ours, and the replica stops rather than build on it.
                let record = CertifiedBlock::decode(&bytes)
                    .ok()
                    .filter(|r| r.block.height == self.tip.height + 1 && r.block.parent == self.tip.digest);
                let Some(record) = record else {
                    self.halt(cx, 1);
                    return Ok(());
                };
                self.apply(cx, &record, false);
                self.raise_high_qc(&record.qc);
            }
            if let Some(at) = damaged {
                // Rotted since it was written: the log is cut there, and the intact records
                // after it are kept in memory, committed again once the lost one is fetched.
                self.salvage(cx, at + 1)?;
                let log = self.log.as_mut().expect("opened above");
                let recovery = log.cut_at(cx, at)?;
                self.lost_at_start = recovery.lost_heights();
            }
        }
    }

    /// Takes the replicated state of `snapshot` (a [`Checkpoint`]) if the log holds the block it
    /// was taken at, with the same digest: replay then goes on from the block after it. A
    /// checkpoint that does not decode, that the machine refuses, or that the log does not
    /// vouch for (its block lost to damage, or another block at that height) is left aside and
    /// the whole log replayed, as without one. Only the fresh replica's empty state is replaced.
    fn restore_checkpoint(&mut self, cx: &mut Context<'_, Timer>, snapshot: &Snapshot) -> Result<(), LogError> {
        let refuse = |cx: &mut Context<'_, Timer>, why: i64| {
            Self::probe(cx, "checkpoint_refused", snapshot.height, why);
        };
        let checkpoint = match Checkpoint::decode(&snapshot.state) {
            // Isolated validators of this set only: a state directory kept across a change of
            // the validators file is not this set's.
            Ok(c) if c.height == snapshot.height && c.height > 0 && self.epochs_of(&c).is_some() => c,
            _ => {
                refuse(cx, 1);
                return Ok(());
            }
        };
        assert_eq!(self.tip.height, 0, "a checkpoint is restored into a fresh replica");
        let log = self.log.as_ref().expect("opened first");
        if log.next() < checkpoint.height {
            refuse(cx, 2);
            return Ok(());
        }
        // A log started again right after a checkpoint taken from peers holds no block at its
        // height: the checkpoint was checked against `f + 1` validators' offers when taken.
        let transferred = log.first() == checkpoint.height;
        let record = if transferred {
            None
        } else {
            let record = log
                .get(cx, checkpoint.height - 1)?
                .and_then(|bytes| CertifiedBlock::decode(&bytes).ok())
                .filter(|r| {
                    r.block.height == checkpoint.height
                        && r.block.view == checkpoint.view
                        && r.block.digest() == checkpoint.digest
                });
            if record.is_none() {
                refuse(cx, 2);
                return Ok(());
            }
            record
        };
        // The whole log below is read too, as a full replay would: a replay is what finds rot in
        // committed records and has them fetched again from peers, and records below a
        // checkpoint are still what lagging peers catch up from. With damage, the whole log is
        // replayed (and so repaired) instead.
        let mut index = log.first();
        while index + 1 < checkpoint.height {
            let count = REPLAY_BATCH_RECORDS.min(checkpoint.height - 1 - index);
            let batch = log.get_many(cx, index, count)?;
            if batch.len() as u64 != count || batch.iter().any(Option::is_none) {
                refuse(cx, 4);
                return Ok(());
            }
            index += count;
        }
        if self.machine.restore(&checkpoint.state).is_err() {
            refuse(cx, 3);
            return Ok(());
        }
        self.take_checkpoint(cx, &checkpoint);
        if let Some(record) = record {
            self.raise_high_qc(&record.qc);
        }
        self.offer(&checkpoint, snapshot.state.clone());
        Self::probe(
            cx,
            "checkpoint_restored",
            checkpoint.height,
            snapshot.state.len() as i64,
        );
        Ok(())
    }

    /// Saves the replicated state as of the committed tip (a multiple of `checkpoint_interval`).
    /// A failed save leaves the previous checkpoint in place (restarts replay more of the log).
    /// Not at or below the newest one held: a replay that left it aside passes those heights
    /// again, and writing the whole state at each would slow the restart for nothing.
    fn save_checkpoint(&mut self, cx: &mut Context<'_, Timer>) {
        let Some(checkpoints) = self.checkpoints.as_mut() else {
            return;
        };
        if checkpoints.height().is_some_and(|held| held >= self.tip.height) {
            return;
        }
        let checkpoint = Checkpoint {
            height: self.tip.height,
            view: self.tip.view,
            digest: self.tip.digest,
            epoch_start: self.set.start(),
            isolated: self.isolated.clone(),
            recent: self.recent_by_height.iter().cloned().collect(),
            state: self.machine.snapshot(),
        };
        let snapshot = Snapshot {
            height: checkpoint.height,
            state: checkpoint.encode(),
        };
        let saved = (0..self.config.storage_attempts).any(|_| checkpoints.save(cx, &snapshot).is_ok());
        Self::probe(
            cx,
            "checkpoint",
            snapshot.height,
            if saved { snapshot.state.len() as i64 } else { 0 },
        );
        if !saved {
            return;
        }
        self.offer(&checkpoint, snapshot.state);
        // Whole segments older than `log_retain_heights` below the checkpoint go: peers that
        // need them take the checkpoint instead. A failed delete leaves them for the next.
        if let Some(log) = self.log.as_mut() {
            let _ = log.prune_below(cx, checkpoint.height.saturating_sub(self.config.log_retain_heights));
        }
    }

    /// Takes the replicated state of `checkpoint` besides the machine's (which the caller
    /// restored): its tip, its isolated validators, and the transaction ids of its dedup
    /// window (their answers are not kept: a resubmission is answered `Forgotten`).
    fn take_checkpoint(&mut self, cx: &mut Context<'_, Timer>, checkpoint: &Checkpoint) {
        let mut sets = self
            .epochs_of(checkpoint)
            .expect("a checkpoint is checked before it is taken");
        self.tip = Tip {
            height: checkpoint.height,
            view: checkpoint.view,
            digest: checkpoint.digest,
        };
        for (validator, at) in &checkpoint.isolated {
            if !self.isolated.contains_key(validator) {
                self.detector.convict(cx.now(), *validator);
                self.isolated.insert(*validator, *at);
            }
        }
        let current = sets.pop().expect("at least the first epoch's set");
        if current.epoch() > self.set.epoch() {
            self.epochs = sets;
            self.enter_epoch(cx, current);
        }
        self.recent.clear();
        self.recent_by_height.clear();
        for (height, ids) in &checkpoint.recent {
            for id in ids {
                self.recent.insert(*id, (*height, AnswerKind::Forgotten));
            }
            self.recent_by_height.push_back((*height, ids.clone()));
        }
    }

    /// The sets of every epoch up to `checkpoint`'s: the set this replica was made with, without
    /// the validators removed at each distinct height in turn (the last epoch starting from the
    /// checkpoint's epoch start; the starts of those before are not kept, and only their
    /// signers matter). None if the removals do not fit the set: a state directory kept across
    /// a change of the validators file, or a checkpoint made by no honest replica.
    fn epochs_of(&self, checkpoint: &Checkpoint) -> Option<Vec<ValidatorSet>> {
        let mut removals: BTreeMap<u64, BTreeSet<ValidatorIndex>> = BTreeMap::new();
        for (validator, height) in &checkpoint.isolated {
            removals.entry(*height).or_default().insert(*validator);
        }
        let mut sets = vec![self.epochs[0].clone()];
        for (height, removed) in removals {
            let start = if height == checkpoint.epoch_start.height {
                checkpoint.epoch_start
            } else {
                QcSummary::GENESIS
            };
            let next = sets.last().expect("one at least").next(&removed, start).ok()?;
            sets.push(next);
        }
        (sets.last().expect("one at least").start() == checkpoint.epoch_start).then_some(sets)
    }

    /// Offers `checkpoint` (encoded as `state`) to peers behind what this log keeps, keeping
    /// the one offered before it served too.
    fn offer(&mut self, checkpoint: &Checkpoint, state: Bytes) {
        let offer = SnapshotOffer {
            height: checkpoint.height,
            view: checkpoint.view,
            block: checkpoint.digest,
            state: sha256(&state),
            len: state.len() as u64,
        };
        self.offer_described(offer, state);
    }

    /// [`Self::offer`], for a checkpoint already described (one taken from peers, its digest
    /// checked against the offer).
    fn offer_described(&mut self, offer: SnapshotOffer, state: Bytes) {
        self.offered_before = self.offered.replace((offer, state));
    }

    /// Reads the intact records from log index `from` on (up to `salvage_blocks_max`, stopping
    /// at the next damaged one) into `salvaged`, before a cut deletes them. Every replica cut
    /// its log at its first rotted record, and with each cut in another place, every copy of
    /// some committed heights was gone (swarm-consensus seed 168).
    fn salvage(&mut self, cx: &mut Context<'_, Timer>, from: u64) -> Result<(), LogError> {
        let mut index = from;
        loop {
            let log = self.log.as_ref().expect("opened");
            let batch = log.get_many(cx, index, REPLAY_BATCH_RECORDS)?;
            if batch.is_empty() {
                return Ok(());
            }
            for raw in batch {
                let Some(record) = raw.and_then(|bytes| CertifiedBlock::decode(&bytes).ok()) else {
                    return Ok(());
                };
                if self.salvaged.len() >= self.config.salvage_blocks_max {
                    return Ok(());
                }
                self.salvaged.insert(record.block.height, record);
                index += 1;
            }
        }
    }

    /// Commits again the salvaged records that extend the committed tip (this replica
    /// committed them before; its log checked them intact), and forgets those at or below it.
    fn commit_salvaged(&mut self, cx: &mut Context<'_, Timer>) {
        let tip = self.tip.height;
        self.salvaged.retain(|height, _| *height > tip);
        let mut run = Vec::new();
        let (mut height, mut parent) = (self.tip.height + 1, self.tip.digest);
        while let Some(record) = self.salvaged.get(&height) {
            if record.block.parent != parent {
                break;
            }
            parent = record.block.digest();
            run.push(record.clone());
            height += 1;
        }
        if run.is_empty() || !self.persist(cx, &run) {
            return;
        }
        for r in &run {
            self.salvaged.remove(&r.block.height);
            self.apply(cx, r, true);
            self.raise_high_qc(&r.qc);
        }
        self.enter_past_high_qc(cx);
        self.prune_tree();
    }

    fn halt(&mut self, cx: &mut Context<'_, Timer>, why: i64) {
        if !self.halted {
            self.halted = true;
            Self::probe(cx, "halted", self.tip.height, why);
        }
    }

    /// Opens the log of voted proposals and puts those above the committed tip back in the tree.
    /// An error opening it is tried again (without the log this replica could never vote);
    /// a proposal that cannot be read is skipped, a block to fetch again if needed.
    fn reload_voted(&mut self, cx: &mut Context<'_, Timer>) -> Result<(), LogError> {
        // Its records may be lost (another voter serves a lost one), so its marker is kept in
        // two slots, one sync a vote rather than three.
        let (log, _) = BlockLog::open_with(cx, VOTED, MarkerCopies::Two)?;
        for seq in log.first()..log.next() {
            let Ok(Some(bytes)) = log.get(cx, seq) else { continue };
            let Ok(proposal) = Proposal::decode(&bytes) else {
                continue;
            };
            let height = proposal.block.height;
            self.voted_records.push_back((seq, height));
            if height > self.tip.height
                && proposal.verify_trusting_justify(&self.set).is_ok()
                && self.verify_qc(&proposal.justify)
            {
                self.tree.insert(proposal.block.digest(), Pending { proposal });
            }
        }
        self.voted_log = Some(log);
        Ok(())
    }

    /// Makes a proposal durable before this replica votes for it; false if it could not.
    fn persist_voted(&mut self, cx: &mut Context<'_, Timer>, proposal: &Proposal) -> bool {
        let Some(log) = self.voted_log.as_mut() else {
            return false;
        };
        let encoded = proposal.encode();
        let mut seq = None;
        for _ in 0..self.config.storage_attempts {
            // A failed write or sync: recovered to what is durable, then written again.
            if log.is_failed() && log.recover(cx).is_err() {
                continue;
            }
            let next = log.next();
            if log.append(cx, next, &encoded).and_then(|()| log.commit(cx)).is_ok() {
                seq = Some(next);
                break;
            }
        }
        let Some(seq) = seq else {
            return false;
        };
        self.voted_records.push_back((seq, proposal.block.height));
        // Whole segments whose proposals are all committed go.
        let tip = self.tip.height;
        while self.voted_records.front().is_some_and(|(_, h)| *h <= tip) {
            self.voted_records.pop_front();
        }
        if let Some((first_needed, _)) = self.voted_records.front() {
            let _ = log.prune_below(cx, *first_needed);
        }
        true
    }

    /// Asks peers for the proposal of a block this replica is missing (an ancestor of a
    /// certified one), preferring validators that voted for it (they hold it durably).
    fn request_block(&mut self, cx: &mut Context<'_, Timer>, digest: Digest, voters: &[ValidatorIndex]) {
        let now = cx.now();
        if self
            .requested
            .get(&digest)
            .is_some_and(|at| now.saturating_since(*at) < BLOCK_REQUEST_INTERVAL)
        {
            return;
        }
        self.requested.insert(digest, now);
        if self.requested.len() > self.config.pending_blocks_max {
            self.requested.pop_first();
        }
        let candidates: Vec<ValidatorIndex> = if voters.is_empty() {
            self.set.members().to_vec()
        } else {
            voters.to_vec()
        };
        let candidates: Vec<ValidatorIndex> = candidates.into_iter().filter(|i| *i != self.me).collect();
        if candidates.is_empty() {
            return;
        }
        for _ in 0..2.min(candidates.len()) {
            self.request_peer = (self.request_peer + 1) % candidates.len();
            let to = self.peers[usize::from(candidates[self.request_peer])];
            self.send(cx, to, &Message::FetchProposal(digest));
        }
    }

    // ---- views ------------------------------------------------------------------------------

    /// The view timer: the base for the first two consecutive timeouts (a crashed validator
    /// costs two views in a row, its own and the one whose votes go to it, until it is
    /// suspected, and neither says the network is slow), then doubling, reset by the next
    /// certificate.
    fn view_timeout(&self) -> Duration {
        let factor = 1u32 << self.consecutive_timeouts.saturating_sub(1).min(16);
        (self.config.view_timeout * factor).min(self.config.view_timeout_max)
    }

    fn advance_to(&mut self, cx: &mut Context<'_, Timer>, view: u64, through_timeout: bool) {
        if view <= self.view {
            return;
        }
        self.view = view;
        self.view_entered = cx.now();
        if !through_timeout {
            self.consecutive_timeouts = 0;
        }
        Self::probe(cx, "view", view, if through_timeout { 2 } else { 1 });
        self.forward_waiting(cx, view);
        let at = cx.now() + self.view_timeout();
        cx.set_timer(at, Timer::View(view));
        // Forget what cannot matter any more.
        let keep_from = view.saturating_sub(1);
        self.votes.retain(|(v, _), _| *v + 1 >= keep_from);
        self.timeouts.retain(|v, _| *v + 1 >= keep_from);
        self.seen_proposals.retain(|v, _| *v + 1 >= keep_from);
        self.headers.retain(|v, _| *v + 1 >= keep_from);
        self.votes_by_signer.retain(|(v, _), _| *v + 1 >= keep_from);
        if self.skips(view) {
            Self::probe(cx, "skipped", view, i64::from(self.leader(view)));
            self.give_up(cx, view, true);
        } else if self.leader(view) == self.me {
            self.try_propose(cx, false);
        }
    }

    fn on_view_timer(&mut self, cx: &mut Context<'_, Timer>, view: u64) {
        self.give_up(cx, view, false);
    }

    /// Times out of `view`: from now on this replica never votes in it, and it tells every
    /// validator so. `skipped`: at once, its leader being isolated, which says nothing about
    /// the network and so does not grow the backoff.
    fn give_up(&mut self, cx: &mut Context<'_, Timer>, view: u64, skipped: bool) {
        if view != self.view {
            return;
        }
        if !self.set.is_member(self.me) {
            // Removed: it follows the commits, and signs nothing.
            return;
        }
        if !self.acts_in(view) {
            // A view of an epoch this replica has not reached (its safety record is ahead of
            // its log): nothing it signs would count. It catches up, and times out of the view
            // once it has (its timeout may be one the others need: swarm-consensus seed 138
            // stalled for want of it).
            self.start_fetch(cx);
            let at = cx.now() + self.config.view_timeout;
            cx.set_timer(at, Timer::View(view));
            return;
        }
        // The backoff counts views given up on, not the sends of one timeout: a replica stuck
        // in a view through a long partition starts the next view at the timeout it had.
        if self.timed_out_view < view {
            self.timed_out_view = view;
            if !skipped {
                self.consecutive_timeouts = self.consecutive_timeouts.saturating_add(1);
            }
        }
        Self::probe(cx, "timeout", view, i64::from(self.consecutive_timeouts));
        self.last_voted_view = self.last_voted_view.max(view);
        if !self.save_safety(cx) {
            // Without the record a restart could vote in this view after timing out of it.
            let at = cx.now() + self.view_timeout();
            cx.set_timer(at, Timer::View(view));
            return;
        }
        debug_assert!(self.high_qc.view < view, "a timeout's high QC is from before its view");
        let timeout = Timeout::sign(&self.set, &self.key, view, self.high_qc.summary()).expect("validator key");
        self.stats.timeouts += 1;
        if !self.high_qc.signers.is_empty() {
            let qc = Message::QuorumCertificate(self.high_qc.clone());
            self.broadcast(cx, &qc, false);
        }
        self.broadcast(cx, &Message::Timeout(timeout), true);
        // Sent again while the view lasts (timeouts get lost), every base timeout and not the
        // backed-off one: once a partition heals, the replicas on either side of it must hear
        // each other's timeouts within a second, not after the eight a long view has grown to
        // (swarm seed 3264 stalled past its quiet phase so). It costs n^2 small messages a
        // second, and only while no quorum is reachable.
        if view == self.view {
            let at = cx.now() + self.config.view_timeout;
            cx.set_timer(at, Timer::View(view));
        }
    }

    /// Sends the next view's leader the clients' transactions this replica holds and that are
    /// still unproposed (at most a batch): forwarding at submission reaches the leaders of the
    /// views this replica was in then, which may all have proposed already, and a transaction
    /// would otherwise wait until a replica holding it leads. The next view's, because a
    /// replica enters a view on its proposal: that leader has proposed already.
    fn forward_waiting(&mut self, cx: &mut Context<'_, Timer>, view: u64) {
        let leader = self.next_leader(view);
        if leader == self.me || self.waiting.is_empty() {
            return;
        }
        let in_flight = self.in_flight();
        let held: Vec<Bytes> = self
            .pool_order
            .values()
            .filter(|id| self.waiting.contains_key(*id) && !in_flight.contains(*id))
            .take(self.config.batch_size_max)
            .map(|id| self.pool[id].1.clone())
            .collect();
        let to = self.peers[usize::from(leader)];
        for transaction in held {
            let message = Message::Submit(Submit {
                forwarded: true,
                transaction,
            });
            self.send(cx, to, &message);
        }
    }

    // ---- proposing --------------------------------------------------------------------------

    /// Transactions in uncommitted blocks on the branch the next proposal extends.
    fn in_flight(&self) -> BTreeSet<Digest> {
        let mut ids = BTreeSet::new();
        let mut at = self.high_qc.block;
        while let Some(p) = self.tree.get(&at) {
            if p.block().height <= self.tip.height {
                break;
            }
            ids.extend(p.block().transactions.iter().map(|t| sha256(t)));
            at = p.block().parent;
        }
        ids
    }

    /// Whether the branch the next proposal extends holds uncommitted transactions: then a
    /// leader proposes (if need be an empty block) so that they commit; otherwise it waits.
    fn uncommitted_on_branch(&self) -> bool {
        let mut at = self.high_qc.block;
        while let Some(p) = self.tree.get(&at) {
            if p.block().height <= self.tip.height {
                break;
            }
            if !p.block().transactions.is_empty() {
                return true;
            }
            at = p.block().parent;
        }
        false
    }

    /// The leader's timeout certificate of `view - 1`, from timeouts whose high QC it holds.
    fn timeout_certificate(&self, previous: u64) -> Option<TimeoutCertificate> {
        if let Some(tc) = &self.last_tc {
            if tc.view == previous && tc.high_qc_view_max() <= self.high_qc.view {
                return Some(tc.clone());
            }
        }
        let timeouts = self.timeouts.get(&previous)?;
        let entries: Vec<TimeoutEntry> = timeouts
            .values()
            .filter(|t| t.high_qc.view <= self.high_qc.view)
            .map(|t| TimeoutEntry {
                signer: t.signer,
                high_qc: t.high_qc,
                signature: t.signature,
            })
            .collect();
        (entries.len() >= self.set.quorum()).then_some(TimeoutCertificate {
            view: previous,
            entries,
        })
    }

    fn try_propose(&mut self, cx: &mut Context<'_, Timer>, batch_timer: bool) {
        let view = self.view;
        if self.halted
            || self.leader(view) != self.me
            || self.skips(view)
            || self.proposed_view >= view
            || !self.acts_in(view)
        {
            return;
        }
        let previous = view - 1;
        // The epoch's first view is entered by the epoch's start, which justifies its proposal.
        let opens_epoch = view == self.set.first_view() && self.high_qc.summary() == self.set.start();
        let timeout = if self.high_qc.view == previous || opens_epoch {
            None
        } else {
            match self.timeout_certificate(previous) {
                Some(tc) => Some(tc),
                None => return,
            }
        };
        let in_flight = self.in_flight();
        let mut transactions = Vec::new();
        let mut bytes = super::block::BLOCK_HEADER_BYTES;
        for id in self.pool_order.values() {
            if transactions.len() >= self.config.batch_size_max {
                break;
            }
            if in_flight.contains(id) {
                continue;
            }
            let (_, t) = &self.pool[id];
            if bytes + 4 + t.len() > self.config.block_bytes_max {
                break;
            }
            bytes += 4 + t.len();
            transactions.push(t.clone());
        }
        let full = transactions.len() >= self.config.batch_size_max;
        let waited = cx.now().saturating_since(self.view_entered);
        // An idle leader proposes an empty block a quarter of a view timeout in, so the chain
        // still grows. Its own view timer covers its heartbeat and the next leader's (whose
        // proposal carries this view's certificate), with the round trips between: at half a
        // timeout each, every idle leader timed out of its own view just before the next
        // proposal came.
        let heartbeat = self.config.view_timeout / 4;
        // Nothing new but transactions waiting for the chain to grow: propose at once, an empty
        // block only moves them to commit, and waiting would add a batch delay per view.
        let pushing = transactions.is_empty() && (self.announce || self.uncommitted_on_branch());
        // Entered through a timeout certificate: the followers' timers of this view have run
        // since that certificate, and they cover this proposal and the next view's (which
        // carries this one's certificate). A heartbeat here and another there would spend the
        // whole timer on an idle cluster, and the view would time out though it was certified.
        let ready = full
            || pushing
            || timeout.is_some()
            || (waited >= self.config.batch_delay_max && !transactions.is_empty())
            || waited >= heartbeat;
        if !ready {
            let at = if !transactions.is_empty() {
                self.view_entered + self.config.batch_delay_max
            } else {
                self.view_entered + heartbeat
            };
            if !batch_timer || at > cx.now() {
                cx.set_timer(at, Timer::Batch(view));
            }
            return;
        }
        let block = Block {
            height: self.high_qc.height + 1,
            view,
            parent: self.high_qc.block,
            proposer: self.me,
            timestamp_ms: cx.wall_now().as_unix_millis().max(0) as u64,
            transactions,
        };
        let count = block.transactions.len();
        let proposal = Proposal::sign(&self.set, &self.key, block, self.high_qc.clone(), timeout).expect("the leader");
        // Durable before it leaves: a leader restarted after proposing but before its own vote
        // was saved (a crash, or a failed write) proposed again in the same view, and was
        // convicted of equivocation (swarm-consensus with storage faults, seed 8).
        // The leader's own vote is made durable in the same save (its voted proposal first), so
        // a view's path waits for one save of the safety record at the leader, not two.
        let (proposed_before, voted_before) = (self.proposed_view, self.last_voted_view);
        self.proposed_view = view;
        let voted = self.last_voted_view < view && self.persist_voted(cx, &proposal);
        if voted {
            self.last_voted_view = view;
        }
        if !self.save_safety(cx) {
            // Not durable, so neither happened: nothing has left.
            self.proposed_view = proposed_before;
            self.last_voted_view = voted_before;
            let at = cx.now() + self.config.storage_retry;
            cx.set_timer(at, Timer::Batch(view));
            return;
        }
        self.own_vote_saved = voted.then(|| proposal.header().block);
        self.announce = false;
        self.stats.proposals += 1;
        Self::probe(cx, "proposal", view, count as i64);
        let proposal = Box::new(proposal);
        self.own_proposal = Some(proposal.clone());
        self.broadcast(cx, &Message::Proposal(proposal), true);
    }

    // ---- certificates -----------------------------------------------------------------------

    fn verify_qc(&mut self, qc: &QuorumCertificate) -> bool {
        if qc.signers.is_empty() {
            // Genesis, or this epoch's start.
            return qc.verify(&self.set).is_ok();
        }
        if epoch_of_view(qc.view) != self.set.epoch() {
            return false;
        }
        // Keyed by every byte: signatures cover the view, height and block, and a copy that
        // differs anywhere (a `mutate` adversary's) must be verified on its own.
        let key = Self::verified_key(qc);
        if self.verified.contains(&key) {
            return true;
        }
        if qc.verify(&self.set).is_err() {
            return false;
        }
        self.stats.signatures_verified += qc.signers.len() as u64;
        if self.verified.len() >= VERIFIED_CACHE_MAX {
            self.verified.pop_front();
        }
        self.verified.push_back(key);
        true
    }

    /// A verified certificate: raises the high QC and applies the commit rule.
    fn on_qc(&mut self, cx: &mut Context<'_, Timer>, qc: &QuorumCertificate) {
        self.raise_high_qc(qc);
        if qc.height > self.tip.height {
            match self.tree.get(&qc.block) {
                Some(child) if child.block().view == qc.view => {
                    let parent_digest = child.block().parent;
                    let child_view = child.block().view;
                    let parent_view = if parent_digest == self.tip.digest {
                        Some(self.tip.view)
                    } else {
                        self.tree.get(&parent_digest).map(|p| p.block().view)
                    };
                    match parent_view {
                        Some(pv) if pv + 1 == child_view && parent_digest != self.tip.digest => {
                            let proof = CertifiedBlock {
                                block: self.tree[&qc.block].block().clone(),
                                qc: qc.clone(),
                            };
                            self.commit(cx, parent_digest, Some(proof));
                        }
                        Some(_) => {}
                        None => self.start_fetch(cx),
                    }
                }
                Some(_) => {}
                None => {
                    let voters = qc.signers.clone();
                    self.request_block(cx, qc.block, &voters);
                    if qc.height > self.tip.height + 1 {
                        self.start_fetch(cx);
                    }
                }
            }
        }
        self.advance_to(cx, qc.view + 1, false);
    }

    /// Takes `qc` as the highest certificate if it is of a later view.
    /// Enters the view after the highest certificate, if this replica is not past it: a
    /// certificate raised by a catch-up answer or salvaged records, rather than received,
    /// otherwise left the replica in a view its own high QC was not below, and the timeout it
    /// signed there did not verify anywhere (swarm-consensus seed 5502 at 953c613: an honest
    /// validator marked first-hand for it).
    fn enter_past_high_qc(&mut self, cx: &mut Context<'_, Timer>) {
        if !self.starting && self.high_qc.view >= self.view {
            self.advance_to(cx, self.high_qc.view + 1, false);
        }
    }

    fn raise_high_qc(&mut self, qc: &QuorumCertificate) {
        if qc.view > self.high_qc.view {
            self.high_qc = qc.clone();
        }
    }

    /// A timeout certificate of `view`: a quorum gave up on it. Leaving the view this replica
    /// is in so, it suspects whoever spoiled that view for it (joining `f + 1` timeouts ahead
    /// suspects nobody: the certificate that ended the view may be on its way).
    fn on_tc(&mut self, cx: &mut Context<'_, Timer>, tc: &TimeoutCertificate) {
        let view = tc.view;
        if view == self.view {
            self.suspect_for(cx, view, &tc.entries);
        }
        self.advance_to(cx, view + 1, true);
    }

    // ---- committing -------------------------------------------------------------------------

    /// Commits the block `digest` (in the tree) and its uncommitted ancestors.
    fn commit(&mut self, cx: &mut Context<'_, Timer>, digest: Digest, proof: Option<CertifiedBlock>) {
        let mut chain = Vec::new();
        let mut at = digest;
        while at != self.tip.digest {
            let Some(p) = self.tree.get(&at) else {
                // An ancestor is missing: ask for it, and for committed blocks in case peers
                // have committed past it.
                self.request_block(cx, at, &[]);
                self.start_fetch(cx);
                return;
            };
            if p.block().height <= self.tip.height {
                // This branch does not reach the committed tip: it conflicts with what this
                // replica committed. Two-chain safety says it cannot be certified twice over;
                // stop rather than apply a fork.
                self.halt(cx, 2);
                return;
            }
            chain.push(at);
            at = p.block().parent;
        }
        chain.reverse();
        let mut records = Vec::with_capacity(chain.len());
        for (i, d) in chain.iter().enumerate() {
            // The certificate of each block is its child's justify; the last one's is the
            // certificate of the child in the proof.
            let qc = match chain.get(i + 1) {
                Some(next) => self.tree[next].justify().clone(),
                None => match &proof {
                    Some(p) => p.block_justify_of(&self.tree),
                    None => return,
                },
            };
            records.push(CertifiedBlock {
                block: self.tree[d].block().clone(),
                qc,
            });
        }
        // Not past the block that ends the epoch: the blocks certified after it in that epoch
        // only show it committed (they stay in the isolation proof).
        let (kept, removed) = self.within_epoch(&records);
        let ends_epoch = removed.is_some();
        if let Some(removed) = &removed {
            if !self.keep_epoch_end(cx, &records, kept - 1, proof.as_ref(), removed) {
                return;
            }
        }
        if self.persist(cx, &records[..kept]) {
            self.apply_all(cx, &records[..kept], ends_epoch);
            self.announce |= records[..kept].iter().any(|r| !r.block.transactions.is_empty());
            if ends_epoch {
                // The tip's proof is the epoch's end, kept with its isolation proof.
                self.tip_proof = None;
            } else if proof.is_some() {
                self.tip_proof = proof;
            }
            self.prune_tree();
            self.commit_salvaged(cx);
        }
    }

    /// Applies committed `records` (persisted), the last ending the epoch if `ends_epoch`:
    /// none after the one that ends it ([`Self::within_epoch`] judged where that is, as `apply`
    /// does).
    ///
    /// An epoch that ended before the last record would leave blocks of the old epoch in the
    /// log past its end: a bug of ours, and the replica stops (`halted` 2, as for a committed
    /// block conflicting with its chain) rather than go on from a log that is not its state.
    fn apply_all(&mut self, cx: &mut Context<'_, Timer>, records: &[CertifiedBlock], ends_epoch: bool) {
        for (i, r) in records.iter().enumerate() {
            let ended = self.apply(cx, r, true);
            let last = i + 1 == records.len();
            debug_assert_eq!(ended, ends_epoch && last, "the epoch ends where judged");
            if ended && !last {
                self.halt(cx, 2);
                return;
            }
        }
    }

    /// Appends and syncs `records` to the log; false if the log failed (then nothing is
    /// applied: the blocks are committed again later, or fetched).
    fn persist(&mut self, cx: &mut Context<'_, Timer>, records: &[CertifiedBlock]) -> bool {
        let Some(log) = self.log.as_mut() else {
            return false;
        };
        assert!(
            records.first().is_some_and(|r| r.block.height == self.tip.height + 1),
            "what is persisted extends the applied tip"
        );
        let encoded: Vec<Bytes> = records.iter().map(|r| r.encode()).collect();
        for _ in 0..self.config.storage_attempts {
            // A failed write or sync: recovered to what is durable, then written again from
            // the first height the log does not hold (a record synced before the failure stays).
            if log.is_failed() && log.recover(cx).is_err() {
                continue;
            }
            let held = log.next();
            let result = records
                .iter()
                .zip(&encoded)
                .filter(|(r, _)| r.block.height > held)
                .try_for_each(|(r, bytes)| log.append(cx, r.block.height - 1, bytes))
                .and_then(|()| log.commit(cx));
            if result.is_ok() {
                return true;
            }
        }
        self.recover_log(cx);
        false
    }

    /// Brings a failed log back to what is durable, or tries again in `storage_retry` (until
    /// then nothing commits here: the blocks are committed again later, or fetched).
    fn recover_log(&mut self, cx: &mut Context<'_, Timer>) {
        let Some(log) = self.log.as_mut() else { return };
        if !log.is_failed() {
            return;
        }
        match log.recover(cx) {
            Ok(_) => {
                assert!(
                    log.next() >= self.tip.height,
                    "the log keeps every height applied (recovery reads nothing again)"
                );
                // Blocks committed by the others meanwhile.
                self.start_fetch(cx);
            }
            Err(_) => self.retry_storage(cx, 2),
        }
    }

    /// Counts a failed storage call (`why`: the `storage_retry` probe's value) and sets the
    /// timer that tries it again.
    fn retry_storage(&mut self, cx: &mut Context<'_, Timer>, why: i64) {
        self.stats.storage_retries += 1;
        Self::probe(cx, "storage_retry", self.tip.height, why);
        let at = cx.now() + self.config.storage_retry;
        cx.set_timer(at, Timer::Storage);
    }

    /// Applies a committed block to the state machine, answering waiting clients.
    fn apply(&mut self, cx: &mut Context<'_, Timer>, record: &CertifiedBlock, live: bool) -> bool {
        let block = &record.block;
        assert_eq!(block.height, self.tip.height + 1, "blocks are applied in height order");
        assert_eq!(
            block.parent, self.tip.digest,
            "a committed block extends the committed chain"
        );
        let ids: Vec<Digest> = block.transactions.iter().map(|t| sha256(t)).collect();
        // Duplicates (a transaction committed again within the window) are skipped on every
        // replica alike: the same committed chain gives the same decision.
        let mut fresh = Vec::with_capacity(block.transactions.len());
        let mut fresh_ids = Vec::with_capacity(block.transactions.len());
        let mut in_block = BTreeSet::new();
        for (t, id) in block.transactions.iter().zip(&ids) {
            if !self.recent.contains_key(id) && in_block.insert(*id) && !is_control(t) {
                fresh.push(t.clone());
                fresh_ids.push(*id);
            }
        }
        let removals = self.judge_removals(block);
        let mut committed_ids = Vec::with_capacity(fresh.len() + removals.len());
        let mut removed = BTreeSet::new();
        for (id, verdict) in removals {
            let kind = match verdict {
                Ok(removal) => {
                    removed.insert(removal.accused);
                    self.apply_removal(cx, block, &removal)
                }
                Err(why) => AnswerKind::Refused(why),
            };
            self.remember(id, block.height, kind);
            committed_ids.push(id);
        }
        // The pool holds only transactions this replica checked when it admitted them: the
        // machine need not check those again, which keeps signature checks off the path from
        // a proposal to this replica's vote.
        let checked: Vec<bool> = fresh_ids.iter().map(|id| self.pool.contains_key(id)).collect();
        let info = BlockInfo {
            height: block.height,
            timestamp_ms: block.timestamp_ms,
        };
        let outcomes = self.machine.apply(info, &fresh, &checked);
        assert_eq!(outcomes.len(), fresh.len(), "one outcome per transaction");
        for (id, outcome) in fresh_ids.iter().zip(outcomes) {
            let kind = match outcome {
                Outcome::Applied(b) => AnswerKind::Applied(b),
                Outcome::Refused(r) => AnswerKind::Refused(r),
            };
            if live {
                if let Some(clients) = self.waiting.remove(id) {
                    self.waiting_count -= clients.len();
                    let answer = Message::Answer(Answer {
                        transaction: *id,
                        height: block.height,
                        kind: kind.clone(),
                    });
                    for c in clients {
                        self.send(cx, c, &answer);
                    }
                }
            }
            self.remember(*id, block.height, kind);
        }
        for id in &ids {
            if let Some((seq, _)) = self.pool.remove(id) {
                self.pool_order.remove(&seq);
            }
        }
        committed_ids.extend(fresh_ids);
        self.recent_by_height.push_back((block.height, committed_ids));
        while let Some((h, _)) = self.recent_by_height.front() {
            if *h + self.config.dedup_heights > block.height {
                break;
            }
            let (_, gone) = self.recent_by_height.pop_front().expect("front exists");
            for id in gone {
                if let Some((_, kind)) = self.recent.remove(&id) {
                    self.answer_bytes -= kind.body_len();
                }
            }
        }
        self.forget_answers_beyond_limit();
        self.tip = Tip {
            height: block.height,
            view: block.view,
            digest: block.digest(),
        };
        self.stats.blocks_committed += 1;
        self.stats.transactions_committed += block.transactions.len() as u64;
        Self::probe(cx, "commit", block.height, digest_prefix(&self.tip.digest));
        Self::probe(cx, "commit_txs", block.height, block.transactions.len() as i64);
        let ends_epoch = !removed.is_empty();
        if ends_epoch {
            // The last block of its epoch: the next starts from it, without the removed.
            let start = QcSummary {
                view: block.view,
                height: block.height,
                block: self.tip.digest,
            };
            let next = self
                .set
                .next(&removed, start)
                .expect("removals judged valid leave a member, of members");
            self.enter_epoch(cx, next);
        }
        if block.height.is_multiple_of(self.config.checkpoint_interval) {
            self.save_checkpoint(cx);
        }
        if live {
            self.serve_reads(cx);
        }
        ends_epoch
    }

    // ---- linearizable reads -----------------------------------------------------------------

    /// Starts serving a linearizable read: asks every other validator for its highest
    /// certificate. A transaction acknowledged before the read was sent committed at some
    /// height `h` by the two-chain rule, so a quorum voted for a child carrying the certificate
    /// of `h`, and holds a certificate at least that high (saved before each vote); any quorum
    /// shares an honest validator with that one, so the highest certificate a quorum reports
    /// is at `h` or above (certificates are checked, so none is higher than a block certified
    /// for real). Once this replica has committed that height, its state holds the
    /// transaction. No leader is trusted with it: a Byzantine one could answer stale.
    fn start_read(&mut self, cx: &mut Context<'_, Timer>, client: SocketAddr, query: Query) {
        if self.reads.len() >= self.config.reads_pending_max {
            let why = format!(
                "{} linearizable reads are being served here (reads_pending_max): try again, or another replica",
                self.reads.len()
            );
            self.answer_read(cx, client, query.id, Err(why));
            return;
        }
        self.read_counter += 1;
        let number = self.read_counter;
        self.reads.insert(
            number,
            PendingRead {
                client,
                id: query.id,
                request: query.request,
                answered: BTreeSet::from([self.me])
                    .into_iter()
                    .filter(|v| self.set.is_member(*v))
                    .collect(),
                index: self.high_qc.height,
            },
        );
        self.broadcast(cx, &Message::ReadIndex(number), false);
        let at = cx.now() + self.config.read_timeout;
        cx.set_timer(at, Timer::Read(number));
        self.serve_reads(cx);
    }

    /// A validator's highest certificate for read `number`.
    fn on_read_index(&mut self, cx: &mut Context<'_, Timer>, number: u64, qc: QuorumCertificate) {
        let Some(sender) = self.sender else { return };
        if self.reads.get(&number).is_none_or(|r| r.answered.contains(&sender)) {
            return;
        }
        // Of another epoch: a replica on the other side of an epoch's end (reads under way when
        // this replica's epoch ended were refused, so answers count toward one set only).
        if !self.set.is_member(sender) || self.foreign_qc(cx, &qc) {
            return;
        }
        if !self.verify_qc(&qc) {
            self.refuse(cx, Refusal::Invalid);
            return;
        }
        if let Some(read) = self.reads.get_mut(&number) {
            read.answered.insert(sender);
            read.index = read.index.max(qc.height);
        }
        if qc.view > self.high_qc.view || qc.height > self.tip.height {
            // Behind the quorum: what it certified is what this replica must commit to answer.
            self.on_qc(cx, &qc);
        }
        self.serve_reads(cx);
    }

    /// Answers every read a quorum has told the height of, once that height is committed here.
    fn serve_reads(&mut self, cx: &mut Context<'_, Timer>) {
        // Run at every block committed: nothing to do, nothing allocated, in the common case.
        if self.reads.is_empty() {
            return;
        }
        let (quorum, tip) = (self.set.quorum(), self.tip.height);
        let ready: Vec<u64> = self
            .reads
            .iter()
            .filter(|(_, r)| r.answered.len() >= quorum && r.index <= tip)
            .map(|(n, _)| *n)
            .collect();
        for number in ready {
            let read = self.reads.remove(&number).expect("listed above");
            let result = self.machine.query(&read.request);
            self.answer_read(cx, read.client, read.id, result);
        }
    }

    fn answer_read(&mut self, cx: &mut Context<'_, Timer>, client: SocketAddr, id: u64, result: Result<Bytes, String>) {
        let answer = Message::QueryAnswer(QueryAnswer {
            id,
            height: self.tip.height,
            result,
        });
        self.send(cx, client, &answer);
    }

    /// Applies a committed removal judged valid ([`Self::judge_removals`], alike on every
    /// replica): the accused is marked (its proof is what marking takes, so a replica that
    /// missed some of the reports agrees with the rest) and isolated; the block ends the epoch.
    fn apply_removal(&mut self, cx: &mut Context<'_, Timer>, block: &Block, removal: &Removal) -> AnswerKind {
        if self.detector.convict(cx.now(), removal.accused) {
            let why = match &removal.proof {
                Proof::Evidence(_) => MARKED_BY_EVIDENCE,
                Proof::Reports(reports) => reports.first().map_or(0, |r| r.reason as i64),
            };
            Self::probe(cx, "marked", u64::from(removal.accused), why);
        }
        self.isolated.insert(removal.accused, block.height);
        Self::probe(cx, "isolated", u64::from(removal.accused), block.height as i64);
        AnswerKind::Applied(Bytes::new())
    }

    /// Keeps the [`IsolationProof`] of the epoch's last block `records[at]` (`child`: a
    /// certified block of the view after the last record's, extending it, if the commit had
    /// one), as the durable file `removal.<accused>` for each validator it removes, before the
    /// block is committed here: the proof is what shows the others the block committed (in a
    /// catch-up answer, or again at this replica's restart if its log loses the block), and a
    /// replica that crashed between committing the block and keeping its proof could leave a
    /// cluster where no one can (swarm-consensus seed 290). False if a save failed: the block
    /// is then not committed now (it is again from a later certificate or catch-up answer).
    fn keep_epoch_end(
        &mut self,
        cx: &mut Context<'_, Timer>,
        records: &[CertifiedBlock],
        at: usize,
        child: Option<&CertifiedBlock>,
        removed: &[ValidatorIndex],
    ) -> bool {
        let Some(proof) = IsolationProof::shortest(records, at, child) else {
            // Shown committed only through more blocks than a proof holds: none is kept.
            return true;
        };
        debug_assert!(
            proof
                .verify_across(&self.set, &|epoch| self
                    .set_of_epoch(epoch)
                    .map(|s| (s, self.detector.threshold(s.f()))))
                .is_ok_and(|shown| removed.iter().all(|a| shown.iter().any(|i| i.accused == *a))),
            "the proof of a removal this replica commits shows it committed"
        );
        let bytes = proof.encode();
        let mut kept_all = true;
        for &accused in removed {
            let name = format!("{REMOVAL}.{accused}");
            // In three copies: it may be the only proof the cluster has that the block committed,
            // and one rotted copy lost it (swarm-consensus seed 740). The CA's keeper reads two.
            let mut copies = durable::Mirror::default();
            let kept = (0..self.config.storage_attempts).any(|_| copies.save(cx, &name, &bytes).is_ok());
            Self::probe(
                cx,
                "isolation_proof",
                u64::from(accused),
                if kept { proof.chain.len() as i64 } else { 0 },
            );
            kept_all &= kept;
        }
        kept_all
    }

    /// Submits the removal of a validator this replica just marked, to its own pool and the
    /// coming leaders.
    fn propose_removal(&mut self, cx: &mut Context<'_, Timer>, accused: ValidatorIndex, proof: Proof) {
        if !self.set.is_member(accused) || accused == self.me {
            return;
        }
        let transaction = Removal { accused, proof }.encode();
        let from = self.peers[usize::from(self.me)];
        self.on_submit(
            cx,
            Some(from),
            Submit {
                forwarded: true,
                transaction: transaction.clone(),
            },
        );
        let forward = Message::Submit(Submit {
            forwarded: true,
            transaction,
        });
        for leader in self.coming_leaders(self.config.forward_leaders + 1) {
            let addr = self.peers[usize::from(leader)];
            self.send(cx, addr, &forward);
        }
    }

    /// Drops committed and abandoned blocks from the tree; transactions of abandoned blocks go
    /// back to the pool.
    /// Drops the blocks that can no longer commit: at or below the committed tip, or on a
    /// branch that leaves the committed chain. A block whose ancestry breaks off above the tip
    /// stays: it may well descend from the tip through blocks not fetched yet. (Only blocks
    /// linked to the tip used to stay: a replica behind by a gap dropped every certified block
    /// above it, and once each holder had done so, or restarted, nobody could serve the block
    /// the chain extended, and the cluster never committed again: swarm-consensus seed 55.)
    fn prune_tree(&mut self) {
        let tip = self.tip;
        // Each block's verdict, found once: a walk stops at the first ancestor already judged,
        // so the pass is linear in the tree however deep its chains.
        let mut kept: BTreeMap<Digest, bool> = BTreeMap::new();
        for digest in self.tree.keys() {
            let mut path = Vec::new();
            let mut at = *digest;
            let verdict = loop {
                if let Some(known) = kept.get(&at) {
                    break *known;
                }
                // Walks go only to blocks in the tree.
                let block = self.tree[&at].block();
                path.push(at);
                if block.height <= tip.height {
                    break false;
                }
                if block.parent == tip.digest {
                    break true;
                }
                if self.tree.contains_key(&block.parent) {
                    at = block.parent;
                } else {
                    // Broken off above the tip (its parent is higher than the tip): kept.
                    break block.height > tip.height + 1;
                }
            };
            kept.extend(path.into_iter().map(|d| (d, verdict)));
        }
        let doomed: Vec<Digest> = kept.into_iter().filter(|(_, keep)| !keep).map(|(d, _)| d).collect();
        for d in doomed {
            let p = self.tree.remove(&d).expect("listed");
            if p.proposal.block.height <= tip.height {
                continue;
            }
            self.return_to_pool(p.proposal.block);
        }
    }

    /// Puts the transactions of an abandoned block back in the pool, which holds only
    /// transactions checked here.
    fn return_to_pool(&mut self, block: Block) {
        for t in block.transactions {
            let pooled = self.pool.contains_key(&sha256(&t));
            if pooled || is_control(&t) || self.machine.check(&t).is_ok() {
                self.admit(t);
            }
        }
    }

    // ---- the pool ---------------------------------------------------------------------------

    /// Remembers a committed transaction's answer for resubmissions (and its id against a
    /// second application).
    fn remember(&mut self, id: Digest, height: u64, kind: AnswerKind) {
        self.answer_bytes += kind.body_len();
        if let Some((_, old)) = self.recent.insert(id, (height, kind)) {
            self.answer_bytes -= old.body_len();
        }
        self.answers_held.push_back((height, id));
    }

    /// Lets the oldest answers go until those held fit `answer_bytes_max`; their ids stay.
    fn forget_answers_beyond_limit(&mut self) {
        while self.answer_bytes > self.config.answer_bytes_max {
            let Some((height, id)) = self.answers_held.pop_front() else {
                break;
            };
            // An entry whose id expired, or committed again since, is stale.
            if let Some((h, kind)) = self.recent.get_mut(&id) {
                if *h == height {
                    self.answer_bytes -= kind.body_len();
                    *kind = AnswerKind::Forgotten;
                }
            }
        }
        // Stale entries at the front are dropped so the queue stays as long as `recent`.
        while let Some((height, id)) = self.answers_held.front() {
            match self.recent.get(id) {
                Some((h, kind)) if h == height && *kind != AnswerKind::Forgotten => break,
                _ => {
                    self.answers_held.pop_front();
                }
            }
        }
        assert!(
            self.answer_bytes <= self.config.answer_bytes_max || self.answers_held.is_empty(),
            "answers held beyond answer_bytes_max"
        );
    }

    /// Adds a transaction to the pool unless it is there, recently committed, or the pool is
    /// full; true if it is now in the pool.
    fn admit(&mut self, transaction: Bytes) -> bool {
        let id = sha256(&transaction);
        if self.pool.contains_key(&id) {
            return true;
        }
        if self.recent.contains_key(&id) || self.pool.len() >= self.config.pool_max {
            return false;
        }
        self.pool_seq += 1;
        self.pool.insert(id, (self.pool_seq, transaction));
        self.pool_order.insert(self.pool_seq, id);
        true
    }

    /// A client's transaction, from `from` (`None`: handed over in this node's own process,
    /// [`StateMachine::take_local`], with no one to answer).
    fn on_submit(&mut self, cx: &mut Context<'_, Timer>, from: Option<SocketAddr>, submit: Submit) {
        let id = sha256(&submit.transaction);
        if let Some((height, kind)) = self.recent.get(&id) {
            if !submit.forwarded {
                let answer = Message::Answer(Answer {
                    transaction: id,
                    height: *height,
                    kind: kind.clone(),
                });
                if let Some(from) = from {
                    self.send(cx, from, &answer);
                }
            }
            return;
        }
        if is_control(&submit.transaction) && !submit.forwarded {
            let answer = Message::Answer(Answer {
                transaction: id,
                height: 0,
                kind: AnswerKind::NotAdmitted("the transaction starts with consensus's reserved control prefix".into()),
            });
            if let Some(from) = from {
                self.send(cx, from, &answer);
            }
            return;
        }
        let too_large = submit.transaction.len() + 4 + super::block::BLOCK_HEADER_BYTES > self.config.block_bytes_max;
        // Checked once, here, so that applying it later need not (see `apply`).
        let invalid = if too_large || is_control(&submit.transaction) || self.pool.contains_key(&id) {
            None
        } else {
            self.machine.check(&submit.transaction).err()
        };
        if too_large || invalid.is_some() || !self.admit(submit.transaction.clone()) {
            if !submit.forwarded {
                let why = if too_large {
                    format!(
                        "the transaction does not fit a block of {} bytes",
                        self.config.block_bytes_max
                    )
                } else if let Some(why) = invalid {
                    format!("the transaction is invalid: {why}")
                } else {
                    format!("the pool is full ({} transactions)", self.config.pool_max)
                };
                let answer = Message::Answer(Answer {
                    transaction: id,
                    height: 0,
                    kind: AnswerKind::NotAdmitted(why),
                });
                if let Some(from) = from {
                    self.send(cx, from, &answer);
                }
            }
            return;
        }
        if submit.forwarded {
            // Forwarded transactions are not forwarded again.
        } else {
            if let Some(from) = from.filter(|_| self.waiting_count < WAITING_MAX) {
                self.waiting.entry(id).or_default().push(from);
                self.waiting_count += 1;
            }
            let forward = Message::Submit(Submit {
                forwarded: true,
                transaction: submit.transaction,
            });
            for leader in self.coming_leaders(self.config.forward_leaders) {
                let addr = self.peers[usize::from(leader)];
                self.send(cx, addr, &forward);
            }
        }
        if self.leader(self.view) == self.me {
            self.try_propose(cx, false);
        }
    }

    // ---- proposals and votes ----------------------------------------------------------------

    fn on_proposal(&mut self, cx: &mut Context<'_, Timer>, proposal: Proposal) {
        let view = proposal.block.view;
        if !self.in_epoch(cx, view) {
            return;
        }
        // Certificates verified once: the cache spares re-verifying a justify seen before.
        let checked = if self.verify_qc(&proposal.justify) {
            proposal.verify_trusting_justify(&self.set)
        } else {
            Err(ProposalError::Justify(super::certificate::CertificateError::NotGenesis))
        };
        match checked {
            Ok(()) => {}
            // Counted apart from bad signatures; not reported: the proposal may have come
            // through another replica (a fetch answer), not from its signer.
            Err(ProposalError::NotLeader { .. }) => {
                self.refuse(cx, Refusal::NotLeader);
                return;
            }
            Err(ProposalError::Signature(_)) => {
                self.refuse_forged(cx);
                return;
            }
            Err(_) => {
                self.refuse(cx, Refusal::Invalid);
                return;
            }
        }
        // From the leader itself: a proposal forwarded by another replica (a catch-up answer)
        // may be from before the leader went down.
        if self.sender == Some(proposal.block.proposer) {
            self.heard_from(cx, proposal.block.proposer, view);
        }
        // A copy sent again (its view lasted: see `resend_after`) is judged once, as the first.
        let first_copy = !self.seen_proposals.contains_key(&view);
        if first_copy
            && self
                .detector
                .skewed(proposal.block.timestamp_ms, cx.wall_now().as_unix_millis())
        {
            self.observe(cx, proposal.block.proposer, Reason::ClockSkew);
        }
        // Not the first view's: it comes once the epoch's last block is committed everywhere,
        // a certificate's way after this replica's vote on that block.
        if first_copy
            && proposal.timeout.is_none()
            && proposal.justify.summary() != self.set.start()
            && self
                .detector
                .proposal_is_slow(proposal.justify.view, cx.now(), self.config.batch_delay_max)
        {
            self.observe(cx, proposal.block.proposer, Reason::Slow);
        }
        self.stats.signatures_verified += 1;
        // The header carries the block's digest: hashing the block again would be a second pass
        // over every transaction.
        let header = proposal.header();
        let digest = header.block;
        match self.seen_proposals.get(&view) {
            Some(d) if *d != digest => {
                self.refuse(cx, Refusal::Equivocation);
                if let Some(first) = self.headers.get(&view).cloned() {
                    self.on_evidence(cx, Evidence::ConflictingProposals(first, header), true);
                }
                return;
            }
            Some(_) => {}
            None => {
                self.seen_proposals.insert(view, digest);
                self.headers.entry(view).or_insert_with(|| header.clone());
            }
        }
        // The certificates it carries move this replica on first.
        if let Some(tc) = &proposal.timeout {
            self.on_tc(cx, tc);
        }
        let justify = proposal.justify.clone();
        if proposal.block.height > self.tip.height && self.tree.len() < self.config.pending_blocks_max {
            self.tree.insert(
                digest,
                Pending {
                    proposal: proposal.clone(),
                },
            );
        }
        self.on_qc(cx, &justify);
        if proposal.block.parent != self.tip.digest
            && !self.tree.contains_key(&proposal.block.parent)
            && proposal.block.height > self.tip.height + 1
        {
            let voters = justify.signers.clone();
            self.request_block(cx, proposal.block.parent, &voters);
        }
        if view < self.view {
            // An old proposal (asked for, or late): it may complete a chain, so the commit rule
            // runs again on the highest certificate.
            let qc = self.high_qc.clone();
            if qc.block != justify.block {
                self.on_qc(cx, &qc);
            }
        }
        // Vote?
        if view != self.view || !self.acts_in(view) {
            return;
        }
        if self.own_vote_saved.take_if(|d| *d == digest).is_none() {
            if !first_copy && view <= self.last_voted_view {
                // The leader's proposal again, voted on (or given up on) at its first copy.
                return;
            }
            if view <= self.last_voted_view {
                self.refuse(cx, Refusal::AlreadyVoted);
                return;
            }
            if !self.persist_voted(cx, &proposal) {
                return;
            }
            self.last_voted_view = view;
            if !self.save_safety(cx) {
                return;
            }
        }
        self.detector.voted(view, cx.now());
        let vote = Vote::sign(
            &self.set,
            &self.key,
            QcSummary {
                view,
                height: proposal.block.height,
                block: digest,
            },
        )
        .expect("validator key");
        self.stats.votes += 1;
        let message = Message::VoteFor(vote, Box::new(header));
        self.own_vote = Some((view, message.clone()));
        // Within the view's time left: a proposal may come late in its view (a heartbeat), and
        // a resend `resend_after` later would land on the view's timeout.
        let now = cx.now();
        let left = (self.view_entered + self.view_timeout()).saturating_since(now);
        let at = now + self.config.resend_after.min(left / 2);
        cx.set_timer(at, Timer::Resend(view));
        self.send_vote(cx, &message, true);
    }

    /// Sends a vote to whoever aggregates it: the next leader this replica does not skip, and
    /// the next one not isolated if it only suspects that one (every validator in the naive
    /// variant), `include_me` if this replica is one of them.
    fn send_vote(&mut self, cx: &mut Context<'_, Timer>, message: &Message, include_me: bool) {
        if self.config.votes_to_all {
            self.broadcast(cx, message, include_me);
        } else {
            let next = self.next_leader(self.view);
            if include_me || next != self.me {
                self.send_to_validator(cx, next, message);
            }
            // The next leader not isolated too, if this replica only suspects it: should it be
            // up after all, and the other voters trust it, the view is not lost for want of
            // this vote.
            let following = self.active_leaders_after(self.view).next();
            if let Some(following) = following.filter(|f| *f != next && *f != self.me) {
                self.send_to_validator(cx, following, message);
            }
        }
    }

    /// Sends this replica's proposal and vote of `view` again if it still lasts: one of them
    /// (or a certificate built from them) was lost, or the view would have ended. Its timeouts
    /// are sent again by the view timer once it gives up instead.
    fn on_resend_timer(&mut self, cx: &mut Context<'_, Timer>, view: u64) {
        if view != self.view || self.timed_out_view >= view {
            return;
        }
        if let Some(proposal) = self.own_proposal.as_ref().filter(|p| p.block.view == view) {
            let message = Message::Proposal(proposal.clone());
            self.broadcast(cx, &message, false);
            self.stats.resent += 1;
            Self::probe(cx, "resent", view, 1);
        }
        if let Some((_, vote)) = self.own_vote.as_ref().filter(|(v, _)| *v == view) {
            let vote = vote.clone();
            self.send_vote(cx, &vote, false);
            self.stats.resent += 1;
            Self::probe(cx, "resent", view, 2);
        }
        let at = cx.now() + self.config.resend_after;
        cx.set_timer(at, Timer::Resend(view));
    }

    /// A vote with the header of the proposal it is for: a header for another block of the
    /// same view than the one known is proof against the proposer.
    fn on_vote_for(&mut self, cx: &mut Context<'_, Timer>, vote: Vote, header: ProposalHeader) {
        if !self.in_epoch(cx, vote.view) {
            return;
        }
        if header.view == vote.view && header.block == vote.block {
            match self.headers.get(&header.view) {
                Some(known) if known.block != header.block && known.proposer == header.proposer => {
                    if !self.convicted.contains_key(&header.proposer) {
                        let first = known.clone();
                        self.on_evidence(cx, Evidence::ConflictingProposals(first, header), true);
                    }
                }
                Some(_) => {}
                None => {
                    if vote.view + 1 >= self.view && header.verify(&self.set).is_ok() {
                        self.stats.signatures_verified += 1;
                        self.headers.insert(header.view, header);
                    }
                }
            }
        }
        self.on_vote(cx, vote);
    }

    fn on_vote(&mut self, cx: &mut Context<'_, Timer>, vote: Vote) {
        if self.speaks_for_another(vote.signer) {
            self.refuse_forged(cx);
            return;
        }
        if !self.in_epoch(cx, vote.view) {
            return;
        }
        // A copy sent again (its view lasted: see `resend_after`) adds nothing, and is not
        // judged late: only the first copy is.
        if self.votes_by_signer.get(&(vote.view, vote.signer)) == Some(&vote) {
            return;
        }
        // Only a collector takes votes: the next view's leader, or, past leaders skipped, one of
        // the next few (every replica in the naive variant, which makes the quadratic cost
        // visible). Before judging lateness: a vote sent again to a replica that does not keep
        // it would be judged late at every copy.
        if !self.config.votes_to_all && !self.collects_votes_of(vote.view) {
            return;
        }
        // A vote later than an honest voter's could be, from the voter itself: reported; one
        // on time is noted too (a validator is reported only if late most of the time). Not
        // the leader's own vote: the others vote only once its proposal arrives, so that vote
        // is as late as the proposal, which is judged on its own.
        let late = self.detector.vote_is_slow(vote.view, cx.now());
        if self.sender == Some(vote.signer) && self.leader(vote.view) != vote.signer {
            match late {
                Some(false) => self.detector.on_time(vote.signer),
                Some(true) if vote.verify(&self.set).is_ok() => self.observe(cx, vote.signer, Reason::Slow),
                _ => {}
            }
        }
        if vote.view + 1 < self.view {
            return;
        }
        // A second vote of one signer in one view, for something else: proof against it.
        match self.votes_by_signer.get(&(vote.view, vote.signer)) {
            Some(first) if first.summary() != vote.summary() => {
                if !self.convicted.contains_key(&vote.signer) {
                    let first = first.clone();
                    self.on_evidence(cx, Evidence::ConflictingVotes(first, vote), true);
                }
                return;
            }
            Some(_) => {}
            None => {}
        }
        let summary = vote.summary();
        let set = &self.set;
        let builder = self
            .votes
            .entry((vote.view, vote.block))
            .or_insert_with(|| QcBuilder::new(set, summary));
        let before = builder.len();
        match builder.add(&self.set, &vote) {
            Ok(count) => {
                let formed =
                    (count == self.set.quorum() && before < count).then(|| builder.build(&self.set).expect("a quorum"));
                self.stats.signatures_verified += 1;
                self.votes_by_signer.insert((vote.view, vote.signer), vote.clone());
                // Before the certificate moves this replica on: the vote may be from the leader
                // of the view it enters.
                self.heard_from(cx, vote.signer, vote.view);
                if let Some(qc) = formed {
                    self.remember_verified(&qc);
                    // Collected past the next view's leader: the others learn of it only so
                    // (a replica that skips the next view sends its certificate as it gives
                    // up on it).
                    let next = qc.view.saturating_add(1);
                    if !self.config.votes_to_all && self.leader(next) != self.me && !self.skips(next) {
                        self.broadcast(cx, &Message::QuorumCertificate(qc.clone()), false);
                    }
                    self.on_qc(cx, &qc);
                }
            }
            Err(super::certificate::AggregateError::Invalid(_)) => self.refuse_forged(cx),
            Err(_) => {}
        }
    }

    fn remember_verified(&mut self, qc: &QuorumCertificate) {
        if self.verified.len() >= VERIFIED_CACHE_MAX {
            self.verified.pop_front();
        }
        self.verified.push_back(Self::verified_key(qc));
    }

    /// What the cache of verified certificates remembers of one: the digest of its encoding.
    fn verified_key(qc: &QuorumCertificate) -> Digest {
        sha256(&qc.encode())
    }

    fn on_timeout(&mut self, cx: &mut Context<'_, Timer>, timeout: Timeout) {
        if self.speaks_for_another(timeout.signer) {
            self.refuse_forged(cx);
            return;
        }
        if !self.in_epoch(cx, timeout.view) {
            return;
        }
        let view = timeout.view;
        if view < self.view {
            // Its sender is still in a view this replica left: send it what moved this replica
            // on (replicas a view apart with backed-off timers otherwise wait out each other).
            self.sync_lagging(cx, timeout.signer, view);
        }
        if view + 1 < self.view {
            return;
        }
        if view > self.view + TIMEOUT_VIEWS_AHEAD_MAX {
            return;
        }
        if timeout.verify(&self.set).is_err() {
            self.refuse_forged(cx);
            return;
        }
        self.stats.signatures_verified += 1;
        self.heard_from(cx, timeout.signer, view);
        let entry = self.timeouts.entry(view).or_default();
        entry.insert(timeout.signer, timeout);
        let count = entry.len();
        // f + 1 timeouts of a view at or ahead of this one: at least one honest replica gave up
        // on it, so join them rather than wait out a longer timer.
        if count > self.set.f() && view >= self.view && self.last_voted_view < view {
            self.advance_to(cx, view, true);
            // Not twice if the view was skipped on entering it.
            if self.timed_out_view < view {
                self.on_view_timer(cx, view);
            }
        }
        if count >= self.set.quorum() && self.last_tc.as_ref().is_none_or(|tc| tc.view < view) {
            // A timeout certificate: every replica still in this view needs it to move on, and
            // only those that collected a quorum of timeouts themselves would have it.
            let tc = TimeoutCertificate {
                view,
                entries: self.timeouts[&view]
                    .values()
                    .map(|t| TimeoutEntry {
                        signer: t.signer,
                        high_qc: t.high_qc,
                        signature: t.signature,
                    })
                    .collect(),
            };
            self.last_tc = Some(tc.clone());
            self.broadcast(cx, &Message::TimeoutCertificate(tc.clone()), false);
            self.on_tc(cx, &tc);
            if self.leader(self.view) == self.me {
                self.try_propose(cx, false);
            }
        }
    }

    /// Sends a validator whose messages are of an older view the certificate that ended that
    /// view here, or, holding none, this replica's own timeout of that view (at most once per
    /// view timeout per validator).
    ///
    /// Holding none happens after a restart: the replica re-enters the view it last voted in,
    /// but the timeout certificate that brought it there was not kept. If the only other holder
    /// withholds it, the replicas still in the old view could never form one without this
    /// replica's timeout, and the cluster would stall for good (swarm seed 7790).
    fn sync_lagging(&mut self, cx: &mut Context<'_, Timer>, validator: ValidatorIndex, view: u64) {
        if validator == self.me || usize::from(validator) >= self.peers.len() {
            return;
        }
        let now = cx.now();
        if self
            .synced
            .get(&validator)
            .is_some_and(|at| now.saturating_since(*at) < self.config.view_timeout)
        {
            return;
        }
        self.synced.insert(validator, now);
        let to = self.peers[usize::from(validator)];
        let tc = self.last_tc.clone().filter(|tc| tc.view >= view);
        let qc_ends_view = self.high_qc.view >= view;
        if !self.high_qc.signers.is_empty() && (qc_ends_view || tc.is_none()) {
            // Below the view, it is the QC a timeout of ours reports: the leader that forms the
            // certificate must hold it.
            let qc = Message::QuorumCertificate(self.high_qc.clone());
            self.send(cx, to, &qc);
        }
        if let Some(tc) = tc {
            self.send(cx, to, &Message::TimeoutCertificate(tc));
        } else if !qc_ends_view {
            // This replica left `view` and never votes in it again: its timeout of it is the
            // same promise it would have made when timing out there.
            assert!(self.view > view, "only a replica past a view helps others out of it");
            if !self.acts_in(view) {
                return;
            }
            if self.last_voted_view < view {
                self.last_voted_view = view;
                if !self.save_safety(cx) {
                    return;
                }
            }
            let timeout = Timeout::sign(&self.set, &self.key, view, self.high_qc.summary()).expect("validator key");
            self.stats.timeouts += 1;
            self.send(cx, to, &Message::Timeout(timeout));
        }
    }

    // ---- evidence ----------------------------------------------------------------------------

    /// Evidence against a validator: verified (unless this replica built it from messages it
    /// verified), recorded once per offender, and sent to every validator.
    fn on_evidence(&mut self, cx: &mut Context<'_, Timer>, evidence: Evidence, built_here: bool) {
        let offender = evidence.offender();
        if self.convicted.contains_key(&offender) {
            return;
        }
        // Checked against the set of the epoch it was signed in: misbehaviour in a past epoch
        // is proof still, and evidence of a coming one this replica cannot check yet.
        let epoch = epoch_of_view(evidence.view());
        let verified = match self.set_of_epoch(epoch) {
            Some(set) => evidence.verify(set).is_ok(),
            None => {
                self.in_epoch(cx, evidence.view());
                return;
            }
        };
        if !verified {
            if !built_here {
                self.refuse(cx, Refusal::Invalid);
            }
            return;
        }
        self.stats.signatures_verified += 2;
        let kind = match &evidence {
            Evidence::ConflictingVotes(..) => 1,
            Evidence::ConflictingProposals(..) => 2,
        };
        self.convicted.insert(offender, evidence.clone());
        self.stats.convicted += 1;
        Self::probe(cx, "evidence", u64::from(offender), kind);
        if self.detector.convict(cx.now(), offender) {
            Self::probe(cx, "marked", u64::from(offender), MARKED_BY_EVIDENCE);
        }
        self.propose_removal(cx, offender, Proof::Evidence(Box::new(evidence.clone())));
        self.broadcast(cx, &Message::Evidence(evidence), false);
    }

    // ---- catch-up ---------------------------------------------------------------------------

    fn start_fetch(&mut self, cx: &mut Context<'_, Timer>) {
        if self.fetching.is_some() || self.halted {
            return;
        }
        self.fetch_generation += 1;
        self.fetching = Some(Fetching {
            generation: self.fetch_generation,
            peer: self.next_fetch_peer(),
            unproven: Vec::new(),
        });
        self.send_fetch(cx);
    }

    /// The next validator to ask for blocks, in turn: a member other than this replica (a
    /// removed validator was shown Byzantine), or any other if this replica is the only member.
    fn next_fetch_peer(&mut self) -> usize {
        let n = self.peers.len();
        for _ in 0..n {
            self.fetch_peer = (self.fetch_peer + 1) % n;
            let candidate = self.fetch_peer as ValidatorIndex;
            if candidate != self.me && self.set.is_member(candidate) {
                return self.fetch_peer;
            }
        }
        self.fetch_peer = (usize::from(self.me) + 1) % n;
        self.fetch_peer
    }

    fn send_fetch(&mut self, cx: &mut Context<'_, Timer>) {
        let Some(f) = &self.fetching else { return };
        let from = self.tip.height + 1 + f.unproven.len() as u64;
        let (peer, generation) = (f.peer, f.generation);
        let message = Message::Fetch(Fetch {
            from,
            count: self.config.fetch_blocks_max,
        });
        let addr = self.peers[peer];
        self.send(cx, addr, &message);
        let at = cx.now() + self.config.fetch_timeout;
        cx.set_timer(at, Timer::Fetch(generation));
    }

    fn on_fetch_timer(&mut self, cx: &mut Context<'_, Timer>, generation: u64) {
        let Some(f) = &self.fetching else { return };
        if f.generation != generation {
            return;
        }
        let peer = self.next_fetch_peer();
        self.fetch_generation += 1;
        let generation = self.fetch_generation;
        if let Some(f) = self.fetching.as_mut() {
            f.peer = peer;
            f.generation = generation;
        }
        self.send_fetch(cx);
    }

    fn on_fetch_request(&mut self, cx: &mut Context<'_, Timer>, from: SocketAddr, fetch: Fetch) {
        // Heights pruned from the log (record h is index h - 1): the checkpoint instead.
        let pruned = self
            .log
            .as_ref()
            .is_some_and(|log| fetch.from >= 1 && fetch.from <= self.tip.height && fetch.from - 1 < log.first());
        if pruned {
            if let Some((offer, _)) = self.offered.as_ref().filter(|(o, _)| o.height >= fetch.from) {
                let message = Message::SnapshotOffer(*offer);
                self.send(cx, from, &message);
            }
            return;
        }
        let reserve = self.config.block_bytes_max + qc_bytes_max(&self.set);
        let mut budget = self.config.fetch_bytes_max.saturating_sub(reserve);
        let asked = fetch.from..fetch.from.saturating_add(u64::from(fetch.count));
        // An epoch's end within the heights asked: the answer stops at its last block, followed
        // by the blocks certified after it in that epoch that show it committed (the isolation
        // proof kept for it), so a replica still in that epoch commits it and enters the next.
        let epoch_end = self
            .isolated
            .values()
            .copied()
            .filter(|h| asked.contains(h) && *h <= self.tip.height)
            .min()
            .map(|end| (end, self.epoch_end_chain(cx, end)));
        if let Some((_, Some(chain))) = &epoch_end {
            budget = budget.saturating_sub(chain.iter().map(CertifiedBlock::encoded_len).sum());
        }
        let records = if fetch.from > self.tip.height && self.salvaged.contains_key(&fetch.from) {
            // Committed blocks this replica salvaged past a hole in its log: what a peer asks
            // for may exist nowhere else.
            // Not past a change of epoch: these blocks are not applied here yet, so no epoch's
            // end among them is known, and a block of the next epoch is refused by a peer in
            // this one.
            let epoch = self.salvaged.get(&fetch.from).map(|r| epoch_of_view(r.qc.view));
            let salvaged = asked
                .map_while(|h| self.salvaged.get(&h))
                .take_while(|r| Some(epoch_of_view(r.qc.view)) == epoch)
                .map(|r| (r.clone(), r.encoded_len()));
            within_budget(salvaged, budget)
        } else if fetch.from == 0 || fetch.from > self.tip.height {
            Vec::new()
        } else {
            let Some(log) = self.log.as_ref() else { return };
            let end = asked.end.min(self.tip.height + 1);
            // One read for the records asked (within a segment): each read may rot what it reads.
            let raws = log.get_many(cx, fetch.from - 1, end - fetch.from).unwrap_or_default();
            let held = raws
                .into_iter()
                .map_while(|raw| raw.and_then(|raw| Some((CertifiedBlock::decode(&raw).ok()?, raw.len()))));
            within_budget(held, budget)
        };
        let mut records = records;
        let reaches_tip = records
            .last()
            .is_some_and(|r: &CertifiedBlock| r.block.height == self.tip.height);
        let mut proof = if reaches_tip {
            self.tip_proof.clone().map(Box::new)
        } else {
            None
        };
        if let Some((end, chain)) = epoch_end {
            // The epoch's last block comes from its proof, with the certificate it was
            // committed with: the log's copy may have rotted, and this replica may be the only
            // one that committed it.
            let before_end = (end - fetch.from) as usize;
            let bytes = |blocks: &[CertifiedBlock]| blocks.iter().map(CertifiedBlock::encoded_len).sum::<usize>();
            let limit = self.config.fetch_bytes_max;
            match chain {
                // Too large for an answer with what comes before it: that part first, and the
                // chain alone to the next request, which starts at the end.
                Some(chain)
                    if before_end > 0
                        && records.len() >= before_end
                        && bytes(&records[..before_end]) + bytes(&chain) > limit =>
                {
                    records.truncate(before_end);
                    proof = None;
                }
                Some(mut chain) if chain.len() >= 2 && records.len() >= before_end && bytes(&chain) <= limit => {
                    records.truncate(before_end);
                    proof = chain.pop().map(Box::new);
                    records.extend(chain);
                }
                // Not kept here (taken in a checkpoint, or shown committed only through more
                // blocks than a proof holds), or larger than an answer: the others serve it, or
                // a checkpoint past it does.
                _ => {
                    if records.len() > before_end {
                        records.truncate(before_end);
                        proof = None;
                    }
                    if let Some((offer, _)) = self.offered.as_ref().filter(|(o, _)| o.height >= end) {
                        let message = Message::SnapshotOffer(*offer);
                        self.send(cx, from, &message);
                    }
                }
            }
        }
        let message = Message::Blocks(Blocks { records, proof });
        self.send(cx, from, &message);
    }

    /// Commits again, from the isolation proofs this replica kept, the last blocks of epochs
    /// that its log lost at start (rot, or writes the disk never kept). The certificate that
    /// committed such a block may have formed only here, as collector, and the replica entered
    /// the next epoch at once, leaving nothing in its safety record that would show the others
    /// the block committed: without this, a cluster that needs this replica in the new epoch,
    /// and the others in the old one, never commits again (swarm-consensus seed 280). An error
    /// is a failed write: starting is tried again.
    fn recommit_epoch_ends(&mut self, cx: &mut Context<'_, Timer>) -> Result<(), ()> {
        loop {
            let tip = self.tip;
            let mut found = None;
            for accused in self.set.members().to_vec() {
                // A read error is tried again with the rest of the start: this may be the only
                // copy of the proof in the cluster.
                let Some(bytes) = durable::Mirror::load(cx, &format!("{REMOVAL}.{accused}"))
                    .map_err(|_| ())?
                    .1
                else {
                    continue;
                };
                let Ok(proof) = IsolationProof::decode(&bytes) else {
                    continue;
                };
                let first = &proof.chain[0].block;
                let shows_it = |proof: &IsolationProof| {
                    proof
                        .verify_across(&self.set, &|epoch| {
                            self.set_of_epoch(epoch).map(|s| (s, self.detector.threshold(s.f())))
                        })
                        .is_ok_and(|shown| shown.iter().any(|i| i.accused == accused))
                };
                if first.height == tip.height + 1 && first.parent == tip.digest && shows_it(&proof) {
                    found = Some(proof.chain[0].clone());
                    break;
                }
            }
            let Some(record) = found else { return Ok(()) };
            if !self.persist(cx, std::slice::from_ref(&record)) {
                return Err(());
            }
            self.apply(cx, &record, false);
            self.lost_at_start = self.lost_at_start.saturating_sub(1);
        }
    }

    /// The certified chain that shows the block at `height`, the last of its epoch, committed:
    /// the isolation proof kept for a validator that block removed (the block first).
    fn epoch_end_chain(&mut self, cx: &mut Context<'_, Timer>, height: u64) -> Option<Vec<CertifiedBlock>> {
        let accused: Vec<ValidatorIndex> = self
            .isolated
            .iter()
            .filter(|(_, h)| **h == height)
            .map(|(v, _)| *v)
            .collect();
        accused.into_iter().find_map(|v| {
            let (_, bytes) = durable::Mirror::load(cx, &format!("{REMOVAL}.{v}")).ok()?;
            let bytes = bytes?;
            let proof = IsolationProof::decode(&bytes).ok()?;
            proof
                .chain
                .first()
                .is_some_and(|r| r.block.height == height)
                .then_some(proof.chain)
        })
    }

    fn on_blocks(&mut self, cx: &mut Context<'_, Timer>, blocks: Blocks) {
        let Some(mut fetching) = self.fetching.take() else {
            return;
        };
        let first_height = self.tip.height + 1;
        let mut link = fetching
            .unproven
            .last()
            .map_or((self.tip.digest, self.tip.height), |r| {
                (r.block.digest(), r.block.height)
            });
        let asked = blocks.records.len();
        let with_proof = blocks.proof.is_some();
        let mut proof_pushed = false;
        let total = asked + usize::from(with_proof);
        for (i, record) in blocks.records.into_iter().chain(blocks.proof.map(|b| *b)).enumerate() {
            let ok = record.block.check_limits().is_ok()
                && record.block.parent == link.0
                && record.block.height == link.1 + 1
                && record.qc.view == record.block.view
                && record.qc.height == record.block.height
                && record.qc.block == record.block.digest()
                && self.verify_qc(&record.qc);
            if !ok {
                self.refuse(cx, Refusal::BadCatchUp);
                // The next request goes to another peer: this one's answer would be the same
                // again. What it answered well is kept (and committed if proven); if nothing,
                // the blocks held unproven may be what leads to the refusal (an epoch's last
                // block, whose proof this peer did not send), and the next request starts
                // from the tip again.
                if i == 0 {
                    fetching.unproven.clear();
                }
                fetching.peer = self.next_fetch_peer();
                break;
            }
            link = (record.qc.block, record.block.height);
            fetching.unproven.push(record);
            proof_pushed = with_proof && i + 1 == total;
        }
        // Committed: every block up to the last one followed by a certified child in the next
        // view.
        let proven = (1..fetching.unproven.len())
            .rev()
            .find(|&i| fetching.unproven[i].block.view == fetching.unproven[i - 1].block.view + 1);
        let mut committed = 0;
        if let Some(i) = proven {
            let mut records: Vec<CertifiedBlock> = fetching.unproven.drain(..i).collect();
            // Heights committed here since the request went out (through certificates).
            records.retain(|r| r.block.height > self.tip.height);
            let linked = records
                .first()
                .is_some_and(|r| r.block.height == self.tip.height + 1 && r.block.parent == self.tip.digest);
            // Not past the block that ends the epoch (see `commit`).
            let (kept, removed) = self.within_epoch(&records);
            let ends_epoch = removed.is_some();
            let proof_kept = match &removed {
                Some(removed) if linked => {
                    self.keep_epoch_end(cx, &records, kept - 1, fetching.unproven.first(), removed)
                }
                _ => true,
            };
            if linked && proof_kept && self.persist(cx, &records[..kept]) {
                let epoch = self.set.epoch();
                self.apply_all(cx, &records[..kept], ends_epoch);
                committed = kept;
                if ends_epoch {
                    // The rest was of the epoch that ended; the next answer is of this one.
                    self.tip_proof = None;
                    fetching.unproven.clear();
                    debug_assert!(self.set.epoch() > epoch, "the epoch ended");
                } else {
                    self.tip_proof = fetching.unproven.first().cloned();
                    if let Some(r) = records.last() {
                        self.raise_high_qc(&r.qc);
                    }
                }
                self.enter_past_high_qc(cx);
                self.prune_tree();
                self.commit_salvaged(cx);
            } else {
                fetching.unproven.clear();
            }
        }
        // The proof's block is certified, not committed: it is not kept as a record.
        if proof_pushed {
            fetching.unproven.pop();
        }
        Self::probe(cx, "catchup", first_height, committed as i64);
        // The last unproven block stays unproven until more arrive; anything before it that a
        // later answer cannot extend is dropped.
        let more = asked >= usize::from(self.config.fetch_blocks_max) || (committed > 0 && asked > 0);
        if fetching.unproven.len() > self.config.pending_blocks_max {
            fetching.unproven.clear();
        }
        if more || (!fetching.unproven.is_empty() && asked > 0) {
            self.fetching = Some(fetching);
            self.fetch_generation += 1;
            if let Some(f) = self.fetching.as_mut() {
                f.generation = self.fetch_generation;
            }
            self.send_fetch(cx);
        } else {
            self.fetching = None;
            // Blocks proposed while catching up may now commit.
            let qc = self.high_qc.clone();
            self.on_qc(cx, &qc);
        }
    }
}

impl<M: StateMachine + 'static> Replica<M> {
    // ---- snapshot transfer ------------------------------------------------------------------

    /// A validator's offer of its newest checkpoint, answering a catch-up for heights it
    /// pruned. Counted per validator, from authenticated senders only (an unauthenticated
    /// address could speak for several); taken once `f + 1` offered the same.
    fn on_snapshot_offer(&mut self, cx: &mut Context<'_, Timer>, offer: SnapshotOffer) {
        let Some(sender) = self.authenticated_sender.filter(|v| self.set.is_member(*v)) else {
            return;
        };
        if offer.height <= self.tip.height || offer.len == 0 || offer.len > self.config.snapshot_bytes_max {
            return;
        }
        self.offers.insert(sender, offer);
        if self.transfer.is_some() {
            return;
        }
        let sources: Vec<ValidatorIndex> = self
            .offers
            .iter()
            .filter(|(v, o)| **o == offer && self.set.is_member(**v))
            .map(|(v, _)| *v)
            .collect();
        if sources.len() > self.set.f() {
            self.transfer_generation += 1;
            self.transfer = Some(Transfer {
                offer,
                sources,
                source: 0,
                bytes: BytesMut::new(),
                generation: self.transfer_generation,
                failures: 0,
            });
            Self::probe(cx, "snapshot_fetch", offer.height, offer.len as i64);
            self.request_chunk(cx);
            return;
        }
        // The others are asked at once rather than one per fetch timeout: f + 1 must agree.
        let now = cx.now();
        if self
            .offers_asked
            .is_none_or(|at| now.saturating_since(at) >= self.config.fetch_timeout)
        {
            self.offers_asked = Some(now);
            let message = Message::Fetch(Fetch {
                from: self.tip.height + 1,
                count: self.config.fetch_blocks_max,
            });
            self.broadcast(cx, &message, false);
        }
    }

    /// Asks the transfer's current source for the bytes from where they stop.
    fn request_chunk(&mut self, cx: &mut Context<'_, Timer>) {
        let Some(t) = self.transfer.as_mut() else { return };
        self.transfer_generation += 1;
        t.generation = self.transfer_generation;
        let to = t.sources[t.source % t.sources.len()];
        let message = Message::FetchSnapshot {
            height: t.offer.height,
            offset: t.bytes.len() as u64,
        };
        let generation = t.generation;
        self.send_to_validator(cx, to, &message);
        let at = cx.now() + self.config.fetch_timeout;
        cx.set_timer(at, Timer::Snapshot(generation));
    }

    fn on_snapshot_timer(&mut self, cx: &mut Context<'_, Timer>, generation: u64) {
        let Some(t) = self.transfer.as_ref() else { return };
        if t.generation != generation {
            return;
        }
        if t.bytes.len() as u64 == t.offer.len {
            // Whole and checked: its install failed on storage, and is tried again.
            self.install_transfer(cx);
        } else {
            self.transfer_failed(cx);
        }
    }

    /// The current source did not answer, or its bytes were wrong: the next source is asked,
    /// from the start. Bytes are never mixed from two sources, or one bad chunk followed by
    /// silence would spoil every honest source's bytes after it, found only once whole.
    /// Past [`SNAPSHOT_FAILURES_PER_SOURCE`] failures in a row per source the transfer is
    /// given up, and the next catch-up asks for offers again.
    fn transfer_failed(&mut self, cx: &mut Context<'_, Timer>) {
        let Some(t) = self.transfer.as_mut() else { return };
        t.failures += 1;
        t.source += 1;
        t.bytes.clear();
        if t.failures > SNAPSHOT_FAILURES_PER_SOURCE * t.sources.len() {
            Self::probe(cx, "snapshot_abandoned", t.offer.height, t.failures as i64);
            self.transfer = None;
            self.offers.clear();
            return;
        }
        self.request_chunk(cx);
    }

    /// A peer asks for the bytes of the checkpoint this replica offers. Authenticated
    /// validators only: an answer is some three thousand times the size of the question, and
    /// a spoofed source address would aim it at someone else.
    fn on_fetch_snapshot(&mut self, cx: &mut Context<'_, Timer>, from: SocketAddr, height: u64, offset: u64) {
        if self.authenticated_sender.is_none() {
            return;
        }
        let Some((offer, bytes)) = [self.offered.as_ref(), self.offered_before.as_ref()]
            .into_iter()
            .flatten()
            .find(|(offer, _)| offer.height == height)
        else {
            return;
        };
        if offset >= offer.len {
            return;
        }
        let start = offset as usize;
        let end = (start + SNAPSHOT_CHUNK_BYTES_MAX).min(bytes.len());
        let message = Message::SnapshotChunk(SnapshotChunk {
            height,
            offset,
            total: offer.len,
            bytes: bytes.slice(start..end),
        });
        self.send(cx, from, &message);
    }

    fn on_snapshot_chunk(&mut self, cx: &mut Context<'_, Timer>, chunk: SnapshotChunk) {
        let Some(t) = self.transfer.as_mut() else { return };
        let source = t.sources[t.source % t.sources.len()];
        // From the source asked (authenticated), at the offset asked: anything else would let a
        // stranger's bytes in, to be found wrong only once whole.
        if self.authenticated_sender != Some(source)
            || chunk.height != t.offer.height
            || chunk.offset != t.bytes.len() as u64
            || chunk.total != t.offer.len
            || chunk.bytes.is_empty()
        {
            return;
        }
        t.bytes.extend_from_slice(&chunk.bytes);
        t.failures = 0;
        if (t.bytes.len() as u64) < t.offer.len {
            self.request_chunk(cx);
            return;
        }
        if sha256(&t.bytes) != t.offer.state {
            self.refuse(cx, Refusal::BadCatchUp);
            self.transfer_failed(cx);
            return;
        }
        self.install_transfer(cx);
    }

    /// Takes the transferred checkpoint: durably first (saved as this replica's checkpoint,
    /// then its log started again right after it), then into the state machine; then catches
    /// up on the blocks after it. A failed storage call is tried again after `storage_retry`.
    fn install_transfer(&mut self, cx: &mut Context<'_, Timer>) {
        let Some(t) = self.transfer.as_ref() else { return };
        let offer = t.offer;
        let bytes = Bytes::copy_from_slice(&t.bytes);
        if offer.height <= self.tip.height {
            // Caught up past it on blocks meanwhile.
            self.transfer = None;
            return;
        }
        let checkpoint = match Checkpoint::decode(&bytes) {
            Ok(c)
                if c.height == offer.height
                    && c.view == offer.view
                    && c.digest == offer.block
                    && self.epochs_of(&c).is_some() =>
            {
                c
            }
            _ => {
                self.refuse(cx, Refusal::BadCatchUp);
                self.transfer = None;
                self.offers.clear();
                return;
            }
        };
        let snapshot = Snapshot {
            height: offer.height,
            state: bytes.clone(),
        };
        let attempts = self.config.storage_attempts;
        let durable = match (self.checkpoints.as_mut(), self.log.as_mut()) {
            (Some(checkpoints), Some(log)) => {
                checkpoints.forget_held();
                (0..attempts).any(|_| checkpoints.save(cx, &snapshot).is_ok_and(|saved| saved))
                    && (0..attempts).any(|_| log.restart_at(cx, offer.height).is_ok())
            }
            _ => false,
        };
        if !durable {
            self.stats.storage_retries += 1;
            self.transfer_generation += 1;
            let generation = self.transfer_generation;
            if let Some(t) = self.transfer.as_mut() {
                t.generation = generation;
            }
            let at = cx.now() + self.config.storage_retry;
            cx.set_timer(at, Timer::Snapshot(generation));
            return;
        }
        if self.machine.restore(&checkpoint.state).is_err() {
            self.halt(cx, HALTED_SNAPSHOT_REFUSED);
            return;
        }
        self.take_checkpoint(cx, &checkpoint);
        self.tip_proof = None;
        self.salvaged.retain(|height, _| *height > offer.height);
        self.offer_described(offer, bytes);
        self.transfer = None;
        self.offers.clear();
        self.fetching = None;
        Self::probe(cx, "snapshot_installed", offer.height, offer.len as i64);
        // The block it was taken at, as committed here: checked against every other replica's.
        Self::probe(cx, "commit", offer.height, digest_prefix(&offer.block));
        self.prune_tree();
        self.start_fetch(cx);
        let qc = self.high_qc.clone();
        self.on_qc(cx, &qc);
    }
}

impl CertifiedBlock {
    /// The certificate of the parent of this block, as its proposal carried it: in the tree
    /// under this block's digest.
    fn block_justify_of(&self, tree: &BTreeMap<Digest, Pending>) -> QuorumCertificate {
        tree.get(&self.block.digest())
            .map(|p| p.justify().clone())
            .expect("the proof's block is in the tree")
    }
}

/// The records in order while their encodings fit `budget` bytes (the first always).
fn within_budget(records: impl Iterator<Item = (CertifiedBlock, usize)>, budget: usize) -> Vec<CertifiedBlock> {
    let mut bytes = 0;
    let mut taken = Vec::new();
    for (record, len) in records {
        if bytes + len > budget && !taken.is_empty() {
            break;
        }
        bytes += len;
        taken.push(record);
    }
    taken
}

/// The first 8 bytes of a digest as a probe value.
pub fn digest_prefix(digest: &Digest) -> i64 {
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

fn qc_bytes_max(set: &ValidatorSet) -> usize {
    super::wire::QC_SUMMARY_BYTES + 2 + set.len() * super::wire::QC_SIGNER_BYTES
}

/// The safety record's length for `set`: format, two views, the QC's length and the largest QC.
fn safety_record_len(set: &ValidatorSet) -> usize {
    1 + 8 + 8 + 4 + qc_bytes_max(set)
}

impl<M: StateMachine + 'static> Replica<M> {
    /// Reads back what this replica made durable (its log, into the state machine; its safety
    /// record; the proposals it voted for) and takes part again. A storage call that fails is
    /// tried again every `storage_retry`, and until all is read the replica takes part in
    /// nothing: voting without its safety record could vote twice in a view, and halting on a
    /// transient error would take an honest validator out for good.
    fn try_start(&mut self, cx: &mut Context<'_, Timer>) {
        let read = self
            .replay(cx)
            .map_err(|_| ())
            .and_then(|()| self.recommit_epoch_ends(cx))
            .and_then(|()| self.load_safety(cx).map_err(|_| ()))
            .and_then(|()| self.reload_voted(cx).map_err(|_| ()));
        if read.is_err() && !self.halted {
            self.retry_storage(cx, 1);
            return;
        }
        // Still starting: the view is entered below, from the certificates these raise.
        self.commit_salvaged(cx);
        self.starting = false;
        let lost = if self.marker_lost && self.lost_at_start == 0 {
            RECOVERED_EXTENT_UNKNOWN
        } else {
            self.lost_at_start as i64
        };
        Self::probe(cx, "recovered", self.tip.height, lost);
        self.view = 0;
        // Back into the view it last voted or timed out in, unless a certificate already ended
        // it: it cannot vote there again, but it can time out of it, and the others may need
        // that timeout for their certificate (with f replicas silent, every honest one's). One
        // view on, its timeout would count for nobody: seed 14 of swarm-consensus with
        // adversaries stalled that way after validator 0 restarted. Nor may it propose there:
        // it may have, before it crashed.
        self.proposed_view = self.proposed_view.max(self.last_voted_view);
        // Not into a view of an epoch already ended (the epoch's start, or a certificate saved
        // in the safety record before the epoch ended, is of the epoch before).
        let start = (self.high_qc.view + 1)
            .max(self.last_voted_view)
            .max(self.set.first_view());
        self.advance_to(cx, start, false);
        // A restarted replica asks whether it is behind at once rather than wait for a gap.
        self.start_fetch(cx);
    }
}

impl<M: StateMachine + 'static> Replica<M> {
    /// Submits what a client in this node's process handed over ([`StateMachine::take_local`]).
    fn submit_local(&mut self, cx: &mut Context<'_, Timer>) {
        if self.halted || self.starting {
            return;
        }
        for transaction in self.machine.take_local() {
            let submit = Submit {
                forwarded: false,
                transaction,
            };
            self.on_submit(cx, None, submit);
        }
    }
}

impl<M: StateMachine + 'static> Protocol for Replica<M> {
    type Timer = Timer;

    fn on_start(&mut self, cx: &mut Context<'_, Timer>) {
        self.starting = true;
        self.try_start(cx);
    }

    fn on_message(&mut self, cx: &mut Context<'_, Timer>, from: SocketAddr, payload: Bytes) {
        if self.halted || self.starting {
            return;
        }
        // Handlers may deliver to this replica itself (nested): the outer sender is restored.
        let outer = (self.sender, self.authenticated_sender);
        self.sender = self
            .peers
            .iter()
            .position(|a| *a == from)
            .map(|i| i as ValidatorIndex)
            .filter(|i| *i != self.me);
        self.authenticated_sender = match cx.peer_identity(from) {
            Some(name) => self
                .set
                .validators()
                .iter()
                .position(|v| v.name == name)
                .map(|i| i as ValidatorIndex)
                .filter(|i| *i != self.me),
            None if self.config.detection.source_addresses_authentic => self.sender,
            None => None,
        };
        self.dispatch(cx, from, payload);
        (self.sender, self.authenticated_sender) = outer;
        self.submit_local(cx);
    }

    fn on_timer(&mut self, cx: &mut Context<'_, Timer>, timer: Timer) {
        if self.halted {
            return;
        }
        if self.starting {
            if timer == Timer::Storage {
                self.try_start(cx);
            }
            return;
        }
        self.submit_local(cx);
        match timer {
            Timer::Storage => self.recover_log(cx),
            Timer::View(view) => self.on_view_timer(cx, view),
            Timer::Batch(view) => {
                if view == self.view {
                    self.try_propose(cx, true);
                }
            }
            Timer::Fetch(generation) => self.on_fetch_timer(cx, generation),
            Timer::Read(number) => {
                if let Some(read) = self.reads.remove(&number) {
                    let why = format!(
                        "not served within read_timeout ({:?}): {} of the {} validators' certificates needed came, \
                         and this replica has committed height {} of the {} they certify",
                        self.config.read_timeout,
                        read.answered.len(),
                        self.set.quorum(),
                        self.tip.height,
                        read.index
                    );
                    self.answer_read(cx, read.client, read.id, Err(why));
                }
            }
            Timer::Release(seq) => {
                if let Some((to, bytes)) = self.held.remove(&seq) {
                    self.transmit(cx, to, bytes);
                }
            }
            Timer::Resend(view) => self.on_resend_timer(cx, view),
            Timer::Snapshot(generation) => self.on_snapshot_timer(cx, generation),
        }
    }
}

impl<M: StateMachine + 'static> Replica<M> {
    fn dispatch(&mut self, cx: &mut Context<'_, Timer>, from: SocketAddr, payload: Bytes) {
        let message = match Message::decode(&payload) {
            Ok(m) => m,
            Err(_) => {
                self.refuse(cx, Refusal::Malformed);
                return;
            }
        };
        match message {
            Message::Proposal(p) => self.on_proposal(cx, *p),
            Message::Vote(v) => self.on_vote(cx, v),
            Message::Timeout(t) => self.on_timeout(cx, t),
            Message::QuorumCertificate(qc) => {
                if self.foreign_qc(cx, &qc) {
                    return;
                }
                if qc.view > self.high_qc.view || qc.height > self.tip.height {
                    if self.verify_qc(&qc) {
                        self.on_qc(cx, &qc);
                        if self.leader(self.view) == self.me {
                            self.try_propose(cx, false);
                        }
                    } else {
                        self.refuse(cx, Refusal::Invalid);
                    }
                }
            }
            Message::TimeoutCertificate(tc) => {
                if !self.in_epoch(cx, tc.view) {
                    return;
                }
                // The previous view's certificate too: a leader that entered its view some
                // other way (a restart past a view it timed out in) needs it to propose.
                if tc.view + 1 >= self.view && self.last_tc.as_ref().is_none_or(|t| t.view < tc.view) {
                    if tc.verify(&self.set).is_ok() {
                        if self.last_tc.as_ref().is_none_or(|t| t.view < tc.view) {
                            self.last_tc = Some(tc.clone());
                        }
                        self.on_tc(cx, &tc);
                        if self.leader(self.view) == self.me {
                            self.try_propose(cx, false);
                        }
                    } else {
                        self.refuse(cx, Refusal::Invalid);
                    }
                }
            }
            Message::Evidence(e) => self.on_evidence(cx, e, false),
            Message::VoteFor(v, h) => self.on_vote_for(cx, v, *h),
            Message::Report(r) => self.on_report(cx, r),
            Message::Query(q) => match q.consistency {
                Consistency::Local => {
                    let answer = Message::QueryAnswer(QueryAnswer {
                        id: q.id,
                        height: self.tip.height,
                        result: self.machine.query(&q.request),
                    });
                    self.send(cx, from, &answer);
                }
                Consistency::Linearizable => self.start_read(cx, from, q),
            },
            Message::ReadIndex(id) => {
                // Validators only: an answer carries a certificate, larger than the question.
                if self.sender.is_some() {
                    let answer = Message::ReadIndexAnswer(id, self.high_qc.clone());
                    self.send(cx, from, &answer);
                }
            }
            Message::ReadIndexAnswer(id, qc) => self.on_read_index(cx, id, qc),
            // Answers are for clients.
            Message::QueryAnswer(_) => {}
            Message::FetchProposal(d) => {
                if let Some(p) = self.tree.get(&d) {
                    let message = Message::Proposal(Box::new(p.proposal.clone()));
                    self.send(cx, from, &message);
                }
            }
            Message::Fetch(f) => self.on_fetch_request(cx, from, f),
            Message::Blocks(b) => self.on_blocks(cx, b),
            Message::SnapshotOffer(o) => self.on_snapshot_offer(cx, o),
            Message::FetchSnapshot { height, offset } => self.on_fetch_snapshot(cx, from, height, offset),
            Message::SnapshotChunk(c) => self.on_snapshot_chunk(cx, c),
            Message::Submit(s) => self.on_submit(cx, Some(from), s),
            // Answers are for clients.
            Message::Answer(_) => {}
        }
    }
}

//! [`Load`]: a client protocol that submits list-append transactions to consensus at a set
//! rate and times each from submission to its committed answer.
//!
//! It runs on a host over STOQ like a node's protocols (mounted at `consensus::MOUNT`, channel
//! 3, so replicas hear its submissions and answer it there), and is open-loop up to a bound:
//! every [`TICK`] it submits what the rate owes since the last tick, unless
//! [`LoadConfig::in_flight_max`] transactions already await answers (those it skips are
//! counted, `throttled`). Each transaction goes to [`LoadConfig::answers_required`] validators,
//! round robin, and counts as committed once that many gave the same answer (`f + 1` of them
//! include an honest one).
//!
//! A transaction is one append of a value unique to the run (its digest is its id, which
//! replicas deduplicate by) to a key that changes every [`APPENDS_PER_KEY`] transactions, so no
//! list nears the state machine's bound; signed as the client's id when the validators file
//! lists clients.
//!
//! # Probes (protocol `consensus`)
//!
//! | name | subject | value |
//! |---|---|---|
//! | `measuring` | 0 | 0: the warm-up ended, measured submissions begin |
//! | `stopped` | 0 | 0: the measured window ended, answers are awaited |
//! | `done` | 0 | transactions still unanswered (0 unless stopped early) |
//! | `submitted` | 1 if measured, else 0 | transactions submitted in one tick |
//! | `throttled` | 1 if measured, else 0 | transactions skipped in one tick (too many in flight) |
//! | `committed` | 1 if measured, else 0 | microseconds from submission to the agreeing answers |
//! | `refused` | 1 if measured, else 0 | 1 refused by the state machine (committed), 2 not admitted |
//! | `unanswered` | 1 if measured, else 0 | 1: no agreeing answers within the answer timeout |

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use hypermesh::consensus::{sha256, AnswerKind, Digest, Message, Submit, ValidatorKey};
use hypermesh::replication::kv::{encode_transaction, sign_transaction, Op};
use runtime::host::{Context, Protocol};
use runtime::{Clock, Entropy, Instant, Probe, Probes};

/// How often the client submits what its rate owes.
pub const TICK: Duration = Duration::from_millis(1);
/// Transactions appending to one key before the next key: lists stay far below
/// `kv::LIST_LEN_MAX`.
pub const APPENDS_PER_KEY: u64 = 1024;
/// The most a late tick may catch up on, as time at the rate: a stalled client does not burst.
pub const CATCH_UP_MAX: Duration = Duration::from_millis(50);

/// How the client loads the cluster.
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The validators' addresses.
    pub replicas: Vec<SocketAddr>,
    /// The client's id and key seed if its transactions are signed.
    pub signer: Option<(u64, [u8; 32])>,
    /// Transactions per second offered.
    pub rate_per_s: u32,
    /// Submitting before the measured window (connections set up, pipelines full).
    pub warmup: Duration,
    /// The measured window.
    pub measure: Duration,
    /// Transactions awaiting answers at most.
    pub in_flight_max: usize,
    /// Validators each transaction goes to, and agreeing answers needed.
    pub answers_required: usize,
    /// How long answers are awaited.
    pub answer_timeout: Duration,
}

/// The client's one timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadTimer {
    /// Submit, expire, move between phases.
    Tick,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Warmup,
    Measuring,
    Draining,
    Done,
}

struct Pending {
    sent: Instant,
    measured: bool,
    /// Each distinct answer, with the validators that gave it.
    answers: Vec<((u64, AnswerKind), BTreeSet<SocketAddr>)>,
    not_admitted: bool,
}

/// The load client.
pub struct Load {
    config: LoadConfig,
    key: Option<ValidatorKey>,
    phase: Phase,
    started: Instant,
    last_tick: Instant,
    /// Transactions the rate owes, in millionths.
    owed_micro: u64,
    counter: u64,
    nonce: u64,
    next_replica: usize,
    in_flight: BTreeMap<Digest, Pending>,
    order: VecDeque<(Instant, Digest)>,
}

impl Load {
    /// A client with `config`.
    ///
    /// # Panics
    /// If there are no replicas, the rate is zero, or `answers_required` is not `1..=replicas`.
    pub fn new(config: LoadConfig) -> Load {
        assert!(!config.replicas.is_empty(), "a client needs validators");
        assert!(config.rate_per_s > 0, "a rate above zero");
        assert!(config.in_flight_max > 0, "room for one transaction in flight");
        assert!(
            (1..=config.replicas.len()).contains(&config.answers_required),
            "answers_required must be 1..=validators"
        );
        Load {
            key: config.signer.map(|(_, seed)| ValidatorKey::from_seed(&seed)),
            config,
            phase: Phase::Warmup,
            started: Instant::ZERO,
            last_tick: Instant::ZERO,
            owed_micro: 0,
            counter: 0,
            nonce: 0,
            next_replica: 0,
            in_flight: BTreeMap::new(),
            order: VecDeque::new(),
        }
    }

    fn measured(&self) -> bool {
        self.phase == Phase::Measuring
    }

    fn transaction(&mut self) -> Bytes {
        self.counter += 1;
        let key = ((self.nonce & 0xFFFF_FFFF) << 32) | (self.counter / APPENDS_PER_KEY);
        let ops = [Op::Append {
            key,
            value: (self.nonce << 32) ^ self.counter,
        }];
        match (&self.key, self.config.signer) {
            (Some(key), Some((id, _))) => sign_transaction(&ops, id, key),
            _ => encode_transaction(&ops),
        }
    }

    fn submit(&mut self, cx: &mut Context<'_, LoadTimer>, now: Instant) {
        let transaction = self.transaction();
        let digest = sha256(&transaction);
        let message = Message::Submit(Submit {
            forwarded: false,
            transaction,
        })
        .encode();
        let n = self.config.replicas.len();
        let first = self.next_replica;
        self.next_replica = (first + 1) % n;
        for k in 0..self.config.answers_required {
            // A failed send is a lost submission: the answer timeout counts it.
            let _ = cx.send_to(self.config.replicas[(first + k) % n], message.clone());
        }
        self.in_flight.insert(
            digest,
            Pending {
                sent: now,
                measured: self.measured(),
                answers: Vec::new(),
                not_admitted: false,
            },
        );
        self.order.push_back((now, digest));
    }

    /// Submits what the rate owes since the last tick.
    fn submit_owed(&mut self, cx: &mut Context<'_, LoadTimer>, now: Instant) {
        let rate = u64::from(self.config.rate_per_s);
        let elapsed = now.saturating_since(self.last_tick).min(CATCH_UP_MAX);
        self.last_tick = now;
        self.owed_micro += rate * elapsed.as_micros() as u64;
        let owed = self.owed_micro / 1_000_000;
        self.owed_micro %= 1_000_000;
        let room = self.config.in_flight_max.saturating_sub(self.in_flight.len()) as u64;
        let sent = owed.min(room);
        for _ in 0..sent {
            self.submit(cx, now);
        }
        let flag = u64::from(self.measured());
        if sent > 0 {
            cx.probe(Probe::new("submitted", flag, sent as i64));
        }
        if owed > sent {
            cx.probe(Probe::new("throttled", flag, (owed - sent) as i64));
        }
    }

    fn expire(&mut self, cx: &mut Context<'_, LoadTimer>, now: Instant) {
        while let Some((sent, digest)) = self.order.front().copied() {
            if now.saturating_since(sent) < self.config.answer_timeout {
                break;
            }
            self.order.pop_front();
            if let Some(p) = self.in_flight.remove(&digest) {
                cx.probe(Probe::new("unanswered", u64::from(p.measured), 1));
            }
        }
    }

    fn answered(
        &mut self,
        cx: &mut Context<'_, LoadTimer>,
        from: SocketAddr,
        digest: Digest,
        height: u64,
        kind: AnswerKind,
    ) {
        let required = self.config.answers_required;
        let Some(p) = self.in_flight.get_mut(&digest) else {
            // Late, duplicated, or not ours.
            return;
        };
        if matches!(kind, AnswerKind::NotAdmitted(_)) && !p.not_admitted {
            p.not_admitted = true;
            cx.probe(Probe::new("refused", u64::from(p.measured), 2));
        }
        let answer = (height, kind);
        let agreeing = match p.answers.iter_mut().find(|(a, _)| *a == answer) {
            Some((_, from_set)) => {
                from_set.insert(from);
                from_set.len()
            }
            None => {
                p.answers.push((answer.clone(), BTreeSet::from([from])));
                1
            }
        };
        if agreeing < required {
            return;
        }
        let p = self.in_flight.remove(&digest).expect("pending");
        let flag = u64::from(p.measured);
        match answer.1 {
            // Forgotten: committed, its answer no longer held (only a resubmission sees it).
            AnswerKind::Applied(_) | AnswerKind::Forgotten => {
                let latency = cx.now().saturating_since(p.sent).as_micros() as i64;
                cx.probe(Probe::new("committed", flag, latency));
            }
            AnswerKind::Refused(_) => cx.probe(Probe::new("refused", flag, 1)),
            // Counted when first heard.
            AnswerKind::NotAdmitted(_) => {}
        }
    }
}

impl Protocol for Load {
    type Timer = LoadTimer;

    fn on_start(&mut self, cx: &mut Context<'_, LoadTimer>) {
        let now = cx.now();
        self.started = now;
        self.last_tick = now;
        // Values unique to this run: a client restarted with the same id submits new
        // transactions, not copies of the last run's (which replicas would answer from memory).
        self.nonce = cx.next_u64() >> 32;
        cx.set_timer(now + TICK, LoadTimer::Tick);
    }

    fn on_message(&mut self, cx: &mut Context<'_, LoadTimer>, from: SocketAddr, payload: Bytes) {
        if let Ok(Message::Answer(a)) = Message::decode(&payload) {
            self.answered(cx, from, a.transaction, a.height, a.kind);
        }
    }

    fn on_timer(&mut self, cx: &mut Context<'_, LoadTimer>, LoadTimer::Tick: LoadTimer) {
        let now = cx.now();
        let running = now.saturating_since(self.started);
        if self.phase == Phase::Warmup && running >= self.config.warmup {
            self.phase = Phase::Measuring;
            cx.probe(Probe::new("measuring", 0, 0));
        }
        if self.phase == Phase::Measuring && running >= self.config.warmup + self.config.measure {
            self.phase = Phase::Draining;
            cx.probe(Probe::new("stopped", 0, 0));
        }
        if matches!(self.phase, Phase::Warmup | Phase::Measuring) {
            self.submit_owed(cx, now);
        }
        self.expire(cx, now);
        if self.phase == Phase::Draining && self.in_flight.is_empty() {
            self.phase = Phase::Done;
            cx.probe(Probe::new("done", 0, 0));
        }
        if self.phase != Phase::Done {
            cx.set_timer(now + TICK, LoadTimer::Tick);
        }
    }
}

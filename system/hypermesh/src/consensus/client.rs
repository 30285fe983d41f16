//! [`LoadClient`]: a client that submits list-append transactions to replicas and records its
//! history, for linearizability checkers (Elle-style) and for load.
//!
//! Each transaction appends at least once (so no two transactions have the same bytes, and
//! the replicas' deduplication by id never merges two of them) and reads some keys. Keys come
//! from a window of [`LoadConfig::keys_live`] keys that moves on every
//! [`LoadConfig::key_lifetime`], which keeps lists, and the reads that return them, short.
//! Values are unique across the run: the transaction id (process and counter) and the op's
//! position.
//!
//! Against Byzantine replicas the client signs its transactions ([`LoadConfig::signing_seed`],
//! for a machine built `ListAppend::with_clients`), submits each to `f + 1` replicas and
//! believes an outcome only once `f + 1` of them gave it ([`LoadConfig::answers_required`]).
//!
//! With [`LoadConfig::linearizable_reads`], some turns send a linearizable read instead
//! ([`Consistency::Linearizable`], of a few live keys) to as many replicas, believed once that
//! many agree on what the keys hold (their heights may differ). It is recorded as a read-only
//! transaction, so the checker holds it to strict serializability with the rest: a stale read
//! is a real-time cycle.
//!
//! # Probes (protocol `consensus`): the history
//!
//! | name | subject | value |
//! |---|---|---|
//! | `txn` | transaction id | number of ops (invocation) |
//! | `query` | transaction id | 1: the transaction is a linearizable read (a query, not submitted) |
//! | `append` | transaction id | key (followed by `value`) |
//! | `value` | transaction id | value appended |
//! | `read` | transaction id | key |
//! | `ok` | transaction id | height committed at, or for a read the highest height answered at (then `read_len`/`element` per read) |
//! | `read_len` | transaction id | length of the list read |
//! | `element` | transaction id | one value of the list read |
//! | `fail` | transaction id | 1 refused by the state machine, 2 not admitted |
//! | `info` | transaction id | 0: no answer in time (it may or may not have committed); 1 an answer that does not parse; 2 committed, answer forgotten; 3 a read's replicas disagree |
//! | `latency_ms` | transaction id | submission to answer, milliseconds |

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use runtime::host::{Context, Protocol};
use runtime::{Clock, Entropy, Instant, Probe, Probes};

use super::crypto::{sha256, Digest, ValidatorKey};
use super::wire::{AnswerKind, Consistency, Message, Query, Submit};
use crate::replication::kv::{decode_read_lists, encode_transaction, sign_transaction, Op};

/// How a load client behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadConfig {
    /// The replicas it submits to (one drawn per transaction).
    pub replicas: Vec<SocketAddr>,
    /// Its process number in the history (unique per client).
    pub process: u64,
    /// Time between submissions.
    pub interval: Duration,
    /// Transactions awaiting an answer at most; beyond it, the client skips a turn.
    pub in_flight_max: usize,
    /// How long it waits for an answer before recording the outcome as unknown.
    pub answer_timeout: Duration,
    /// Keys in the live window.
    pub keys_live: u64,
    /// How long a window of keys lives.
    pub key_lifetime: Duration,
    /// Ops per transaction at most (at least one append).
    pub ops_max: usize,
    /// When to stop submitting (time since the client started); `None` never.
    pub stop_after: Option<Duration>,
    /// The seed of the client's signing key: its transactions are signed
    /// ([`crate::replication::kv::sign_transaction`]) as process [`LoadConfig::process`].
    /// `None` sends them unsigned (for machines without clients).
    pub signing_seed: Option<[u8; 32]>,
    /// Distinct replicas each transaction is submitted to, and matching answers needed before
    /// the client believes one: `f + 1` where up to `f` replicas may be Byzantine (any `f + 1`
    /// include an honest one), 1 where all are trusted.
    pub answers_required: usize,
    /// One turn in this many sends a linearizable read instead of a transaction; 0 never.
    pub linearizable_reads: u32,
}

impl LoadConfig {
    /// A client of `replicas` with one transaction every 10 ms.
    pub fn new(replicas: Vec<SocketAddr>, process: u64) -> Self {
        LoadConfig {
            replicas,
            process,
            interval: Duration::from_millis(10),
            in_flight_max: 64,
            answer_timeout: Duration::from_secs(10),
            keys_live: 8,
            key_lifetime: Duration::from_secs(2),
            ops_max: 4,
            stop_after: None,
            signing_seed: None,
            answers_required: 1,
            linearizable_reads: 0,
        }
    }
}

/// Timers of the load client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientTimer {
    /// Submit the next transaction.
    Next,
    /// The answer to this transaction is overdue.
    Overdue(u64),
}

struct InFlight {
    id: u64,
    reads: usize,
    sent: Instant,
    /// Answers so far: each distinct answer, with the replicas that gave it.
    answers: Vec<((u64, AnswerKind), BTreeSet<SocketAddr>)>,
}

/// A linearizable read awaiting agreeing answers.
struct ReadInFlight {
    reads: usize,
    sent: Instant,
    /// Answers so far: each distinct result, with the replicas that gave it and the highest
    /// height among them.
    answers: Vec<(Result<Bytes, String>, BTreeSet<SocketAddr>, u64)>,
}

/// A client submitting list-append transactions and recording its history in probes.
pub struct LoadClient {
    config: LoadConfig,
    key: Option<ValidatorKey>,
    counter: u64,
    started: Instant,
    in_flight: BTreeMap<Digest, InFlight>,
    by_id: BTreeMap<u64, Digest>,
    reads: BTreeMap<u64, ReadInFlight>,
}

impl LoadClient {
    /// A client with `config`.
    ///
    /// # Panics
    ///
    /// If `config` has no replicas, no keys, or no ops.
    pub fn new(config: LoadConfig) -> Self {
        assert!(!config.replicas.is_empty(), "a client needs replicas");
        assert!(
            config.keys_live > 0 && config.ops_max > 0,
            "a client needs keys and ops"
        );
        assert!(config.process < 1 << 20, "process numbers fit 20 bits");
        assert!(
            (1..=config.replicas.len()).contains(&config.answers_required),
            "answers_required must be 1..=replicas"
        );
        LoadClient {
            key: config.signing_seed.map(|s| ValidatorKey::from_seed(&s)),
            config,
            counter: 0,
            started: Instant::ZERO,
            in_flight: BTreeMap::new(),
            by_id: BTreeMap::new(),
            reads: BTreeMap::new(),
        }
    }

    /// Transactions and reads awaiting an answer.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len() + self.reads.len()
    }

    /// The first key of the live window.
    fn window_base(&self, cx: &Context<'_, ClientTimer>) -> u64 {
        let window = cx.now().saturating_since(self.started).as_millis() as u64
            / self.config.key_lifetime.as_millis().max(1) as u64;
        window * self.config.keys_live
    }

    /// `answers_required` distinct replicas from a random start.
    fn send_to_replicas(&self, cx: &mut Context<'_, ClientTimer>, message: Bytes) {
        let n = self.config.replicas.len();
        let first = cx.next_u64() as usize % n;
        for k in 0..self.config.answers_required {
            let to = self.config.replicas[(first + k) % n];
            let _ = cx.send_to(to, message.clone());
        }
    }

    fn next_id(&mut self) -> u64 {
        self.counter += 1;
        (self.config.process << 32) | (self.counter & 0xFFFF_FFFF)
    }

    /// Sends a linearizable read of up to `ops_max` live keys.
    fn read(&mut self, cx: &mut Context<'_, ClientTimer>) {
        let id = self.next_id();
        let base = self.window_base(cx);
        let count = 1 + cx.next_u64() as usize % self.config.ops_max;
        let ops: Vec<Op> = (0..count)
            .map(|_| Op::Read {
                key: base + cx.next_u64() % self.config.keys_live,
            })
            .collect();
        cx.probe(Probe::new("txn", id, ops.len() as i64));
        cx.probe(Probe::new("query", id, 1));
        for op in &ops {
            if let Op::Read { key } = op {
                cx.probe(Probe::new("read", id, *key as i64));
            }
        }
        let message = Message::Query(Query {
            id,
            consistency: Consistency::Linearizable,
            request: encode_transaction(&ops),
        })
        .encode();
        self.send_to_replicas(cx, message);
        let now = cx.now();
        self.reads.insert(
            id,
            ReadInFlight {
                reads: ops.len(),
                sent: now,
                answers: Vec::new(),
            },
        );
        cx.set_timer(now + self.config.answer_timeout, ClientTimer::Overdue(id));
    }

    fn read_answered(
        &mut self,
        cx: &mut Context<'_, ClientTimer>,
        from: SocketAddr,
        id: u64,
        height: u64,
        result: Result<Bytes, String>,
    ) {
        let Some(r) = self.reads.get_mut(&id) else {
            return;
        };
        let agreeing = match r.answers.iter_mut().find(|(a, _, _)| *a == result) {
            Some((_, replicas, top)) => {
                replicas.insert(from);
                *top = (*top).max(height);
                replicas.len()
            }
            None => {
                r.answers.push((result.clone(), BTreeSet::from([from]), height));
                1
            }
        };
        if agreeing < self.config.answers_required {
            if r.answers.iter().map(|(_, replicas, _)| replicas.len()).sum::<usize>() >= self.config.answers_required {
                // Every replica asked answered, and they disagree (reads at different heights
                // of a key written between them): what it read is unknown.
                self.reads.remove(&id);
                cx.probe(Probe::new("info", id, 3));
            }
            return;
        }
        let r = self.reads.remove(&id).expect("found above");
        let top = r
            .answers
            .iter()
            .find(|(a, _, _)| *a == result)
            .map_or(height, |(_, _, t)| *t);
        let latency = cx.now().saturating_since(r.sent).as_millis() as i64;
        match result.ok().and_then(|body| decode_read_lists(&body, r.reads)) {
            Some(lists) => record_ok(cx, id, top, lists),
            // Refused (no quorum in time, too many reads), or an answer that does not parse:
            // nothing was read.
            None => cx.probe(Probe::new("fail", id, 1)),
        }
        cx.probe(Probe::new("latency_ms", id, latency));
    }

    fn submit(&mut self, cx: &mut Context<'_, ClientTimer>) {
        if self.in_flight() >= self.config.in_flight_max {
            return;
        }
        if self.config.linearizable_reads > 0 && cx.next_u64().is_multiple_of(u64::from(self.config.linearizable_reads))
        {
            self.read(cx);
            return;
        }
        let id = self.next_id();
        let base = self.window_base(cx);
        let ops_count = 1 + cx.next_u64() as usize % self.config.ops_max;
        let mut ops = Vec::with_capacity(ops_count);
        for i in 0..ops_count {
            let key = base + cx.next_u64() % self.config.keys_live;
            // The first op appends, so every transaction's bytes are its own.
            if i == 0 || cx.next_u64().is_multiple_of(2) {
                ops.push(Op::Append {
                    key,
                    value: (id << 6) | i as u64,
                });
            } else {
                ops.push(Op::Read { key });
            }
        }
        cx.probe(Probe::new("txn", id, ops.len() as i64));
        let mut reads = 0;
        for op in &ops {
            match *op {
                Op::Append { key, value } => {
                    cx.probe(Probe::new("append", id, key as i64));
                    cx.probe(Probe::new("value", id, value as i64));
                }
                Op::Read { key } => {
                    reads += 1;
                    cx.probe(Probe::new("read", id, key as i64));
                }
            }
        }
        let transaction = match &self.key {
            Some(key) => sign_transaction(&ops, self.config.process, key),
            None => encode_transaction(&ops),
        };
        let digest = sha256(&transaction);
        let message = Message::Submit(Submit {
            forwarded: false,
            transaction,
        })
        .encode();
        self.send_to_replicas(cx, message);
        let now = cx.now();
        self.in_flight.insert(
            digest,
            InFlight {
                id,
                reads,
                sent: now,
                answers: Vec::new(),
            },
        );
        self.by_id.insert(id, digest);
        cx.set_timer(now + self.config.answer_timeout, ClientTimer::Overdue(id));
    }

    fn answered(
        &mut self,
        cx: &mut Context<'_, ClientTimer>,
        from: SocketAddr,
        digest: Digest,
        height: u64,
        kind: AnswerKind,
    ) {
        let Some(t) = self.in_flight.get_mut(&digest) else {
            // Late, duplicated or not ours.
            return;
        };
        let answer = (height, kind);
        if agreeing(&mut t.answers, &answer, from) >= self.config.answers_required {
            self.complete(cx, digest, answer.0, answer.1);
        }
    }

    fn complete(&mut self, cx: &mut Context<'_, ClientTimer>, digest: Digest, height: u64, kind: AnswerKind) {
        let Some(t) = self.in_flight.remove(&digest) else {
            return;
        };
        self.by_id.remove(&t.id);
        let latency = cx.now().saturating_since(t.sent).as_millis() as i64;
        match kind {
            AnswerKind::Applied(body) => {
                match decode_read_lists(&body, t.reads) {
                    Some(lists) => record_ok(cx, t.id, height, lists),
                    // An answer that does not parse says nothing certain.
                    None => cx.probe(Probe::new("info", t.id, 1)),
                }
            }
            AnswerKind::Refused(_) => cx.probe(Probe::new("fail", t.id, 1)),
            AnswerKind::NotAdmitted(_) => cx.probe(Probe::new("fail", t.id, 2)),
            // Committed, but what its reads returned is lost: indeterminate for the history.
            AnswerKind::Forgotten => cx.probe(Probe::new("info", t.id, 2)),
        }
        cx.probe(Probe::new("latency_ms", t.id, latency));
    }
}

/// Records that replica `from` gave `answer` among a transaction's `answers` (each distinct
/// answer with the replicas that gave it); how many replicas gave that same answer so far. A
/// client believes an outcome once `f + 1` agree.
pub fn agreeing<A: PartialEq + Clone>(
    answers: &mut Vec<(A, BTreeSet<SocketAddr>)>,
    answer: &A,
    from: SocketAddr,
) -> usize {
    match answers.iter_mut().find(|(a, _)| a == answer) {
        Some((_, replicas)) => {
            replicas.insert(from);
            replicas.len()
        }
        None => {
            answers.push((answer.clone(), BTreeSet::from([from])));
            1
        }
    }
}

/// Records `id` as committed (or read) at `height`, with the lists its reads returned.
fn record_ok(cx: &mut Context<'_, ClientTimer>, id: u64, height: u64, lists: Vec<Vec<u64>>) {
    cx.probe(Probe::new("ok", id, height as i64));
    for list in lists {
        cx.probe(Probe::new("read_len", id, list.len() as i64));
        for v in list {
            cx.probe(Probe::new("element", id, v as i64));
        }
    }
}

impl Protocol for LoadClient {
    type Timer = ClientTimer;

    fn on_start(&mut self, cx: &mut Context<'_, ClientTimer>) {
        // A client keeps no state across restarts: one that restarts would reuse ids, so the
        // harness never crashes client nodes.
        self.started = cx.now();
        cx.set_timer(cx.now() + self.config.interval, ClientTimer::Next);
    }

    fn on_message(&mut self, cx: &mut Context<'_, ClientTimer>, from: SocketAddr, payload: Bytes) {
        match Message::decode(&payload) {
            Ok(Message::Answer(a)) => self.answered(cx, from, a.transaction, a.height, a.kind),
            Ok(Message::QueryAnswer(a)) => self.read_answered(cx, from, a.id, a.height, a.result),
            _ => {}
        }
    }

    fn on_timer(&mut self, cx: &mut Context<'_, ClientTimer>, timer: ClientTimer) {
        match timer {
            ClientTimer::Next => {
                let running = cx.now().saturating_since(self.started);
                if self.config.stop_after.is_none_or(|stop| running < stop) {
                    self.submit(cx);
                    cx.set_timer(cx.now() + self.config.interval, ClientTimer::Next);
                }
            }
            ClientTimer::Overdue(id) => {
                if let Some(digest) = self.by_id.remove(&id) {
                    self.in_flight.remove(&digest);
                    cx.probe(Probe::new("info", id, 0));
                }
                if self.reads.remove(&id).is_some() {
                    cx.probe(Probe::new("info", id, 0));
                }
            }
        }
    }
}

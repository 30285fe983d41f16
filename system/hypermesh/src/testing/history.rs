//! An Elle-style checker for client histories of the list-append workload: transactions of
//! [`Op::Append`] and [`Op::Read`] run against the replicated
//! [`ListAppend`](crate::replication::kv::ListAppend) machine, judged against strict
//! serializability (after Kingsbury and Alvaro, "Elle: Inferring Isolation Anomalies from
//! Experimental Observations", VLDB 2020).
//!
//! Lists only grow and every value is appended to a key once, so a read shows the order in which
//! the appends before it took effect. From that the checker infers, without knowing the order
//! the cluster chose, the dependencies between transactions and looks for a cycle among them:
//! no serial order can explain a cycle.
//!
//! What it reads:
//! - [`Txn::reads`] answers the read ops in op order: `reads[i]` is the list the `i`-th
//!   [`Op::Read`] of [`Txn::ops`] saw, with that op's key. Only an [`Status::Ok`] transaction's
//!   reads are used (a failed or unknown one's are ignored).
//! - A transaction is *committed* if it is [`Status::Ok`], or [`Status::Info`] (its outcome
//!   unknown, e.g. timed out) and some read saw one of its appends. A [`Status::Failed`] one was
//!   definitely not applied; an unobserved `Info` one is no evidence either way.
//! - Values are unique per key across the whole history, failed attempts included.
//!
//! What it infers:
//! - The *version order* of a key is its longest read; every other read of it must be a prefix.
//! - Edges between committed transactions: `ww` (T1 appended `x_i`, T2 appended `x_i+1`),
//!   `wr` (T2's read of a key ends at a value T1 appended), `rw` (T1's read ends at `x_i`, or is
//!   empty, and T2 appended `x_i+1`: T2 overwrote what T1 saw) and `rt` (T1 completed before T2
//!   was invoked; only an `Ok` transaction has a known completion, so an `Info` one is only
//!   ever T2, and the edges are a transitive reduction of real-time order). Only a transaction's *external* reads count for `wr` and `rw`: the first read
//!   of a key, when no append of its own to that key precedes it.
//! - Cycles, one per strongly connected component, the most telling first: [`CycleKind::G0`]
//!   (`ww` only), [`CycleKind::G1c`] (`ww` and `wr`), [`CycleKind::GSingle`] (exactly one `rw`),
//!   [`CycleKind::G2`] (more), then the same with `rt` edges (the `-realtime` kinds, which only
//!   strict serializability forbids). Each is shown as a shortest cycle found by breadth-first
//!   search, every step with its kind and why it holds.
//! - Before any of that, what single reads betray ([`Anomaly`]): a value read that nobody
//!   appended, or that a failed transaction appended (G1a), a read ending inside another
//!   transaction's appends (G1b), a value appended or read twice, a read that contradicts its own
//!   transaction, and two reads of a key in incompatible orders.
//!
//! Limits: appends that no read saw are in no version order, so they give no `ww` or `rw` edge
//! (a workload should read every key at the end); the search for a cycle tries at most
//! [`CYCLE_SEARCH_STARTS_MAX`] starts, so in a huge component the cycle shown may be longer,
//! or less telling, than the best one; at most [`ANOMALIES_PER_KIND_MAX`] anomalies of a kind are
//! listed (all are counted).
//!
//! ```
//! use std::time::Duration;
//! use hypermesh::replication::kv::Op;
//! use hypermesh::testing::history::{check, Status, Txn};
//!
//! let ms = Duration::from_millis;
//! let txn = |id, invoke, complete, ops: Vec<Op>, reads: Vec<(u64, Vec<u64>)>| Txn {
//!     id, process: id, invoke: ms(invoke), complete: Some(ms(complete)), ops, reads, status: Status::Ok,
//! };
//! let history = [
//!     // T1 appends 1 to key 7 and completes at 10 ms...
//!     txn(1, 0, 10, vec![Op::Append { key: 7, value: 1 }], vec![]),
//!     // ...yet T2, invoked at 20 ms, reads key 7 as empty: a stale read.
//!     txn(2, 20, 30, vec![Op::Read { key: 7 }], vec![(7, vec![])]),
//!     txn(3, 40, 50, vec![Op::Read { key: 7 }], vec![(7, vec![1])]),
//! ];
//! let report = check(&history);
//! assert!(!report.is_valid());
//! assert_eq!(report.count("G-single-realtime"), 1);
//! println!("{report}");
//! ```

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::time::Duration;

use super::Seconds;
use crate::replication::kv::Op;

/// The most anomalies of one kind a [`Report`] lists; all are counted in
/// [`Report::anomaly_counts`].
pub const ANOMALIES_PER_KIND_MAX: usize = 16;
/// The most starting points (nodes, or `rw` edges for [`CycleKind::GSingle`]) tried when looking
/// for the shortest cycle of a kind in one strongly connected component.
pub const CYCLE_SEARCH_STARTS_MAX: usize = 16;
/// The most values of a list that evidence prints (the last ones; earlier ones are elided).
pub const LIST_SHOWN_MAX: usize = 8;

/// What the client learnt of a transaction's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// Committed; its reads are what it saw.
    Ok,
    /// Definitely not applied.
    Failed,
    /// Outcome unknown (e.g. timed out): its appends may or may not have taken effect.
    Info,
}

/// One transaction as a client saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Txn {
    /// Unique in the history; evidence names transactions `T{id}`.
    pub id: u64,
    /// The client that ran it (evidence of real-time order prints it).
    pub process: u64,
    /// When the client invoked it.
    pub invoke: Duration,
    /// When the client learnt its outcome; required for [`Status::Ok`], ignored otherwise.
    pub complete: Option<Duration>,
    /// Its micro-operations, in order.
    pub ops: Vec<Op>,
    /// For each [`Op::Read`] of `ops`, in order, its key and the list it saw: `reads[i]`
    /// answers the `i`-th read op. Used only when `status` is [`Status::Ok`].
    pub reads: Vec<(u64, Vec<u64>)>,
    /// The outcome.
    pub status: Status,
}

/// A micro-operation with its result: an append, or a read with the list it saw.
#[derive(Clone, Copy, Debug)]
enum Micro<'a> {
    Append { key: u64, value: u64 },
    Read { key: u64, list: &'a [u64] },
}

impl Txn {
    /// The ops with their reads' results paired in; meaningful once [`malformation`] passed.
    fn micros(&self) -> impl Iterator<Item = Micro<'_>> {
        let mut reads = self.reads.iter();
        self.ops.iter().map(move |op| match *op {
            Op::Append { key, value } => Micro::Append { key, value },
            Op::Read { key } => Micro::Read {
                key,
                list: reads.next().map_or(&[][..], |(_, list)| list.as_slice()),
            },
        })
    }

    /// The value this transaction appended to `key` right after `value`, if any.
    fn append_after(&self, key: u64, value: u64) -> Option<u64> {
        let mut appends = self.ops.iter().filter_map(|op| match *op {
            Op::Append { key: k, value: v } if k == key => Some(v),
            _ => None,
        });
        appends.find(|&v| v == value)?;
        appends.next()
    }
}

/// The kind of a dependency between two transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EdgeKind {
    /// Write-write: the second appended the value right after the first's.
    Ww,
    /// Write-read: the second read the first's append.
    Wr,
    /// Read-write (anti-dependency): the second appended the value right after what the first
    /// read.
    Rw,
    /// Real time: the first completed before the second was invoked.
    Rt,
}

impl EdgeKind {
    /// Every kind, in the order a step is labelled when it has several (the most telling first).
    const ALL: [EdgeKind; 4] = [EdgeKind::Ww, EdgeKind::Wr, EdgeKind::Rw, EdgeKind::Rt];

    fn bit(self) -> u8 {
        1 << self as u8
    }

    /// Its short name: `ww`, `wr`, `rw` or `rt`.
    pub fn name(self) -> &'static str {
        match self {
            EdgeKind::Ww => "ww",
            EdgeKind::Wr => "wr",
            EdgeKind::Rw => "rw",
            EdgeKind::Rt => "rt",
        }
    }
}

impl fmt::Display for EdgeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const WW: u8 = 1 << EdgeKind::Ww as u8;
const WR: u8 = 1 << EdgeKind::Wr as u8;
const RW: u8 = 1 << EdgeKind::Rw as u8;
const RT: u8 = 1 << EdgeKind::Rt as u8;

/// Why an edge holds: the observation behind it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    /// The source appended `value` to `key`, and the target appended `next` right after it.
    Ww {
        /// The key.
        key: u64,
        /// The source's append.
        value: u64,
        /// The target's append, next in the key's version order.
        next: u64,
    },
    /// The target's read of `key` ended at `value`, which the source appended.
    Wr {
        /// The key.
        key: u64,
        /// The last value the target read.
        value: u64,
    },
    /// The source's read of `key` ended at `last_read` (`None`: it was empty), and the target
    /// appended `next`, the value after it in the key's version order.
    Rw {
        /// The key.
        key: u64,
        /// The last value the source read, if any.
        last_read: Option<u64>,
        /// The target's append.
        next: u64,
    },
    /// The source completed before the target was invoked.
    Rt {
        /// When the source completed.
        completed: Duration,
        /// When the target was invoked.
        invoked: Duration,
        /// The target's process.
        process: u64,
    },
}

impl Why {
    /// The kind of edge this justifies.
    pub fn kind(&self) -> EdgeKind {
        match self {
            Why::Ww { .. } => EdgeKind::Ww,
            Why::Wr { .. } => EdgeKind::Wr,
            Why::Rw { .. } => EdgeKind::Rw,
            Why::Rt { .. } => EdgeKind::Rt,
        }
    }
}

/// One edge of a cycle: transaction `from` must precede transaction `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The earlier transaction's id.
    pub from: u64,
    /// The later transaction's id.
    pub to: u64,
    /// Why it must come first (and so the edge's kind).
    pub why: Why,
}

impl Step {
    /// The edge's kind.
    pub fn kind(&self) -> EdgeKind {
        self.why.kind()
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b) = (self.from, self.to);
        write!(f, "T{a} -{}-> T{b}: ", self.kind())?;
        match self.why {
            Why::Ww { key, value, next } => {
                write!(
                    f,
                    "T{a} appended {value} to key {key}, and T{b} appended {next} right after it"
                )
            }
            Why::Wr { key, value } => write!(f, "T{b} read key {key} ending at {value}, which T{a} appended"),
            Why::Rw {
                key,
                last_read: Some(last),
                next,
            } => write!(
                f,
                "T{a} read key {key} ending at {last}, and T{b} appended {next}, the value after it"
            ),
            Why::Rw {
                key,
                last_read: None,
                next,
            } => {
                write!(
                    f,
                    "T{a} read key {key} as empty, and T{b} appended {next}, its first value"
                )
            }
            Why::Rt {
                completed,
                invoked,
                process,
            } => write!(
                f,
                "T{a} completed at {}, before T{b} was invoked at {} (by process {process})",
                Seconds(completed),
                Seconds(invoked)
            ),
        }
    }
}

/// The kind of a dependency cycle, named as Adya's phenomena (as Elle names them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CycleKind {
    /// Write cycle: `ww` edges only.
    G0,
    /// Circular information flow: `ww` and `wr` edges, at least one `wr`.
    G1c,
    /// Exactly one anti-dependency (`rw`), e.g. read skew or a lost update.
    GSingle,
    /// Two or more anti-dependencies, e.g. write skew.
    G2,
    /// [`CycleKind::G0`] that needs real-time (`rt`) edges.
    G0Realtime,
    /// [`CycleKind::G1c`] that needs real-time (`rt`) edges.
    G1cRealtime,
    /// [`CycleKind::GSingle`] that needs real-time (`rt`) edges, e.g. a stale read.
    GSingleRealtime,
    /// [`CycleKind::G2`] that needs real-time (`rt`) edges.
    G2Realtime,
}

impl CycleKind {
    /// Classifies a cycle by the kinds of its steps.
    pub fn of(kinds: impl IntoIterator<Item = EdgeKind>) -> CycleKind {
        let (mut rw, mut wr, mut rt) = (0, false, false);
        for kind in kinds {
            match kind {
                EdgeKind::Ww => {}
                EdgeKind::Wr => wr = true,
                EdgeKind::Rw => rw += 1,
                EdgeKind::Rt => rt = true,
            }
        }
        match (rw, wr, rt) {
            (0, false, false) => CycleKind::G0,
            (0, true, false) => CycleKind::G1c,
            (1, _, false) => CycleKind::GSingle,
            (_, _, false) => CycleKind::G2,
            (0, false, true) => CycleKind::G0Realtime,
            (0, true, true) => CycleKind::G1cRealtime,
            (1, _, true) => CycleKind::GSingleRealtime,
            (_, _, true) => CycleKind::G2Realtime,
        }
    }

    /// Its name: `G0`, `G1c`, `G-single`, `G2`, or one of them with `-realtime`.
    pub fn name(self) -> &'static str {
        match self {
            CycleKind::G0 => "G0",
            CycleKind::G1c => "G1c",
            CycleKind::GSingle => "G-single",
            CycleKind::G2 => "G2",
            CycleKind::G0Realtime => "G0-realtime",
            CycleKind::G1cRealtime => "G1c-realtime",
            CycleKind::GSingleRealtime => "G-single-realtime",
            CycleKind::G2Realtime => "G2-realtime",
        }
    }

    /// Whether the cycle needs real-time edges (so it violates strict serializability, while a
    /// serial order that ignores real time might still exist).
    pub fn is_realtime(self) -> bool {
        self >= CycleKind::G0Realtime
    }

    /// What the cycle is and which guarantee it breaks.
    fn meaning(self) -> &'static str {
        match self {
            CycleKind::G0 => "write cycle; even read uncommitted forbids it",
            CycleKind::G1c => "circular information flow; read committed forbids it",
            CycleKind::GSingle => "one anti-dependency; snapshot isolation and serializability forbid it",
            CycleKind::G2 => "anti-dependency cycle; serializability forbids it",
            _ => "needs real-time order; strict serializability forbids it",
        }
    }
}

impl fmt::Display for CycleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a transaction's own earlier ops say a read of a key must show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expectation {
    /// Exactly this list: its earlier read of the key plus its appends since.
    Exactly(Vec<u64>),
    /// A list ending in these values: its appends to the key, with no read before them.
    EndingWith(Vec<u64>),
    /// A list without this value, which the transaction appends only later.
    Excluding(u64),
}

impl Expectation {
    fn admits(&self, list: &[u64]) -> bool {
        match self {
            Expectation::Exactly(expected) => list == expected.as_slice(),
            Expectation::EndingWith(suffix) => list.ends_with(suffix),
            Expectation::Excluding(value) => !list.contains(value),
        }
    }

    fn push(&mut self, value: u64) {
        match self {
            Expectation::Exactly(list) | Expectation::EndingWith(list) => list.push(value),
            Expectation::Excluding(_) => unreachable!("an exclusion is never a key's running state"),
        }
    }
}

impl fmt::Display for Expectation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expectation::Exactly(list) => write!(f, "exactly {}", List(list)),
            Expectation::EndingWith(list) => write!(f, "a list ending in its own appends {}", List(list)),
            Expectation::Excluding(value) => write!(f, "a list without {value}, which it appends only later"),
        }
    }
}

/// A read of a key by a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    /// The reader's id.
    pub txn: u64,
    /// The list it saw.
    pub list: Vec<u64>,
}

/// Something no strictly serializable execution of the history could show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Anomaly {
    /// The history itself is inconsistent (the harness's fault, not the system's): a repeated
    /// id, an `Ok` transaction without a valid completion time, or reads that do not answer its
    /// read ops. Its reads are not used.
    Malformed {
        /// The transaction's id.
        txn: u64,
        /// What is wrong.
        reason: String,
    },
    /// A value appended to one key more than once (by `appended_by`), or seen twice in one read.
    DuplicateAppend {
        /// The key.
        key: u64,
        /// The value.
        value: u64,
        /// The transactions that appended it, once per append.
        appended_by: Vec<u64>,
        /// The transaction whose read showed it twice, if that is how it was found.
        read_twice_by: Option<u64>,
    },
    /// Two reads of a key of which neither is a prefix of the other: the appends took effect
    /// in different orders. The key gives no `ww` or `rw` edges.
    IncompatibleOrder {
        /// The key.
        key: u64,
        /// Its longest read.
        longest: Observation,
        /// A read that is not a prefix of it.
        other: Observation,
    },
    /// G1a: a read saw the append of a transaction that failed.
    AbortedRead {
        /// The reader's id.
        reader: u64,
        /// The failed writer's id.
        writer: u64,
        /// The key.
        key: u64,
        /// The value.
        value: u64,
    },
    /// G1b: a read ended at a value its writer followed with another append to the same key:
    /// it saw the writer's intermediate state.
    IntermediateRead {
        /// The reader's id.
        reader: u64,
        /// The writer's id.
        writer: u64,
        /// The key.
        key: u64,
        /// The last value the reader saw.
        value: u64,
        /// The writer's next append to the key.
        later: u64,
    },
    /// A read saw a value that no transaction appended.
    GarbageRead {
        /// The reader's id.
        reader: u64,
        /// The key.
        key: u64,
        /// The value.
        value: u64,
    },
    /// A read that contradicts its own transaction's earlier reads and appends of the key.
    InternalInconsistency {
        /// The transaction's id.
        txn: u64,
        /// The key.
        key: u64,
        /// What its earlier ops imply.
        expected: Expectation,
        /// What it read.
        read: Vec<u64>,
    },
    /// A dependency cycle: no serial order (respecting real time, for the `-realtime` kinds)
    /// explains it.
    Cycle {
        /// Its classification.
        kind: CycleKind,
        /// Its edges in order; the last one leads back to the first's source.
        steps: Vec<Step>,
    },
}

impl Anomaly {
    /// Its kind's name, as [`Report::anomaly_counts`] counts it: `malformed`,
    /// `duplicate-append`, `incompatible-order`, `G1a`, `G1b`, `garbage-read`, `internal`, or a
    /// [`CycleKind::name`].
    pub fn name(&self) -> &'static str {
        match self {
            Anomaly::Malformed { .. } => "malformed",
            Anomaly::DuplicateAppend { .. } => "duplicate-append",
            Anomaly::IncompatibleOrder { .. } => "incompatible-order",
            Anomaly::AbortedRead { .. } => "G1a",
            Anomaly::IntermediateRead { .. } => "G1b",
            Anomaly::GarbageRead { .. } => "garbage-read",
            Anomaly::InternalInconsistency { .. } => "internal",
            Anomaly::Cycle { kind, .. } => kind.name(),
        }
    }
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Anomaly::Malformed { txn, reason } => write!(f, "malformed transaction T{txn}: {reason}"),
            Anomaly::DuplicateAppend {
                key,
                value,
                appended_by,
                read_twice_by,
            } => {
                match read_twice_by {
                    Some(reader) => write!(f, "duplicate append: T{reader} read {value} twice in key {key}")?,
                    None => write!(f, "duplicate append: {value} was appended to key {key} more than once")?,
                }
                write!(f, " (appended by {}; values must be unique per key)", Ids(appended_by))
            }
            Anomaly::IncompatibleOrder { key, longest, other } => {
                let (a, b) = (&longest.list, &other.list);
                write!(f, "incompatible order of key {key}: ")?;
                match a.iter().zip(b).position(|(x, y)| x != y) {
                    // Where they part is what a reader needs; the lists may be long.
                    Some(at) => write!(
                        f,
                        "T{} read {} and T{} read {}; at index {at} one saw {} and the other {}, so neither \
                         is a prefix of the other",
                        longest.txn,
                        List(&a[..=at]),
                        other.txn,
                        List(&b[..=at]),
                        a[at],
                        b[at]
                    ),
                    None => write!(
                        f,
                        "T{} read {} and T{} read {}",
                        longest.txn,
                        List(a),
                        other.txn,
                        List(b)
                    ),
                }
            }
            Anomaly::AbortedRead {
                reader,
                writer,
                key,
                value,
            } => write!(
                f,
                "G1a (aborted read): T{reader} read {value} in key {key}, appended by T{writer}, which failed"
            ),
            Anomaly::IntermediateRead {
                reader,
                writer,
                key,
                value,
                later,
            } => write!(
                f,
                "G1b (intermediate read): T{reader} read key {key} ending at {value}, but T{writer} appended \
                 {later} right after {value} in the same transaction"
            ),
            Anomaly::GarbageRead { reader, key, value } => write!(
                f,
                "garbage read: T{reader} read {value} in key {key}, which no transaction appended"
            ),
            Anomaly::InternalInconsistency {
                txn,
                key,
                expected,
                read,
            } => write!(
                f,
                "internal inconsistency: T{txn} read key {key} as {}, but its own earlier ops imply {expected}",
                List(read)
            ),
            Anomaly::Cycle { kind, steps } => {
                write!(
                    f,
                    "{kind} ({}): a cycle of {} transactions",
                    kind.meaning(),
                    steps.len()
                )?;
                for step in steps {
                    write!(f, "\n    {step}")?;
                }
                Ok(())
            }
        }
    }
}

/// Edges of the dependency graph, counted by kind (each ordered pair of transactions once per
/// kind; `rt` edges are a transitive reduction of real-time order, not every pair).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EdgeCounts {
    /// Write-write edges.
    pub ww: usize,
    /// Write-read edges.
    pub wr: usize,
    /// Read-write (anti-dependency) edges.
    pub rw: usize,
    /// Real-time edges.
    pub rt: usize,
}

/// The verdict on a history: what it held and every anomaly found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Transactions in the history.
    pub transactions: usize,
    /// Of them, [`Status::Ok`].
    pub ok: usize,
    /// Of them, [`Status::Failed`].
    pub failed: usize,
    /// Of them, [`Status::Info`].
    pub info: usize,
    /// Of the `Info` ones, those a read showed to have taken effect (so committed).
    pub info_committed: usize,
    /// Distinct keys any op named.
    pub keys: usize,
    /// The dependency graph's edges.
    pub edges: EdgeCounts,
    /// Anomalies found, by [`Anomaly::name`], including those beyond the listed ones.
    pub anomaly_counts: BTreeMap<&'static str, usize>,
    /// The anomalies, at most [`ANOMALIES_PER_KIND_MAX`] of each kind, in a deterministic order.
    pub anomalies: Vec<Anomaly>,
}

impl Report {
    /// Whether no anomaly was found: the history is consistent with strict serializability (as
    /// far as reads of append-only lists can tell).
    pub fn is_valid(&self) -> bool {
        self.anomaly_counts.is_empty()
    }

    /// How many anomalies named `name` (an [`Anomaly::name`]) were found.
    pub fn count(&self, name: &str) -> usize {
        self.anomaly_counts.get(name).copied().unwrap_or(0)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} transactions ({} ok, {} failed, {} info of which {} seen committed) over {} keys; \
             edges: ww {}, wr {}, rw {}, rt {}",
            self.transactions,
            self.ok,
            self.failed,
            self.info,
            self.info_committed,
            self.keys,
            self.edges.ww,
            self.edges.wr,
            self.edges.rw,
            self.edges.rt
        )?;
        if self.is_valid() {
            return write!(f, "\nvalid");
        }
        let counts: Vec<String> = self.anomaly_counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
        write!(f, "\ninvalid: {}", counts.join(", "))?;
        if self.anomaly_counts.values().any(|&n| n > ANOMALIES_PER_KIND_MAX) {
            write!(f, " (the first {ANOMALIES_PER_KIND_MAX} of each kind listed)")?;
        }
        for anomaly in &self.anomalies {
            write!(f, "\n  - {anomaly}")?;
        }
        Ok(())
    }
}

/// Transaction ids as evidence prints them: `T1, T2`.
struct Ids<'a>(&'a [u64]);

impl fmt::Display for Ids<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<String> = self.0.iter().map(|id| format!("T{id}")).collect();
        f.write_str(&ids.join(", "))
    }
}

/// A list as evidence prints it: its last [`LIST_SHOWN_MAX`] values, earlier ones counted.
struct List<'a>(&'a [u64]);

impl fmt::Display for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = self.0.len().saturating_sub(LIST_SHOWN_MAX);
        let shown: Vec<String> = self.0[hidden..].iter().map(u64::to_string).collect();
        match hidden {
            0 => write!(f, "[{}]", shown.join(", ")),
            _ => write!(f, "[({hidden} earlier), {}]", shown.join(", ")),
        }
    }
}

/// Checks a history: every anomaly it shows, and what it held. Pure and deterministic: the same
/// history always gives the same report.
pub fn check(history: &[Txn]) -> Report {
    let mut found = Found::default();
    let usable = validate(history, &mut found);
    let writes = Writes::index(history);
    writes.report_duplicates(history, &mut found);
    let committed = observe(history, &usable, &writes, &mut found);
    check_internal(history, &usable, &mut found);
    let orders = version_orders(history, &usable, &mut found);
    let cx = Context {
        history,
        usable,
        committed,
        writes,
    };
    let edges = Edges::infer(&cx, &orders);
    find_cycles(history, &edges, &mut found);
    let count = |status| history.iter().filter(|t| t.status == status).count();
    let info_committed = (0..history.len())
        .filter(|&i| history[i].status == Status::Info && cx.committed[i])
        .count();
    let keys: BTreeSet<u64> = history
        .iter()
        .flat_map(|t| &t.ops)
        .map(|op| match *op {
            Op::Append { key, .. } | Op::Read { key } => key,
        })
        .collect();
    Report {
        transactions: history.len(),
        ok: count(Status::Ok),
        failed: count(Status::Failed),
        info: count(Status::Info),
        info_committed,
        keys: keys.len(),
        edges: edges.counts(),
        anomaly_counts: found.counts,
        anomalies: found.listed,
    }
}

/// Anomalies as they are found: counted, listed up to the limit, some reported once per
/// (kind, key, value) however many reads show them.
#[derive(Default)]
struct Found {
    listed: Vec<Anomaly>,
    counts: BTreeMap<&'static str, usize>,
    reported: BTreeSet<(&'static str, u64, u64)>,
}

impl Found {
    fn push(&mut self, anomaly: Anomaly) {
        let count = self.counts.entry(anomaly.name()).or_default();
        *count += 1;
        if *count <= ANOMALIES_PER_KIND_MAX {
            self.listed.push(anomaly);
        }
    }

    /// Pushes `anomaly` unless one of its kind was already pushed for this key and value.
    fn push_once(&mut self, key: u64, value: u64, anomaly: Anomaly) {
        if self.reported.insert((anomaly.name(), key, value)) {
            self.push(anomaly);
        }
    }
}

/// Reports malformed transactions; returns, by position, whether a transaction's reads can be
/// used (it is `Ok` and well formed). Such a transaction also has a valid completion time.
fn validate(history: &[Txn], found: &mut Found) -> Vec<bool> {
    let mut first_at: BTreeMap<u64, usize> = BTreeMap::new();
    let mut usable = Vec::with_capacity(history.len());
    for (i, txn) in history.iter().enumerate() {
        if let Some(&j) = first_at.get(&txn.id) {
            let reason = format!("its id is also that of the transaction at position {j} of the history");
            found.push(Anomaly::Malformed { txn: txn.id, reason });
        } else {
            first_at.insert(txn.id, i);
        }
        let reason = malformation(txn);
        usable.push(txn.status == Status::Ok && reason.is_none());
        if let Some(reason) = reason {
            found.push(Anomaly::Malformed { txn: txn.id, reason });
        }
    }
    usable
}

/// What is wrong with an `Ok` transaction's record, if anything.
fn malformation(txn: &Txn) -> Option<String> {
    if txn.status != Status::Ok {
        return None;
    }
    match txn.complete {
        None => return Some("it is ok but has no completion time".into()),
        Some(complete) if complete < txn.invoke => {
            return Some(format!(
                "it completed at {}, before it was invoked at {}",
                Seconds(complete),
                Seconds(txn.invoke)
            ))
        }
        Some(_) => {}
    }
    let read_keys: Vec<u64> = txn
        .ops
        .iter()
        .filter_map(|op| match *op {
            Op::Read { key } => Some(key),
            Op::Append { .. } => None,
        })
        .collect();
    if read_keys.len() != txn.reads.len() {
        return Some(format!(
            "it has {} read ops but {} read results",
            read_keys.len(),
            txn.reads.len()
        ));
    }
    let (i, (key, (result_key, _))) = read_keys
        .iter()
        .zip(&txn.reads)
        .enumerate()
        .find(|(_, (key, (result_key, _)))| key != &result_key)?;
    Some(format!(
        "read result {i} is of key {result_key} but its read op is of key {key}"
    ))
}

/// Who appended each (key, value), by position in the history, once per append.
struct Writes {
    by_value: BTreeMap<(u64, u64), Vec<usize>>,
}

impl Writes {
    fn index(history: &[Txn]) -> Writes {
        let mut by_value: BTreeMap<(u64, u64), Vec<usize>> = BTreeMap::new();
        for (i, txn) in history.iter().enumerate() {
            for op in &txn.ops {
                if let Op::Append { key, value } = *op {
                    by_value.entry((key, value)).or_default().push(i);
                }
            }
        }
        Writes { by_value }
    }

    fn writers(&self, key: u64, value: u64) -> &[usize] {
        self.by_value.get(&(key, value)).map_or(&[], Vec::as_slice)
    }

    fn ids(&self, history: &[Txn], key: u64, value: u64) -> Vec<u64> {
        self.writers(key, value).iter().map(|&i| history[i].id).collect()
    }

    fn report_duplicates(&self, history: &[Txn], found: &mut Found) {
        for (&(key, value), writers) in &self.by_value {
            if writers.len() > 1 {
                let appended_by = writers.iter().map(|&i| history[i].id).collect();
                let anomaly = Anomaly::DuplicateAppend {
                    key,
                    value,
                    appended_by,
                    read_twice_by: None,
                };
                found.push_once(key, value, anomaly);
            }
        }
    }
}

/// The reads of usable transactions: (reader position, key, list), in history and op order.
fn reads<'h>(history: &'h [Txn], usable: &'h [bool]) -> impl Iterator<Item = (usize, u64, &'h [u64])> {
    history
        .iter()
        .enumerate()
        .filter(|&(i, _)| usable[i])
        .flat_map(|(i, txn)| {
            txn.micros().filter_map(move |micro| match micro {
                Micro::Read { key, list } => Some((i, key, list)),
                Micro::Append { .. } => None,
            })
        })
}

/// Judges every value each read saw (duplicated, garbage, aborted, intermediate); returns, by
/// position, which transactions are committed (`Ok`, or `Info` with an append seen).
fn observe(history: &[Txn], usable: &[bool], writes: &Writes, found: &mut Found) -> Vec<bool> {
    let mut committed: Vec<bool> = history.iter().map(|t| t.status == Status::Ok).collect();
    for (r, key, list) in reads(history, usable) {
        let reader = history[r].id;
        if let Some(value) = first_duplicate(list) {
            let appended_by = writes.ids(history, key, value);
            let anomaly = Anomaly::DuplicateAppend {
                key,
                value,
                appended_by,
                read_twice_by: Some(reader),
            };
            found.push_once(key, value, anomaly);
        }
        for &value in list {
            match *writes.writers(key, value) {
                [] => found.push_once(key, value, Anomaly::GarbageRead { reader, key, value }),
                [w] if history[w].status == Status::Failed => {
                    let writer = history[w].id;
                    found.push_once(
                        key,
                        value,
                        Anomaly::AbortedRead {
                            reader,
                            writer,
                            key,
                            value,
                        },
                    );
                }
                [w] => committed[w] = true,
                _ => {} // reported as a duplicate append
            }
        }
        if let Some(&value) = list.last() {
            if let [w] = *writes.writers(key, value) {
                let writer = &history[w];
                if w != r && writer.status != Status::Failed {
                    if let Some(later) = writer.append_after(key, value) {
                        let anomaly = Anomaly::IntermediateRead {
                            reader,
                            writer: writer.id,
                            key,
                            value,
                            later,
                        };
                        found.push_once(key, value, anomaly);
                    }
                }
            }
        }
    }
    committed
}

/// The first value that appears twice in `list`, if any.
fn first_duplicate(list: &[u64]) -> Option<u64> {
    let mut seen = BTreeSet::new();
    list.iter().copied().find(|&v| !seen.insert(v))
}

/// Checks each usable transaction's reads against its own earlier ops (the first
/// contradiction per transaction is reported).
fn check_internal(history: &[Txn], usable: &[bool], found: &mut Found) {
    for (txn, _) in history.iter().zip(usable).filter(|(_, &u)| u) {
        if let Some(anomaly) = internal_inconsistency(txn) {
            found.push(anomaly);
        }
    }
}

fn internal_inconsistency(txn: &Txn) -> Option<Anomaly> {
    let mut state: BTreeMap<u64, Expectation> = BTreeMap::new();
    for (at, micro) in txn.micros().enumerate() {
        match micro {
            Micro::Append { key, value } => match state.get_mut(&key) {
                Some(expected) => expected.push(value),
                None => {
                    state.insert(key, Expectation::EndingWith(vec![value]));
                }
            },
            Micro::Read { key, list } => {
                let later = txn.ops[at + 1..].iter().find_map(|op| match *op {
                    Op::Append { key: k, value } if k == key && list.contains(&value) => Some(value),
                    _ => None,
                });
                let expected = match later {
                    Some(value) => Some(Expectation::Excluding(value)),
                    None => state.get(&key).filter(|e| !e.admits(list)).cloned(),
                };
                if let Some(expected) = expected {
                    return Some(Anomaly::InternalInconsistency {
                        txn: txn.id,
                        key,
                        expected,
                        read: list.to_vec(),
                    });
                }
                state.insert(key, Expectation::Exactly(list.to_vec()));
            }
        }
    }
    None
}

/// The version order of each key whose reads agree: its longest read (the first of the longest,
/// in history order). A key with two reads of which neither is a prefix of the other is reported
/// and left out.
fn version_orders(history: &[Txn], usable: &[bool], found: &mut Found) -> BTreeMap<u64, Vec<u64>> {
    let mut by_key: BTreeMap<u64, Vec<(usize, &[u64])>> = BTreeMap::new();
    for (r, key, list) in reads(history, usable) {
        by_key.entry(key).or_default().push((r, list));
    }
    let mut orders = BTreeMap::new();
    for (key, seen) in by_key {
        let (longest_at, longest) = seen
            .iter()
            .copied()
            .reduce(|best, read| if read.1.len() > best.1.len() { read } else { best })
            .expect("a key in the map was read");
        match seen.iter().find(|(_, list)| !longest.starts_with(list)) {
            Some(&(other_at, other)) => found.push(Anomaly::IncompatibleOrder {
                key,
                longest: Observation {
                    txn: history[longest_at].id,
                    list: longest.to_vec(),
                },
                other: Observation {
                    txn: history[other_at].id,
                    list: other.to_vec(),
                },
            }),
            None => {
                orders.insert(key, longest.to_vec());
            }
        }
    }
    orders
}

/// What edge inference needs to know of the history.
struct Context<'h> {
    history: &'h [Txn],
    usable: Vec<bool>,
    committed: Vec<bool>,
    writes: Writes,
}

impl Context<'_> {
    /// The transaction that appended `value` to `key`, if exactly one did and it committed.
    fn committed_writer(&self, key: u64, value: u64) -> Option<usize> {
        match *self.writes.writers(key, value) {
            [w] if self.committed[w] => Some(w),
            _ => None,
        }
    }
}

/// One edge, between positions in the history.
#[derive(Clone, Debug)]
struct Edge {
    from: usize,
    to: usize,
    why: Why,
}

/// Adjacency: for each node, its successors with the kinds of the edges to them as bits,
/// sorted by successor.
type Adjacency = Vec<Vec<(usize, u8)>>;

/// The dependency graph.
struct Edges {
    /// One edge per (from, to, kind), the first found, sorted that way.
    list: Vec<Edge>,
    adjacency: Adjacency,
}

impl Edges {
    fn infer(cx: &Context, orders: &BTreeMap<u64, Vec<u64>>) -> Edges {
        let mut list = Vec::new();
        write_edges(cx, orders, &mut list);
        read_edges(cx, orders, &mut list);
        realtime_edges(cx, &mut list);
        debug_assert!(list.iter().all(|e| e.from != e.to), "a transaction depends on itself");
        list.sort_by_key(|e| (e.from, e.to, e.why.kind()));
        list.dedup_by_key(|e| (e.from, e.to, e.why.kind()));
        let mut adjacency: Adjacency = vec![Vec::new(); cx.history.len()];
        for edge in &list {
            let out = &mut adjacency[edge.from];
            match out.last_mut() {
                Some((to, kinds)) if *to == edge.to => *kinds |= edge.why.kind().bit(),
                _ => out.push((edge.to, edge.why.kind().bit())),
            }
        }
        Edges { list, adjacency }
    }

    fn why(&self, from: usize, to: usize, kind: EdgeKind) -> &Why {
        let at = self
            .list
            .binary_search_by_key(&(from, to, kind), |e| (e.from, e.to, e.why.kind()))
            .expect("a labelled step is an edge of the graph");
        &self.list[at].why
    }

    fn counts(&self) -> EdgeCounts {
        let mut counts = EdgeCounts::default();
        for edge in &self.list {
            *match edge.why.kind() {
                EdgeKind::Ww => &mut counts.ww,
                EdgeKind::Wr => &mut counts.wr,
                EdgeKind::Rw => &mut counts.rw,
                EdgeKind::Rt => &mut counts.rt,
            } += 1;
        }
        counts
    }
}

/// `ww`: between the writers of consecutive values of each version order.
fn write_edges(cx: &Context, orders: &BTreeMap<u64, Vec<u64>>, out: &mut Vec<Edge>) {
    for (&key, order) in orders {
        for pair in order.windows(2) {
            let (value, next) = (pair[0], pair[1]);
            if let (Some(from), Some(to)) = (cx.committed_writer(key, value), cx.committed_writer(key, next)) {
                if from != to {
                    out.push(Edge {
                        from,
                        to,
                        why: Why::Ww { key, value, next },
                    });
                }
            }
        }
    }
}

/// `wr` and `rw`: from each external read (a transaction's first read of a key, before any
/// append of its own to it).
fn read_edges(cx: &Context, orders: &BTreeMap<u64, Vec<u64>>, out: &mut Vec<Edge>) {
    for (t, txn) in cx.history.iter().enumerate().filter(|&(t, _)| cx.usable[t]) {
        let mut touched = BTreeSet::new();
        for micro in txn.micros() {
            let (key, list) = match micro {
                Micro::Append { key, .. } => {
                    touched.insert(key);
                    continue;
                }
                Micro::Read { key, list } => (key, list),
            };
            if !touched.insert(key) {
                continue;
            }
            let last_read = list.last().copied();
            if let Some(w) = last_read.and_then(|value| cx.committed_writer(key, value)) {
                if w != t {
                    let why = Why::Wr {
                        key,
                        value: last_read.expect("a writer of the last value"),
                    };
                    out.push(Edge { from: w, to: t, why });
                }
            }
            let Some(&next) = orders.get(&key).and_then(|order| order.get(list.len())) else {
                continue;
            };
            if let Some(w) = cx.committed_writer(key, next).filter(|&w| w != t) {
                out.push(Edge {
                    from: t,
                    to: w,
                    why: Why::Rw { key, last_read, next },
                });
            }
        }
    }
}

/// `rt`: a transitive reduction of real-time order. Sweeping invocations and completions in
/// time order, the *frontier* holds the completed transactions that no later-invoked completed
/// transaction follows; each committed transaction gets an edge from every member at its
/// invocation. Members overlap in time, so the frontier is no larger than the concurrency, and
/// every real-time precedence is a path of these edges.
fn realtime_edges(cx: &Context, out: &mut Vec<Edge>) {
    const INVOKE: u8 = 0; // before completions at the same instant: precedence is strict
    const COMPLETE: u8 = 1;
    let history = cx.history;
    let completed = |t: usize| history[t].complete.expect("a usable transaction has completed");
    let mut events = Vec::new();
    for (t, txn) in history.iter().enumerate() {
        if cx.committed[t] {
            events.push((txn.invoke, INVOKE, t));
        }
        if cx.usable[t] {
            events.push((completed(t), COMPLETE, t));
        }
    }
    events.sort_unstable();
    let mut frontier: Vec<usize> = Vec::new();
    for (at, event, t) in events {
        if event == INVOKE {
            for &f in &frontier {
                let why = Why::Rt {
                    completed: completed(f),
                    invoked: at,
                    process: history[t].process,
                };
                out.push(Edge { from: f, to: t, why });
            }
        } else {
            let invoked = history[t].invoke;
            frontier.retain(|&f| completed(f) >= invoked);
            frontier.push(t);
        }
    }
}

/// The searches for a cycle in a component, the most telling first: the edge kinds allowed, and
/// whether exactly one of them is `rw`.
const SEARCHES: [(u8, bool); 8] = [
    (WW, false),
    (WW | WR, false),
    (WW | WR | RW, true),
    (WW | WR | RW, false),
    (WW | RT, false),
    (WW | WR | RT, false),
    (WW | WR | RW | RT, true),
    (WW | WR | RW | RT, false),
];

/// Reports one cycle per strongly connected component of the dependency graph.
fn find_cycles(history: &[Txn], edges: &Edges, found: &mut Found) {
    for component in components(&edges.adjacency, WW | WR | RW | RT) {
        let local = subgraph(&edges.adjacency, &component);
        let cycle = SEARCHES
            .iter()
            .find_map(|&(allowed, one_rw)| match one_rw {
                true => cycle_with_one_rw(&local, allowed),
                false => cycle_within(&local, allowed),
            })
            .expect("a strongly connected component has a cycle");
        // Shown from its smallest transaction id, so the same cycle always reads the same.
        let first = (0..cycle.len())
            .min_by_key(|&i| history[component[cycle[i].0]].id)
            .expect("a cycle has steps");
        let steps: Vec<Step> = cycle[first..]
            .iter()
            .chain(&cycle[..first])
            .copied()
            .map(|(from, to, kind)| {
                let (from, to) = (component[from], component[to]);
                Step {
                    from: history[from].id,
                    to: history[to].id,
                    why: edges.why(from, to, kind).clone(),
                }
            })
            .collect();
        found.push(Anomaly::Cycle {
            kind: CycleKind::of(steps.iter().map(Step::kind)),
            steps,
        });
    }
}

/// The graph induced on `nodes` (sorted), with nodes renumbered by their place in it.
fn subgraph(adjacency: &Adjacency, nodes: &[usize]) -> Adjacency {
    nodes
        .iter()
        .map(|&v| {
            adjacency[v]
                .iter()
                .filter_map(|&(w, kinds)| nodes.binary_search(&w).ok().map(|w| (w, kinds)))
                .collect()
        })
        .collect()
}

/// A cycle as labelled steps (from, to, kind), in local node numbers.
type Cycle = Vec<(usize, usize, EdgeKind)>;

/// A shortest cycle (over up to [`CYCLE_SEARCH_STARTS_MAX`] starts) using only `allowed` edges,
/// if there is one.
fn cycle_within(adjacency: &Adjacency, allowed: u8) -> Option<Cycle> {
    let component = components(adjacency, allowed).into_iter().next()?;
    let mut inside = vec![false; adjacency.len()];
    for &v in &component {
        inside[v] = true;
    }
    let nodes = component
        .iter()
        .take(CYCLE_SEARCH_STARTS_MAX)
        .filter_map(|&start| shortest_path(adjacency, start, start, allowed, &inside))
        .min_by_key(Vec::len)?;
    Some(label(adjacency, &nodes, |_| allowed))
}

/// A shortest cycle (over up to [`CYCLE_SEARCH_STARTS_MAX`] `rw` edges) made of one `rw` edge
/// and a path of the other `allowed` kinds back, if there is one.
fn cycle_with_one_rw(adjacency: &Adjacency, allowed: u8) -> Option<Cycle> {
    let rest = allowed & !RW;
    let everywhere = vec![true; adjacency.len()];
    let rw_edges = adjacency.iter().enumerate().flat_map(|(a, out)| {
        out.iter()
            .filter(|(_, kinds)| kinds & RW != 0)
            .map(move |&(b, _)| (a, b))
    });
    let nodes = rw_edges
        .take(CYCLE_SEARCH_STARTS_MAX)
        .filter_map(|(a, b)| {
            let back = shortest_path(adjacency, b, a, rest, &everywhere)?;
            Some(std::iter::once(a).chain(back).collect::<Vec<_>>())
        })
        .min_by_key(Vec::len)?;
    Some(label(adjacency, &nodes, |i| if i == 0 { RW } else { rest }))
}

/// Labels the cycle through `nodes` (closing back to the first): each step gets the first kind,
/// in [`EdgeKind::ALL`] order, of its edge that `allowed(step index)` admits.
fn label(adjacency: &Adjacency, nodes: &[usize], allowed: impl Fn(usize) -> u8) -> Cycle {
    (0..nodes.len())
        .map(|i| {
            let (from, to) = (nodes[i], nodes[(i + 1) % nodes.len()]);
            let out = &adjacency[from];
            let kinds = out[out.binary_search_by_key(&to, |&(w, _)| w).expect("a step is an edge")].1;
            let kind = EdgeKind::ALL
                .into_iter()
                .find(|k| kinds & allowed(i) & k.bit() != 0)
                .expect("a step has an allowed kind");
            (from, to, kind)
        })
        .collect()
}

/// Breadth-first search from `from` along `allowed` edges through nodes `inside` admits, until
/// an edge reaches `to` (which may be `from`, for a cycle). Returns the nodes from `from` to the
/// last one before `to`: a shortest such path.
fn shortest_path(adjacency: &Adjacency, from: usize, to: usize, allowed: u8, inside: &[bool]) -> Option<Vec<usize>> {
    const UNSEEN: usize = usize::MAX;
    let mut parent = vec![UNSEEN; adjacency.len()];
    parent[from] = from;
    let mut queue = VecDeque::from([from]);
    while let Some(v) = queue.pop_front() {
        for &(w, kinds) in &adjacency[v] {
            if kinds & allowed == 0 || !inside[w] {
                continue;
            }
            if w == to {
                let mut path = vec![v];
                while *path.last().expect("a path has a node") != from {
                    let at = *path.last().expect("a path has a node");
                    path.push(parent[at]);
                }
                path.reverse();
                return Some(path);
            }
            if parent[w] == UNSEEN {
                parent[w] = v;
                queue.push_back(w);
            }
        }
    }
    None
}

/// The strongly connected components of more than one node, using only `allowed` edges: each
/// sorted, ordered by their smallest node. Tarjan's algorithm with an explicit stack, so a long
/// chain of transactions cannot overflow the thread's stack.
fn components(adjacency: &Adjacency, allowed: u8) -> Vec<Vec<usize>> {
    let mut tarjan = Tarjan {
        adjacency,
        allowed,
        index: vec![usize::MAX; adjacency.len()],
        low: vec![0; adjacency.len()],
        on_stack: vec![false; adjacency.len()],
        stack: Vec::new(),
        calls: Vec::new(),
        next_index: 0,
        components: Vec::new(),
    };
    for root in 0..adjacency.len() {
        if tarjan.index[root] == usize::MAX {
            tarjan.run(root);
        }
    }
    let mut components = tarjan.components;
    components.sort_unstable_by_key(|c| c[0]);
    components
}

/// Tarjan's state.
struct Tarjan<'a> {
    adjacency: &'a Adjacency,
    allowed: u8,
    /// Discovery order (`usize::MAX`: not yet seen).
    index: Vec<usize>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<usize>,
    /// The explicit call stack: a node and the next of its edges to follow.
    calls: Vec<(usize, usize)>,
    next_index: usize,
    components: Vec<Vec<usize>>,
}

impl Tarjan<'_> {
    fn enter(&mut self, v: usize) {
        self.index[v] = self.next_index;
        self.low[v] = self.next_index;
        self.next_index += 1;
        self.stack.push(v);
        self.on_stack[v] = true;
        self.calls.push((v, 0));
    }

    fn run(&mut self, root: usize) {
        self.enter(root);
        while let Some(&(v, next)) = self.calls.last() {
            if let Some(&(w, kinds)) = self.adjacency[v].get(next) {
                self.calls.last_mut().expect("a call is running").1 += 1;
                if kinds & self.allowed == 0 {
                    continue;
                }
                if self.index[w] == usize::MAX {
                    self.enter(w);
                } else if self.on_stack[w] {
                    self.low[v] = self.low[v].min(self.index[w]);
                }
                continue;
            }
            self.calls.pop();
            if let Some(&(parent, _)) = self.calls.last() {
                self.low[parent] = self.low[parent].min(self.low[v]);
            }
            if self.low[v] == self.index[v] {
                self.pop_component(v);
            }
        }
    }

    fn pop_component(&mut self, root: usize) {
        let mut component = Vec::new();
        loop {
            let w = self.stack.pop().expect("the root is on the stack");
            self.on_stack[w] = false;
            component.push(w);
            if w == root {
                break;
            }
        }
        if component.len() > 1 {
            component.sort_unstable();
            self.components.push(component);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A micro-op with its result, for writing histories by hand.
    #[derive(Clone, Copy)]
    enum M {
        /// Append (key, value).
        A(u64, u64),
        /// Read (key) and the list seen.
        R(u64, &'static [u64]),
    }
    use M::{A, R};

    fn txn(id: u64, invoke_ms: u64, complete_ms: Option<u64>, status: Status, micros: &[M]) -> Txn {
        let ops = micros
            .iter()
            .map(|m| match *m {
                A(key, value) => Op::Append { key, value },
                R(key, _) => Op::Read { key },
            })
            .collect();
        let reads = micros
            .iter()
            .filter_map(|m| match *m {
                R(key, list) if status == Status::Ok => Some((key, list.to_vec())),
                _ => None,
            })
            .collect();
        Txn {
            id,
            process: id,
            invoke: Duration::from_millis(invoke_ms),
            complete: complete_ms.map(Duration::from_millis),
            ops,
            reads,
            status,
        }
    }

    fn ok(id: u64, (invoke_ms, complete_ms): (u64, u64), micros: &[M]) -> Txn {
        txn(id, invoke_ms, Some(complete_ms), Status::Ok, micros)
    }

    fn failed(id: u64, invoke_ms: u64, micros: &[M]) -> Txn {
        txn(id, invoke_ms, Some(invoke_ms + 1), Status::Failed, micros)
    }

    fn info(id: u64, invoke_ms: u64, micros: &[M]) -> Txn {
        txn(id, invoke_ms, None, Status::Info, micros)
    }

    /// The report's only anomaly, which must be of kind `name`.
    fn only<'r>(report: &'r Report, name: &str) -> &'r Anomaly {
        assert_eq!(report.anomaly_counts.len(), 1, "{report}");
        assert_eq!(report.count(name), 1, "{report}");
        &report.anomalies[0]
    }

    /// The cycle of the report's only anomaly, as (from, kind, to).
    fn only_cycle(report: &Report, kind: CycleKind) -> Vec<(u64, EdgeKind, u64)> {
        match only(report, kind.name()) {
            Anomaly::Cycle { steps, .. } => steps.iter().map(|s| (s.from, s.kind(), s.to)).collect(),
            other => panic!("not a cycle: {other}"),
        }
    }

    const CONCURRENT: (u64, u64) = (0, 100);
    const LATER: (u64, u64) = (200, 300);

    #[test]
    fn a_serial_history_is_valid_and_its_edges_are_counted() {
        let history = [
            ok(1, (0, 10), &[A(1, 1), A(2, 1)]),
            ok(2, (20, 30), &[R(1, &[1]), A(1, 2), R(1, &[1, 2])]),
            ok(3, (40, 50), &[R(1, &[1, 2]), R(2, &[1])]),
        ];
        let report = check(&history);
        assert!(report.is_valid(), "{report}");
        assert!(report.to_string().ends_with("\nvalid"), "{report}");
        assert_eq!((report.transactions, report.ok, report.keys), (3, 3, 2));
        // rt: T1 -> T2 -> T3, and not the implied T1 -> T3.
        assert_eq!(
            report.edges,
            EdgeCounts {
                ww: 1,
                wr: 3,
                rw: 0,
                rt: 2
            }
        );
    }

    #[test]
    fn concurrent_transactions_may_take_effect_in_any_order_real_time_allows() {
        // T1 was invoked first but took effect after T3; T2 read before T3's append.
        let history = [
            ok(1, (0, 100), &[A(1, 1)]),
            ok(2, (5, 20), &[R(1, &[])]),
            ok(3, (10, 30), &[A(1, 2)]),
            ok(4, (40, 110), &[R(1, &[2, 1])]),
        ];
        let report = check(&history);
        assert!(report.is_valid(), "{report}");
        assert_eq!(
            report.edges,
            EdgeCounts {
                ww: 1,
                wr: 1,
                rw: 1,
                rt: 2
            }
        );
    }

    #[test]
    fn a_stale_read_after_an_acknowledged_append_is_a_realtime_cycle() {
        let stale = [
            ok(1, (0, 10), &[A(7, 1)]),
            ok(2, (20, 30), &[R(7, &[])]),
            ok(3, (40, 50), &[R(7, &[1])]),
        ];
        let report = check(&stale);
        let cycle = only_cycle(&report, CycleKind::GSingleRealtime);
        assert_eq!(cycle, [(1, EdgeKind::Rt, 2), (2, EdgeKind::Rw, 1)]);
        let text = report.to_string();
        assert!(
            text.contains("T1 -rt-> T2: T1 completed at 0.010s, before T2 was invoked at 0.020s"),
            "{text}"
        );
        assert!(
            text.contains("T2 -rw-> T1: T2 read key 7 as empty, and T1 appended 1, its first value"),
            "{text}"
        );

        // The same read while the append was in flight is fine, even one invoked at the very
        // instant the append completed: real-time order is strict.
        let mut overlapping = stale.clone();
        overlapping[1].invoke = Duration::from_millis(10);
        assert!(check(&overlapping).is_valid());
    }

    #[test]
    fn a_lost_update_is_g_single() {
        let history = [
            ok(1, CONCURRENT, &[R(1, &[]), A(1, 1)]),
            ok(2, CONCURRENT, &[R(1, &[]), A(1, 2)]),
            ok(3, LATER, &[R(1, &[1, 2])]),
        ];
        let cycle = only_cycle(&check(&history), CycleKind::GSingle);
        assert_eq!(cycle, [(1, EdgeKind::Ww, 2), (2, EdgeKind::Rw, 1)]);
    }

    #[test]
    fn a_fractured_read_is_g_single() {
        // T2 sees T1's append to key 2 but not its append to key 1.
        let history = [
            ok(1, CONCURRENT, &[A(1, 1), A(2, 1)]),
            ok(2, CONCURRENT, &[R(1, &[]), R(2, &[1])]),
            ok(3, LATER, &[R(1, &[1]), R(2, &[1])]),
        ];
        let cycle = only_cycle(&check(&history), CycleKind::GSingle);
        assert_eq!(cycle, [(1, EdgeKind::Wr, 2), (2, EdgeKind::Rw, 1)]);
    }

    #[test]
    fn write_skew_is_g2() {
        let history = [
            ok(1, CONCURRENT, &[R(1, &[]), R(2, &[]), A(1, 1)]),
            ok(2, CONCURRENT, &[R(1, &[]), R(2, &[]), A(2, 1)]),
            ok(3, LATER, &[R(1, &[1]), R(2, &[1])]),
        ];
        let cycle = only_cycle(&check(&history), CycleKind::G2);
        assert_eq!(cycle, [(1, EdgeKind::Rw, 2), (2, EdgeKind::Rw, 1)]);
    }

    #[test]
    fn circular_information_flow_is_g1c() {
        // Each read the other's append.
        let history = [
            ok(1, CONCURRENT, &[A(1, 1), R(2, &[1])]),
            ok(2, CONCURRENT, &[A(2, 1), R(1, &[1])]),
        ];
        let cycle = only_cycle(&check(&history), CycleKind::G1c);
        assert_eq!(cycle, [(1, EdgeKind::Wr, 2), (2, EdgeKind::Wr, 1)]);
    }

    #[test]
    fn appends_interleaved_in_opposite_orders_are_g0() {
        let history = [
            ok(1, CONCURRENT, &[A(1, 1), A(2, 1)]),
            ok(2, CONCURRENT, &[A(1, 2), A(2, 2)]),
            ok(3, LATER, &[R(1, &[1, 2]), R(2, &[2, 1])]),
        ];
        let cycle = only_cycle(&check(&history), CycleKind::G0);
        assert_eq!(cycle, [(1, EdgeKind::Ww, 2), (2, EdgeKind::Ww, 1)]);
    }

    #[test]
    fn reading_a_failed_append_is_g1a() {
        let history = [failed(1, 0, &[A(1, 1)]), ok(2, LATER, &[R(1, &[1])])];
        let report = check(&history);
        let expected = Anomaly::AbortedRead {
            reader: 2,
            writer: 1,
            key: 1,
            value: 1,
        };
        assert_eq!(only(&report, "G1a"), &expected);
        assert_eq!(report.edges, EdgeCounts::default(), "a failed transaction has edges");
    }

    #[test]
    fn reading_a_value_nobody_appended_is_a_garbage_read() {
        let report = check(&[ok(1, LATER, &[R(1, &[9])])]);
        assert_eq!(
            only(&report, "garbage-read"),
            &Anomaly::GarbageRead {
                reader: 1,
                key: 1,
                value: 9
            }
        );
    }

    #[test]
    fn reads_that_disagree_on_order_are_incompatible() {
        let history = [
            ok(1, CONCURRENT, &[A(1, 1)]),
            ok(2, CONCURRENT, &[A(1, 2)]),
            ok(3, LATER, &[R(1, &[1, 2])]),
            ok(4, LATER, &[R(1, &[2])]),
        ];
        let report = check(&history);
        let expected = Anomaly::IncompatibleOrder {
            key: 1,
            longest: Observation {
                txn: 3,
                list: vec![1, 2],
            },
            other: Observation { txn: 4, list: vec![2] },
        };
        assert_eq!(only(&report, "incompatible-order"), &expected);
        assert!(
            report.to_string().contains("at index 0 one saw 1 and the other 2"),
            "{report}"
        );
    }

    #[test]
    fn a_value_appended_twice_or_read_twice_is_a_duplicate_append() {
        let twice_appended = [
            ok(1, CONCURRENT, &[A(1, 5)]),
            ok(2, CONCURRENT, &[A(1, 5)]),
            ok(3, LATER, &[R(1, &[5, 5])]),
        ];
        let report = check(&twice_appended);
        let expected = Anomaly::DuplicateAppend {
            key: 1,
            value: 5,
            appended_by: vec![1, 2],
            read_twice_by: None,
        };
        assert_eq!(
            only(&report, "duplicate-append"),
            &expected,
            "reported once per key and value"
        );

        let twice_read = [ok(1, CONCURRENT, &[A(1, 5)]), ok(2, LATER, &[R(1, &[5, 5])])];
        let report = check(&twice_read);
        let expected = Anomaly::DuplicateAppend {
            key: 1,
            value: 5,
            appended_by: vec![1],
            read_twice_by: Some(2),
        };
        assert_eq!(only(&report, "duplicate-append"), &expected);
    }

    #[test]
    fn a_read_that_ignores_its_own_transaction_is_an_internal_inconsistency() {
        let history = [
            ok(1, CONCURRENT, &[A(1, 1), R(1, &[])]),
            ok(2, CONCURRENT, &[R(5, &[]), R(5, &[8])]),
            ok(3, CONCURRENT, &[A(5, 8)]),
            ok(4, CONCURRENT, &[R(6, &[4]), A(6, 4)]),
        ];
        let report = check(&history);
        assert_eq!(report.anomaly_counts.len(), 1, "{report}");
        let expected: Vec<_> = report
            .anomalies
            .iter()
            .map(|a| match a {
                Anomaly::InternalInconsistency { txn, expected, .. } => (*txn, expected.clone()),
                other => panic!("{other}"),
            })
            .collect();
        assert_eq!(
            expected,
            [
                (1, Expectation::EndingWith(vec![1])),
                (2, Expectation::Exactly(vec![])),
                (4, Expectation::Excluding(4)),
            ]
        );
    }

    #[test]
    fn a_read_ending_inside_another_transaction_s_appends_is_g1b() {
        let history = [
            ok(1, CONCURRENT, &[A(1, 1), A(1, 2)]),
            ok(2, CONCURRENT, &[R(1, &[1])]),
            ok(3, LATER, &[R(1, &[1, 2])]),
        ];
        let report = check(&history);
        let expected = Anomaly::IntermediateRead {
            reader: 2,
            writer: 1,
            key: 1,
            value: 1,
            later: 2,
        };
        assert_eq!(report.count("G1b"), 1, "{report}");
        assert!(report.anomalies.contains(&expected), "{report}");
    }

    #[test]
    fn an_info_transaction_whose_append_was_seen_is_committed() {
        let seen = [info(1, 0, &[A(1, 1)]), ok(2, LATER, &[R(1, &[1])])];
        let report = check(&seen);
        assert!(report.is_valid(), "{report}");
        assert_eq!((report.info, report.info_committed, report.edges.wr), (1, 1, 1));

        // So it takes part in cycles: T2 saw half of it.
        let fractured = [
            info(1, 0, &[A(1, 1), A(2, 1)]),
            ok(2, CONCURRENT, &[R(1, &[]), R(2, &[1])]),
            ok(3, LATER, &[R(1, &[1]), R(2, &[1])]),
        ];
        let cycle = only_cycle(&check(&fractured), CycleKind::GSingle);
        assert_eq!(cycle, [(1, EdgeKind::Wr, 2), (2, EdgeKind::Rw, 1)]);
    }

    #[test]
    fn an_info_transaction_nobody_saw_is_no_anomaly() {
        // Invoked before the read, never observed: perhaps it never took effect.
        let history = [info(1, 0, &[A(1, 1)]), ok(2, LATER, &[R(1, &[])])];
        let report = check(&history);
        assert!(report.is_valid(), "{report}");
        assert_eq!((report.info, report.info_committed), (1, 0));
    }

    #[test]
    fn a_record_that_does_not_add_up_is_malformed_and_its_reads_are_not_used() {
        let mut short = ok(1, CONCURRENT, &[R(1, &[9]), R(2, &[])]);
        short.reads.pop();
        let mut unfinished = ok(2, CONCURRENT, &[R(1, &[9])]);
        unfinished.complete = None;
        let duplicate_id = ok(2, LATER, &[A(1, 1)]);
        let report = check(&[short, unfinished, duplicate_id]);
        assert_eq!(report.count("malformed"), 3, "{report}");
        assert_eq!(
            report.anomaly_counts.len(),
            1,
            "the unusable reads of 9 were judged: {report}"
        );
    }

    #[test]
    fn anomalies_beyond_the_limit_are_counted_but_not_listed() {
        let history: Vec<Txn> = (0..100).map(|v| ok(v, LATER, &[R(v, &[])])).collect();
        let history: Vec<Txn> = history
            .into_iter()
            .map(|mut t| {
                t.reads[0].1 = vec![1000 + t.id];
                t
            })
            .collect();
        let report = check(&history);
        assert_eq!(report.count("garbage-read"), 100);
        assert_eq!(report.anomalies.len(), ANOMALIES_PER_KIND_MAX);
        assert!(
            report.to_string().contains("the first 16 of each kind listed"),
            "{report}"
        );
    }

    /// A transaction for the generator to run: its outcome draw (0..=6 ok, 7 failed, 8 info
    /// that took effect, 9 info that did not), its ops as (append?, key), and its times.
    #[derive(Clone, Debug)]
    struct Spec {
        outcome: u8,
        ops: Vec<(bool, u64)>,
        invoke_ms: u64,
        /// When it takes effect: between its invocation and completion.
        point_ms: u64,
        complete_ms: u64,
    }

    /// Runs `specs` one at a time in the order of their points against lists in memory, then a
    /// transaction that reads every key: a strictly serializable history.
    fn run(specs: &[Spec]) -> Vec<Txn> {
        let mut order: Vec<usize> = (0..specs.len()).collect();
        order.sort_by_key(|&i| (specs[i].point_ms, i));
        let mut lists: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        let mut next_value = 0;
        let mut history: Vec<Option<Txn>> = vec![None; specs.len()];
        for i in order {
            let spec = &specs[i];
            let status = match spec.outcome {
                0..=6 => Status::Ok,
                7 => Status::Failed,
                _ => Status::Info,
            };
            let applied = status == Status::Ok || spec.outcome == 8;
            let (mut ops, mut reads) = (Vec::new(), Vec::new());
            for &(append, key) in &spec.ops {
                if append {
                    next_value += 1;
                    ops.push(Op::Append { key, value: next_value });
                    if applied {
                        lists.entry(key).or_default().push(next_value);
                    }
                } else {
                    ops.push(Op::Read { key });
                    if status == Status::Ok {
                        reads.push((key, lists.get(&key).cloned().unwrap_or_default()));
                    }
                }
            }
            let complete = (status == Status::Ok).then(|| Duration::from_millis(spec.complete_ms));
            let (id, invoke) = (i as u64 + 1, Duration::from_millis(spec.invoke_ms));
            history[i] = Some(Txn {
                id,
                process: i as u64,
                invoke,
                complete,
                ops,
                reads,
                status,
            });
        }
        let mut history: Vec<Txn> = history.into_iter().map(|t| t.expect("every spec ran")).collect();
        let end = specs.iter().map(|s| s.complete_ms).max().unwrap_or(0) + 10;
        let keys: Vec<u64> = lists.keys().copied().collect();
        history.push(Txn {
            id: specs.len() as u64 + 1,
            process: u64::MAX,
            invoke: Duration::from_millis(end),
            complete: Some(Duration::from_millis(end + 1)),
            ops: keys.iter().map(|&key| Op::Read { key }).collect(),
            reads: keys.iter().map(|&key| (key, lists[&key].clone())).collect(),
            status: Status::Ok,
        });
        history
    }

    /// A drawn outcome and ops, as [`Spec`] holds them.
    type Drawn = (u8, Vec<(bool, u64)>);

    fn drawn_ops() -> impl Strategy<Value = Drawn> {
        (0u8..10, prop::collection::vec((any::<bool>(), 0u64..4), 1..6))
    }

    /// Transactions one after another: each completes before the next is invoked.
    fn serial_specs() -> impl Strategy<Value = Vec<Spec>> {
        prop::collection::vec(drawn_ops(), 1..30).prop_map(|drawn| {
            let spec = |(i, (outcome, ops)): (usize, Drawn)| {
                let at = 10 * i as u64;
                Spec {
                    outcome,
                    ops,
                    invoke_ms: at,
                    point_ms: at + 2,
                    complete_ms: at + 5,
                }
            };
            drawn.into_iter().enumerate().map(spec).collect()
        })
    }

    /// Transactions that overlap in time, each taking effect somewhere inside its interval.
    fn concurrent_specs() -> impl Strategy<Value = Vec<Spec>> {
        let one = (drawn_ops(), 50u64..1050, 0u64..50, 0u64..50);
        prop::collection::vec(one, 1..30).prop_map(|drawn| {
            let spec = |((outcome, ops), point_ms, before, after): (Drawn, u64, u64, u64)| Spec {
                outcome,
                ops,
                invoke_ms: point_ms - before,
                point_ms,
                complete_ms: point_ms + after,
            };
            drawn.into_iter().map(spec).collect()
        })
    }

    /// External reads (first of their key, before any own append to it) of `Ok` transactions
    /// other than the final one, that end at a value an earlier `Ok` transaction appended: as
    /// (transaction position, read index).
    fn reads_of_acknowledged_appends(history: &[Txn]) -> Vec<(usize, usize)> {
        let writer = |key: u64, value: u64| {
            history
                .iter()
                .position(|t| t.ops.contains(&Op::Append { key, value }))
                .expect("a writer")
        };
        let mut found = Vec::new();
        for (t, txn) in history[..history.len() - 1].iter().enumerate() {
            if txn.status != Status::Ok {
                continue;
            }
            let mut touched = BTreeSet::new();
            let mut read_index = 0;
            for op in &txn.ops {
                let Op::Read { key } = *op else {
                    touched.insert(op_key(op));
                    continue;
                };
                let list = &txn.reads[read_index].1;
                if touched.insert(key) {
                    if let Some(&last) = list.last() {
                        let w = writer(key, last);
                        if w != t && history[w].status == Status::Ok {
                            found.push((t, read_index));
                        }
                    }
                }
                read_index += 1;
            }
        }
        found
    }

    fn op_key(op: &Op) -> u64 {
        match *op {
            Op::Append { key, .. } | Op::Read { key } => key,
        }
    }

    proptest! {
        #[test]
        fn serial_executions_are_valid(specs in serial_specs()) {
            let history = run(&specs);
            let report = check(&history);
            prop_assert!(report.is_valid(), "{}", report);
        }

        #[test]
        fn concurrent_executions_are_valid(specs in concurrent_specs()) {
            let history = run(&specs);
            let report = check(&history);
            prop_assert!(report.is_valid(), "{}", report);
        }

        #[test]
        fn a_read_that_misses_an_acknowledged_append_is_caught(specs in serial_specs(), pick in any::<usize>()) {
            let mut history = run(&specs);
            let candidates = reads_of_acknowledged_appends(&history);
            prop_assume!(!candidates.is_empty());
            let (t, read) = candidates[pick % candidates.len()];
            history[t].reads[read].1.pop();
            let report = check(&history);
            prop_assert!(!report.is_valid(), "dropping the last value of T{}'s read {} went unnoticed", history[t].id, read);
        }
    }

    /// A deterministic stream of numbers (splitmix64), for a large history without a strategy.
    fn splitmix(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    #[test]
    fn a_fifty_thousand_transaction_history_is_checked() {
        const TRANSACTIONS: usize = 50_000;
        let mut state = 14;
        let specs: Vec<Spec> = (0..TRANSACTIONS)
            .map(|i| {
                let mut draw = |n: u64| splitmix(&mut state) % n;
                let ops = (0..1 + draw(3)).map(|_| (draw(2) == 0, draw(2000))).collect();
                let point_ms = 100 + 10 * i as u64;
                Spec {
                    outcome: draw(10) as u8,
                    ops,
                    invoke_ms: point_ms - draw(40),
                    point_ms,
                    complete_ms: point_ms + draw(40),
                }
            })
            .collect();
        let report = check(&run(&specs));
        assert!(report.is_valid(), "{report}");
        assert_eq!(report.transactions, TRANSACTIONS + 1);
        assert!(report.edges.rt >= TRANSACTIONS / 2, "{report}");
    }
}

//! The membership checker: each observer's view of each member, from its `member` and
//! `majority` probes, held against reachability.
//!
//! Every change of reachability (a crash, restart, pause, partition or heal) opens an *episode*;
//! within it, a pair `(observer, member)` that became unreachable must be detected (suspected or
//! declared dead) and a pair that became reachable again must be seen alive again, and each is
//! timed from the pair's own change. A view that contradicts a reachability which has held for
//! `settle` is a false suspicion (or a false death).
//!
//! A pair's recovery is its own business: it is awaited from the pair's heal (or its member's
//! restart or resumption) until the observer sees the member alive, whatever happens meanwhile
//! to other nodes. It counts as unrecovered only when the pair's reachability ends without that
//! (the pair is cut again, its member stops, its observer goes down, or the run ends) after
//! lasting at least `settle`: a shorter reconnection may rightly pass unnoticed, as a shorter
//! outage may pass undetected.
//!
//! Nodes are named by their index in the run (`0..nodes`): a `member` probe's subject is the
//! member's `NodeId`, read as that index, so node `i` must run as `NodeId(i)`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::truth::{Change, Event, Kind};
use super::{percentile, Figures, Observed, Seconds};

/// The figures [`analyse`] produces, with what each means.
pub const METRICS: &[(&str, &str)] = &[
    ("detection_ms_p50", "median time from losing reachability to the observer suspecting the member, over (observer, member) pairs"),
    ("detection_ms_p99", "99th percentile of the same"),
    ("detection_ms_max", "slowest detection; absent if a pair was never detected"),
    ("first_detection_ms_p99", "99th percentile over lost members of the time until the first observer suspects it (SWIM's detection time)"),
    ("first_detection_ms_max", "slowest first detection"),
    ("observer_detection_ms_p99", "99th percentile over (fault, observer) of the time until the observer suspects any member the fault cut off: it knows something happened (the guide's \"detect partition\"); absent if an observer never noticed"),
    ("undetected_pairs", "(observer, member) pairs that lost reachability for at least `settle` and were not suspected within it"),
    ("death_ms_p99", "99th percentile of the time from losing reachability until the observer declares the member dead"),
    ("death_ms_max", "slowest death declaration; absent if a lost member was never declared dead"),
    ("undeclared_pairs", "(observer, member) pairs that lost reachability for at least `settle` and were not declared dead within it"),
    ("recovery_ms_p99", "99th percentile of the time from a pair regaining reachability (heal, restart, resume) until the observer sees the member alive, timed from the pair's own change"),
    ("recovery_ms_max", "slowest recovery; absent if a pair never recovered"),
    ("unrecovered_pairs", "(observer, member) pairs that regained reachability, kept it for at least `settle`, and were not seen alive while they kept it (until the pair lost it again, the observer went down, or the run ended)"),
    ("converged_ms_max", "slowest episode: time from a fault until every up node's view matches reachability exactly; absent if one never converged"),
    ("final_converged", "1 if, after the last fault, every up node's view came to match reachability before the end (the liveness check), else 0"),
    ("join_converged_ms", "time from the start until every node holds the full membership alive"),
    ("false_suspicions", "suspicions of a reachable member whose reachability had not changed for `settle`"),
    ("false_deaths", "reachable members declared dead (the guide's false positive: a healthy node marked failed)"),
    ("false_suspicion_pairs_pct", "percent of (observer, member) pairs falsely suspected at least once"),
    ("suspicions_before_first_fault", "suspicions raised before the first crash, restart, partition or heal"),
    ("minority_aware_ms_p99", "99th percentile over nodes cut into a minority of the time until they know it"),
    ("majority_correct_pct", "percent of up nodes whose majority flag was right at the end of every partition"),
    ("refutations", "times a node refuted a suspicion about itself"),
    ("join_refused", "join attempts refused (clock skew beyond clock_skew_max)"),
    ("send_errors", "sends the network stack refused (e.g. address family not supported)"),
    ("malformed_datagrams", "datagrams that failed to decode"),
    ("storage_errors", "storage operations that failed"),
];

/// The run being judged, beside its probes and its ground truth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    /// Nodes in the run (indices `0..nodes`).
    pub nodes: usize,
    /// When the run ended (true time since its start).
    pub end: Duration,
    /// How long after a change of reachability a suspicion still counts as caused by it, not
    /// as a false positive; also how long a lost pair has to be detected.
    pub settle: Duration,
    /// The first injected fault of any kind, including those that do not change reachability (a
    /// loss burst or a clock jump may legitimately cause a suspicion); `None` if there was none.
    pub first_fault: Option<Duration>,
}

/// Analyses one run of membership nodes: `probes` in the order they were recorded, `truth` in
/// any order (starts come before other changes at the same instant; simultaneous changes of one
/// kind form one episode).
pub fn analyse<'a>(probes: impl IntoIterator<Item = Observed<'a>>, truth: &[Event], run: &Run) -> Figures {
    let mut changes: Vec<&Event> = truth.iter().collect();
    changes.sort_by_key(|e| (e.at, e.change.kind() != Kind::Join));
    let mut s = State::new(run);
    let mut next_change = 0;
    for observed in probes {
        // Changes at a time come before probes at that time: a fault is the cause.
        while next_change < changes.len() && changes[next_change].at <= observed.at {
            let first = changes[next_change];
            let kind = first.change.kind();
            // Group simultaneous changes of one kind into one episode.
            let mut batch = vec![&first.change];
            next_change += 1;
            while next_change < changes.len()
                && changes[next_change].at == first.at
                && changes[next_change].change.kind() == kind
            {
                batch.push(&changes[next_change].change);
                next_change += 1;
            }
            s.apply_changes(first.at, &batch, kind);
        }
        s.on_probe(&observed);
    }
    for event in &changes[next_change..] {
        s.apply_changes(event.at, &[&event.change], event.change.kind());
    }
    s.end_recoveries(run.end);
    s.close_episode(run.end);
    s.figures()
}

/// The view code of a member never heard of (or forgotten at a restart).
const UNKNOWN: u8 = u8::MAX;
/// The view codes of `MemberState::code`: alive, suspect, dead.
const ALIVE: u8 = 0;
const DEAD: u8 = 2;

/// How many instances of each kind of bad event are kept as evidence.
const EVIDENCE_PER_KIND_MAX: usize = 3;

/// The counters kept from probes other than views, by probe name and metric.
const COUNTED: &[(&str, &str)] = &[
    ("refute", "refutations"),
    ("join_refused", "join_refused"),
    ("send_error", "send_errors"),
    ("malformed", "malformed_datagrams"),
    ("storage_error", "storage_errors"),
];

/// A lost pair's progress towards the member being declared dead.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Death {
    None,
    Awaited,
}

/// What a pair is waiting for: its detection since it lost reachability, or its recovery since
/// it regained it (a first start is a join, not a recovery, and waits for nothing).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Pending {
    None,
    Detect,
    Recover,
}

struct Episode {
    kind: Kind,
    at: Duration,
    converged_at: Option<Duration>,
    first_detection: BTreeMap<u32, Duration>,
    lost_targets: Vec<u32>,
    minority_pending: BTreeSet<u32>,
    /// Observers with a lost pair in this episode that have not yet detected any of them.
    observers_pending: BTreeSet<u32>,
}

impl Episode {
    fn new(kind: Kind, at: Duration) -> Self {
        Episode {
            kind,
            at,
            converged_at: None,
            first_detection: BTreeMap::new(),
            lost_targets: Vec::new(),
            minority_pending: BTreeSet::new(),
            observers_pending: BTreeSet::new(),
        }
    }
}

/// A network cut: which nodes are on each side (indexed by node).
#[derive(PartialEq, Eq)]
struct Cut {
    from: Vec<bool>,
    to: Vec<bool>,
}

fn side(nodes: &[u32], n: usize) -> Vec<bool> {
    let mut side = vec![false; n];
    for &x in nodes {
        if let Some(slot) = side.get_mut(x as usize) {
            *slot = true;
        }
    }
    side
}

struct State {
    n: usize,
    up: Vec<bool>,
    paused: Vec<bool>,
    cuts: Vec<Cut>,
    view: Vec<u8>,
    reach: Vec<bool>,
    last_change: Vec<Duration>,
    pending: Vec<Pending>,
    death: Vec<Death>,
    mismatch: Vec<u32>,
    majority: Vec<Option<bool>>,
    falsely_suspected: Vec<bool>,
    settle: Duration,
    first_fault: Option<Duration>,
    episode: Episode,
    // Results.
    detection_ms: Vec<f64>,
    death_ms: Vec<f64>,
    undeclared: u64,
    first_detection_ms: Vec<f64>,
    recovery_ms: Vec<f64>,
    undetected: u64,
    unrecovered: u64,
    converged_ms: Vec<Option<f64>>,
    join_converged_ms: Option<f64>,
    false_suspicions: u64,
    false_deaths: u64,
    observer_detection_ms: Vec<f64>,
    observers_undetected: u64,
    before_first_fault: u64,
    minority_aware_ms: Vec<f64>,
    minority_unaware: u64,
    last_episode_converged: bool,
    majority_checks: u64,
    majority_right: u64,
    counters: BTreeMap<&'static str, u64>,
    evidence: Vec<String>,
    evidence_counts: BTreeMap<&'static str, usize>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

impl State {
    fn new(run: &Run) -> Self {
        let nodes = run.nodes;
        State {
            n: nodes,
            up: vec![false; nodes],
            paused: vec![false; nodes],
            cuts: Vec::new(),
            view: vec![UNKNOWN; nodes * nodes],
            reach: vec![false; nodes * nodes],
            last_change: vec![Duration::ZERO; nodes * nodes],
            pending: vec![Pending::None; nodes * nodes],
            death: vec![Death::None; nodes * nodes],
            mismatch: vec![0; nodes],
            majority: vec![None; nodes],
            falsely_suspected: vec![false; nodes * nodes],
            settle: run.settle,
            first_fault: run.first_fault,
            episode: Episode::new(Kind::Join, Duration::ZERO),
            detection_ms: Vec::new(),
            death_ms: Vec::new(),
            undeclared: 0,
            first_detection_ms: Vec::new(),
            recovery_ms: Vec::new(),
            undetected: 0,
            unrecovered: 0,
            converged_ms: Vec::new(),
            join_converged_ms: None,
            false_suspicions: 0,
            false_deaths: 0,
            observer_detection_ms: Vec::new(),
            observers_undetected: 0,
            before_first_fault: 0,
            minority_aware_ms: Vec::new(),
            minority_unaware: 0,
            last_episode_converged: false,
            majority_checks: 0,
            majority_right: 0,
            counters: BTreeMap::new(),
            evidence: Vec::new(),
            evidence_counts: BTreeMap::new(),
        }
    }

    fn idx(&self, x: usize, y: usize) -> usize {
        x * self.n + y
    }

    fn reachable(&self, x: usize, y: usize) -> bool {
        let cut = |from: usize, to: usize| self.cuts.iter().any(|c| c.from[from] && c.to[to]);
        self.up[y] && !self.paused[y] && !cut(x, y) && !cut(y, x)
    }

    fn side_has_majority(&self, x: usize) -> bool {
        let side = 1 + (0..self.n).filter(|&y| y != x && self.reach[self.idx(x, y)]).count();
        2 * side > self.n
    }

    fn recount(&mut self, x: usize) {
        let mut m = 0;
        for y in 0..self.n {
            if y != x {
                let i = self.idx(x, y);
                if (self.view[i] == ALIVE) != self.reach[i] {
                    m += 1;
                }
            }
        }
        self.mismatch[x] = m;
    }

    fn note(&mut self, kind: &'static str, text: impl FnOnce() -> String) {
        let count = self.evidence_counts.entry(kind).or_insert(0);
        if *count < EVIDENCE_PER_KIND_MAX {
            *count += 1;
            self.evidence.push(text());
        }
    }

    fn all_converged(&self) -> bool {
        (0..self.n).all(|x| !self.up[x] || self.mismatch[x] == 0)
    }

    fn check_converged(&mut self, t: Duration) {
        // The join is over only once every node has started.
        let all_started = self.up.iter().all(|u| *u) || self.episode.kind != Kind::Join;
        if all_started && self.episode.converged_at.is_none() && self.all_converged() {
            self.episode.converged_at = Some(t);
        }
    }

    /// Ends the current episode at `end`. A pair still undetected (or undeclared) counts once it
    /// has been lost for `settle`: a shorter outage may rightly pass unnoticed. A pair lost for
    /// less is carried into the next episode while its observer is up, so a fault that follows
    /// closely (a pause elsewhere, a clock jump) does not erase the detection or death still due;
    /// both are timed from the pair's own loss, not from the episode's start.
    fn close_episode(&mut self, end: Duration) {
        for i in 0..self.death.len() {
            let (x, y) = (i / self.n, i % self.n);
            let lost_since = self.last_change[i];
            let overdue = end.saturating_sub(lost_since) >= self.settle;
            if self.death[i] == Death::Awaited {
                if overdue {
                    self.undeclared += 1;
                    self.note("undeclared", || {
                        format!(
                            "undeclared: node {x} never declared node {y} dead between {} and {}",
                            Seconds(lost_since),
                            Seconds(end)
                        )
                    });
                    self.death[i] = Death::None;
                } else if !self.up[x] {
                    self.death[i] = Death::None;
                }
            }
            match self.pending[i] {
                Pending::Detect if overdue => {
                    self.undetected += 1;
                    self.note("undetected", || {
                        format!(
                            "undetected: node {x} never suspected node {y} between {} and {}",
                            Seconds(lost_since),
                            Seconds(end)
                        )
                    });
                    self.pending[i] = Pending::None;
                }
                Pending::Detect if !self.up[x] => self.pending[i] = Pending::None,
                // A recovery is not ended by a fault elsewhere: see `end_recovery`.
                Pending::Detect | Pending::Recover | Pending::None => {}
            }
        }
        self.minority_unaware += self.episode.minority_pending.len() as u64;
        self.observers_undetected += self.episode.observers_pending.len() as u64;
        let ep = &self.episode;
        for target in &ep.lost_targets {
            if let Some(at) = ep.first_detection.get(target) {
                self.first_detection_ms.push(ms(at.saturating_sub(ep.at)));
            }
        }
        let converged = ep.converged_at.map(|c| ms(c.saturating_sub(ep.at)));
        self.last_episode_converged = converged.is_some();
        if ep.kind == Kind::Join {
            self.join_converged_ms = converged;
        } else {
            self.converged_ms.push(converged);
        }
        if ep.kind == Kind::Partition {
            for x in 0..self.n {
                if self.up[x] {
                    self.majority_checks += 1;
                    if self.majority[x] == Some(self.side_has_majority(x)) {
                        self.majority_right += 1;
                    }
                }
            }
        }
    }

    /// Ends pair `i`'s awaited recovery at `end` without the member having been seen alive: the
    /// pair lost reachability again, its observer went down, or the run ended. It counts as
    /// unrecovered only if reachability lasted at least `settle`, so the figure depends on the
    /// pair's own history alone, never on when an unrelated fault happened to follow.
    fn end_recovery(&mut self, i: usize, end: Duration) {
        if self.pending[i] != Pending::Recover {
            return;
        }
        self.pending[i] = Pending::None;
        let regained = self.last_change[i];
        if end.saturating_sub(regained) >= self.settle {
            self.unrecovered += 1;
            let (x, y) = (i / self.n, i % self.n);
            self.note("unrecovered", || {
                format!(
                    "unrecovered: node {x} did not see node {y} alive again between {} and {}",
                    Seconds(regained),
                    Seconds(end)
                )
            });
        }
    }

    /// Ends every recovery still awaited when the run ends at `end`.
    fn end_recoveries(&mut self, end: Duration) {
        for i in 0..self.pending.len() {
            self.end_recovery(i, end);
        }
    }

    /// Applies `changes` (simultaneous, of one `kind`) to the ground truth at `t`: a new
    /// episode (unless this is the join), and every pair whose reachability changed starts
    /// waiting for its detection, death or recovery.
    fn apply_changes(&mut self, t: Duration, changes: &[&Change], kind: Kind) {
        for change in changes {
            self.apply_to_truth(change);
        }
        if kind != Kind::Join {
            self.close_episode(t);
            self.episode = Episode::new(kind, t);
        }
        let mut lost_targets = BTreeSet::new();
        let mut observers = BTreeSet::new();
        let mut already_aware = BTreeSet::new();
        for (x, y) in self.pairs_touched(changes) {
            if x == y {
                continue;
            }
            let i = self.idx(x, y);
            if !self.up[x] {
                // A crashed observer's view is gone; a restart begins a new one.
                self.end_recovery(i, t);
            }
            let now = self.reachable(x, y);
            if now == self.reach[i] {
                continue;
            }
            self.end_recovery(i, t);
            let seen = self.view[i] == ALIVE;
            match (seen != self.reach[i], seen != now) {
                (true, false) => self.mismatch[x] -= 1,
                (false, true) => self.mismatch[x] += 1,
                _ => {}
            }
            self.reach[i] = now;
            self.last_change[i] = t;
            if !self.up[x] {
                continue;
            }
            match (now, seen) {
                (false, true) => {
                    self.death[i] = Death::Awaited;
                    self.pending[i] = Pending::Detect;
                    lost_targets.insert(y as u32);
                    observers.insert(x as u32);
                }
                (false, false) => {
                    if self.view[i] == DEAD {
                        self.death_ms.push(0.0);
                    } else {
                        self.death[i] = Death::Awaited;
                    }
                    self.detection_ms.push(0.0);
                    lost_targets.insert(y as u32);
                    already_aware.insert(x as u32);
                }
                (true, false) => {
                    self.death[i] = Death::None;
                    self.pending[i] = if kind == Kind::Join {
                        Pending::None
                    } else {
                        Pending::Recover
                    };
                }
                (true, true) => {
                    self.death[i] = Death::None;
                    self.pending[i] = Pending::None;
                    if kind != Kind::Join {
                        self.recovery_ms.push(0.0);
                    }
                }
            }
        }
        self.episode.lost_targets.extend(lost_targets.iter());
        for x in observers {
            if already_aware.contains(&x) {
                self.observer_detection_ms.push(0.0);
            } else {
                self.episode.observers_pending.insert(x);
            }
        }
        if kind == Kind::Partition {
            for x in 0..self.n {
                if self.up[x] && !self.side_has_majority(x) {
                    if self.majority[x] == Some(false) {
                        self.minority_aware_ms.push(0.0);
                    } else {
                        self.episode.minority_pending.insert(x as u32);
                    }
                }
            }
        }
        self.check_converged(t);
    }

    /// Who is up, paused, and cut off from whom.
    fn apply_to_truth(&mut self, change: &Change) {
        match change {
            Change::Start(nodes) | Change::Restart(nodes) => {
                for &x in nodes {
                    let x = x as usize;
                    if !self.up[x] {
                        self.up[x] = true;
                        // A (re)started node remembers nothing of its previous view.
                        for y in 0..self.n {
                            let i = self.idx(x, y);
                            self.view[i] = UNKNOWN;
                        }
                        self.majority[x] = None;
                        self.recount(x);
                    }
                }
            }
            Change::Crash(nodes) => {
                for &x in nodes {
                    self.up[x as usize] = false;
                }
            }
            Change::Pause(nodes) => nodes.iter().for_each(|x| self.paused[*x as usize] = true),
            Change::Resume(nodes) => nodes.iter().for_each(|x| self.paused[*x as usize] = false),
            Change::Cut { a, b, one_way } => {
                let (a, b) = (side(a, self.n), side(b, self.n));
                if !one_way {
                    self.cuts.push(Cut {
                        from: a.clone(),
                        to: b.clone(),
                    });
                    self.cuts.push(Cut { from: b, to: a });
                } else {
                    self.cuts.push(Cut { from: a, to: b });
                }
            }
            Change::Heal => self.cuts.clear(),
            Change::Uncut { a, b, one_way } => {
                let (a, b) = (side(a, self.n), side(b, self.n));
                let mut directed = vec![Cut {
                    from: a.clone(),
                    to: b.clone(),
                }];
                if !one_way {
                    directed.push(Cut { from: b, to: a });
                }
                for cut in directed {
                    if let Some(i) = self.cuts.iter().position(|c| *c == cut) {
                        self.cuts.remove(i);
                    }
                }
            }
        }
    }

    /// The pairs whose reachability `changes` may have changed: every pair for a cut or a heal,
    /// otherwise the rows and columns of the nodes involved.
    fn pairs_touched(&self, changes: &[&Change]) -> Vec<(usize, usize)> {
        let n = self.n;
        if changes
            .iter()
            .any(|c| matches!(c, Change::Cut { .. } | Change::Heal | Change::Uncut { .. }))
        {
            return (0..n).flat_map(|x| (0..n).map(move |y| (x, y))).collect();
        }
        let mut pairs = Vec::new();
        for c in changes {
            if let Change::Start(v) | Change::Restart(v) | Change::Crash(v) | Change::Pause(v) | Change::Resume(v) = c {
                for &t in v {
                    for o in 0..n {
                        pairs.push((t as usize, o));
                        pairs.push((o, t as usize));
                    }
                }
            }
        }
        pairs
    }

    fn on_probe(&mut self, o: &Observed<'_>) {
        let x = o.node as usize;
        match o.probe.name {
            "member" => self.on_view(x, o),
            "majority" => {
                let flag = o.probe.value != 0;
                self.majority[x] = Some(flag);
                if !flag && self.episode.minority_pending.remove(&o.node) {
                    self.minority_aware_ms.push(ms(o.at.saturating_sub(self.episode.at)));
                }
            }
            // The host transport reports undecodable datagrams too, under its own name.
            "malformed" if o.probe.protocol != "membership" => {}
            name => {
                if let Some((_, metric)) = COUNTED.iter().find(|(probe, _)| *probe == name) {
                    *self.counters.entry(metric).or_default() += 1;
                }
            }
        }
    }

    /// Observer `x` recorded its view of a member.
    fn on_view(&mut self, x: usize, o: &Observed<'_>) {
        let t = o.at;
        let y = o.probe.subject as usize;
        if y >= self.n || y == x {
            return;
        }
        let i = self.idx(x, y);
        let state = o.probe.value as u8;
        let previous = self.view[i];
        self.view[i] = state;
        let settled = self.reach[i] && t.saturating_sub(self.last_change[i]) >= self.settle;
        if state == DEAD && previous != DEAD && settled {
            self.false_deaths += 1;
            let since = self.last_change[i];
            self.note("false_death", || {
                format!(
                    "false death: node {x} declared node {y} dead at {}, reachable from it since {}",
                    Seconds(t),
                    Seconds(since)
                )
            });
        }
        if previous == ALIVE && state != ALIVE {
            if self.first_fault.is_none_or(|f| t < f) {
                self.before_first_fault += 1;
                self.note("early_suspicion", || {
                    format!(
                        "suspicion before any fault: node {x} suspected node {y} at {}",
                        Seconds(t)
                    )
                });
            }
            if settled {
                self.false_suspicions += 1;
                self.falsely_suspected[i] = true;
                let since = self.last_change[i];
                self.note("false_suspicion", || {
                    format!(
                        "false suspicion: node {x} suspected node {y} at {}, reachable from it since {}",
                        Seconds(t),
                        Seconds(since)
                    )
                });
            }
        }
        let since = ms(t.saturating_sub(self.episode.at));
        // Detection, death and recovery are per pair: timed from when this pair's reachability
        // last changed (its loss, or its heal or restart), never from another pair's fault.
        let since_change = ms(t.saturating_sub(self.last_change[i]));
        if state == DEAD && self.death[i] == Death::Awaited {
            self.death[i] = Death::None;
            self.death_ms.push(since_change);
        }
        match (self.pending[i], state == ALIVE) {
            (Pending::Detect, false) => {
                self.pending[i] = Pending::None;
                self.detection_ms.push(since_change);
                if self.episode.observers_pending.remove(&(x as u32)) {
                    self.observer_detection_ms.push(since);
                }
                self.episode.first_detection.entry(y as u32).or_insert(t);
            }
            (Pending::Recover, true) => {
                self.pending[i] = Pending::None;
                // Timed from this pair's own heal or restart, as detection is from its loss.
                self.recovery_ms.push(since_change);
            }
            _ => {}
        }
        let was = (previous == ALIVE) != self.reach[i];
        let is = (state == ALIVE) != self.reach[i];
        match (was, is) {
            (true, false) => self.mismatch[x] -= 1,
            (false, true) => self.mismatch[x] += 1,
            _ => {}
        }
        self.check_converged(t);
    }

    /// The figures, once every episode is closed.
    fn figures(mut self) -> Figures {
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: Option<f64>| {
            m.insert(k.to_string(), v);
        };
        // A maximum over pairs is honest only if every pair has a value.
        let max_unless = |missing: u64, values: &mut [f64]| if missing > 0 { None } else { percentile(values, 100.0) };
        put("detection_ms_p50", percentile(&mut self.detection_ms, 50.0));
        put("detection_ms_p99", percentile(&mut self.detection_ms, 99.0));
        put("detection_ms_max", max_unless(self.undetected, &mut self.detection_ms));
        put("first_detection_ms_p99", percentile(&mut self.first_detection_ms, 99.0));
        put(
            "first_detection_ms_max",
            percentile(&mut self.first_detection_ms, 100.0),
        );
        put("undetected_pairs", Some(self.undetected as f64));
        put("death_ms_p99", percentile(&mut self.death_ms, 99.0));
        put("death_ms_max", max_unless(self.undeclared, &mut self.death_ms));
        put("undeclared_pairs", Some(self.undeclared as f64));
        put("recovery_ms_p99", percentile(&mut self.recovery_ms, 99.0));
        put("recovery_ms_max", max_unless(self.unrecovered, &mut self.recovery_ms));
        put("unrecovered_pairs", Some(self.unrecovered as f64));
        let converged_max = if self.converged_ms.iter().any(Option::is_none) {
            None
        } else {
            self.converged_ms
                .iter()
                .flatten()
                .copied()
                .fold(None, |acc: Option<f64>, v| Some(acc.map_or(v, |a| a.max(v))))
        };
        put("converged_ms_max", converged_max);
        put("join_converged_ms", self.join_converged_ms);
        put(
            "final_converged",
            Some(f64::from(u8::from(self.last_episode_converged))),
        );
        put("false_suspicions", Some(self.false_suspicions as f64));
        put("false_deaths", Some(self.false_deaths as f64));
        let observer_p99 = percentile(&mut self.observer_detection_ms, 99.0);
        put(
            "observer_detection_ms_p99",
            if self.observers_undetected > 0 {
                None
            } else {
                observer_p99
            },
        );
        let pairs = (self.n * self.n.saturating_sub(1)).max(1) as f64;
        let falsely = self.falsely_suspected.iter().filter(|b| **b).count() as f64;
        put("false_suspicion_pairs_pct", Some(100.0 * falsely / pairs));
        put("suspicions_before_first_fault", Some(self.before_first_fault as f64));
        let minority_aware = percentile(&mut self.minority_aware_ms, 99.0);
        put(
            "minority_aware_ms_p99",
            if self.minority_unaware > 0 {
                None
            } else {
                minority_aware
            },
        );
        put(
            "majority_correct_pct",
            (self.majority_checks > 0).then(|| 100.0 * self.majority_right as f64 / self.majority_checks as f64),
        );
        for (_, metric) in COUNTED {
            put(metric, Some(*self.counters.get(metric).unwrap_or(&0) as f64));
        }
        Figures {
            metrics: m,
            evidence: self.evidence,
        }
    }
}

#[cfg(test)]
mod tests {
    //! The checker over synthetic runs: views written by hand beside a hand-written truth, so
    //! each rule is seen on exactly the interleaving it is about.

    use super::*;
    use runtime::Probe;

    const SUSPECT: i64 = 1;
    const SETTLE: Duration = Duration::from_secs(10);

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    /// A hand-written run: `nodes` nodes that start at 0 s, views recorded as
    /// (time, observer, member, state) and reachability changes beside them.
    struct Synthetic {
        nodes: u32,
        views: Vec<(Duration, u32, u32, i64)>,
        truth: Vec<Event>,
    }

    impl Synthetic {
        /// Every node starts at 0 s and sees every other alive at 1 s.
        fn joined(nodes: u32) -> Self {
            let truth = (0..nodes)
                .map(|i| Event::new(Duration::ZERO, Change::Start(vec![i])))
                .collect();
            let mut views = Vec::new();
            for x in 0..nodes {
                for y in (0..nodes).filter(|&y| y != x) {
                    views.push((s(1), x, y, i64::from(ALIVE)));
                }
            }
            Synthetic { nodes, views, truth }
        }

        fn view(&mut self, at: Duration, observer: u32, member: u32, state: i64) -> &mut Self {
            self.views.push((at, observer, member, state));
            self
        }

        /// Every up node other than `member` records `state` for it at `at`.
        fn everyone_sees(&mut self, at: Duration, member: u32, state: i64) -> &mut Self {
            for x in (0..self.nodes).filter(|&x| x != member) {
                self.view(at, x, member, state);
            }
            self
        }

        fn change(&mut self, at: Duration, change: Change) -> &mut Self {
            self.truth.push(Event::new(at, change));
            self
        }

        fn figures(&self, end: Duration) -> Figures {
            let mut views = self.views.clone();
            views.sort_by_key(|v| v.0);
            let probes: Vec<(Duration, u32, Probe)> = views
                .iter()
                .map(|&(at, x, y, state)| (at, x, Probe::new("member", u64::from(y), state).scoped("membership")))
                .collect();
            let observed = probes.iter().map(|(at, node, probe)| Observed {
                at: *at,
                node: *node,
                probe,
            });
            let first_fault = self
                .truth
                .iter()
                .filter(|e| e.change.kind() != Kind::Join)
                .map(|e| e.at)
                .min();
            let run = Run {
                nodes: self.nodes as usize,
                end,
                settle: SETTLE,
                first_fault,
            };
            analyse(observed, &self.truth, &run)
        }
    }

    /// Nodes 0 and 1 are cut from each other at 10 s (suspected at 12 s, dead at 14 s), healed at
    /// 20 s, and see each other alive again 8 s later; node 5, unrelated, crashes for good at
    /// `crash_at` and is suspected and declared dead by everyone soon after.
    fn heal_then_unrelated_crash(crash_at: Duration) -> Synthetic {
        let mut run = Synthetic::joined(6);
        run.change(
            s(10),
            Change::Cut {
                a: vec![0],
                b: vec![1],
                one_way: false,
            },
        )
        .view(s(12), 0, 1, SUSPECT)
        .view(s(12), 1, 0, SUSPECT)
        .view(s(14), 0, 1, i64::from(DEAD))
        .view(s(14), 1, 0, i64::from(DEAD))
        .change(s(20), Change::Heal)
        .view(s(28), 0, 1, i64::from(ALIVE))
        .view(s(28), 1, 0, i64::from(ALIVE))
        .change(crash_at, Change::Crash(vec![5]))
        .everyone_sees(crash_at + s(1), 5, SUSPECT)
        .everyone_sees(crash_at + s(3), 5, i64::from(DEAD));
        run
    }

    #[test]
    fn a_healed_pairs_recovery_is_timed_from_its_own_heal_whatever_fault_follows_elsewhere() {
        // The report: an unrelated crash 5 s after the heal made every healed pair
        // still recovering count as unrecovered; 11 s after, none did.
        for crash_at in [s(25), s(31)] {
            let f = heal_then_unrelated_crash(crash_at).figures(s(60));
            assert_eq!(
                f.get("unrecovered_pairs"),
                Some(0.0),
                "crash at {crash_at:?}: {:?}",
                f.evidence
            );
            assert_eq!(f.get("recovery_ms_max"), Some(8000.0), "crash at {crash_at:?}");
            assert_eq!(f.get("undeclared_pairs"), Some(0.0), "crash at {crash_at:?}");
        }
    }

    #[test]
    fn a_healed_pair_never_seen_alive_is_unrecovered_whatever_fault_follows_elsewhere() {
        for crash_at in [s(25), s(31)] {
            let mut run = heal_then_unrelated_crash(crash_at);
            // Node 1 never sees node 0 alive again: drop that view.
            run.views.retain(|&(at, x, y, _)| !(at == s(28) && x == 1 && y == 0));
            let f = run.figures(s(60));
            assert_eq!(f.get("unrecovered_pairs"), Some(1.0), "crash at {crash_at:?}");
            assert_eq!(f.get("recovery_ms_max"), None, "no honest maximum");
            assert!(
                f.evidence
                    .iter()
                    .any(|e| e == "unrecovered: node 1 did not see node 0 alive again between 20.000s and 60.000s"),
                "{:?}",
                f.evidence
            );
        }
    }

    #[test]
    fn a_pair_cut_again_before_settle_may_rightly_not_have_recovered() {
        let mut run = Synthetic::joined(2);
        let cut = || Change::Cut {
            a: vec![0],
            b: vec![1],
            one_way: false,
        };
        run.change(s(10), cut())
            .everyone_sees(s(12), 0, SUSPECT)
            .everyone_sees(s(12), 1, SUSPECT)
            .change(s(20), Change::Heal)
            // Cut again 3 s after the heal, before either saw the other alive.
            .change(s(23), cut())
            .change(s(40), Change::Heal)
            // Reachable for 15 s (more than settle) and never seen alive.
            .change(s(55), cut());
        let f = run.figures(s(70));
        assert_eq!(f.get("unrecovered_pairs"), Some(2.0), "{:?}", f.evidence);
        assert!(
            f.evidence.iter().all(|e| !e.contains("between 20.000s")),
            "the 3 s reconnection is not held against the pair: {:?}",
            f.evidence
        );
    }

    #[test]
    fn a_heal_shortly_before_the_end_is_not_yet_an_unrecovered_pair() {
        let mut run = Synthetic::joined(2);
        run.change(
            s(10),
            Change::Cut {
                a: vec![0],
                b: vec![1],
                one_way: false,
            },
        )
        .everyone_sees(s(12), 0, SUSPECT)
        .everyone_sees(s(12), 1, SUSPECT)
        .change(s(25), Change::Heal);
        assert_eq!(run.figures(s(30)).get("unrecovered_pairs"), Some(0.0), "5 s to recover");
        assert_eq!(
            run.figures(s(36)).get("unrecovered_pairs"),
            Some(2.0),
            "11 s to recover"
        );
    }

    #[test]
    fn a_restarted_members_recovery_is_timed_from_its_restart() {
        let mut run = Synthetic::joined(3);
        run.change(s(10), Change::Crash(vec![2]))
            .everyone_sees(s(11), 2, SUSPECT)
            .everyone_sees(s(13), 2, i64::from(DEAD))
            .change(s(20), Change::Restart(vec![2]))
            .view(s(21), 2, 0, i64::from(ALIVE))
            .view(s(21), 2, 1, i64::from(ALIVE))
            // An unrelated pause of node 0 at 22 s: node 1 sees 2 alive at 24 s regardless.
            .change(s(22), Change::Pause(vec![0]))
            .change(s(23), Change::Resume(vec![0]))
            .view(s(24), 1, 2, i64::from(ALIVE))
            .view(s(26), 0, 2, i64::from(ALIVE));
        let f = run.figures(s(60));
        assert_eq!(f.get("unrecovered_pairs"), Some(0.0), "{:?}", f.evidence);
        assert_eq!(f.get("recovery_ms_max"), Some(6000.0));
    }
}

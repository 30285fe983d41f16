//! The membership workload's analysis.

use std::collections::BTreeMap;
use std::time::Duration;

use simulator::{FaultAction, FaultCounts, NodeSet, ProbeRecord, SimTime};

use super::percentile;
use crate::build::Derived;

/// The figures of one run, by metric name; `None` where a figure has no value (e.g. a pair was
/// never detected, so there is no honest maximum).
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    /// Metric name → value.
    pub metrics: BTreeMap<String, Option<f64>>,
    /// The first few instances behind bad figures (a false death: who, whom, when), so a
    /// failing seed can be read without a debugger.
    pub evidence: Vec<String>,
}

/// How many instances of each kind of bad event are kept as evidence.
const EVIDENCE_PER_KIND_MAX: usize = 3;

impl Analysis {
    /// The figures of two protocols' analyses of one run: a metric both report (a count such
    /// as `storage_errors`) is their sum; evidence is kept from both.
    pub fn merge(mut self, other: Analysis) -> Analysis {
        for (name, value) in other.metrics {
            let merged = match (self.metrics.get(&name).copied().flatten(), value) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
            self.metrics.insert(name, merged);
        }
        self.evidence.extend(other.evidence);
        self
    }

    /// The value of `metric`, resolving `faults.KIND` against the run's fault counts.
    pub fn value(&self, metric: &str, faults: &FaultCounts) -> Option<f64> {
        if let Some(kind) = metric.strip_prefix("faults.") {
            return Some(faults.get(kind) as f64);
        }
        self.metrics.get(metric).copied().flatten()
    }
}

const UNKNOWN: u8 = u8::MAX;
const ALIVE: u8 = 0;

#[derive(Clone, Debug)]
enum Change {
    Up(Vec<u32>),
    Down(Vec<u32>),
    /// Stalled: unreachable, but its view survives.
    Pause(Vec<u32>),
    Resume(Vec<u32>),
    Cut {
        a: NodeSet,
        b: NodeSet,
        one_way: bool,
    },
    Heal,
}

/// A lost pair's progress towards the member being declared dead.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Death {
    None,
    Awaited,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Pending {
    None,
    Detect,
    Recover,
}

struct Episode {
    kind: &'static str,
    at: SimTime,
    converged_at: Option<SimTime>,
    first_detection: BTreeMap<u32, SimTime>,
    lost_targets: Vec<u32>,
    minority_pending: BTreeMap<u32, ()>,
    /// Observers with a lost pair in this episode that have not yet detected any of them.
    observers_pending: NodeSet,
}

struct State {
    n: usize,
    up: Vec<bool>,
    paused: Vec<bool>,
    cuts: Vec<(NodeSet, NodeSet)>,
    view: Vec<u8>,
    reach: Vec<bool>,
    last_change: Vec<SimTime>,
    pending: Vec<Pending>,
    death: Vec<Death>,
    mismatch: Vec<u32>,
    majority: Vec<Option<bool>>,
    falsely_suspected: Vec<bool>,
    settle: Duration,
    first_fault: Option<SimTime>,
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

impl State {
    fn idx(&self, x: usize, y: usize) -> usize {
        x * self.n + y
    }

    fn reachable(&self, x: usize, y: usize) -> bool {
        let cut = |from: usize, to: usize| {
            self.cuts
                .iter()
                .any(|(a, b)| a.contains(from as u32) && b.contains(to as u32))
        };
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

    fn check_converged(&mut self, t: SimTime) {
        // The join is over only once every node has started.
        let all_started = self.up.iter().all(|u| *u) || self.episode.kind != "join";
        if all_started && self.episode.converged_at.is_none() && self.all_converged() {
            self.episode.converged_at = Some(t);
        }
    }

    /// Ends the current episode at `end`. A pair still undetected (or undeclared) counts once it
    /// has been lost for `settle`: a shorter outage may rightly pass unnoticed. A pair lost for
    /// less is carried into the next episode while its observer is up, so a fault that follows
    /// closely (a pause elsewhere, a clock jump) does not erase the detection or death still due;
    /// both are timed from the pair's own loss, not from the episode's start.
    fn close_episode(&mut self, end: SimTime) {
        for i in 0..self.death.len() {
            let (x, y) = (i / self.n, i % self.n);
            let lost_since = self.last_change[i];
            let overdue = end.since(lost_since) >= self.settle;
            if self.death[i] == Death::Awaited {
                if overdue {
                    self.undeclared += 1;
                    self.note("undeclared", || {
                        format!("undeclared: node {x} never declared node {y} dead between {lost_since} and {end}")
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
                        format!("undetected: node {x} never suspected node {y} between {lost_since} and {end}")
                    });
                    self.pending[i] = Pending::None;
                }
                Pending::Detect if self.up[x] => {}
                Pending::Recover if self.episode.kind != "join" => {
                    self.unrecovered += 1;
                    let at = self.episode.at;
                    self.note("unrecovered", || {
                        format!("unrecovered: node {x} did not see node {y} alive again between {at} and {end}")
                    });
                    self.pending[i] = Pending::None;
                }
                _ => self.pending[i] = Pending::None,
            }
        }
        self.minority_unaware += self.episode.minority_pending.len() as u64;
        self.observers_undetected += self.episode.observers_pending.len() as u64;
        let ep = &self.episode;
        for target in &ep.lost_targets {
            if let Some(at) = ep.first_detection.get(target) {
                self.first_detection_ms.push(at.since(ep.at).as_secs_f64() * 1e3);
            }
        }
        let converged = ep.converged_at.map(|c| c.since(ep.at).as_secs_f64() * 1e3);
        self.last_episode_converged = converged.is_some();
        if ep.kind == "join" {
            self.join_converged_ms = converged;
        } else {
            self.converged_ms.push(converged);
        }
        if ep.kind == "partition" {
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

    fn apply_changes(&mut self, t: SimTime, changes: &[Change], kind: &'static str) {
        for change in changes {
            match change {
                Change::Up(nodes) => {
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
                Change::Down(nodes) => {
                    for &x in nodes {
                        self.up[x as usize] = false;
                    }
                }
                Change::Pause(nodes) => nodes.iter().for_each(|x| self.paused[*x as usize] = true),
                Change::Resume(nodes) => nodes.iter().for_each(|x| self.paused[*x as usize] = false),
                Change::Cut { a, b, one_way } => {
                    self.cuts.push((a.clone(), b.clone()));
                    if !one_way {
                        self.cuts.push((b.clone(), a.clone()));
                    }
                }
                Change::Heal => self.cuts.clear(),
            }
        }
        if kind != "join" {
            self.close_episode(t);
            self.episode = Episode {
                kind,
                at: t,
                converged_at: None,
                first_detection: BTreeMap::new(),
                lost_targets: Vec::new(),
                minority_pending: BTreeMap::new(),
                observers_pending: NodeSet::new(),
            };
        }
        let mut lost_targets = NodeSet::new();
        let mut observers = NodeSet::new();
        let mut already_aware = NodeSet::new();
        // Cuts change any pair; ups and downs only the rows and columns of the nodes involved.
        let cuts_changed = changes.iter().any(|c| matches!(c, Change::Cut { .. } | Change::Heal));
        let mut pairs: Vec<(usize, usize)> = Vec::new();
        if cuts_changed {
            pairs.extend((0..self.n).flat_map(|x| (0..self.n).map(move |y| (x, y))));
        } else {
            for c in changes {
                if let Change::Up(v) | Change::Down(v) | Change::Pause(v) | Change::Resume(v) = c {
                    for &t in v {
                        for o in 0..self.n {
                            pairs.push((t as usize, o));
                            pairs.push((o, t as usize));
                        }
                    }
                }
            }
        }
        for (x, y) in pairs {
            {
                if x == y {
                    continue;
                }
                let i = self.idx(x, y);
                let now = self.reachable(x, y);
                if now == self.reach[i] {
                    continue;
                }
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
                let seen_alive = self.view[i] == ALIVE;
                match (now, seen_alive) {
                    (false, true) => {
                        self.death[i] = Death::Awaited;
                        self.pending[i] = Pending::Detect;
                        lost_targets.insert(y as u32);
                        observers.insert(x as u32);
                    }
                    (false, false) => {
                        if self.view[i] == 2 {
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
                        self.pending[i] = Pending::Recover;
                    }
                    (true, true) => {
                        self.death[i] = Death::None;
                        self.pending[i] = Pending::None;
                        if kind != "join" {
                            self.recovery_ms.push(0.0);
                        }
                    }
                }
            }
        }
        self.episode.lost_targets.extend(lost_targets.iter());
        for x in observers.iter() {
            if already_aware.contains(x) {
                self.observer_detection_ms.push(0.0);
            } else if !self.episode.observers_pending.contains(x) {
                self.episode.observers_pending.insert(x);
            }
        }
        if kind == "partition" {
            for x in 0..self.n {
                if self.up[x] && !self.side_has_majority(x) {
                    if self.majority[x] == Some(false) {
                        self.minority_aware_ms.push(0.0);
                    } else {
                        self.episode.minority_pending.insert(x as u32, ());
                    }
                }
            }
        }
        self.check_converged(t);
    }

    fn on_probe(&mut self, r: &ProbeRecord) {
        let x = r.node as usize;
        let t = r.at;
        match r.probe.name {
            "member" => {
                let y = r.probe.subject as usize;
                if y >= self.n || y == x {
                    return;
                }
                let i = self.idx(x, y);
                let state = r.probe.value as u8;
                let previous = self.view[i];
                self.view[i] = state;
                if state == 2 && previous != 2 && self.reach[i] && t.since(self.last_change[i]) >= self.settle {
                    self.false_deaths += 1;
                    let since = self.last_change[i];
                    self.note("false_death", || {
                        format!("false death: node {x} declared node {y} dead at {t}, reachable from it since {since}")
                    });
                }
                if previous == ALIVE && state != ALIVE {
                    if self.first_fault.is_none_or(|f| t < f) {
                        self.before_first_fault += 1;
                        self.note("early_suspicion", || {
                            format!("suspicion before any fault: node {x} suspected node {y} at {t}")
                        });
                    }
                    if self.reach[i] && t.since(self.last_change[i]) >= self.settle {
                        self.false_suspicions += 1;
                        self.falsely_suspected[i] = true;
                        let since = self.last_change[i];
                        self.note("false_suspicion", || {
                            format!(
                                "false suspicion: node {x} suspected node {y} at {t}, reachable from it since {since}"
                            )
                        });
                    }
                }
                let since = t.since(self.episode.at).as_secs_f64() * 1e3;
                // Detection and death are per pair: timed from when this pair lost reachability.
                let since_lost = t.since(self.last_change[i]).as_secs_f64() * 1e3;
                if state == 2 && self.death[i] == Death::Awaited {
                    self.death[i] = Death::None;
                    self.death_ms.push(since_lost);
                }
                match (self.pending[i], state == ALIVE) {
                    (Pending::Detect, false) => {
                        self.pending[i] = Pending::None;
                        self.detection_ms.push(since_lost);
                        if self.episode.observers_pending.remove(x as u32) {
                            self.observer_detection_ms.push(since);
                        }
                        self.episode.first_detection.entry(y as u32).or_insert(t);
                    }
                    (Pending::Recover, true) => {
                        self.pending[i] = Pending::None;
                        if self.episode.kind != "join" {
                            self.recovery_ms.push(since);
                        }
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
            "majority" => {
                let flag = r.probe.value != 0;
                self.majority[x] = Some(flag);
                if !flag && self.episode.minority_pending.remove(&r.node).is_some() {
                    self.minority_aware_ms
                        .push(t.since(self.episode.at).as_secs_f64() * 1e3);
                }
            }
            "refute" => *self.counters.entry("refutations").or_default() += 1,
            "join_refused" => *self.counters.entry("join_refused").or_default() += 1,
            "send_error" => *self.counters.entry("send_errors").or_default() += 1,
            "malformed" if r.probe.protocol == "membership" => {
                *self.counters.entry("malformed_datagrams").or_default() += 1
            }
            "storage_error" => *self.counters.entry("storage_errors").or_default() += 1,
            "stoq_connected" => *self.counters.entry("stoq_handshakes").or_default() += 1,
            "stoq_refused" => *self.counters.entry("stoq_refusals").or_default() += 1,
            "setup_failed" if r.probe.protocol == "stoq" => {
                *self.counters.entry("stoq_setup_failures").or_default() += 1
            }
            _ => {}
        }
    }
}

fn changes_of(derived: &Derived) -> Vec<(SimTime, Change, &'static str)> {
    let mut out = Vec::new();
    for (i, start) in derived.start_s.iter().enumerate() {
        out.push((
            SimTime::from_duration(Duration::from_secs_f64(*start)),
            Change::Up(vec![i as u32]),
            "join",
        ));
    }
    for fault in &derived.schedule {
        let at = SimTime::from_duration(Duration::from_secs_f64(fault.at_s));
        let change = match &fault.action {
            FaultAction::Partition { a, b, one_way } => Change::Cut {
                a: a.clone(),
                b: b.clone(),
                one_way: *one_way,
            },
            FaultAction::Heal => Change::Heal,
            FaultAction::Crash(nodes) => Change::Down(nodes.iter().collect()),
            FaultAction::Restart(nodes) => Change::Up(nodes.iter().collect()),
            FaultAction::Pause { nodes, duration } => {
                let nodes: Vec<u32> = nodes.iter().collect();
                out.push((at.after(*duration), Change::Resume(nodes.clone()), "resume"));
                Change::Pause(nodes)
            }
            _ => continue,
        };
        out.push((at, change, fault.kind));
    }
    // Starts before faults at equal times; otherwise time order, stable.
    out.sort_by_key(|(at, _, kind)| (*at, *kind != "join"));
    out
}

/// Analyses one membership run.
pub fn analyse(probes: &[ProbeRecord], derived: &Derived, nodes: usize, end: SimTime, settle: Duration) -> Analysis {
    let changes = changes_of(derived);
    // Any injected fault counts, not only those that change reachability: a loss burst or a
    // clock jump may legitimately cause a suspicion. Routine NTP corrections do not.
    let first_fault = derived
        .schedule
        .iter()
        .find(|f| f.detail != "ntp")
        .map(|f| SimTime::from_duration(Duration::from_secs_f64(f.at_s)));
    let mut s = State {
        n: nodes,
        up: vec![false; nodes],
        paused: vec![false; nodes],
        cuts: Vec::new(),
        view: vec![UNKNOWN; nodes * nodes],
        reach: vec![false; nodes * nodes],
        last_change: vec![SimTime::ZERO; nodes * nodes],
        pending: vec![Pending::None; nodes * nodes],
        death: vec![Death::None; nodes * nodes],
        mismatch: vec![0; nodes],
        majority: vec![None; nodes],
        falsely_suspected: vec![false; nodes * nodes],
        settle,
        first_fault,
        episode: Episode {
            kind: "join",
            at: SimTime::ZERO,
            converged_at: None,
            first_detection: BTreeMap::new(),
            lost_targets: Vec::new(),
            minority_pending: BTreeMap::new(),
            observers_pending: NodeSet::new(),
        },
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
    };
    let mut next_change = 0;
    for record in probes {
        // Changes at a time come before probes at that time: a fault is the cause.
        while next_change < changes.len() && changes[next_change].0 <= record.at {
            let (t, change, kind) = &changes[next_change];
            // Group simultaneous changes of one kind into one episode.
            let mut batch = vec![change.clone()];
            next_change += 1;
            while next_change < changes.len() && changes[next_change].0 == *t && changes[next_change].2 == *kind {
                batch.push(changes[next_change].1.clone());
                next_change += 1;
            }
            s.apply_changes(*t, &batch, kind);
        }
        s.on_probe(record);
    }
    while next_change < changes.len() {
        let (t, change, kind) = changes[next_change].clone();
        next_change += 1;
        s.apply_changes(t, &[change], kind);
    }
    s.close_episode(end);

    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: Option<f64>| {
        m.insert(k.to_string(), v);
    };
    let undetected = s.undetected;
    put("detection_ms_p50", percentile(&mut s.detection_ms, 50.0));
    put("detection_ms_p99", percentile(&mut s.detection_ms, 99.0));
    put(
        "detection_ms_max",
        if undetected > 0 {
            None
        } else {
            percentile(&mut s.detection_ms, 100.0)
        },
    );
    put("first_detection_ms_p99", percentile(&mut s.first_detection_ms, 99.0));
    put("first_detection_ms_max", percentile(&mut s.first_detection_ms, 100.0));
    put("undetected_pairs", Some(undetected as f64));
    let undeclared = s.undeclared;
    put("death_ms_p99", percentile(&mut s.death_ms, 99.0));
    put(
        "death_ms_max",
        if undeclared > 0 {
            None
        } else {
            percentile(&mut s.death_ms, 100.0)
        },
    );
    put("undeclared_pairs", Some(undeclared as f64));
    put("recovery_ms_p99", percentile(&mut s.recovery_ms, 99.0));
    put(
        "recovery_ms_max",
        if s.unrecovered > 0 {
            None
        } else {
            percentile(&mut s.recovery_ms, 100.0)
        },
    );
    put("unrecovered_pairs", Some(s.unrecovered as f64));
    let converged_max = if s.converged_ms.iter().any(Option::is_none) {
        None
    } else {
        s.converged_ms
            .iter()
            .flatten()
            .copied()
            .fold(None, |acc: Option<f64>, v| Some(acc.map_or(v, |a| a.max(v))))
    };
    put("converged_ms_max", converged_max);
    put("join_converged_ms", s.join_converged_ms);
    put("final_converged", Some(f64::from(u8::from(s.last_episode_converged))));
    put("false_suspicions", Some(s.false_suspicions as f64));
    put("false_deaths", Some(s.false_deaths as f64));
    let observer_p99 = percentile(&mut s.observer_detection_ms, 99.0);
    put(
        "observer_detection_ms_p99",
        if s.observers_undetected > 0 { None } else { observer_p99 },
    );
    let pairs = (nodes * nodes.saturating_sub(1)).max(1) as f64;
    let falsely = s.falsely_suspected.iter().filter(|b| **b).count() as f64;
    put("false_suspicion_pairs_pct", Some(100.0 * falsely / pairs));
    put("suspicions_before_first_fault", Some(s.before_first_fault as f64));
    let minority_aware = percentile(&mut s.minority_aware_ms, 99.0);
    put(
        "minority_aware_ms_p99",
        if s.minority_unaware > 0 { None } else { minority_aware },
    );
    put(
        "majority_correct_pct",
        (s.majority_checks > 0).then(|| 100.0 * s.majority_right as f64 / s.majority_checks as f64),
    );
    for name in [
        "refutations",
        "join_refused",
        "send_errors",
        "malformed_datagrams",
        "storage_errors",
        "stoq_handshakes",
        "stoq_refusals",
        "stoq_setup_failures",
    ] {
        put(name, Some(*s.counters.get(name).unwrap_or(&0) as f64));
    }
    Analysis {
        metrics: m,
        evidence: s.evidence,
    }
}

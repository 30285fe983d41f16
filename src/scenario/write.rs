//! Scenario → TOML: the inverse of parsing, so a scenario made in code (a shrunk failure) is
//! printed as a file that `testbed run` reads back to the same scenario.

use std::time::Duration;

use erc8004_api::setting::Named;
use simulator::{Latency, LinkModel};
use toml::{Table, Value};

use super::{ConsensusPlan, Family, FaultKind, FaultPlan, NodePlan, Scenario, Selection, SwarmPlan, TrustChainPlan};

/// The scenario as a scenario file. Parsing the result gives `scenario` back (bar `path` and
/// `source`); `tests` check this on every shipped scenario.
pub fn to_toml(scenario: &Scenario) -> String {
    let mut root = Table::new();
    root.insert("name".into(), scenario.name.clone().into());
    if !scenario.description.is_empty() {
        root.insert("description".into(), scenario.description.clone().into());
    }
    root.insert("seed".into(), int(scenario.default_seed));
    root.insert("duration".into(), duration(scenario.duration));
    root.insert(
        "assert".into(),
        Value::Array(
            scenario
                .asserts
                .iter()
                .map(|a| format!("{} {} {}", a.metric, a.op, a.threshold).into())
                .collect(),
        ),
    );
    root.insert("nodes".into(), Value::Table(nodes(&scenario.nodes)));
    let mut clock = Table::new();
    clock.insert("offset_max".into(), duration(scenario.clock.offset_max));
    clock.insert("drift_ppm_max".into(), scenario.clock.drift_ppm_max.into());
    if let Some(i) = scenario.clock.ntp_interval {
        clock.insert("ntp_interval".into(), duration(i));
    }
    root.insert("clock".into(), Value::Table(clock));
    root.insert("network".into(), Value::Table(network(&scenario.link)));
    let mut storage = Table::new();
    storage.insert("io_error".into(), scenario.storage.io_error.into());
    storage.insert("torn_writes".into(), scenario.storage.torn_writes.into());
    storage.insert("crash_at_io".into(), scenario.storage.crash_at_io.into());
    storage.insert(
        "crash_restart_after".into(),
        duration(scenario.storage.crash_restart_after),
    );
    storage.insert("read_bitflip".into(), scenario.storage.read_bitflip.into());
    if let Some(until) = scenario.storage_until {
        storage.insert("until".into(), duration(until));
    }
    root.insert("storage".into(), Value::Table(storage));
    root.insert("workload".into(), Value::Table(workload(scenario)));
    if let Some(plan) = &scenario.trustchain {
        root.insert("trustchain".into(), Value::Table(trustchain(plan)));
    }
    if let Some(plan) = &scenario.consensus {
        root.insert("consensus".into(), Value::Table(consensus(plan)));
    }
    if let Some(plan) = &scenario.api {
        root.insert("api".into(), Value::Table(api(plan)));
    }
    if let Some(plan) = &scenario.stoq {
        let mut t = Table::new();
        t.insert("idle_timeout".into(), duration(plan.idle_timeout));
        t.insert("keep_alive".into(), duration(plan.keep_alive));
        t.insert("initial_rtt".into(), duration(plan.initial_rtt));
        root.insert("stoq".into(), Value::Table(t));
    }
    if !scenario.variants.is_empty() {
        let variants = scenario.variants.iter().map(|v| {
            let mut t = Table::new();
            t.insert("name".into(), v.name.clone().into());
            if !v.description.is_empty() {
                t.insert("description".into(), v.description.clone().into());
            }
            t.insert(
                "set".into(),
                Value::Array(v.set.iter().cloned().map(Value::String).collect()),
            );
            t.insert(
                "assert".into(),
                Value::Array(v.asserts.iter().cloned().map(Value::String).collect()),
            );
            Value::Table(t)
        });
        root.insert("variant".into(), Value::Array(variants.collect()));
    }
    if let Some(swarm) = &scenario.swarm {
        root.insert("swarm".into(), Value::Table(swarm_table(swarm)));
    }
    if !scenario.faults.is_empty() {
        root.insert(
            "fault".into(),
            Value::Array(scenario.faults.iter().map(|f| Value::Table(fault(f))).collect()),
        );
    }
    toml::to_string(&root).unwrap_or_else(|e| format!("# cannot print this scenario as TOML: {e}\n"))
}

fn int(v: impl Into<u64>) -> Value {
    // Scenario integers (seeds, counts) are far below i64::MAX; saturate rather than wrap.
    Value::Integer(i64::try_from(v.into()).unwrap_or(i64::MAX))
}

/// The shortest exact unit: `"10s"`, `"250ms"`, `"1234567ns"`.
fn duration(d: Duration) -> Value {
    signed(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)).into()
}

fn signed(nanos: i64) -> String {
    const UNITS: [(i64, &str); 5] = [
        (3_600_000_000_000, "h"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
        (1, "ns"),
    ];
    if nanos == 0 {
        return "0s".into();
    }
    let (scale, unit) = UNITS
        .iter()
        .copied()
        .find(|(scale, _)| nanos % scale == 0)
        .unwrap_or((1, "ns"));
    format!("{}{unit}", nanos / scale)
}

fn family(f: Family) -> Value {
    match f {
        Family::Ipv6 => "ipv6",
        Family::Ipv4 => "ipv4",
        Family::Dual => "dual",
    }
    .into()
}

fn selection(s: &Selection) -> Value {
    match s {
        Selection::All => "all".into(),
        Selection::List(list) => Value::Array(list.iter().map(|&i| int(i)).collect()),
        Selection::Range(a, b) => format!("{a}..{b}").into(),
        Selection::Random(k) => format!("random {k}").into(),
    }
}

/// `[nodes]` with one `[[nodes.group]]` per distinct non-default node plan.
fn nodes(plans: &[NodePlan]) -> Table {
    let mut t = Table::new();
    t.insert("count".into(), int(plans.len() as u64));
    t.insert("family".into(), family(Family::Ipv6));
    let default = NodePlan {
        family: Family::Ipv6,
        clock_offset_ns: None,
        drift_ppm: None,
        start: None,
    };
    let mut groups: Vec<(&NodePlan, Vec<u32>)> = Vec::new();
    for (i, plan) in plans.iter().enumerate().filter(|(_, p)| **p != default) {
        match groups.iter_mut().find(|(p, _)| *p == plan) {
            Some((_, members)) => members.push(i as u32),
            None => groups.push((plan, vec![i as u32])),
        }
    }
    if !groups.is_empty() {
        let groups = groups
            .into_iter()
            .map(|(plan, members)| {
                let mut g = Table::new();
                g.insert("nodes".into(), selection(&Selection::List(members)));
                g.insert("family".into(), family(plan.family));
                if let Some(o) = plan.clock_offset_ns {
                    g.insert("clock_offset".into(), signed(o).into());
                }
                if let Some(d) = plan.drift_ppm {
                    g.insert("drift_ppm".into(), d.into());
                }
                if let Some(s) = plan.start {
                    g.insert("start".into(), duration(s));
                }
                Value::Table(g)
            })
            .collect();
        t.insert("group".into(), Value::Array(groups));
    }
    t
}

fn network(link: &LinkModel) -> Table {
    let mut t = Table::new();
    let mut latency = Table::new();
    match link.latency {
        Latency::Constant(d) => {
            latency.insert("kind".into(), "constant".into());
            latency.insert("value".into(), duration(d));
        }
        Latency::Uniform { min, max } => {
            latency.insert("kind".into(), "uniform".into());
            latency.insert("min".into(), duration(min));
            latency.insert("max".into(), duration(max));
        }
        Latency::Normal { mean, stddev } => {
            latency.insert("kind".into(), "normal".into());
            latency.insert("mean".into(), duration(mean));
            latency.insert("stddev".into(), duration(stddev));
        }
        Latency::Pareto { min, shape } => {
            latency.insert("kind".into(), "pareto".into());
            latency.insert("min".into(), duration(min));
            latency.insert("shape".into(), shape.into());
        }
    }
    t.insert("latency".into(), Value::Table(latency));
    t.insert("jitter".into(), duration(link.jitter));
    t.insert("loss".into(), link.loss.into());
    t.insert("duplicate".into(), link.duplicate.into());
    t.insert("reorder".into(), link.reorder.into());
    t.insert("reorder_window".into(), duration(link.reorder_window));
    t.insert("corrupt".into(), link.corrupt.into());
    if let Some(bps) = link.bandwidth_bytes_per_s {
        t.insert("bandwidth_mbit".into(), (bps as f64 * 8.0 / 1e6).into());
    }
    t
}

fn workload(s: &Scenario) -> Table {
    let w = &s.workload;
    let mut t = Table::new();
    t.insert("kind".into(), s.kind.into());
    t.insert("seeds".into(), int(w.seeds));
    t.insert("start_spread".into(), duration(w.start_spread));
    t.insert("settle".into(), duration(w.settle));
    if !w.slanderers.is_empty() {
        t.insert(
            "slanderers".into(),
            Value::Array(w.slanderers.iter().map(|n| int(*n)).collect()),
        );
    }
    let durations = [
        ("probe_interval", w.probe_interval),
        ("latency_tolerance", w.latency_tolerance),
        ("probe_margin", w.probe_margin),
        ("indirect_after", w.indirect_after),
        ("clock_skew_max", w.clock_skew_max),
        ("gossip_interval", w.gossip_interval),
        ("push_pull_interval", w.push_pull_interval),
    ];
    for (key, v) in durations {
        if let Some(d) = v {
            t.insert(key.into(), duration(d));
        }
    }
    let counts = [
        ("indirect_probes", w.indirect_probes),
        ("confirmation_required", w.confirmation_required),
        ("suspicion_mult", w.suspicion_mult),
        ("gossip_fanout", w.gossip_fanout),
    ];
    for (key, v) in counts {
        if let Some(n) = v {
            t.insert(key.into(), int(n));
        }
    }
    t
}

fn trustchain(p: &TrustChainPlan) -> Table {
    let mut t = Table::new();
    t.insert("ca".into(), int(p.ca));
    for (key, d) in [
        ("handshake_interval", p.handshake_interval),
        ("handshake_timeout", p.handshake_timeout),
        ("bundle_refresh", p.bundle_refresh),
        ("backdate", p.backdate),
        ("leaf_lifetime", p.leaf_lifetime),
        ("overlap", p.overlap),
        ("rollout_interval", p.rollout_interval),
    ] {
        t.insert(key.into(), duration(d));
    }
    if let Some(d) = p.rotate_every {
        t.insert("rotate_every".into(), duration(d));
    }
    t.insert("renew_fraction".into(), p.renew_fraction.into());
    t.insert("verify_before_switch".into(), p.verify_before_switch.into());
    t.insert("push_bundles".into(), p.push_bundles.into());
    t.insert("rollout_waves".into(), int(p.rollout_waves));
    t.insert("quorum_before_issuing".into(), int(p.quorum_before_issuing));
    t.insert("membership".into(), p.membership.into());
    if !p.revocations.is_empty() {
        let list = p.revocations.iter().map(|(at, node)| {
            let mut r = Table::new();
            r.insert("at".into(), duration(*at));
            r.insert("node".into(), int(*node));
            Value::Table(r)
        });
        t.insert("revoke".into(), Value::Array(list.collect()));
    }
    t
}

fn consensus(p: &ConsensusPlan) -> Table {
    let mut t = Table::new();
    t.insert("validators".into(), int(p.validators));
    t.insert("client_interval".into(), duration(p.client_interval));
    if let Some(d) = p.client_stop {
        t.insert("client_stop".into(), duration(d));
    }
    if p.linearizable_reads > 0 {
        t.insert("linearizable_reads".into(), int(p.linearizable_reads));
    }
    t.insert("batch_size_max".into(), int(p.batch_size_max));
    t.insert("batch_delay_max".into(), duration(p.batch_delay_max));
    t.insert("view_timeout".into(), duration(p.view_timeout));
    t.insert("votes_to_all".into(), p.votes_to_all.into());
    t.insert("skip_suspected_leaders".into(), p.skip_suspected_leaders.into());
    t.insert("checkpoint_interval".into(), int(p.checkpoint_interval));
    t.insert("log_retain_heights".into(), int(p.log_retain_heights));
    t.insert("latency_tolerance".into(), duration(p.latency_tolerance));
    t.insert("clock_skew_max".into(), duration(p.clock_skew_max));
    t.insert("confirmation_required".into(), int(p.confirmation_required));
    if !p.byzantine.is_empty() {
        let list = p
            .byzantine
            .iter()
            .map(|(node, b)| Value::String(super::byzantine_text(*node, b)))
            .collect();
        t.insert("byzantine".into(), Value::Array(list));
    }
    t
}

fn api(p: &super::ApiPlan) -> Table {
    use super::ClientRole;
    let mut t = Table::new();
    for (key, role) in [
        ("writers", ClientRole::Writer),
        ("readers", ClientRole::Reader),
        ("paced", ClientRole::Paced),
        ("eager", ClientRole::Eager),
        ("auth", ClientRole::Auth),
        ("registrars", ClientRole::Registrar),
        ("searchers", ClientRole::Searcher),
    ] {
        t.insert(key.into(), int(p.roles.iter().filter(|r| **r == role).count() as u32));
    }
    t.insert("agents_per_writer".into(), int(p.agents_per_writer));
    t.insert("registrations".into(), int(p.registrations));
    t.insert("reader_limit_max".into(), int(p.reader_limit_max));
    t.insert("interval".into(), duration(p.interval));
    t.insert("request_timeout".into(), duration(p.request_timeout));
    t.insert("client_stop".into(), duration(p.client_stop));
    t.insert("tier".into(), p.tier.clone().into());
    t.insert("backoff".into(), p.backoff.into());
    t.insert("cache_invalidation".into(), p.cache.invalidation.name().into());
    t.insert("cache_errors".into(), p.cache.on_error.name().into());
    if p.cache.entries_max == usize::MAX && p.cache.bytes_max == usize::MAX {
        t.insert("cache_bounded".into(), false.into());
    } else {
        let bound = |b: usize| Value::Integer(i64::try_from(b).unwrap_or(i64::MAX));
        t.insert("cache_entries_max".into(), bound(p.cache.entries_max));
        t.insert("cache_bytes_max".into(), bound(p.cache.bytes_max));
    }
    let refresh = match p.refresh {
        erc8004_api::view::Refresh::Incremental => "incremental".into(),
        erc8004_api::view::Refresh::Periodic(every) => duration(every),
    };
    t.insert("refresh".into(), refresh);
    if let Some((at, length)) = p.cache_down {
        t.insert("cache_down_at".into(), duration(at));
        t.insert("cache_down_for".into(), duration(length));
    }
    t.insert("pool".into(), int(p.pool));
    match p.queue_max {
        Some(max) => t.insert("queue_max".into(), int(max)),
        None => t.insert("queue_bounded".into(), false.into()),
    };
    t.insert("read_time".into(), duration(p.read_time));
    t.insert("miss_time".into(), duration(p.miss_time));
    t.insert("write_time".into(), duration(p.write_time));
    t.insert("search".into(), p.search.name().into());
    t.insert("whitespace".into(), p.whitespace.name().into());
    t.insert("row_time".into(), duration(p.row_time));
    t.insert(
        "registrations_refused_midway".into(),
        int(p.registrations_refused_midway),
    );
    t.insert("on_revert".into(), p.on_revert.name().into());
    t.insert("agent_ids".into(), p.agent_ids.name().into());
    t
}

fn swarm_table(s: &SwarmPlan) -> Table {
    let mut t = Table::new();
    let pair = |(a, b): (Duration, Duration)| Value::Array(vec![duration(a), duration(b)]);
    let counts = |(a, b): (u32, u32)| Value::Array(vec![int(a), int(b)]);
    t.insert("window".into(), pair(s.window));
    t.insert("crashes".into(), counts(s.crashes));
    t.insert("restart_after".into(), pair(s.restart_after));
    t.insert("partitions".into(), counts(s.partitions));
    t.insert("partition_duration".into(), pair(s.partition_duration));
    t.insert("pauses".into(), counts(s.pauses));
    t.insert("pause_duration".into(), pair(s.pause_duration));
    t.insert("clock_jumps".into(), counts(s.clock_jumps));
    t.insert("clock_jump_max".into(), duration(s.clock_jump_max));
    t.insert("loss_bursts".into(), counts(s.loss_bursts));
    t.insert("loss".into(), Value::Array(vec![s.loss.0.into(), s.loss.1.into()]));
    t.insert("loss_duration".into(), pair(s.loss_duration));
    t.insert("adversaries".into(), counts(s.adversaries));
    t.insert(
        "behaviours".into(),
        Value::Array(s.behaviours.iter().map(|b| Value::String(b.clone())).collect()),
    );
    t
}

fn fault(f: &FaultPlan) -> Table {
    let mut t = Table::new();
    t.insert("at".into(), duration(f.at));
    let kind = match &f.kind {
        FaultKind::Partition {
            a,
            b,
            one_way,
            duration: d,
        } => {
            t.insert("sides".into(), Value::Array(vec![selection(a), selection(b)]));
            if *one_way {
                t.insert("one_way".into(), true.into());
            }
            if let Some(d) = d {
                t.insert("duration".into(), duration(*d));
            }
            "partition"
        }
        FaultKind::Heal => "heal",
        FaultKind::Crash { nodes, restart_after } => {
            t.insert("nodes".into(), selection(nodes));
            if let Some(d) = restart_after {
                t.insert("restart_after".into(), duration(*d));
            }
            "crash"
        }
        FaultKind::Restart { nodes } => {
            t.insert("nodes".into(), selection(nodes));
            "restart"
        }
        FaultKind::Pause { nodes, duration: d } => {
            t.insert("nodes".into(), selection(nodes));
            t.insert("duration".into(), duration(*d));
            "pause"
        }
        FaultKind::ClockJump { nodes, by_ns } => {
            t.insert("nodes".into(), selection(nodes));
            t.insert("by".into(), signed(*by_ns).into());
            "clock_jump"
        }
        FaultKind::ClockCorrect { nodes } => {
            t.insert("nodes".into(), selection(nodes));
            "clock_correct"
        }
        FaultKind::Loss {
            probability,
            duration: d,
        } => {
            t.insert("probability".into(), (*probability).into());
            t.insert("duration".into(), duration(*d));
            "loss"
        }
        FaultKind::Latency {
            latency,
            jitter,
            duration: d,
        } => {
            // The file form only has constant fault latencies.
            let l = match latency {
                Latency::Constant(l) => *l,
                Latency::Uniform { max, .. } => *max,
                Latency::Normal { mean, .. } => *mean,
                Latency::Pareto { min, .. } => *min,
            };
            t.insert("latency".into(), duration(l));
            t.insert("jitter".into(), duration(*jitter));
            t.insert("duration".into(), duration(*d));
            "latency"
        }
    };
    t.insert("kind".into(), kind.into());
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{load, parse};

    #[test]
    fn every_shipped_scenario_prints_and_reads_back_unchanged() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");
        let mut checked = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "toml") {
                continue;
            }
            let original = load(&path).unwrap();
            let text = to_toml(&original);
            let mut again = parse("printed.toml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            again.path = original.path.clone();
            again.source = original.source.clone();
            assert_eq!(again, original, "{}:\n{text}", path.display());
            checked += 1;
        }
        assert!(checked >= 3);
    }

    #[test]
    fn durations_print_in_the_largest_exact_unit() {
        assert_eq!(signed(10_000_000_000), "10s");
        assert_eq!(signed(1_500_000_000), "1500ms");
        assert_eq!(signed(-2_000_000_000), "-2s");
        assert_eq!(signed(1_234_567), "1234567ns");
        assert_eq!(signed(7_200_000_000_000), "2h");
    }
}

//! Suspected defects found while writing `departures.rs`, each reproduced by a test that fails
//! today and is left ignored until the protocol is changed.

// Shared with `departures.rs`, which uses all of it.
#[allow(dead_code)]
mod support;

use std::time::Duration;

use hypermesh::membership::wire::{Body, Claim, Update};
use simulator::{FaultAction, NodeSet, SimTime};
use support::bench::{Bench, NODE};
use support::cluster::Cluster;

/// An accusation naming the last incarnation made the accused compute `u64::MAX + 1` for its
/// refutation (`refute_if_needed`): one datagram from anyone who could reach its socket panicked
/// it with overflow checks on, and without them wrapped its incarnation to 0, below the
/// accusation, so it could never refute again. An accusation that far ahead of the node's own
/// incarnation is ignored; an ordinary one after it is still refuted.
#[test]
fn an_accusation_at_the_last_incarnation_does_not_crash_or_silence_the_accused() {
    let mut bench = Bench::joined(2, 11);
    let accusation = Update {
        node: NODE,
        incarnation: u64::MAX,
        claim: Claim::Suspect { by: bench.peer(1) },
    };
    bench.deliver(1, Body::Gossip, vec![accusation]);
    bench.run_for(Duration::from_secs(1));
    let refuted_before = bench.probes_named("refute").count();
    let current = bench
        .probes_named("refute")
        .map(|(_, p)| p.value as u64)
        .max()
        .unwrap_or(1);
    let honest = Update {
        node: NODE,
        incarnation: current,
        claim: Claim::Suspect { by: bench.peer(1) },
    };
    bench.deliver(1, Body::Gossip, vec![honest]);
    bench.run_for(Duration::from_secs(1));
    let refutations: Vec<u64> = bench.probes_named("refute").map(|(_, p)| p.value as u64).collect();
    assert_eq!(
        refutations.len(),
        refuted_before + 1,
        "the honest accusation was refuted once"
    );
    assert_eq!(
        *refutations.last().unwrap(),
        current + 1,
        "at the next incarnation, not wrapped"
    );
}

/// A member that crashed and restarts with its wall clock a minute off rejoins unchecked: its
/// seed still holds it (members are never removed), so its join is taken for an exchange between
/// members and `clock_skew_max` is not applied. A fresh node as far off is refused.
#[test]
fn a_restarted_member_whose_clock_is_a_minute_off_is_refused() {
    let mut cluster = Cluster::new(12, 3);
    let node = NodeSet::from_indices([2]);
    let at = SimTime::from_millis;
    cluster.sim.schedule(at(5_000), FaultAction::Crash(node.clone()));
    cluster.sim.schedule(
        at(6_000),
        FaultAction::ClockJump {
            nodes: node.clone(),
            delta_ns: 60_000_000_000,
        },
    );
    cluster.sim.schedule(at(7_000), FaultAction::Restart(node));
    cluster.run_until(at(15_000));

    assert!(
        !cluster.probes_named(2, "join_refused").is_empty(),
        "let back in: {:?}",
        cluster.probes_named(2, "joined")
    );
}

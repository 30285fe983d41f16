//! The ground truth of a run, from what was done to its nodes: each node's start and the fault
//! schedule, as the reachability changes the membership checker replays
//! (`hypermesh::testing::truth`). Faults that do not change reachability (clock steps, link
//! changes) are left out here; they still count as the first fault.

use std::time::Duration;

use hypermesh::testing::truth::{Change, Event};
use simulator::FaultAction;

use crate::build::Derived;

/// Every start, crash, restart, pause (and its end), partition and heal of the run, in schedule
/// order.
pub fn reachability(derived: &Derived) -> Vec<Event> {
    let mut out: Vec<Event> = derived
        .start_s
        .iter()
        .enumerate()
        .map(|(i, start)| Event::new(Duration::from_secs_f64(*start), Change::Start(vec![i as u32])))
        .collect();
    for fault in &derived.schedule {
        let at = Duration::from_secs_f64(fault.at_s);
        let change = match &fault.action {
            FaultAction::Partition { a, b, one_way } => Change::Cut {
                a: a.iter().collect(),
                b: b.iter().collect(),
                one_way: *one_way,
            },
            FaultAction::Heal => Change::Heal,
            FaultAction::HealPartition { a, b, one_way } => Change::Uncut {
                a: a.iter().collect(),
                b: b.iter().collect(),
                one_way: *one_way,
            },
            FaultAction::Crash(nodes) => Change::Crash(nodes.iter().collect()),
            FaultAction::Restart(nodes) => Change::Restart(nodes.iter().collect()),
            FaultAction::Pause { nodes, duration } => {
                let nodes: Vec<u32> = nodes.iter().collect();
                out.push(Event::new(at.saturating_add(*duration), Change::Resume(nodes.clone())));
                Change::Pause(nodes)
            }
            _ => continue,
        };
        out.push(Event::new(at, change));
    }
    out
}

/// When the first injected fault fired: any fault counts, not only those that change
/// reachability (a loss burst or a clock jump may legitimately cause a suspicion), but routine
/// NTP corrections do not.
pub fn first_fault(derived: &Derived) -> Option<Duration> {
    derived
        .schedule
        .iter()
        .find(|f| f.detail != "ntp")
        .map(|f| Duration::from_secs_f64(f.at_s))
}

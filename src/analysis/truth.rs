//! The ground truth of a run, from what was done to its nodes: each node's start and the fault
//! schedule, as the reachability changes the membership checker replays
//! (`hypermesh::testing::truth`). Faults that do not change reachability (clock steps, link
//! changes) are left out here; they still count as the first fault.

use std::time::Duration;

use hypermesh::testing::truth::{Change, Event};
use simulator::{AppliedFault, FaultAction};

use crate::build::Derived;

/// Every start, crash, restart, pause (and its end), partition and heal of the run, as the
/// simulator applied them: only the nodes each action actually changed (a crash of nodes already
/// down changes nothing), and the crashes it struck at storage calls with their restarts, which
/// no schedule lists.
pub fn reachability(derived: &Derived, applied: &[AppliedFault]) -> Vec<Event> {
    let mut out: Vec<Event> = derived
        .start_s
        .iter()
        .enumerate()
        .map(|(i, start)| Event::new(Duration::from_secs_f64(*start), Change::Start(vec![i as u32])))
        .collect();
    for fault in applied {
        let at = Duration::from_nanos(fault.at.as_nanos());
        let nodes = fault.nodes.clone();
        let change = match &fault.action {
            None => Change::Crash(nodes),
            Some(FaultAction::Partition { a, b, one_way }) => Change::Cut {
                a: a.iter().collect(),
                b: b.iter().collect(),
                one_way: *one_way,
            },
            Some(FaultAction::Heal) => Change::Heal,
            Some(FaultAction::HealPartition { a, b, one_way }) => Change::Uncut {
                a: a.iter().collect(),
                b: b.iter().collect(),
                one_way: *one_way,
            },
            Some(FaultAction::Crash(_)) => Change::Crash(nodes),
            Some(FaultAction::Restart(_)) => Change::Restart(nodes),
            Some(FaultAction::Pause { duration, .. }) => {
                out.push(Event::new(at.saturating_add(*duration), Change::Resume(nodes.clone())));
                Change::Pause(nodes)
            }
            _ => continue,
        };
        if matches!(&change, Change::Crash(n) | Change::Restart(n) | Change::Pause(n) if n.is_empty()) {
            continue;
        }
        out.push(Event::new(at, change));
    }
    out.sort_by_key(|e| e.at);
    out
}

/// When the first injected fault fired: any fault counts, not only those that change
/// reachability (a loss burst or a clock jump may legitimately cause a suspicion), and so does a
/// crash struck at a storage call; routine NTP corrections do not.
pub fn first_fault(derived: &Derived, applied: &[AppliedFault]) -> Option<Duration> {
    let scheduled = derived
        .schedule
        .iter()
        .find(|f| f.detail != "ntp")
        .map(|f| Duration::from_secs_f64(f.at_s));
    let struck = applied
        .iter()
        .find(|f| f.action.is_none())
        .map(|f| Duration::from_nanos(f.at.as_nanos()));
    scheduled.into_iter().chain(struck).min()
}

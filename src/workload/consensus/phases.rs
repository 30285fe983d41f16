//! The phases of a consensus run the checker needs from the schedule: when the faults stopped
//! (liveness is judged after it) and which validators were up at the end.

use std::collections::BTreeSet;
use std::time::Duration;

use simulator::{AppliedFault, FaultAction};

use crate::build::Derived;

/// When the last fault ended: the latest restart, heal, link window's end, pause's end, clock
/// step or crash of the schedule (NTP's routine corrections aside), and of the crashes the
/// simulator struck at storage calls and their restarts. A crash never restarted ends there:
/// from then on the cluster is one validator smaller, which [`up_at_end`] accounts for.
///
/// `None` when the run has no quiet phase: a partition is never healed, or the faults go on
/// until the end. A run without faults is quiet from its start.
pub fn quiet_from(derived: &Derived, applied: &[AppliedFault], end: Duration) -> Option<Duration> {
    let schedule = &derived.schedule;
    let mut last = Duration::ZERO;
    for (i, f) in schedule.iter().enumerate() {
        if f.detail == "ntp" {
            continue;
        }
        let at = Duration::from_secs_f64(f.at_s);
        let ends = match &f.action {
            FaultAction::Partition { a, b, one_way } => {
                let healed = schedule[i + 1..].iter().find(|g| match &g.action {
                    FaultAction::Heal => true,
                    FaultAction::HealPartition {
                        a: ga,
                        b: gb,
                        one_way: go,
                    } => ga == a && gb == b && go == one_way,
                    _ => false,
                });
                Duration::from_secs_f64(healed?.at_s)
            }
            FaultAction::Pause { duration, .. } => at.saturating_add(*duration),
            // Restarts, heals and window ends are entries of their own.
            _ => at,
        };
        last = last.max(ends);
    }
    for f in applied {
        if matches!(f.action, None | Some(FaultAction::Restart(_))) {
            last = last.max(Duration::from_nanos(f.at.as_nanos()));
        }
    }
    (last < end).then_some(last)
}

/// The validators (nodes `0..validators`) up and running at `end`: started, and not left
/// crashed (by the schedule or at a storage call) or paused, as the simulator applied the faults.
pub fn up_at_end(derived: &Derived, applied: &[AppliedFault], validators: u32, end: Duration) -> BTreeSet<u32> {
    let mut up: BTreeSet<u32> = (0..validators)
        .filter(|&n| derived.starts.get(n as usize).is_some_and(|s| *s < end))
        .collect();
    for f in applied {
        let at = Duration::from_nanos(f.at.as_nanos());
        match &f.action {
            None | Some(FaultAction::Crash(_)) => f.nodes.iter().for_each(|n| {
                up.remove(n);
            }),
            Some(FaultAction::Restart(_)) => up.extend(f.nodes.iter().filter(|&&n| n < validators)),
            Some(FaultAction::Pause { duration, .. }) if at.saturating_add(*duration) >= end => {
                f.nodes.iter().for_each(|n| {
                    up.remove(n);
                })
            }
            _ => {}
        }
    }
    up
}

#[cfg(test)]
mod tests {
    use simulator::{NodeSet, SimTime};

    use super::*;
    use crate::build::ScheduledFault;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn scheduled(at_s: f64, action: FaultAction, detail: &str) -> ScheduledFault {
        ScheduledFault {
            at_s,
            kind: action.kind(),
            nodes: vec![],
            other_side: vec![],
            detail: detail.into(),
            action,
        }
    }

    fn derived(schedule: Vec<ScheduledFault>, nodes: usize) -> Derived {
        Derived {
            clock_offset_ms: vec![0.0; nodes],
            drift_ppm: vec![0.0; nodes],
            start_s: vec![0.0; nodes],
            starts: vec![Duration::ZERO; nodes],
            schedule,
            byzantine: Vec::new(),
        }
    }

    fn applied(at_s: u64, action: Option<FaultAction>, nodes: &[u32]) -> AppliedFault {
        AppliedFault {
            at: SimTime::from_millis(at_s * 1000),
            kind: action.as_ref().map_or("crash_at_io", FaultAction::kind),
            effects: nodes.len() as u64,
            nodes: nodes.to_vec(),
            action,
        }
    }

    fn set(nodes: &[u32]) -> NodeSet {
        NodeSet::from_indices(nodes.iter().copied())
    }

    #[test]
    fn the_quiet_phase_starts_when_the_last_fault_ends() {
        let cut = || FaultAction::Partition {
            a: set(&[0]),
            b: set(&[1, 2]),
            one_way: false,
        };
        let healed = || FaultAction::HealPartition {
            a: set(&[0]),
            b: set(&[1, 2]),
            one_way: false,
        };
        let schedule = vec![
            scheduled(5.0, FaultAction::Crash(set(&[1])), ""),
            scheduled(8.0, cut(), "two-way"),
            scheduled(10.0, FaultAction::Restart(set(&[1])), ""),
            scheduled(
                12.0,
                FaultAction::Pause {
                    nodes: set(&[2]),
                    duration: secs(3),
                },
                "",
            ),
            scheduled(14.0, healed(), "end"),
            scheduled(20.0, FaultAction::ClockCorrect(set(&[0, 1, 2])), "ntp"),
        ];
        let d = derived(schedule, 4);
        assert_eq!(
            quiet_from(&d, &[], secs(30)),
            Some(secs(15)),
            "the pause ends last; NTP is no fault"
        );
        // A crash struck at a storage call, and its restart, count too.
        let struck = [
            applied(17, None, &[2]),
            applied(18, Some(FaultAction::Restart(set(&[2]))), &[2]),
        ];
        assert_eq!(quiet_from(&d, &struck, secs(30)), Some(secs(18)));
        assert_eq!(quiet_from(&d, &[], secs(15)), None, "no quiet phase before the end");
        assert_eq!(quiet_from(&derived(vec![], 4), &[], secs(30)), Some(Duration::ZERO));
        let unhealed = derived(vec![scheduled(8.0, cut(), "two-way")], 4);
        assert_eq!(quiet_from(&unhealed, &[], secs(30)), None, "a partition never healed");
    }

    #[test]
    fn validators_left_crashed_or_paused_are_not_up_at_the_end() {
        let d = derived(vec![], 5);
        let log = [
            applied(1, Some(FaultAction::Crash(set(&[0, 1]))), &[0, 1]),
            applied(2, Some(FaultAction::Restart(set(&[0, 1]))), &[0, 1]),
            applied(3, Some(FaultAction::Crash(set(&[1]))), &[1]),
            applied(4, None, &[3]),
            applied(
                9,
                Some(FaultAction::Pause {
                    nodes: set(&[2]),
                    duration: secs(5),
                }),
                &[2],
            ),
        ];
        assert_eq!(up_at_end(&d, &log, 4, secs(10)), BTreeSet::from([0]));
        assert_eq!(
            up_at_end(&d, &log, 4, secs(20)),
            BTreeSet::from([0, 2]),
            "the pause ended"
        );
    }
}

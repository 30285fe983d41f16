//! The fault windows every plot shades, so a reader sees cause and effect at a glance.

use reports::Window;
use simulator::FaultAction;

use crate::build::{Derived, ScheduledFault};

/// The windows during which scheduled faults were in force.
pub fn fault_windows(derived: &Derived, end_s: f64) -> Vec<Window> {
    let mut windows = Vec::new();
    let schedule = &derived.schedule;
    for (i, f) in schedule.iter().enumerate() {
        let later = || schedule[i + 1..].iter();
        let until = |pred: &dyn Fn(&ScheduledFault) -> bool| later().find(|g| pred(g)).map_or(end_s, |g| g.at_s);
        let (end, label) = match &f.action {
            FaultAction::Partition { a, b, one_way } => (
                until(&|g| match &g.action {
                    FaultAction::Heal => true,
                    FaultAction::HealPartition {
                        a: ga,
                        b: gb,
                        one_way: go,
                    } => ga == a && gb == b && go == one_way,
                    _ => false,
                }),
                if *one_way { "one-way partition" } else { "partition" }.to_string(),
            ),
            FaultAction::Crash(_) => (
                until(&|g| g.kind == "restart" && g.nodes == f.nodes),
                format!("crash {:?}", f.nodes),
            ),
            FaultAction::Pause { duration, .. } => (f.at_s + duration.as_secs_f64(), format!("pause {:?}", f.nodes)),
            FaultAction::LinkWindow { id, .. } => (
                until(&|g| matches!(g.action, FaultAction::LinkWindowEnd { id: end } if end == *id)),
                f.detail.clone(),
            ),
            FaultAction::ClockJump { .. } => (f.at_s + end_s / 300.0, format!("clock jump {}", f.detail)),
            _ => continue,
        };
        windows.push(Window {
            start: f.at_s,
            end,
            label,
        });
    }
    windows
}

//! The membership plots: what nodes hold alive, failure-detection activity, and partition
//! awareness, over simulated time.

use std::time::Duration;

use reports::{Plot, Series};
use simulator::{FaultAction, SimTime};

use crate::workload::FinishedRun;

/// Samples per run.
const BUCKETS: usize = 200;

/// The membership plots of `run`.
pub fn plots(run: &FinishedRun<'_>) -> Vec<Plot> {
    let (probes, derived, nodes, end) = (run.probes, run.derived, run.nodes, run.end);
    let end_s = end.as_secs_f64().max(1e-9);
    let width = end_s / BUCKETS as f64;
    let mut up = vec![false; nodes];
    let mut alive_held = vec![0i64; nodes];
    let mut majority: Vec<Option<bool>> = vec![None; nodes];
    let mut suspicions = vec![0u32; BUCKETS];
    let mut deaths = vec![0u32; BUCKETS];
    let (mut mean_alive, mut nodes_up, mut with_majority, mut without_majority) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // Up/down changes from the schedule, in time order.
    let mut changes: Vec<(f64, u32, bool)> = derived
        .start_s
        .iter()
        .enumerate()
        .map(|(i, s)| (*s, i as u32, true))
        .collect();
    for f in &derived.schedule {
        match &f.action {
            FaultAction::Crash(set) => changes.extend(set.iter().map(|n| (f.at_s, n, false))),
            FaultAction::Restart(set) => changes.extend(set.iter().map(|n| (f.at_s, n, true))),
            _ => {}
        }
    }
    changes.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut next_change = 0;
    let mut next_probe = 0;
    let mut state = vec![u8::MAX; nodes * nodes];
    for bucket in 0..BUCKETS {
        let bucket_end = SimTime::from_duration(Duration::from_secs_f64(width * (bucket + 1) as f64));
        while next_change < changes.len() && changes[next_change].0 <= bucket_end.as_secs_f64() {
            let (_, n, is_up) = changes[next_change];
            let n = n as usize;
            if is_up && !up[n] {
                alive_held[n] = 0;
                majority[n] = None;
                state[n * nodes..(n + 1) * nodes].fill(u8::MAX);
            }
            up[n] = is_up;
            next_change += 1;
        }
        while next_probe < probes.len() && probes[next_probe].at <= bucket_end {
            let r = &probes[next_probe];
            next_probe += 1;
            let x = r.node as usize;
            match r.probe.name {
                "member" if (r.probe.subject as usize) < nodes => {
                    let i = x * nodes + r.probe.subject as usize;
                    let (before, after) = (state[i], r.probe.value as u8);
                    state[i] = after;
                    alive_held[x] += i64::from(after == 0) - i64::from(before == 0);
                    if after == 1 && before != 1 {
                        suspicions[bucket] += 1;
                    }
                    if after == 2 && before != 2 {
                        deaths[bucket] += 1;
                    }
                }
                "majority" => majority[x] = Some(r.probe.value != 0),
                _ => {}
            }
        }
        let t = width * (bucket + 1) as f64;
        let up_nodes: Vec<usize> = (0..nodes).filter(|&n| up[n]).collect();
        let mean = if up_nodes.is_empty() {
            0.0
        } else {
            up_nodes.iter().map(|&n| alive_held[n] as f64).sum::<f64>() / up_nodes.len() as f64
        };
        mean_alive.push((t, mean));
        nodes_up.push((t, up_nodes.len() as f64));
        with_majority.push((
            t,
            up_nodes.iter().filter(|&&n| majority[n] == Some(true)).count() as f64,
        ));
        without_majority.push((
            t,
            up_nodes.iter().filter(|&&n| majority[n] == Some(false)).count() as f64,
        ));
    }
    let per_second = |counts: &[u32]| -> Vec<(f64, f64)> {
        counts
            .iter()
            .enumerate()
            .map(|(b, c)| (width * (b + 1) as f64, f64::from(*c) / width))
            .collect()
    };
    vec![
        Plot {
            title: "Membership: what nodes hold alive".into(),
            y_label: "members".into(),
            series: vec![
                Series {
                    name: "members held alive (mean over up nodes)".into(),
                    points: mean_alive,
                },
                Series {
                    name: "nodes up".into(),
                    points: nodes_up,
                },
            ],
        },
        Plot {
            title: "Failure detection activity".into(),
            y_label: "per second".into(),
            series: vec![
                Series {
                    name: "suspicions raised".into(),
                    points: per_second(&suspicions),
                },
                Series {
                    name: "deaths declared".into(),
                    points: per_second(&deaths),
                },
            ],
        },
        Plot {
            title: "Partition awareness".into(),
            y_label: "nodes".into(),
            series: vec![
                Series {
                    name: "side holds a majority".into(),
                    points: with_majority,
                },
                Series {
                    name: "side is a minority".into(),
                    points: without_majority,
                },
            ],
        },
    ]
}

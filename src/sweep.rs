//! `testbed sweep`: one scenario over many seeds, in parallel on the local cores, shardable
//! across machines. Threads live here, in the binary: each seed's simulation is still a single
//! deterministic thread of its own.

// A sweep is timed by the OS clock (seeds per wall second); each run is handed its own clock.
#![allow(clippy::disallowed_methods)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::run::{run_scenario, RunSummary};
use crate::scenario::Scenario;

/// Seeds `first..=last`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct SeedRange {
    /// First seed.
    pub first: u64,
    /// Last seed, included.
    pub last: u64,
}

impl SeedRange {
    /// Parses `A..B` (both included: `1..1000` is a thousand seeds) or a single seed.
    pub fn parse(text: &str) -> Result<SeedRange, String> {
        let number = |s: &str| {
            s.trim()
                .parse::<u64>()
                .map_err(|_| format!("{s:?} is not a seed (a whole number)"))
        };
        let (first, last) = match text.split_once("..") {
            Some((a, b)) => (number(a)?, number(b.trim_start_matches('='))?),
            None => (number(text)?, number(text)?),
        };
        if first > last {
            return Err(format!("seed range {text:?} is reversed"));
        }
        Ok(SeedRange { first, last })
    }
}

/// Shard `index` of `count` (1-based): every `count`-th seed of the range, starting at `index`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Which shard, 1-based.
    pub index: u64,
    /// How many shards.
    pub count: u64,
}

impl Shard {
    /// Parses `I/N` with `1 <= I <= N`.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| format!("shard {text:?}: expected I/N, e.g. 1/4"))?;
        let index: u64 = i
            .trim()
            .parse()
            .map_err(|_| format!("shard {text:?}: {i:?} is not a number"))?;
        let count: u64 = n
            .trim()
            .parse()
            .map_err(|_| format!("shard {text:?}: {n:?} is not a number"))?;
        if count == 0 || index == 0 || index > count {
            return Err(format!("shard {text:?}: need 1 <= I <= N"));
        }
        Ok(Shard { index, count })
    }

    /// The seeds of `range` in this shard, in order.
    pub fn seeds(&self, range: SeedRange) -> Vec<u64> {
        (range.first..=range.last)
            .filter(|s| (s - range.first) % self.count == self.index - 1)
            .collect()
    }
}

/// What a sweep found.
pub struct SweepOutcome {
    /// Every seed's summary, in seed order.
    pub runs: Vec<RunSummary>,
    /// Wall time of the whole sweep.
    pub wall: Duration,
}

/// Runs `scenario` for every seed in `seeds` on `jobs` threads; `progress` is told how many
/// seeds are done.
pub fn sweep(scenario: &Scenario, seeds: &[u64], jobs: usize, progress: &(dyn Fn(usize) + Sync)) -> SweepOutcome {
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let results: Mutex<Vec<RunSummary>> = Mutex::new(Vec::with_capacity(seeds.len()));
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&seed) = seeds.get(i) else { break };
                let origin = Instant::now();
                let (summary, _) = run_scenario(scenario, seed, None, |_| {}, || origin.elapsed());
                results
                    .lock()
                    .expect("no thread panics while holding the lock")
                    .push(summary);
                progress(done.fetch_add(1, Ordering::Relaxed) + 1);
            });
        }
    });
    let mut runs = results.into_inner().expect("threads joined");
    runs.sort_by_key(|r| r.seed);
    SweepOutcome {
        runs,
        wall: started.elapsed(),
    }
}

/// Honest validators marked per honest node-second over a sweep, with its one-sided 95 % upper
/// bound: the figure the guide's `false_positive_target: 0.001%` (10⁻⁵ per node-second) is
/// judged against. Zero marks over N node-seconds bound the rate at about 3/N (the rule of three),
/// so a bound below the target needs at least 300,000 node-seconds.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct FalsePositiveRate {
    /// Honest validators marked, summed over seeds.
    pub marked: u64,
    /// Honest validators × simulated seconds, summed over seeds.
    pub node_seconds: f64,
    /// `marked / node_seconds`.
    pub rate: f64,
    /// The rate's one-sided 95 % upper bound (exact Poisson).
    pub upper_95: f64,
}

impl FalsePositiveRate {
    /// The sweep's rate, when every run reports `honest_marked` and `honest_validator_seconds`
    /// (the consensus workload) and they add up to some observation time.
    pub fn of(runs: &[RunSummary]) -> Option<FalsePositiveRate> {
        let mut marked = 0u64;
        let mut node_seconds = 0.0;
        for run in runs {
            marked += *run.metrics.get("honest_marked")?.as_ref()? as u64;
            node_seconds += run.metrics.get("honest_validator_seconds")?.as_ref()?;
        }
        (node_seconds > 0.0).then(|| FalsePositiveRate {
            marked,
            node_seconds,
            rate: marked as f64 / node_seconds,
            upper_95: poisson_upper(marked, 0.05) / node_seconds,
        })
    }
}

/// The mean λ at which seeing at most `k` events has probability `alpha`: the exact one-sided
/// upper confidence bound on a Poisson mean (found by bisection; the CDF falls as λ grows).
fn poisson_upper(k: u64, alpha: f64) -> f64 {
    let cdf = |lambda: f64| {
        // Σ_{i ≤ k} e^{-λ} λ^i / i!, summed in log space so that large λ does not underflow.
        let mut log_term = -lambda;
        let mut log_terms = vec![log_term];
        for i in 1..=k {
            log_term += lambda.ln() - (i as f64).ln();
            log_terms.push(log_term);
        }
        let top = log_terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (top + log_terms.iter().map(|t| (t - top).exp()).sum::<f64>().ln()).exp()
    };
    let (mut low, mut high) = (k as f64, k as f64 + 10.0 * (k as f64 + 1.0).sqrt() + 10.0);
    for _ in 0..200 {
        let mid = (low + high) / 2.0;
        if cdf(mid) > alpha {
            low = mid;
        } else {
            high = mid;
        }
    }
    (low + high) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_poisson_bound_matches_the_tables() {
        // Zero events: -ln(0.05) = 2.9957 (the rule of three); one: 4.7439; ten: 16.9622.
        assert!((poisson_upper(0, 0.05) - 2.9957).abs() < 1e-3);
        assert!((poisson_upper(1, 0.05) - 4.7439).abs() < 1e-3);
        assert!((poisson_upper(10, 0.05) - 16.9622).abs() < 1e-3);
    }

    #[test]
    fn ranges_include_both_ends() {
        assert_eq!(SeedRange::parse("1..1000").unwrap(), SeedRange { first: 1, last: 1000 });
        assert_eq!(SeedRange::parse("1..=3").unwrap(), SeedRange { first: 1, last: 3 });
        assert_eq!(SeedRange::parse("7").unwrap(), SeedRange { first: 7, last: 7 });
        assert!(SeedRange::parse("9..3").is_err());
        assert!(SeedRange::parse("a..3").is_err());
    }

    #[test]
    fn shards_partition_the_range_exactly() {
        let range = SeedRange::parse("1..1000").unwrap();
        let mut all: Vec<u64> = Vec::new();
        for i in 1..=4 {
            let shard = Shard::parse(&format!("{i}/4")).unwrap();
            let seeds = shard.seeds(range);
            assert_eq!(seeds.len(), 250);
            all.extend(seeds);
        }
        all.sort_unstable();
        assert_eq!(all, (1..=1000).collect::<Vec<_>>());
        assert!(Shard::parse("0/4").is_err() && Shard::parse("5/4").is_err() && Shard::parse("1-4").is_err());
    }
}

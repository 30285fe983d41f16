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

#[cfg(test)]
mod tests {
    use super::*;

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

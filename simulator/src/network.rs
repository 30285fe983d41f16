//! The network model: how long a datagram takes on a link, whether it arrives at all, and which
//! links are cut.

use std::time::Duration;

use runtime::{DetRng, Entropy};

use crate::NodeSet;

/// A long-tailed draw is capped here so one unlucky sample cannot stall a run forever.
pub const LATENCY_MAX: Duration = Duration::from_secs(60);

/// A one-way latency distribution.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Latency {
    /// Always the same.
    Constant(Duration),
    /// Uniform in `[min, max]`.
    Uniform {
        /// Lower bound.
        min: Duration,
        /// Upper bound.
        max: Duration,
    },
    /// Normal, truncated at zero.
    Normal {
        /// Mean.
        mean: Duration,
        /// Standard deviation.
        stddev: Duration,
    },
    /// Pareto: mostly `min`, with a heavy tail; smaller `shape` means a heavier tail.
    Pareto {
        /// Scale: the smallest value.
        min: Duration,
        /// Tail index, above 0 (1.5 to 3 is typical of real networks).
        shape: f64,
    },
}

impl Latency {
    /// One draw, capped at [`LATENCY_MAX`].
    pub fn sample(&self, rng: &mut DetRng) -> Duration {
        let d = match *self {
            Latency::Constant(d) => d,
            Latency::Uniform { min, max } => uniform(rng, min, max),
            Latency::Normal { mean, stddev } => {
                let z = standard_normal(rng);
                Duration::from_secs_f64((mean.as_secs_f64() + z * stddev.as_secs_f64()).max(0.0))
            }
            Latency::Pareto { min, shape } => {
                // Inverse transform; 1 - u is in (0, 1] so the power is finite.
                let u = 1.0 - rng.unit_f64();
                Duration::from_secs_f64((min.as_secs_f64() / libm::pow(u, 1.0 / shape)).min(LATENCY_MAX.as_secs_f64()))
            }
        };
        d.min(LATENCY_MAX)
    }
}

/// Uniform draw in `[min, max]` (either order).
pub fn uniform(rng: &mut DetRng, min: Duration, max: Duration) -> Duration {
    let (lo, hi) = if min <= max { (min, max) } else { (max, min) };
    let span = (hi - lo).as_nanos() as u64;
    if span == 0 {
        lo
    } else {
        lo + Duration::from_nanos(rng.below(span + 1))
    }
}

/// Box–Muller; one of the pair is discarded to keep the stream simple.
fn standard_normal(rng: &mut DetRng) -> f64 {
    let u1 = 1.0 - rng.unit_f64();
    let u2 = rng.unit_f64();
    // libm, not the platform's: a replay must give the same bits on every machine.
    (-2.0 * libm::log(u1)).sqrt() * libm::cos(2.0 * std::f64::consts::PI * u2)
}

/// How a link treats each datagram.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct LinkModel {
    /// Base one-way latency.
    pub latency: Latency,
    /// Extra delay, uniform in `[0, jitter]`, added to every datagram independently (so
    /// datagrams reorder whenever jitter exceeds their spacing).
    pub jitter: Duration,
    /// Probability a datagram is lost.
    pub loss: f64,
    /// Probability a datagram is delivered twice (the copy with its own delay).
    pub duplicate: f64,
    /// Probability a datagram is held back by up to `reorder_window` extra.
    pub reorder: f64,
    /// The most a reordered datagram is held back.
    pub reorder_window: Duration,
    /// Probability one bit of the payload is flipped.
    pub corrupt: f64,
    /// The sender's egress bandwidth in bytes per second; `None` is unlimited. Datagrams queue
    /// behind each other at the sender's interface.
    pub bandwidth_bytes_per_s: Option<u64>,
}

impl Default for LinkModel {
    /// A clean 1 ms link.
    fn default() -> Self {
        LinkModel {
            latency: Latency::Constant(Duration::from_millis(1)),
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_window: Duration::ZERO,
            corrupt: 0.0,
            bandwidth_bytes_per_s: None,
        }
    }
}

/// A directed cut: nothing from `from` reaches `to`.
#[derive(Clone, Debug)]
struct Cut {
    from: NodeSet,
    to: NodeSet,
}

/// A link model that applies between two sets of nodes instead of the default.
#[derive(Clone, Debug)]
pub struct LinkOverride {
    /// Senders.
    pub from: NodeSet,
    /// Receivers.
    pub to: NodeSet,
    /// The model on those links (both directions are separate overrides).
    pub model: LinkModel,
}

/// The whole network: a default link model, per-set overrides, and the cuts now in force.
#[derive(Clone, Debug, Default)]
pub struct NetworkModel {
    /// The model of every link without an override.
    pub default_link: LinkModel,
    /// Overrides, first match wins.
    pub overrides: Vec<LinkOverride>,
    cuts: Vec<Cut>,
}

impl NetworkModel {
    /// A network where every link follows `default_link`.
    pub fn new(default_link: LinkModel) -> Self {
        NetworkModel {
            default_link,
            overrides: Vec::new(),
            cuts: Vec::new(),
        }
    }

    /// The model of the link from `from` to `to`.
    pub fn link(&self, from: u32, to: u32) -> &LinkModel {
        self.overrides
            .iter()
            .find(|o| o.from.contains(from) && o.to.contains(to))
            .map_or(&self.default_link, |o| &o.model)
    }

    /// Blocks `a` → `b`, and `b` → `a` unless `one_way`.
    pub fn partition(&mut self, a: NodeSet, b: NodeSet, one_way: bool) {
        if !one_way {
            self.cuts.push(Cut {
                from: b.clone(),
                to: a.clone(),
            });
        }
        self.cuts.push(Cut { from: a, to: b });
    }

    /// Removes every cut: whether there was one.
    pub fn heal(&mut self) -> bool {
        let had = !self.cuts.is_empty();
        self.cuts.clear();
        had
    }

    /// Whether a datagram from `from` to `to` is blocked by a cut now.
    pub fn is_cut(&self, from: u32, to: u32) -> bool {
        self.cuts.iter().any(|c| c.from.contains(from) && c.to.contains(to))
    }

    /// Whether any cut is in force.
    pub fn has_cuts(&self) -> bool {
        !self.cuts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_way_partition_blocks_one_direction() {
        let mut net = NetworkModel::default();
        net.partition(NodeSet::from_indices([0]), NodeSet::from_indices([1]), true);
        assert!(net.is_cut(0, 1));
        assert!(!net.is_cut(1, 0));
        net.heal();
        assert!(!net.is_cut(0, 1));
    }

    #[test]
    fn samples_stay_within_their_distribution() {
        let mut rng = DetRng::seed_from_u64(9);
        let uni = Latency::Uniform {
            min: Duration::from_millis(2),
            max: Duration::from_millis(5),
        };
        let normal = Latency::Normal {
            mean: Duration::from_millis(10),
            stddev: Duration::from_millis(50),
        };
        let pareto = Latency::Pareto {
            min: Duration::from_millis(1),
            shape: 1.2,
        };
        for _ in 0..10_000 {
            let u = uni.sample(&mut rng);
            assert!(u >= Duration::from_millis(2) && u <= Duration::from_millis(5));
            let _ = normal.sample(&mut rng); // truncated at zero: never panics on negatives
            let p = pareto.sample(&mut rng);
            assert!(p >= Duration::from_millis(1) && p <= LATENCY_MAX);
        }
    }

    #[test]
    fn overrides_win_over_the_default() {
        let mut net = NetworkModel::default();
        let slow = LinkModel {
            latency: Latency::Constant(Duration::from_millis(80)),
            ..LinkModel::default()
        };
        net.overrides.push(LinkOverride {
            from: NodeSet::from_indices([2]),
            to: NodeSet::from_indices([3]),
            model: slow,
        });
        assert_eq!(net.link(2, 3).latency, Latency::Constant(Duration::from_millis(80)));
        assert_eq!(net.link(3, 2).latency, Latency::Constant(Duration::from_millis(1)));
    }
}

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

/// A partition in force: nothing from `a` reaches `b`, nor from `b` to `a` unless `one_way`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Partition {
    a: NodeSet,
    b: NodeSet,
    one_way: bool,
}

impl Partition {
    fn blocks(&self, from: u32, to: u32) -> bool {
        (self.a.contains(from) && self.b.contains(to))
            || (!self.one_way && self.b.contains(from) && self.a.contains(to))
    }
}

/// What a link window changes while it is open; every other setting stays as it was.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum LinkChange {
    /// Every datagram is lost with this probability.
    Loss(f64),
    /// Latency and jitter become these.
    Latency {
        /// The latency distribution.
        latency: Latency,
        /// Extra uniform delay per datagram.
        jitter: Duration,
    },
}

impl LinkChange {
    fn apply(&self, link: &mut LinkModel) {
        match *self {
            LinkChange::Loss(p) => link.loss = p,
            LinkChange::Latency { latency, jitter } => {
                link.latency = latency;
                link.jitter = jitter;
            }
        }
    }
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

/// The whole network: a default link model, per-set overrides, the partitions in force and the
/// link windows open.
///
/// Faults compose: partitions stack and each ends on its own ([`NetworkModel::heal_partition`]),
/// and link windows stack in the order they opened, each changing only what it names, so
/// closing one restores what the others still say rather than the scenario's base link.
#[derive(Clone, Debug, Default)]
pub struct NetworkModel {
    /// The model of every link without an override, before windows.
    base_link: LinkModel,
    /// `base_link` with every open window applied.
    default_link: LinkModel,
    /// Overrides, first match wins.
    pub overrides: Vec<LinkOverride>,
    partitions: Vec<Partition>,
    windows: Vec<(u64, LinkChange)>,
}

impl NetworkModel {
    /// A network where every link follows `default_link`.
    pub fn new(default_link: LinkModel) -> Self {
        NetworkModel {
            base_link: default_link,
            default_link,
            overrides: Vec::new(),
            partitions: Vec::new(),
            windows: Vec::new(),
        }
    }

    /// The model of the link from `from` to `to`.
    pub fn link(&self, from: u32, to: u32) -> &LinkModel {
        self.overrides
            .iter()
            .find(|o| o.from.contains(from) && o.to.contains(to))
            .map_or(&self.default_link, |o| &o.model)
    }

    /// The model of every link without an override, open windows applied.
    pub fn default_link(&self) -> &LinkModel {
        &self.default_link
    }

    /// Replaces the base model (windows still apply over it): whether the effective model changed.
    pub fn set_base_link(&mut self, model: LinkModel) -> bool {
        self.base_link = model;
        self.recompute()
    }

    /// Opens link window `id` changing `change`: whether the effective model changed.
    pub fn open_window(&mut self, id: u64, change: LinkChange) -> bool {
        self.windows.push((id, change));
        self.recompute()
    }

    /// Closes link window `id`, if open: whether the effective model changed.
    pub fn close_window(&mut self, id: u64) -> bool {
        let Some(i) = self.windows.iter().position(|(w, _)| *w == id) else {
            return false;
        };
        self.windows.remove(i);
        self.recompute()
    }

    fn recompute(&mut self) -> bool {
        let mut link = self.base_link;
        for (_, change) in &self.windows {
            change.apply(&mut link);
        }
        let changed = link != self.default_link;
        self.default_link = link;
        changed
    }

    /// Blocks `a` → `b`, and `b` → `a` unless `one_way`, until this partition is healed.
    pub fn partition(&mut self, a: NodeSet, b: NodeSet, one_way: bool) {
        self.partitions.push(Partition { a, b, one_way });
    }

    /// Ends one partition between exactly these sides, leaving any other in force: whether one
    /// was in force.
    pub fn heal_partition(&mut self, a: &NodeSet, b: &NodeSet, one_way: bool) -> bool {
        let Some(i) = self
            .partitions
            .iter()
            .position(|p| p.a == *a && p.b == *b && p.one_way == one_way)
        else {
            return false;
        };
        self.partitions.remove(i);
        true
    }

    /// Ends every partition: whether there was one.
    pub fn heal(&mut self) -> bool {
        let had = !self.partitions.is_empty();
        self.partitions.clear();
        had
    }

    /// Whether a datagram from `from` to `to` is blocked by a partition now.
    pub fn is_cut(&self, from: u32, to: u32) -> bool {
        self.partitions.iter().any(|p| p.blocks(from, to))
    }

    /// Whether any partition is in force.
    pub fn has_cuts(&self) -> bool {
        !self.partitions.is_empty()
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
    fn overlapping_partitions_end_independently() {
        let mut net = NetworkModel::default();
        let (a, b, c) = (
            NodeSet::from_indices([0]),
            NodeSet::from_indices([1]),
            NodeSet::from_indices([2]),
        );
        net.partition(a.clone(), b.clone(), false);
        net.partition(a.clone(), c.clone(), false);
        assert!(net.heal_partition(&a, &b, false));
        assert!(!net.is_cut(0, 1), "the first partition ended");
        assert!(net.is_cut(0, 2) && net.is_cut(2, 0), "the second is still in force");
        assert!(!net.heal_partition(&a, &b, false), "nothing left to heal there");
        assert!(net.heal_partition(&a, &c, false));
        assert!(!net.has_cuts());
    }

    #[test]
    fn overlapping_link_windows_stack_and_close_independently() {
        let base = LinkModel {
            loss: 0.01,
            ..LinkModel::default()
        };
        let slow = Latency::Constant(Duration::from_millis(200));
        let mut net = NetworkModel::new(base);
        assert!(net.open_window(1, LinkChange::Loss(0.3)));
        assert!(net.open_window(
            2,
            LinkChange::Latency {
                latency: slow,
                jitter: Duration::ZERO
            }
        ));
        assert_eq!((net.default_link().loss, net.default_link().latency), (0.3, slow));
        // The loss window ends: its loss goes, the latency window's latency stays.
        assert!(net.close_window(1));
        assert_eq!((net.default_link().loss, net.default_link().latency), (0.01, slow));
        assert!(net.close_window(2));
        assert_eq!(*net.default_link(), base);
        assert!(!net.close_window(2), "already closed");
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

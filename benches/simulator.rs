//! Criterion benches of the simulator's hot paths, each beside an anchor measured in the same run:
//!
//! - `event_queue`: the classic "hold" model (pop the earliest event, push one a random delay
//!   later) on a queue holding `pending` events, for the simulator's [`EventQueue`] and for a
//!   plain `BinaryHeap` keyed on (time, sequence), with delays either all distinct (jittered
//!   links) or in 1 ms steps (constant-latency links, where many events share an instant).
//! - `network_delivery`: the all-to-all flood of `testbed bench simspeed` at 50 hosts for one
//!   simulated second: send, link model, queue, delivery and trace hash per datagram, over a clean
//!   1 ms link and over a faulty one (jitter, loss, duplication, reordering).
//!
//! Run: `cargo bench --bench simulator` (add `-- event_queue` to pick one group).

// A test (or bench) of real processes and sockets: it reads the OS clock and starts threads.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]
// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use runtime::{DetRng, Entropy};
use simulator::queue::EventQueue;
use simulator::{flood, Latency, LinkModel, SimTime};

/// About the size of the simulator's own event: addresses, a payload handle, node indices.
#[derive(Clone, Copy)]
struct Payload([u64; 10]);

/// The anchor: what a simulator gets from std alone.
#[derive(Default)]
struct PlainHeap {
    heap: BinaryHeap<Reverse<(SimTime, u64, PayloadOrd)>>,
    seq: u64,
}

/// `Payload` made orderable as a never-consulted tiebreak (sequence numbers are unique).
struct PayloadOrd(Payload);
impl PartialEq for PayloadOrd {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for PayloadOrd {}
impl PartialOrd for PayloadOrd {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for PayloadOrd {
    fn cmp(&self, _: &Self) -> std::cmp::Ordering {
        std::cmp::Ordering::Equal
    }
}

trait Queue {
    fn push(&mut self, at: SimTime, p: Payload);
    fn pop(&mut self) -> Option<(SimTime, Payload)>;
}

impl Queue for EventQueue<Payload> {
    fn push(&mut self, at: SimTime, p: Payload) {
        EventQueue::push(self, at, p);
    }
    fn pop(&mut self) -> Option<(SimTime, Payload)> {
        EventQueue::pop(self)
    }
}

impl Queue for PlainHeap {
    fn push(&mut self, at: SimTime, p: Payload) {
        self.seq += 1;
        self.heap.push(Reverse((at, self.seq, PayloadOrd(p))));
    }
    fn pop(&mut self) -> Option<(SimTime, Payload)> {
        self.heap.pop().map(|Reverse((at, _, p))| (at, p.0))
    }
}

#[derive(Clone, Copy)]
enum Delays {
    /// Uniform nanoseconds in [0, 10 ms]: every event its own instant.
    Distinct,
    /// Whole milliseconds in [1, 10]: many events per instant.
    Stepped,
}

impl Delays {
    fn draw(self, rng: &mut DetRng) -> Duration {
        match self {
            Delays::Distinct => Duration::from_nanos(rng.below(10_000_000)),
            Delays::Stepped => Duration::from_millis(1 + rng.below(10)),
        }
    }
}

/// Runs `iters` hold operations on a queue primed with `pending` events; returns the time taken.
fn hold<Q: Queue>(mut q: Q, pending: usize, delays: Delays, iters: u64) -> Duration {
    let mut rng = DetRng::seed_from_u64(7);
    let payload = Payload([0; 10]);
    for _ in 0..pending {
        q.push(SimTime::ZERO.after(delays.draw(&mut rng)), payload);
    }
    let mut sink = 0u64;
    let start = Instant::now();
    for _ in 0..iters {
        let (now, p) = q.pop().expect("the queue never drains in the hold model");
        sink = sink.wrapping_add(p.0[0]);
        q.push(now.after(delays.draw(&mut rng)), p);
    }
    let took = start.elapsed();
    std::hint::black_box(sink);
    took
}

fn event_queue(c: &mut Criterion) {
    let mut group = c.benchmark_group("event_queue");
    group.throughput(Throughput::Elements(1));
    for pending in [1_000usize, 100_000] {
        for (name, delays) in [("distinct", Delays::Distinct), ("stepped", Delays::Stepped)] {
            let case = format!("{name}/{pending}");
            group.bench_with_input(BenchmarkId::new("EventQueue", &case), &pending, |b, &n| {
                b.iter_custom(|iters| hold(EventQueue::new(), n, delays, iters))
            });
            group.bench_with_input(BenchmarkId::new("BinaryHeap", &case), &pending, |b, &n| {
                b.iter_custom(|iters| hold(PlainHeap::default(), n, delays, iters))
            });
        }
    }
    group.finish();
}

fn network_delivery(c: &mut Criterion) {
    const HOSTS: u32 = 50;
    let mut group = c.benchmark_group("network_delivery");
    group.sample_size(20);
    group.throughput(Throughput::Elements(
        u64::from(HOSTS) * u64::from(HOSTS - 1) * flood::ROUNDS_PER_SECOND,
    ));
    let faulty = LinkModel {
        latency: Latency::Uniform {
            min: Duration::from_millis(1),
            max: Duration::from_millis(5),
        },
        jitter: Duration::from_millis(2),
        loss: 0.01,
        duplicate: 0.01,
        reorder: 0.01,
        reorder_window: Duration::from_millis(10),
        ..LinkModel::default()
    };
    for (name, link) in [("clean_1ms", LinkModel::default()), ("faulty", faulty)] {
        group.bench_function(BenchmarkId::new("flood_50_hosts_1s", name), |b| {
            b.iter(|| flood::run(HOSTS, 1, link, Duration::default))
        });
    }
    group.finish();
}

criterion_group!(benches, event_queue, network_delivery);
criterion_main!(benches);

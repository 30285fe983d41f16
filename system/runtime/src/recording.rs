//! [`RecordingEnv`]: an [`Env`](crate::Env) for unit tests of one actor, with nothing behind it.
//!
//! Time stands still until the test moves it, timers and sends are recorded rather than acted
//! on, storage is in memory and entropy is seeded: a test calls the actor, then reads what it
//! did (`sent`, `timers`, `probes`) and decides what happens next (`advance_to`, `due_timers`).
//! For several nodes talking, use the simulator.

use std::net::SocketAddr;

use bytes::Bytes;

use crate::{
    AddressFamily, Clock, Datagrams, DetRng, Entropy, Instant, MemStorage, Probe, Probes, SendError, TimerToken,
    Timers, WallTime, MAX_DATAGRAM_BYTES,
};

/// A recording environment: see the module documentation.
pub struct RecordingEnv {
    /// The node's addresses.
    pub addrs: Vec<SocketAddr>,
    /// The monotonic clock.
    pub now: Instant,
    /// The wall clock at `now == Instant::ZERO`; it moves with `now`.
    pub wall_epoch: WallTime,
    /// Datagrams sent, in order.
    pub sent: Vec<(SocketAddr, Bytes)>,
    /// Timers set and not yet taken by [`RecordingEnv::due_timers`], in the order set.
    pub timers: Vec<(Instant, TimerToken)>,
    /// Probes recorded, in order.
    pub probes: Vec<Probe>,
    /// The node's files.
    pub storage: MemStorage,
    /// What [`Datagrams::more_datagrams_follow`] answers: set it to hand an actor a batch.
    pub more_follow: bool,
    rng: DetRng,
}

impl RecordingEnv {
    /// A node at `addr`, with entropy seeded by `seed`, at time zero.
    pub fn new(addr: SocketAddr, seed: u64) -> Self {
        RecordingEnv {
            addrs: vec![addr],
            now: Instant::ZERO,
            wall_epoch: WallTime::from_unix_nanos(1_700_000_000_000_000_000),
            sent: Vec::new(),
            timers: Vec::new(),
            probes: Vec::new(),
            storage: MemStorage::default(),
            more_follow: false,
            rng: DetRng::seed_from_u64(seed),
        }
    }

    /// Moves the clock to `at` (never backwards).
    pub fn advance_to(&mut self, at: Instant) {
        assert!(at >= self.now, "the monotonic clock never goes back");
        self.now = at;
    }

    /// Takes every timer due at `now`, earliest first (ties in the order set).
    pub fn due_timers(&mut self) -> Vec<TimerToken> {
        let mut due: Vec<(Instant, usize, TimerToken)> = Vec::new();
        let mut kept = Vec::new();
        for (i, (at, token)) in self.timers.drain(..).enumerate() {
            if at <= self.now {
                due.push((at, i, token));
            } else {
                kept.push((at, token));
            }
        }
        self.timers = kept;
        due.sort_unstable();
        due.into_iter().map(|(_, _, token)| token).collect()
    }

    /// The earliest pending timer's deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.iter().map(|(at, _)| *at).min()
    }

    /// Takes the datagrams sent so far.
    pub fn take_sent(&mut self) -> Vec<(SocketAddr, Bytes)> {
        std::mem::take(&mut self.sent)
    }

    /// The probes named `name` recorded so far.
    pub fn probes_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Probe> + 'a {
        self.probes.iter().filter(move |p| p.name == name)
    }
}

impl Clock for RecordingEnv {
    fn now(&self) -> Instant {
        self.now
    }
    fn wall_now(&self) -> WallTime {
        WallTime::from_unix_nanos(self.wall_epoch.as_unix_nanos() + self.now.as_nanos() as i64)
    }
}

impl Timers for RecordingEnv {
    fn set_timer(&mut self, at: Instant, token: TimerToken) {
        self.timers.push((at, token));
    }
}

impl Datagrams for RecordingEnv {
    fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }
    fn more_datagrams_follow(&self) -> bool {
        self.more_follow
    }
    fn send_to(&mut self, to: SocketAddr, payload: Bytes) -> Result<(), SendError> {
        let family = AddressFamily::of(&to);
        if !self.addrs.iter().any(|a| AddressFamily::of(a) == family) {
            return Err(SendError::AddressFamilyNotSupported { to, family });
        }
        if payload.len() > MAX_DATAGRAM_BYTES {
            return Err(SendError::TooLarge {
                len: payload.len(),
                max: MAX_DATAGRAM_BYTES,
            });
        }
        self.sent.push((to, payload));
        Ok(())
    }
}

impl Entropy for RecordingEnv {
    fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }
}

crate::delegate_storage!([] RecordingEnv, |this| this.storage);

impl Probes for RecordingEnv {
    fn probe(&mut self, probe: Probe) {
        self.probes.push(probe);
    }
}

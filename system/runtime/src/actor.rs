//! The sans-IO actor and the environment a backend hands it.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};

use crate::{Entropy, Instant, Probe, SendError, Storage, WallTime};

/// An opaque value an actor attaches to a timer so it knows which one fired.
pub type TimerToken = u64;

/// Time as one node perceives it.
pub trait Clock {
    /// The node's monotonic clock: never jumps, may run fast or slow (drift).
    fn now(&self) -> Instant;
    /// The node's wall clock: may be offset, drift, and be stepped by time correction.
    fn wall_now(&self) -> WallTime;
}

/// One-shot timers on the node's monotonic clock.
pub trait Timers {
    /// Calls the actor's [`Actor::on_timer`] with `token` once the node's clock reaches `at`
    /// (immediately after the current call if `at` is already past). There is no cancel: an actor
    /// ignores tokens it no longer cares about, which keeps every backend's bookkeeping bounded
    /// and identical.
    fn set_timer(&mut self, at: Instant, token: TimerToken);
}

/// Unreliable datagrams between socket addresses (UDP semantics: loss, duplication, reordering).
pub trait Datagrams {
    /// The addresses this node's sockets are bound to, at most one per address family.
    fn local_addrs(&self) -> &[SocketAddr];
    /// Hands `payload` to the network for `to`, from this node's socket of `to`'s family.
    fn send_to(&mut self, to: SocketAddr, payload: Bytes) -> Result<(), SendError>;

    /// Whether more received datagrams follow this one at once (they came in one system call):
    /// an actor may then defer work that is cheaper done once per batch, such as deciding what
    /// to send, to the last of them. The simulator hands datagrams over one at a time: `false`.
    fn more_datagrams_follow(&self) -> bool {
        false
    }

    /// How many datagrams one [`Datagrams::send_segments`] call may carry: above 1 where the
    /// backend offloads segmentation to the kernel (Linux UDP GSO), 1 otherwise.
    fn max_segments(&self) -> usize {
        1
    }

    /// Sends `payload` to `to` as consecutive datagrams of `segment_size` bytes each (the last
    /// may be shorter), at most [`Datagrams::max_segments`] of them. The network sees exactly
    /// what as many `send_to` calls would send, which is what this default does; a backend with
    /// segmentation offload hands them to the kernel in one system call.
    fn send_segments(&mut self, to: SocketAddr, payload: Bytes, segment_size: usize) -> Result<(), SendError> {
        let segment_size = segment_size.max(1);
        let mut at = 0;
        while at < payload.len() {
            let end = (at + segment_size).min(payload.len());
            self.send_to(to, payload.slice(at..end))?;
            at = end;
        }
        Ok(())
    }
}

/// Observations the actor reports to whoever runs it.
pub trait Probes {
    /// Records `probe` at the current time.
    fn probe(&mut self, probe: Probe);
}

/// Everything an actor may touch, in one object-safe bundle.
pub trait Env: Clock + Timers + Datagrams + Entropy + Storage + Probes {}

impl<T: Clock + Timers + Datagrams + Entropy + Storage + Probes + ?Sized> Env for T {}

/// A protocol state machine. Backends call it with input; it answers through the [`Env`].
///
/// Calls never overlap and each runs to completion, so an actor needs no locks. An actor that is
/// restarted after a crash is built afresh and must recover from [`Storage`] alone.
pub trait Actor {
    /// Called once when the node (re)starts.
    fn on_start(&mut self, env: &mut dyn Env);
    /// Called for every datagram that reaches one of the node's sockets.
    fn on_datagram(&mut self, env: &mut dyn Env, from: SocketAddr, payload: Bytes);
    /// Called instead of [`Actor::on_datagram`] by a backend that receives a run of datagrams
    /// into one buffer (a GRO batch) and hands each over as its own mutable view of it, without
    /// a copy: the actor may change the bytes in place (a QUIC endpoint decrypts them there).
    /// Keeping any part of `payload` keeps the whole run's buffer alive, so the default copies
    /// the datagram into bytes of its own and calls `on_datagram`; an actor overrides this only
    /// where it uses the bytes briefly or in place.
    fn on_datagram_owned(&mut self, env: &mut dyn Env, from: SocketAddr, payload: BytesMut) {
        self.on_datagram(env, from, Bytes::copy_from_slice(&payload));
    }
    /// Called when a timer set with [`Timers::set_timer`] fires.
    fn on_timer(&mut self, env: &mut dyn Env, token: TimerToken);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RecordingEnv;

    /// Keeps every datagram it is given.
    struct Keeper(Vec<Bytes>);

    impl Actor for Keeper {
        fn on_start(&mut self, _env: &mut dyn Env) {}
        fn on_datagram(&mut self, _env: &mut dyn Env, _from: SocketAddr, payload: Bytes) {
            self.0.push(payload);
        }
        fn on_timer(&mut self, _env: &mut dyn Env, _token: TimerToken) {}
    }

    #[test]
    fn a_view_of_a_run_reaches_an_actor_that_keeps_it_as_bytes_of_its_own() {
        let mut run = BytesMut::from(&[1u8, 1, 1, 2, 2, 2][..]);
        let first = run.split_to(3);
        let mut keeper = Keeper(Vec::new());
        let mut env = RecordingEnv::new("[::1]:1".parse().expect("address"), 0);
        keeper.on_datagram_owned(&mut env, "[::1]:9".parse().expect("address"), first);
        let kept = keeper.0.pop().expect("delivered");
        assert_eq!(&kept[..], &[1, 1, 1]);
        // Nobody else holds its bytes: keeping it does not keep the run's buffer.
        assert!(kept.try_into_mut().is_ok());
        assert_eq!(&run[..], &[2, 2, 2]);
    }
}

//! The io_uring driver and the default one under the same actor contract: datagrams both ways,
//! segmented sends split into datagrams (each handed over whole, as its own view of a GRO run
//! or as a copy), timers, shutdown.

// A test (or bench) of real processes and sockets: it reads the OS clock and starts threads.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use runtime::{Actor, Env, Instant};
use runtime_tokio::{run_node, run_node_uring, BackendError, NodeSpec, NodeStats};
use tokio::sync::watch;

/// Node 0 sends `count` datagrams to node 1 (half of them as one segmented send) and a timer
/// ticks; node 1 echoes each back; node 0 reports what came back.
struct Echo {
    peer: Option<SocketAddr>,
    got: usize,
    count: usize,
    ticks: usize,
    report: Option<mpsc::Sender<(usize, usize)>>,
    /// How long the echo keeps its thread busy before its loop first waits: what the client
    /// sends meanwhile piles up in the socket.
    stall: Duration,
}

impl Actor for Echo {
    fn on_start(&mut self, env: &mut dyn Env) {
        std::thread::sleep(self.stall);
        if let Some(peer) = self.peer {
            for i in 0..self.count / 2 {
                env.send_to(peer, Bytes::from(vec![i as u8; 100])).unwrap();
            }
            // The other half as one run of equal-size datagrams, each its own byte value.
            let run: Vec<u8> = (0..self.count / 2).flat_map(|i| vec![100 + i as u8; 100]).collect();
            let run = Bytes::from(run);
            env.send_segments(peer, run, 100).unwrap();
            env.set_timer(env.now() + Duration::from_millis(10), 1);
        }
    }
    fn on_datagram(&mut self, env: &mut dyn Env, from: SocketAddr, payload: Bytes) {
        if self.peer.is_none() {
            env.send_to(from, payload).unwrap();
            return;
        }
        assert_eq!(payload.len(), 100);
        assert!(
            payload.iter().all(|b| *b == payload[0]),
            "a datagram cut across a run's segments"
        );
        self.got += 1;
        self.maybe_report();
    }
    fn on_datagram_owned(&mut self, env: &mut dyn Env, from: SocketAddr, payload: BytesMut) {
        // The echo sends the view itself back; the client takes the default (a copy).
        if self.peer.is_none() {
            env.send_to(from, payload.freeze()).unwrap();
        } else {
            self.on_datagram(env, from, payload.freeze());
        }
    }
    fn on_timer(&mut self, env: &mut dyn Env, _token: u64) {
        self.ticks += 1;
        if self.ticks < 5 {
            env.set_timer(env.now() + Duration::from_millis(10), 1);
        }
        self.maybe_report();
        let _ = Instant::ZERO;
    }
}

impl Echo {
    fn maybe_report(&mut self) {
        if self.got == self.count && self.ticks >= 5 {
            if let Some(r) = self.report.take() {
                let _ = r.send((self.got, self.ticks));
            }
        }
    }
}

/// Builds a node's actor once its addresses are bound.
type Make = Box<dyn FnOnce(&[SocketAddr]) -> Box<dyn Actor + Send> + Send>;

/// Runs one node on a driver until told to stop.
type Run = fn(usize, &NodeSpec, Make, watch::Receiver<bool>) -> Result<NodeStats, BackendError>;

fn uring(node: usize, spec: &NodeSpec, make: Make, stop: watch::Receiver<bool>) -> Result<NodeStats, BackendError> {
    run_node_uring(node, spec, make, stop, None)
}

fn default(node: usize, spec: &NodeSpec, make: Make, stop: watch::Receiver<bool>) -> Result<NodeStats, BackendError> {
    run_node(node, spec, make, stop, None)
}

#[test]
fn datagrams_segments_and_timers_work_on_the_io_uring_driver() {
    echo_over(uring, "uring", 20, Duration::ZERO);
}

#[test]
fn datagrams_segments_and_timers_work_on_the_default_driver() {
    echo_over(default, "default", 20, Duration::ZERO);
}

#[test]
fn a_burst_beyond_the_io_uring_receive_buffers_waits_in_the_socket_and_arrives_whole() {
    // More messages at once than the ring has buffers: the multishot receive runs out, ends,
    // and is armed again; nothing is lost.
    let burst = 4 * usize::from(runtime_tokio::RECV_BUFFERS);
    let (echo, _) = echo_over(uring, "uring-burst", burst, Duration::from_millis(300));
    assert!(echo.receives_rearmed > 0, "the burst never ran the ring dry: {echo:?}");
}

/// Runs the echo over `run` with `count` datagrams, the echo stalling `stall` at start; returns
/// the echo's and the client's stats.
fn echo_over(run: Run, name: &str, count: usize, stall: Duration) -> (NodeStats, NodeStats) {
    let dir = std::env::temp_dir().join(format!("{name}-driver-test-{}", std::process::id()));
    let spec = NodeSpec::new(vec!["[::1]:0".parse().unwrap()], &dir);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (addr_tx, addr_rx) = mpsc::channel();
    let echo_spec = spec.clone();
    let echo_stop = stop_rx.clone();
    let echo = std::thread::spawn(move || {
        run(
            0,
            &echo_spec,
            Box::new(move |addrs: &[SocketAddr]| -> Box<dyn Actor + Send> {
                addr_tx.send(addrs[0]).unwrap();
                Box::new(Echo {
                    peer: None,
                    got: 0,
                    count: 0,
                    ticks: 0,
                    report: None,
                    stall,
                })
            }),
            echo_stop,
        )
    });
    let echo_addr = addr_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let (report_tx, report_rx) = mpsc::channel();
    let client = std::thread::spawn(move || {
        run(
            1,
            &spec,
            Box::new(move |_: &[SocketAddr]| -> Box<dyn Actor + Send> {
                Box::new(Echo {
                    peer: Some(echo_addr),
                    got: 0,
                    count,
                    ticks: 0,
                    report: Some(report_tx),
                    stall: Duration::ZERO,
                })
            }),
            stop_rx,
        )
    });
    let outcome = report_rx.recv_timeout(Duration::from_secs(10));
    stop_tx.send(true).unwrap();
    let echo_stats = echo.join().unwrap().unwrap();
    let client_stats = client.join().unwrap().unwrap();
    assert_eq!(outcome, Ok((count, 5)), "echo {echo_stats:?} client {client_stats:?}");
    assert_eq!(echo_stats.datagrams_received, count as u64);
    (echo_stats, client_stats)
}

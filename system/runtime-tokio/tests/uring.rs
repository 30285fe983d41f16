//! The io_uring driver under the same actor contract as the default one: datagrams both ways,
//! segmented sends split into datagrams, timers, shutdown.

// A test (or bench) of real processes and sockets: it reads the OS clock and starts threads.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use runtime::{Actor, Env, Instant};
use runtime_tokio::{run_node_uring, NodeSpec};
use tokio::sync::watch;

/// Node 0 sends `count` datagrams to node 1 (half of them as one segmented send) and a timer
/// ticks; node 1 echoes each back; node 0 reports what came back.
struct Echo {
    peer: Option<SocketAddr>,
    got: usize,
    count: usize,
    ticks: usize,
    report: Option<mpsc::Sender<(usize, usize)>>,
}

impl Actor for Echo {
    fn on_start(&mut self, env: &mut dyn Env) {
        if let Some(peer) = self.peer {
            for i in 0..self.count / 2 {
                env.send_to(peer, Bytes::from(vec![i as u8; 100])).unwrap();
            }
            // The other half as one run of equal-size datagrams.
            let run = Bytes::from(vec![7u8; 100 * (self.count / 2)]);
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
        self.got += 1;
        self.maybe_report();
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

#[test]
fn datagrams_segments_and_timers_work_on_the_io_uring_driver() {
    let dir = std::env::temp_dir().join(format!("uring-test-{}", std::process::id()));
    let spec = NodeSpec::new(vec!["[::1]:0".parse().unwrap()], &dir);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (addr_tx, addr_rx) = mpsc::channel();
    let echo_spec = spec.clone();
    let echo_stop = stop_rx.clone();
    let echo = std::thread::spawn(move || {
        run_node_uring(
            0,
            &echo_spec,
            move |addrs| {
                addr_tx.send(addrs[0]).unwrap();
                Box::new(Echo {
                    peer: None,
                    got: 0,
                    count: 0,
                    ticks: 0,
                    report: None,
                })
            },
            echo_stop,
            None,
        )
    });
    let echo_addr = addr_rx.recv_timeout(Duration::from_secs(5)).unwrap();
    let (report_tx, report_rx) = mpsc::channel();
    let client = std::thread::spawn(move || {
        run_node_uring(
            1,
            &spec,
            move |_| {
                Box::new(Echo {
                    peer: Some(echo_addr),
                    got: 0,
                    count: 20,
                    ticks: 0,
                    report: Some(report_tx),
                })
            },
            stop_rx,
            None,
        )
    });
    let outcome = report_rx.recv_timeout(Duration::from_secs(10));
    stop_tx.send(true).unwrap();
    let echo_stats = echo.join().unwrap().unwrap();
    let client_stats = client.join().unwrap().unwrap();
    assert_eq!(outcome, Ok((20, 5)), "echo {echo_stats:?} client {client_stats:?}");
    assert_eq!(echo_stats.datagrams_received, 20);
}

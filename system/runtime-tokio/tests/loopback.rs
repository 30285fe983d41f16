//! The backend on real sockets: every test talks only to loopback and finishes in well under 2 s.

// A test (or bench) of real processes and sockets: it reads the OS clock and starts threads.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use runtime::{
    Actor, AddressFamily, Datagrams, Duration as RtDuration, Env, Instant, Probe, SendError, Storage, TimerToken,
};
use runtime_tokio::{run_node, BackendError, LocalCluster, NodeSpec, ProbeRecord, RealEnv};
use tokio::sync::{mpsc, watch};

const TIMEOUT: Duration = Duration::from_millis(1500);

struct TestDir(PathBuf);

impl TestDir {
    fn new(label: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("runtime-tokio-it-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        TestDir(path)
    }

    fn node(&self, i: usize) -> PathBuf {
        self.0.join(format!("node-{i}"))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn v6_spec(dir: &TestDir, i: usize) -> NodeSpec {
    NodeSpec::new(vec![addr("[::1]:0")], dir.node(i))
}

fn count(probes: &[ProbeRecord], name: &str) -> usize {
    probes.iter().filter(|r| r.probe.name == name).count()
}

/// Pings every peer until each has answered, re-sending on a timer in case loopback drops one.
struct Pinger {
    peers: Vec<SocketAddr>,
    answered: BTreeSet<usize>,
}

impl Pinger {
    const RESEND: TimerToken = 1;

    fn ping_all(&mut self, env: &mut dyn Env) {
        for (i, peer) in self.peers.iter().enumerate() {
            if !self.answered.contains(&i) {
                env.send_to(*peer, Bytes::from(format!("ping {i}"))).unwrap();
            }
        }
        env.set_timer(env.now() + RtDuration::from_millis(100), Self::RESEND);
    }
}

impl Actor for Pinger {
    fn on_start(&mut self, env: &mut dyn Env) {
        self.ping_all(env);
    }

    fn on_datagram(&mut self, env: &mut dyn Env, from: SocketAddr, payload: Bytes) {
        let text = String::from_utf8_lossy(&payload);
        let Some(i) = text.strip_prefix("pong ").and_then(|i| i.parse::<usize>().ok()) else {
            return;
        };
        if self.answered.insert(i) {
            // value 1: the answer came from the very address we pinged.
            env.probe(Probe::new(
                "echo",
                i as u64,
                i64::from(self.peers.get(i) == Some(&from)),
            ));
        }
    }

    fn on_timer(&mut self, env: &mut dyn Env, token: TimerToken) {
        if token == Self::RESEND && self.answered.len() < self.peers.len() {
            self.ping_all(env);
        }
    }
}

/// Answers every ping from the address it came from.
struct Echoer;

impl Actor for Echoer {
    fn on_start(&mut self, _env: &mut dyn Env) {}

    fn on_datagram(&mut self, env: &mut dyn Env, from: SocketAddr, payload: Bytes) {
        if let Some(rest) = payload.strip_prefix(b"ping ") {
            let mut reply = b"pong ".to_vec();
            reply.extend_from_slice(rest);
            env.send_to(from, Bytes::from(reply)).unwrap();
            env.probe(Probe::new("echoed", 0, i64::from(from.is_ipv6())));
        }
    }

    fn on_timer(&mut self, _env: &mut dyn Env, _token: TimerToken) {}
}

#[test]
fn echo_pair_over_real_ipv6_sockets() {
    let dir = TestDir::new("echo");
    let specs = vec![v6_spec(&dir, 0), v6_spec(&dir, 1)];
    let outcome = LocalCluster::run(
        specs,
        |node, addrs| -> Box<dyn Actor + Send> {
            if node == 0 {
                Box::new(Pinger {
                    peers: vec![addrs[1][0]],
                    answered: BTreeSet::new(),
                })
            } else {
                Box::new(Echoer)
            }
        },
        TIMEOUT,
        |probes| count(probes, "echo") == 1,
    )
    .unwrap();
    assert!(!outcome.timed_out);
    for node_addrs in &outcome.addrs {
        assert_eq!(node_addrs.len(), 1);
        assert_eq!(node_addrs[0].ip(), addr("[::1]:0").ip());
        assert_ne!(node_addrs[0].port(), 0, "the OS-chosen port is reported");
    }
    let echo = outcome.probes.iter().find(|r| r.probe.name == "echo").unwrap();
    assert_eq!(
        (echo.node, echo.probe.value),
        (0, 1),
        "reply came from the pinged address"
    );
    assert!(outcome
        .probes
        .iter()
        .any(|r| r.node == 1 && r.probe == Probe::new("echoed", 0, 1)));
    assert!(outcome.stats[1].datagrams_received >= 1);
    assert!(outcome.stats[0].datagrams_received >= 1);
    // Sends from `on_start`, before the reactor has polled the fresh socket, must really leave.
    assert_eq!(outcome.stats[0].sends_dropped, 0);
}

#[test]
fn a_dual_stack_node_reaches_each_peer_over_its_family() {
    let dir = TestDir::new("dual");
    let specs = vec![
        NodeSpec::new(vec![addr("[::1]:0"), addr("127.0.0.1:0")], dir.node(0)),
        NodeSpec::new(vec![addr("[::1]:0")], dir.node(1)),
        NodeSpec::new(vec![addr("127.0.0.1:0")], dir.node(2)),
    ];
    let outcome = LocalCluster::run(
        specs,
        |node, addrs| -> Box<dyn Actor + Send> {
            if node == 0 {
                Box::new(Pinger {
                    peers: vec![addrs[1][0], addrs[2][0]],
                    answered: BTreeSet::new(),
                })
            } else {
                Box::new(Echoer)
            }
        },
        TIMEOUT,
        |probes| count(probes, "echo") == 2,
    )
    .unwrap();
    assert!(!outcome.timed_out);
    assert_eq!(AddressFamily::of(&outcome.addrs[0][0]), AddressFamily::V6);
    assert_eq!(AddressFamily::of(&outcome.addrs[0][1]), AddressFamily::V4);
    // The IPv6-only peer heard from node 0's IPv6 socket, the IPv4 one from its IPv4 socket.
    assert!(outcome.probes.iter().any(|r| r.node == 1 && r.probe.value == 1));
    assert!(outcome.probes.iter().any(|r| r.node == 2 && r.probe.value == 0));
}

/// Records timers as they fire; the first one also sets a past-due timer.
struct TimerOrder {
    deadlines: Vec<(TimerToken, Instant)>,
}

impl TimerOrder {
    fn set(&mut self, env: &mut dyn Env, at: Instant, token: TimerToken) {
        self.deadlines.push((token, at));
        env.set_timer(at, token);
    }
}

impl Actor for TimerOrder {
    fn on_start(&mut self, env: &mut dyn Env) {
        let now = env.now();
        self.set(env, now + RtDuration::from_millis(30), 3);
        self.set(env, now + RtDuration::from_millis(10), 1);
        self.set(env, now + RtDuration::from_millis(10), 2);
        self.set(env, Instant::ZERO, 0);
    }

    fn on_datagram(&mut self, _env: &mut dyn Env, _from: SocketAddr, _payload: Bytes) {}

    fn on_timer(&mut self, env: &mut dyn Env, token: TimerToken) {
        let deadline = self
            .deadlines
            .iter()
            .find(|(t, _)| *t == token)
            .map(|(_, at)| *at)
            .unwrap();
        // value 1: it did not fire before its deadline.
        env.probe(Probe::new("timer", token, i64::from(env.now() >= deadline)));
        if token == 0 {
            self.set(env, Instant::ZERO, 10);
        }
    }
}

#[test]
fn timers_fire_in_time_then_insertion_order_and_never_early() {
    let dir = TestDir::new("timers");
    let outcome = LocalCluster::run(
        vec![v6_spec(&dir, 0)],
        |_, _| Box::new(TimerOrder { deadlines: Vec::new() }),
        TIMEOUT,
        |probes| count(probes, "timer") == 5,
    )
    .unwrap();
    assert!(!outcome.timed_out);
    let fired: Vec<u64> = outcome.probes.iter().map(|r| r.probe.subject).collect();
    assert_eq!(
        fired,
        vec![0, 10, 1, 2, 3],
        "a past timer fires right after the call that set it"
    );
    assert!(outcome.probes.iter().all(|r| r.probe.value == 1), "a timer fired early");
    assert!(outcome.probes.windows(2).all(|w| w[0].at <= w[1].at));
    assert_eq!(outcome.stats[0].timers_fired, 5);
}

fn in_runtime<T>(f: impl FnOnce() -> T) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    f()
}

#[test]
fn ipv6_sockets_are_bound_ipv6_only() {
    let dir = TestDir::new("v6only");
    in_runtime(|| {
        let env = RealEnv::bind(0, &v6_spec(&dir, 0)).unwrap();
        assert!(env.ipv6_only().unwrap().unwrap(), "IPV6_V6ONLY is not set");
        let v4 = RealEnv::bind(1, &NodeSpec::new(vec![addr("127.0.0.1:0")], dir.node(1))).unwrap();
        assert!(v4.ipv6_only().is_none());
    });
}

/// The kernel's default receive buffer (about 208 KiB) overflowed under consensus load on four
/// nodes (votes and client answers dropped, `Udp6RcvbufErrors` counting thousands): a node asks
/// for what its spec says, and gets it up to the host's ceiling.
#[test]
fn sockets_get_the_buffers_the_spec_asks_for_up_to_the_hosts_ceiling() {
    let dir = TestDir::new("buffers");
    let ceiling = |name: &str| -> usize {
        std::fs::read_to_string(format!("/proc/sys/net/core/{name}"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(usize::MAX)
    };
    in_runtime(|| {
        let spec = v6_spec(&dir, 0);
        let asked = spec.socket_buffer_bytes;
        assert!(asked >= 1 << 20, "the default asks for a buffer above the OS default");
        let env = RealEnv::bind(0, &spec).unwrap();
        let buffers = env.socket_buffers().unwrap();
        assert_eq!(buffers.len(), 1);
        // Linux reports twice what it grants (the rest is its bookkeeping).
        assert!(
            buffers[0].receive >= asked.min(ceiling("rmem_max")),
            "receive buffer {} for {asked} asked",
            buffers[0].receive
        );
        assert!(
            buffers[0].send >= asked.min(ceiling("wmem_max")),
            "send buffer {} for {asked} asked",
            buffers[0].send
        );
        let small = RealEnv::bind(1, &v6_spec(&dir, 1).with_socket_buffer_bytes(64 << 10)).unwrap();
        assert!(small.socket_buffers().unwrap()[0].receive < buffers[0].receive);
    });
}

#[test]
fn an_ipv6_only_node_cannot_send_to_ipv4() {
    let dir = TestDir::new("no-v4");
    in_runtime(|| {
        let mut env = RealEnv::bind(0, &v6_spec(&dir, 0)).unwrap();
        for to in [addr("127.0.0.1:9"), addr("[::ffff:127.0.0.1]:9")] {
            assert_eq!(
                env.send_to(to, Bytes::from_static(b"x")),
                Err(SendError::AddressFamilyNotSupported {
                    to,
                    family: AddressFamily::V4
                })
            );
        }
        let huge = Bytes::from(vec![0u8; runtime::MAX_DATAGRAM_BYTES + 1]);
        assert!(matches!(
            env.send_to(addr("[::1]:9"), huge),
            Err(SendError::TooLarge { .. })
        ));
        env.send_to(addr("[::1]:9"), Bytes::from_static(b"fine")).unwrap();
    });
}

/// What the OS itself does with IPv4 on an IPv6-only socket, below our family check.
#[test]
fn the_os_refuses_ipv4_destinations_on_an_ipv6_only_socket() {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    socket.set_only_v6(true).unwrap();
    socket.bind(&addr("[::1]:0").into()).unwrap();
    for to in [addr("127.0.0.1:9"), addr("[::ffff:127.0.0.1]:9")] {
        let error = socket
            .send_to(b"x", &to.into())
            .expect_err("IPv4 left an IPv6-only socket");
        if cfg!(target_os = "linux") {
            assert_eq!(
                error.raw_os_error(),
                Some(101),
                "expected ENETUNREACH for {to}, got {error}"
            );
        }
    }
}

#[test]
fn storage_through_the_env() {
    let dir = TestDir::new("env-storage");
    in_runtime(|| {
        let mut env = RealEnv::bind(0, &v6_spec(&dir, 0)).unwrap().with_seed(7);
        env.write_all_synced("incarnation", b"3").unwrap();
        env.write_at("log", 4, b"tail").unwrap();
        env.sync("log").unwrap();
        assert_eq!(env.read_all("log").unwrap(), b"\0\0\0\0tail");
        assert_eq!(env.list().unwrap(), vec!["incarnation".to_string(), "log".to_string()]);
        assert!(matches!(
            env.write_at("../x", 0, b""),
            Err(runtime::StorageError::InvalidName { .. })
        ));
        assert_eq!(std::fs::read(dir.node(0).join("incarnation")).unwrap(), b"3");
    });
}

#[test]
fn bind_errors_name_the_address() {
    let dir = TestDir::new("bind-errors");
    in_runtime(|| {
        let first = RealEnv::bind(0, &v6_spec(&dir, 0)).unwrap();
        let taken = first.local_addrs()[0];
        match RealEnv::bind(1, &NodeSpec::new(vec![taken], dir.node(1))) {
            Err(BackendError::Bind { addr, .. }) => assert_eq!(addr, taken),
            other => panic!("expected a bind error, got {other:?}"),
        }
        let mapped = addr("[::ffff:127.0.0.1]:0");
        assert!(matches!(
            RealEnv::bind(2, &NodeSpec::new(vec![mapped], dir.node(2))),
            Err(BackendError::Bind { addr, .. }) if addr == mapped
        ));
        assert!(matches!(
            RealEnv::bind(3, &NodeSpec::new(vec![addr("[::1]:0"), addr("[::1]:0")], dir.node(3))),
            Err(BackendError::DuplicateFamily {
                family: AddressFamily::V6,
                ..
            })
        ));
    });
    assert!(matches!(
        RealEnv::bind(4, &v6_spec(&dir, 4)),
        Err(BackendError::NoRuntime)
    ));
}

#[test]
fn storage_dir_errors_name_the_path() {
    let dir = TestDir::new("dir-errors");
    std::fs::create_dir_all(dir.path()).unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"").unwrap();
    let bad = file.join("node");
    let error = in_runtime(|| RealEnv::bind(0, &NodeSpec::new(vec![addr("[::1]:0")], &bad)).unwrap_err());
    assert!(
        matches!(&error, BackendError::StorageDir { path, .. } if *path == bad),
        "{error:?}"
    );
}

/// Probes once at start and then idles.
struct Quiet;

impl Actor for Quiet {
    fn on_start(&mut self, env: &mut dyn Env) {
        env.probe(Probe::new("started", 0, 0));
    }
    fn on_datagram(&mut self, _env: &mut dyn Env, _from: SocketAddr, _payload: Bytes) {}
    fn on_timer(&mut self, _env: &mut dyn Env, _token: TimerToken) {}
}

#[test]
fn a_cluster_that_never_finishes_times_out() {
    let dir = TestDir::new("timeout");
    let outcome = LocalCluster::run(
        vec![v6_spec(&dir, 0)],
        |_, _| Box::new(Quiet),
        Duration::from_millis(100),
        |_| false,
    )
    .unwrap();
    assert!(outcome.timed_out);
    assert_eq!(count(&outcome.probes, "started"), 1);
}

/// Panics on the first datagram.
struct Fragile;

impl Actor for Fragile {
    fn on_start(&mut self, _env: &mut dyn Env) {}
    fn on_datagram(&mut self, _env: &mut dyn Env, _from: SocketAddr, _payload: Bytes) {
        panic!("fragile actor hit");
    }
    fn on_timer(&mut self, _env: &mut dyn Env, _token: TimerToken) {}
}

#[test]
fn a_panicking_actor_is_reported_not_propagated() {
    let dir = TestDir::new("panic");
    let result = LocalCluster::run(
        vec![v6_spec(&dir, 0), v6_spec(&dir, 1)],
        |node, addrs| -> Box<dyn Actor + Send> {
            if node == 0 {
                Box::new(Pinger {
                    peers: vec![addrs[1][0]],
                    answered: BTreeSet::new(),
                })
            } else {
                Box::new(Fragile)
            }
        },
        TIMEOUT,
        |_| false,
    );
    match result {
        Err(BackendError::NodeFailed { node, reason }) => {
            assert_eq!(node, 1);
            assert!(reason.contains("fragile actor hit"), "{reason}");
        }
        other => panic!("expected NodeFailed, got {other:?}"),
    }
}

#[test]
fn a_single_node_runs_until_shut_down() {
    let dir = TestDir::new("single");
    let spec = v6_spec(&dir, 0);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (probe_tx, mut probe_rx) = mpsc::unbounded_channel();
    let stopper = std::thread::spawn(move || {
        let first = probe_rx.blocking_recv();
        stop_tx.send(true).unwrap();
        first
    });
    let stats = run_node(
        0,
        &spec,
        |addrs| {
            assert_eq!(addrs.len(), 1);
            Box::new(Quiet)
        },
        stop_rx,
        Some(probe_tx),
    )
    .unwrap();
    let first = stopper.join().unwrap().unwrap();
    assert_eq!((first.node, first.probe.name), (0, "started"));
    assert_eq!(stats.datagrams_received, 0);
}

/// Keeps its own socket busy with a self-addressed stream of datagrams, or itself busy with an
/// endless chain of past-due timers, and probes what it sees.
struct Busy {
    flood: bool,
    storm: u64,
}

impl Actor for Busy {
    fn on_start(&mut self, env: &mut dyn Env) {
        if self.flood {
            let me = env.local_addrs()[0];
            for _ in 0..16 {
                env.send_to(me, Bytes::from_static(b"again")).unwrap();
            }
            env.set_timer(env.now() + RtDuration::from_millis(20), 1);
        } else {
            env.set_timer(Instant::ZERO, 2);
        }
    }

    fn on_datagram(&mut self, env: &mut dyn Env, from: SocketAddr, payload: Bytes) {
        if self.flood && from == env.local_addrs()[0] {
            env.send_to(from, payload).unwrap();
        } else {
            env.probe(Probe::new("datagram", 0, 0));
        }
    }

    fn on_timer(&mut self, env: &mut dyn Env, token: TimerToken) {
        if token == 1 {
            env.probe(Probe::new("timer", 1, 0));
        } else {
            self.storm += 1;
            if self.storm == 100 {
                env.probe(Probe::new("storming", 0, 0));
            }
            env.set_timer(Instant::ZERO, 2);
        }
    }
}

#[test]
fn a_datagram_flood_does_not_starve_timers() {
    let dir = TestDir::new("flood");
    let outcome = LocalCluster::run(
        vec![v6_spec(&dir, 0)],
        |_, _| Box::new(Busy { flood: true, storm: 0 }),
        TIMEOUT,
        |probes| count(probes, "timer") == 1,
    )
    .unwrap();
    assert!(!outcome.timed_out, "the timer never fired under a datagram flood");
    assert!(
        outcome.stats[0].datagrams_received > 16,
        "the flood did not flow: {:?}",
        outcome.stats
    );
}

#[test]
fn a_stream_of_due_timers_does_not_starve_datagrams() {
    let dir = TestDir::new("timer-storm");
    let outcome = LocalCluster::run(
        vec![v6_spec(&dir, 0), v6_spec(&dir, 1)],
        |node, addrs| -> Box<dyn Actor + Send> {
            if node == 0 {
                Box::new(Busy { flood: false, storm: 0 })
            } else {
                Box::new(Pinger {
                    peers: vec![addrs[0][0]],
                    answered: BTreeSet::new(),
                })
            }
        },
        TIMEOUT,
        // Both, so the datagram provably arrived while due timers kept coming (they never stop).
        |probes| count(probes, "datagram") >= 1 && count(probes, "storming") == 1,
    )
    .unwrap();
    assert!(!outcome.timed_out, "no datagram got through a stream of due timers");
    assert!(outcome.stats[0].timers_fired >= 100);
}

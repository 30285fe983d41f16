//! The runtime contract, written once and run on both backends: the deterministic simulator and
//! the production backend over real `[::1]` UDP sockets and real files. If these pass on both,
//! what an actor observes in simulation is what it observes in production.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use runtime::{Actor, Env, Probe, SendError, StorageError};

/// One recorded probe: (node, name, subject, value), in each node's own order.
type Obs = (usize, &'static str, u64, i64);

/// Builds node `i`'s actor, given every node's addresses.
type Factory<'a> = &'a mut dyn FnMut(usize, &[Vec<SocketAddr>]) -> Box<dyn Actor + Send>;

/// A backend that runs `n` nodes until `done` holds over what they recorded.
trait Harness {
    fn run(n: usize, factory: Factory<'_>, done: &mut dyn FnMut(&[Obs]) -> bool, limit: Duration) -> Vec<Obs>;
}

struct Sim;

impl Harness for Sim {
    fn run(n: usize, factory: Factory<'_>, done: &mut dyn FnMut(&[Obs]) -> bool, limit: Duration) -> Vec<Obs> {
        use simulator::{NetworkModel, NodeSpec, SimTime, Simulation};
        let addrs: Vec<Vec<SocketAddr>> = (0..n)
            .map(|i| vec![format!("[fd00::{}]:7000", i + 1).parse().unwrap()])
            .collect();
        let actors: Vec<_> = (0..n).map(|i| Some(factory(i, &addrs))).collect();
        let actors = std::cell::RefCell::new(actors);
        let build = move |node: u32| -> Box<dyn Actor> {
            actors.borrow_mut()[node as usize]
                .take()
                .expect("contract tests never restart nodes")
        };
        let mut sim = Simulation::new(11, NetworkModel::default(), Box::new(build));
        for a in &addrs {
            sim.add_node(NodeSpec {
                addrs: a.clone(),
                ..NodeSpec::default()
            });
        }
        let step = Duration::from_millis(10);
        let mut t = SimTime::ZERO;
        loop {
            t = t.after(step);
            sim.run_until(t, |_| {});
            let obs: Vec<Obs> = sim
                .probes()
                .iter()
                .map(|p| (p.node as usize, p.probe.name, p.probe.subject, p.probe.value))
                .collect();
            if done(&obs) || t >= SimTime::from_duration(limit) {
                return obs;
            }
        }
    }
}

struct Real;

static DIRS: AtomicU64 = AtomicU64::new(0);

impl Harness for Real {
    fn run(n: usize, factory: Factory<'_>, done: &mut dyn FnMut(&[Obs]) -> bool, limit: Duration) -> Vec<Obs> {
        use runtime_tokio::{LocalCluster, NodeSpec};
        let base = std::env::temp_dir().join(format!(
            "testbed-contract-{}-{}",
            std::process::id(),
            DIRS.fetch_add(1, Ordering::Relaxed)
        ));
        let specs = (0..n)
            .map(|i| NodeSpec::new(vec!["[::1]:0".parse().unwrap()], base.join(i.to_string())))
            .collect();
        let convert = |probes: &[runtime_tokio::ProbeRecord]| -> Vec<Obs> {
            probes
                .iter()
                .map(|p| (p.node, p.probe.name, p.probe.subject, p.probe.value))
                .collect()
        };
        let outcome = LocalCluster::run(
            specs,
            |i, addrs| factory(i, addrs),
            limit,
            |probes| done(&convert(probes)),
        )
        .expect("local cluster runs");
        let _ = std::fs::remove_dir_all(&base);
        convert(&outcome.probes)
    }
}

fn count(obs: &[Obs], node: usize, name: &str) -> usize {
    obs.iter().filter(|o| o.0 == node && o.1 == name).count()
}

/// Node 0 pings node 1 twenty times, one at a time; node 1 echoes.
struct Pinger {
    peer: SocketAddr,
    next: u64,
}

impl Actor for Pinger {
    fn on_start(&mut self, env: &mut dyn Env) {
        env.send_to(self.peer, Bytes::copy_from_slice(&self.next.to_be_bytes()))
            .unwrap();
        let at = env.now() + Duration::from_millis(200);
        env.set_timer(at, self.next);
    }
    fn on_datagram(&mut self, env: &mut dyn Env, _from: SocketAddr, payload: Bytes) {
        let seq = u64::from_be_bytes(payload[..8].try_into().unwrap());
        if seq == self.next {
            env.probe(Probe::new("pong", seq, 0));
            self.next += 1;
            if self.next < 20 {
                env.send_to(self.peer, Bytes::copy_from_slice(&self.next.to_be_bytes()))
                    .unwrap();
                let at = env.now() + Duration::from_millis(200);
                env.set_timer(at, self.next);
            }
        }
    }
    fn on_timer(&mut self, env: &mut dyn Env, token: u64) {
        // Retransmit if the exchange stalled (real UDP may drop, even on loopback).
        if token == self.next && self.next < 20 {
            env.send_to(self.peer, Bytes::copy_from_slice(&self.next.to_be_bytes()))
                .unwrap();
            let at = env.now() + Duration::from_millis(200);
            env.set_timer(at, self.next);
        }
    }
}

struct Echo;

impl Actor for Echo {
    fn on_start(&mut self, _: &mut dyn Env) {}
    fn on_datagram(&mut self, env: &mut dyn Env, from: SocketAddr, payload: Bytes) {
        env.send_to(from, payload).unwrap();
    }
    fn on_timer(&mut self, _: &mut dyn Env, _: u64) {}
}

fn datagrams_round_trip<H: Harness>() {
    let obs = H::run(
        2,
        &mut |i, addrs| {
            if i == 0 {
                Box::new(Pinger {
                    peer: addrs[1][0],
                    next: 0,
                })
            } else {
                Box::new(Echo)
            }
        },
        &mut |obs| count(obs, 0, "pong") == 20,
        Duration::from_secs(10),
    );
    let pongs: Vec<u64> = obs.iter().filter(|o| o.1 == "pong").map(|o| o.2).collect();
    assert_eq!(pongs, (0..20).collect::<Vec<_>>());
}

/// Sets three timers out of order; records each firing and whether it came early.
struct TimerOrder;

impl Actor for TimerOrder {
    fn on_start(&mut self, env: &mut dyn Env) {
        let now = env.now();
        for (token, ms) in [(3u64, 60u64), (1, 20), (2, 40)] {
            env.set_timer(now + Duration::from_millis(ms), token);
            env.probe(Probe::new(
                "deadline",
                token,
                (now + Duration::from_millis(ms)).as_nanos() as i64,
            ));
        }
    }
    fn on_datagram(&mut self, _: &mut dyn Env, _: SocketAddr, _: Bytes) {}
    fn on_timer(&mut self, env: &mut dyn Env, token: u64) {
        env.probe(Probe::new("fired", token, env.now().as_nanos() as i64));
    }
}

fn timers_fire_in_deadline_order_never_early<H: Harness>() {
    let obs = H::run(
        1,
        &mut |_, _| Box::new(TimerOrder),
        &mut |obs| count(obs, 0, "fired") == 3,
        Duration::from_secs(5),
    );
    let fired: Vec<(u64, i64)> = obs.iter().filter(|o| o.1 == "fired").map(|o| (o.2, o.3)).collect();
    assert_eq!(fired.iter().map(|f| f.0).collect::<Vec<_>>(), vec![1, 2, 3]);
    for (token, at) in fired {
        let deadline = obs.iter().find(|o| o.1 == "deadline" && o.2 == token).unwrap().3;
        assert!(at >= deadline, "timer {token} fired {} ns early", deadline - at);
    }
}

/// Exercises the storage contract in `on_start`; each check is a probe with value 1 if it held.
struct StorageCheck;

impl Actor for StorageCheck {
    fn on_start(&mut self, env: &mut dyn Env) {
        fn check(env: &mut dyn Env, name: &'static str, ok: bool) {
            env.probe(Probe::new(name, 0, i64::from(ok)));
        }
        let ok = env.read_at("log", 0, 10) == Ok(vec![]) && env.size("log") == Ok(0);
        check(env, "absent_reads_empty", ok);
        env.write_at("log", 0, b"hello world").unwrap();
        env.write_at("log", 20, b"!").unwrap();
        let ok = env.read_all("log").unwrap() == b"hello world\0\0\0\0\0\0\0\0\0!";
        check(env, "gap_zero_filled", ok);
        let ok = env.read_at("log", 18, 10).unwrap() == b"\0\0!";
        check(env, "short_read_at_end", ok);
        env.truncate("log", 5).unwrap();
        let ok = env.size("log") == Ok(5) && env.read_all("log").unwrap() == b"hello";
        check(env, "truncate", ok);
        let ok = env.sync("log").is_ok();
        check(env, "sync", ok);
        env.write_all_synced("a-first", b"x").unwrap();
        let ok = env.list().unwrap() == vec!["a-first".to_string(), "log".to_string()];
        check(env, "list_sorted", ok);
        env.remove("log").unwrap();
        let ok = env.list().unwrap() == vec!["a-first".to_string()] && env.remove("log").is_ok();
        check(env, "remove", ok);
        let refused = matches!(
            env.write_at("../escape", 0, b"x"),
            Err(StorageError::InvalidName { .. })
        );
        let ok = refused;
        check(env, "invalid_name_refused", ok);
        env.probe(Probe::new("done", 0, 1));
    }
    fn on_datagram(&mut self, _: &mut dyn Env, _: SocketAddr, _: Bytes) {}
    fn on_timer(&mut self, _: &mut dyn Env, _: u64) {}
}

fn storage_contract<H: Harness>() {
    let obs = H::run(
        1,
        &mut |_, _| Box::new(StorageCheck),
        &mut |obs| count(obs, 0, "done") == 1,
        Duration::from_secs(5),
    );
    let failed: Vec<&str> = obs.iter().filter(|o| o.3 == 0).map(|o| o.1).collect();
    assert!(failed.is_empty(), "storage checks failed: {failed:?}");
    assert_eq!(obs.len(), 9);
}

/// An IPv6-only node tries IPv4 and oversized sends.
struct FamilyCheck;

impl Actor for FamilyCheck {
    fn on_start(&mut self, env: &mut dyn Env) {
        let v4: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:9".parse().unwrap();
        let refused = |r: Result<(), SendError>| matches!(r, Err(SendError::AddressFamilyNotSupported { .. }));
        let v4_refused = refused(env.send_to(v4, Bytes::from_static(b"x")));
        env.probe(Probe::new("v4_refused", 0, i64::from(v4_refused)));
        let mapped_refused = refused(env.send_to(mapped, Bytes::from_static(b"x")));
        env.probe(Probe::new("mapped_refused", 0, i64::from(mapped_refused)));
        let too_large = matches!(
            env.send_to(
                env.local_addrs()[0],
                Bytes::from(vec![0; runtime::MAX_DATAGRAM_BYTES + 1])
            ),
            Err(SendError::TooLarge { .. })
        );
        env.probe(Probe::new("too_large", 0, i64::from(too_large)));
        let only_v6 = env.local_addrs().iter().all(|a| a.is_ipv6());
        env.probe(Probe::new("bound_v6_only", 0, i64::from(only_v6)));
    }
    fn on_datagram(&mut self, _: &mut dyn Env, _: SocketAddr, _: Bytes) {}
    fn on_timer(&mut self, _: &mut dyn Env, _: u64) {}
}

fn ipv6_only_nodes_refuse_ipv4<H: Harness>() {
    let obs = H::run(
        1,
        &mut |_, _| Box::new(FamilyCheck),
        &mut |obs| obs.len() == 4,
        Duration::from_secs(5),
    );
    assert_eq!(obs.len(), 4);
    for o in obs {
        assert_eq!(o.3, 1, "{} did not hold", o.1);
    }
}

/// The membership protocol itself forms a five-node cluster through a seed. Node ids are above
/// 2^56 (the bound bit-packed timer tokens once imposed): the full 64-bit range works end to end.
fn membership_forms_a_cluster<H: Harness>() {
    use hypermesh::membership::{self, MembershipConfig, MembershipNode, NodeId};
    use runtime::host::{BareDatagrams, Host};
    let id = |i: usize| u64::MAX - i as u64;
    let n = 5;
    let all_alive = |obs: &[Obs]| {
        (0..n).all(|x| {
            let mut view = std::collections::BTreeMap::new();
            for o in obs.iter().filter(|o| o.0 == x && o.1 == "member") {
                view.insert(o.2, o.3);
            }
            let others: Vec<u64> = (0..n).filter(|y| *y != x).map(id).collect();
            view.keys().copied().collect::<Vec<u64>>() == others.iter().rev().copied().collect::<Vec<u64>>()
                && view.values().all(|s| *s == 0)
        })
    };
    let obs = H::run(
        n,
        &mut |i, addrs| {
            let mut config = MembershipConfig::new(NodeId(id(i)), vec![addrs[0][0]]);
            config.push_pull_interval = Duration::from_secs(1);
            Box::new(Host::new(BareDatagrams).mount(membership::MOUNT, MembershipNode::new(config)))
        },
        &mut |obs| all_alive(obs),
        Duration::from_secs(20),
    );
    assert!(
        all_alive(&obs),
        "the cluster did not form: {:?}",
        obs.iter().filter(|o| o.1 == "member").collect::<Vec<_>>()
    );
    assert_eq!(obs.iter().filter(|o| o.1 == "joined").count(), n);
}

/// TrustChain's bootstrap and membership on one host per node: node 0 creates the CA, the others
/// enroll with join tokens and complete certificate handshakes with their peers, while
/// membership, mounted beside it on the same socket, forms the cluster.
fn trustchain_and_membership_share_a_node<H: Harness>() {
    use hypermesh::membership::{self, MembershipConfig, MembershipNode, NodeId};
    use runtime::host::{BareDatagrams, Host};
    use trustchain::ca::NodeIdentity;
    use trustchain::enroll::{Grant, TokenKey};
    use trustchain::node::{self as tc, AuthorityConfig, TrustNode, TrustNodeConfig};
    let n = 4;
    let secret = [42u8; 32];
    let ready = |obs: &[Obs]| {
        (0..n).all(|x| {
            let mut view = std::collections::BTreeMap::new();
            for o in obs.iter().filter(|o| o.0 == x && o.1 == "member") {
                view.insert(o.2, o.3);
            }
            view.len() == n - 1 && view.values().all(|s| *s == 0)
        }) && (0..n).all(|x| {
            count(obs, x, "tc_enrolled") == 1
                && obs
                    .iter()
                    .filter(|o| o.0 == x && o.1 == "tc_handshake" && o.3 == 0)
                    .count()
                    >= 3
        })
    };
    let obs = H::run(
        n,
        &mut |i, addrs| {
            let peers: Vec<SocketAddr> = addrs.iter().map(|a| a[0]).collect();
            let std::net::IpAddr::V6(addr) = peers[i].ip() else {
                panic!("IPv6 only")
            };
            let grant = Grant {
                identity: NodeIdentity {
                    name: format!("node-{i}.mesh"),
                    addr,
                },
                expires: i64::MAX / 2,
                id: i as u64,
            };
            let mut config = TrustNodeConfig::new(i, peers.clone(), 0, TokenKey::new(&secret).issue(&grant));
            config.handshake_interval = Duration::from_millis(200);
            if i == 0 {
                config.authority = Some(AuthorityConfig::new(secret));
            }
            let member = MembershipNode::new(MembershipConfig::new(NodeId(i as u64), vec![peers[0]]));
            Box::new(
                Host::new(BareDatagrams)
                    .mount(tc::MOUNT, TrustNode::new(config))
                    .mount(membership::MOUNT, member),
            )
        },
        &mut |obs| ready(obs),
        Duration::from_secs(20),
    );
    assert!(
        ready(&obs),
        "{:?}",
        obs.iter()
            .filter(|o| o.1.starts_with("tc_"))
            .take(40)
            .collect::<Vec<_>>()
    );
    assert!(
        !obs.iter().any(|o| o.1 == "tc_handshake" && (1..200).contains(&o.3)),
        "no handshake refused a chain"
    );
}

macro_rules! contract {
    ($backend:ident, $harness:ty) => {
        mod $backend {
            #[test]
            fn datagrams_round_trip() {
                super::datagrams_round_trip::<$harness>();
            }
            #[test]
            fn timers_fire_in_deadline_order_never_early() {
                super::timers_fire_in_deadline_order_never_early::<$harness>();
            }
            #[test]
            fn storage_contract() {
                super::storage_contract::<$harness>();
            }
            #[test]
            fn ipv6_only_nodes_refuse_ipv4() {
                super::ipv6_only_nodes_refuse_ipv4::<$harness>();
            }
            #[test]
            fn membership_forms_a_cluster() {
                super::membership_forms_a_cluster::<$harness>();
            }
            #[test]
            fn trustchain_and_membership_share_a_node() {
                super::trustchain_and_membership_share_a_node::<$harness>();
            }
        }
    };
}

contract!(simulated, super::Sim);
contract!(real_sockets, super::Real);

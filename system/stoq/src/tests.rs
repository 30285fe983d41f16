//! STOQ endpoints in the deterministic simulator: two or three nodes, each an actor owning an
//! [`Endpoint`], following a script of timed actions and logging every event.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use runtime::{Actor, DetRng, Duration, Env};
use simulator::{
    Intercepted, Interceptor, LinkEnds, LinkModel, NetworkModel, NodeSpec, SimTime, Simulation, SIM_EPOCH_UNIX_SECS,
};
use trustchain::ca::{key_from_seed, Authority, CaPolicy, NodeIdentity};
use trustchain::trust::TrustBundle;

use crate::*;

fn addr(i: u32) -> SocketAddr {
    format!("[fd00::{}]:7000", i + 1).parse().unwrap()
}

fn identity(i: u32) -> NodeIdentity {
    NodeIdentity {
        name: format!("node-{i}.mesh"),
        addr: match addr(i).ip() {
            std::net::IpAddr::V6(v6) => v6,
            _ => unreachable!(),
        },
    }
}

fn credentials(ca: &mut Authority, i: u32, key_seed: u8) -> Credentials {
    let key = key_from_seed(&[key_seed; 32]);
    let cert = ca.issue(&identity(i), &key, SIM_EPOCH_UNIX_SECS).unwrap();
    Credentials {
        chain: vec![cert, ca.intermediate().clone()],
        key_pkcs8: key.serialize_der(),
    }
}

fn trust(ca: &mut Authority) -> Trust {
    let mut bundle = TrustBundle::new(ca.root().clone(), ca.intermediate().clone());
    for i in ca.intermediates() {
        bundle.add_issuer(i.clone());
    }
    Trust {
        bundle,
        crls: ca.revocation_lists(SIM_EPOCH_UNIX_SECS).unwrap(),
    }
}

fn ca(seed: u8) -> Authority {
    Authority::create(&[seed; 32], &[seed + 1; 32], SIM_EPOCH_UNIX_SECS, CaPolicy::default()).unwrap()
}

#[derive(Clone)]
enum Action {
    Send(u32, &'static str),
    Unreliable(u32, &'static str),
    Request(u32, &'static str),
    Bulk(u32, usize),
    Present(Credentials),
    Close(u32),
    SendTo(SocketAddr, &'static str),
    Trust(Trust),
}

type Log = Arc<Mutex<Vec<(u32, Event)>>>;
type Errors = Arc<Mutex<Vec<(u32, StoqError)>>>;
/// Each node's endpoint counters, as of its last call.
type Stats = Arc<Mutex<std::collections::BTreeMap<u32, StoqStats>>>;

struct Node {
    index: u32,
    config: StoqConfig,
    credentials: Credentials,
    trust: Trust,
    script: Vec<(u64, Action)>,
    endpoint: Option<Endpoint>,
    log: Log,
    errors: Errors,
    stats: Stats,
    /// Bulk bytes still to write: stream and remaining chunks.
    bulk: Option<(BulkId, Vec<Bytes>)>,
}

impl Node {
    fn drain(&mut self, env: &mut dyn Env) {
        let ep = self.endpoint.as_mut().unwrap();
        while let Some(ev) = ep.poll_event() {
            match &ev {
                Event::Connected { peer, identity } => {
                    // What the endpoint answers about a peer matches what the event said.
                    assert_eq!(ep.peer_identity(*peer), Some(identity));
                    assert!(ep.connected_peers().any(|p| p == *peer));
                    assert!(ep.connection_stats(*peer).is_some());
                }
                Event::Request { id, payload, .. } => {
                    let mut answer = b"re:".to_vec();
                    answer.extend_from_slice(payload);
                    ep.respond(env, *id, Bytes::from(answer)).unwrap();
                }
                Event::BulkWritable { id } if self.bulk.as_ref().is_some_and(|(b, _)| b == id) => {
                    self.bulk_more(env);
                    return self.drain(env);
                }
                _ => {}
            }
            self.log.lock().unwrap().push((self.index, ev));
        }
        self.stats.lock().unwrap().insert(self.index, ep.stats().clone());
    }

    fn bulk_more(&mut self, env: &mut dyn Env) {
        let ep = self.endpoint.as_mut().unwrap();
        let Some((id, chunks)) = self.bulk.as_mut() else { return };
        loop {
            chunks.retain(|c| !c.is_empty());
            if chunks.is_empty() {
                ep.finish_bulk(env, *id).unwrap();
                self.bulk = None;
                return;
            }
            if ep.write_bulk(env, *id, chunks).unwrap() == 0 {
                return;
            }
        }
    }
}

impl Actor for Node {
    fn on_start(&mut self, env: &mut dyn Env) {
        let ep = Endpoint::new(env, self.config.clone(), Some(&self.credentials), self.trust.clone()).unwrap();
        self.endpoint = Some(ep);
        for (i, (at, _)) in self.script.iter().enumerate() {
            env.set_timer(env.now() + Duration::from_millis(*at), i as u64);
        }
    }

    fn on_datagram(&mut self, env: &mut dyn Env, from: SocketAddr, payload: Bytes) {
        self.endpoint.as_mut().unwrap().handle_datagram(env, from, payload);
        self.drain(env);
    }

    fn on_timer(&mut self, env: &mut dyn Env, token: u64) {
        let ep = self.endpoint.as_mut().unwrap();
        if !ep.handle_timer(env, token) {
            let action = self.script[token as usize].1.clone();
            let result = match action {
                Action::Send(to, text) => ep.send(env, addr(to), Bytes::from_static(text.as_bytes())),
                Action::SendTo(to, text) => ep.send(env, to, Bytes::from_static(text.as_bytes())),
                Action::Unreliable(to, text) => ep.send_unreliable(env, addr(to), Bytes::from_static(text.as_bytes())),
                Action::Request(to, text) => ep
                    .request(env, addr(to), Bytes::from_static(text.as_bytes()))
                    .map(|_| ()),
                Action::Bulk(to, len) => {
                    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
                    let data = Bytes::from(data);
                    let chunks: Vec<Bytes> = (0..len)
                        .step_by(64 * 1024)
                        .map(|at| data.slice(at..(at + 64 * 1024).min(len)))
                        .collect();
                    match ep.open_bulk(env, addr(to), 42) {
                        Ok(id) => {
                            self.bulk = Some((id, chunks));
                            self.bulk_more(env);
                            Ok(())
                        }
                        Err(e) => Err(e),
                    }
                }
                Action::Close(to) => {
                    ep.close(env, addr(to));
                    Ok(())
                }
                Action::Present(c) => {
                    ep.security().present(&c).unwrap();
                    Ok(())
                }
                Action::Trust(t) => {
                    ep.security().trust(t);
                    Ok(())
                }
            };
            if let Err(e) = result {
                self.errors.lock().unwrap().push((self.index, e));
            }
        }
        self.drain(env);
    }
}

/// One node: what it presents, trusts, its settings and its script (milliseconds, action).
type NodeSetup = (Credentials, Trust, StoqConfig, Vec<(u64, Action)>);

struct Setup {
    seed: u64,
    nodes: Vec<NodeSetup>,
    link: LinkModel,
    run_ms: u64,
}

struct Outcome {
    log: Vec<(u32, Event)>,
    errors: Vec<(u32, StoqError)>,
    stats: std::collections::BTreeMap<u32, StoqStats>,
    trace_hash: String,
}

impl Outcome {
    fn events(&self, node: u32) -> Vec<&Event> {
        self.log.iter().filter(|(n, _)| *n == node).map(|(_, e)| e).collect()
    }

    fn messages(&self, node: u32) -> Vec<String> {
        self.events(node)
            .into_iter()
            .filter_map(|e| match e {
                Event::Message { payload, .. } => Some(String::from_utf8_lossy(payload).into_owned()),
                _ => None,
            })
            .collect()
    }

    fn failures(&self, node: u32) -> Vec<(&'static str, String)> {
        self.events(node)
            .into_iter()
            .filter_map(|e| match e {
                Event::ConnectFailed { class, reason, .. } => Some((*class, reason.clone())),
                _ => None,
            })
            .collect()
    }
}

fn run(setup: Setup) -> Outcome {
    run_intercepted(setup, None)
}

/// [`run`] with a man in the middle on every link.
fn run_intercepted(setup: Setup, interceptor: Option<Box<dyn Interceptor>>) -> Outcome {
    let log: Log = Arc::default();
    let errors: Errors = Arc::default();
    let stats: Stats = Arc::default();
    let nodes = setup.nodes.clone();
    let (l, e, st) = (log.clone(), errors.clone(), stats.clone());
    let factory = move |i: u32| -> Box<dyn Actor> {
        let (credentials, trust, config, script) = nodes[i as usize].clone();
        Box::new(Node {
            index: i,
            config,
            credentials,
            trust,
            script,
            endpoint: None,
            log: l.clone(),
            errors: e.clone(),
            stats: st.clone(),
            bulk: None,
        })
    };
    let mut sim = Simulation::new(setup.seed, NetworkModel::new(setup.link), Box::new(factory));
    if let Some(interceptor) = interceptor {
        sim.set_interceptor(interceptor);
    }
    for i in 0..setup.nodes.len() as u32 {
        sim.add_node(NodeSpec {
            addrs: vec![addr(i)],
            ..NodeSpec::default()
        });
    }
    sim.run_until(SimTime::from_millis(setup.run_ms), |_| {});
    let outcome = Outcome {
        log: log.lock().unwrap().clone(),
        errors: errors.lock().unwrap().clone(),
        stats: stats.lock().unwrap().clone(),
        trace_hash: sim.trace_hash(),
    };
    outcome
}

fn seeded(i: u64) -> StoqConfig {
    StoqConfig {
        randomness: Randomness::Seeded(1000 + i),
        ..StoqConfig::default()
    }
}

fn exchange(seed: u64, link: LinkModel) -> Outcome {
    let mut ca = ca(1);
    let c0 = credentials(&mut ca, 0, 10);
    let c1 = credentials(&mut ca, 1, 11);
    let t = trust(&mut ca);
    run(Setup {
        seed,
        nodes: vec![
            (
                c0,
                t.clone(),
                seeded(0),
                vec![
                    (10, Action::Send(1, "one")),
                    (10, Action::Send(1, "two")),
                    (10, Action::Request(1, "ping")),
                    (200, Action::Send(1, "three")),
                    (200, Action::Unreliable(1, "datagram")),
                    (300, Action::Bulk(1, 1 << 20)),
                ],
            ),
            (c1, t, seeded(1), vec![]),
        ],
        link,
        run_ms: 5_000,
    })
}

#[test]
fn a_drive_touches_the_connections_that_changed_not_every_one() {
    // A hub with twelve peers, each connected once; then a conversation with peer 1 only, a
    // message every 50 ms for two seconds. Each of the hub's calls changes one connection (or
    // a few, when keep-alives fall due together); driving every connection on every call, as the
    // endpoint did, made each call cost twelve.
    let mut ca = ca(1);
    let t = trust(&mut ca);
    let peers = 12u32;
    let mut hub_script = Vec::new();
    for i in 0..40u64 {
        hub_script.push((1_000 + 50 * i, Action::Send(1, "chat")));
    }
    let mut nodes = vec![(credentials(&mut ca, 0, 10), t.clone(), seeded(0), hub_script)];
    for i in 1..=peers {
        nodes.push((
            credentials(&mut ca, i, 10 + i as u8),
            t.clone(),
            seeded(u64::from(i)),
            vec![(10, Action::Send(0, "hello"))],
        ));
    }
    let out = run(Setup {
        seed: 3,
        nodes,
        link: LinkModel::default(),
        run_ms: 3_500,
    });
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    assert_eq!(out.messages(0).len(), peers as usize, "every peer reached the hub");
    assert_eq!(out.messages(1).iter().filter(|m| *m == "chat").count(), 40);
    let hub = &out.stats[&0];
    let per_drive = hub.connections_driven as f64 / hub.drives as f64;
    assert!(
        per_drive < 2.0,
        "{} connections driven in {} drives ({per_drive:.1} a drive) with {peers} connections",
        hub.connections_driven,
        hub.drives
    );
}

#[test]
fn messages_requests_and_bulk_flow_over_mutual_tls() {
    let out = exchange(7, LinkModel::default());
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let connected: Vec<_> = out
        .events(1)
        .into_iter()
        .filter_map(|e| match e {
            Event::Connected { peer, identity } => Some((*peer, identity.node.name.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(connected, vec![(addr(0), "node-0.mesh".to_string())]);
    assert_eq!(out.messages(1), vec!["one", "two", "three", "datagram"]);
    let responses: Vec<_> = out
        .events(0)
        .into_iter()
        .filter_map(|e| match e {
            Event::Response { result, .. } => Some(result.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(responses, vec![Ok(Bytes::from_static(b"re:ping"))]);
    let mut bulk = Vec::new();
    let mut finished = None;
    for e in out.events(1) {
        match e {
            Event::BulkOpened { tag, .. } => assert_eq!(*tag, 42),
            Event::BulkData { data, .. } => bulk.extend_from_slice(data),
            Event::BulkFinished { result, .. } => finished = Some(result.clone()),
            _ => {}
        }
    }
    assert_eq!(finished, Some(Ok(())));
    assert_eq!(bulk.len(), 1 << 20);
    assert!(bulk.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
}

#[test]
fn a_lossy_reordering_link_loses_nothing_reliable() {
    let link = LinkModel {
        loss: 0.05,
        reorder: 0.1,
        reorder_window: Duration::from_millis(5),
        duplicate: 0.02,
        ..LinkModel::default()
    };
    let out = exchange(11, link);
    let reliable: Vec<String> = out.messages(1).into_iter().filter(|m| m != "datagram").collect();
    assert_eq!(reliable, vec!["one", "two", "three"]);
    let bulk: usize = out
        .events(1)
        .into_iter()
        .map(|e| match e {
            Event::BulkData { data, .. } => data.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(bulk, 1 << 20);
}

#[test]
fn a_run_repeats_bit_for_bit_and_another_seed_differs() {
    let link = LinkModel {
        loss: 0.02,
        ..LinkModel::default()
    };
    let a = exchange(3, link);
    let b = exchange(3, link);
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.log, b.log);
    let c = exchange(4, link);
    assert_ne!(a.trace_hash, c.trace_hash);
}

#[test]
fn a_revoked_peer_is_refused_and_both_sides_read_why() {
    let mut ca = ca(1);
    let c0 = credentials(&mut ca, 0, 10);
    let c1 = credentials(&mut ca, 1, 11);
    let clean = trust(&mut ca);
    ca.revoke(&trustchain::ca::serial_of(&c0.chain[0]).unwrap(), SIM_EPOCH_UNIX_SECS);
    let revoking = trust(&mut ca);
    let out = run(Setup {
        seed: 1,
        nodes: vec![
            (c0, clean, seeded(0), vec![(10, Action::Send(1, "let me in"))]),
            (c1, revoking, seeded(1), vec![]),
        ],
        link: LinkModel::default(),
        run_ms: 3_000,
    });
    assert!(out.messages(1).is_empty());
    let server = out.failures(1);
    assert_eq!(server.len(), 1, "{server:?}");
    assert_eq!(server[0].0, "revoked");
    let client = out.failures(0);
    assert_eq!(client.len(), 1, "{client:?}");
    assert_eq!(
        client[0].0, "revoked",
        "the refused node reads the reason: {}",
        client[0].1
    );
    assert!(client[0].1.contains("enroll again"), "{}", client[0].1);
}

#[test]
fn a_peer_revoked_while_connected_is_disconnected_and_both_sides_read_why() {
    let mut ca = ca(1);
    let c0 = credentials(&mut ca, 0, 10);
    let c1 = credentials(&mut ca, 1, 11);
    let clean = trust(&mut ca);
    ca.revoke(&trustchain::ca::serial_of(&c0.chain[0]).unwrap(), SIM_EPOCH_UNIX_SECS);
    let revoking = trust(&mut ca);
    let out = run(Setup {
        seed: 2,
        nodes: vec![
            (
                c0,
                clean.clone(),
                seeded(0),
                vec![(10, Action::Send(1, "before")), (2_000, Action::Send(1, "after"))],
            ),
            // Node 1 learns of the revocation while node 0's connection is live.
            (c1, clean, seeded(1), vec![(500, Action::Trust(revoking))]),
        ],
        link: LinkModel::default(),
        run_ms: 4_000,
    });
    assert_eq!(out.messages(1), vec!["before"], "nothing arrives after the revocation");
    let server = out.failures(1);
    assert!(
        !server.is_empty() && server.iter().all(|(class, _)| *class == "revoked"),
        "{server:?}"
    );
    let client = out.failures(0);
    assert!(
        !client.is_empty() && client.iter().all(|(class, _)| *class == "revoked"),
        "{client:?}"
    );
}

#[test]
fn a_peer_from_another_ca_is_refused_as_unknown_issuer() {
    let mut ours = ca(1);
    let mut theirs = ca(50);
    let c0 = credentials(&mut theirs, 0, 10);
    let t0 = trust(&mut theirs);
    let c1 = credentials(&mut ours, 1, 11);
    let t1 = trust(&mut ours);
    let out = run(Setup {
        seed: 1,
        nodes: vec![
            (c0, t0, seeded(0), vec![(10, Action::Send(1, "hello"))]),
            (c1, t1, seeded(1), vec![]),
        ],
        link: LinkModel::default(),
        run_ms: 3_000,
    });
    assert!(out.messages(1).is_empty());
    // The client checks the server first and refuses it; the server never sees a chain.
    let client = out.failures(0);
    assert_eq!(
        client.iter().map(|f| f.0).collect::<Vec<_>>(),
        vec!["unknown_issuer"],
        "{client:?}"
    );
    let server = out.failures(1);
    assert_eq!(
        server.iter().map(|f| f.0).collect::<Vec<_>>(),
        vec!["unknown_issuer"],
        "{server:?}"
    );
}

#[test]
fn a_certificate_for_another_address_is_refused_as_name_mismatch() {
    let mut ca = ca(1);
    // Node 0 presents node 2's certificate (a valid chain, the wrong address).
    let stolen = credentials(&mut ca, 2, 12);
    let c1 = credentials(&mut ca, 1, 11);
    let t = trust(&mut ca);
    let out = run(Setup {
        seed: 1,
        nodes: vec![
            (stolen, t.clone(), seeded(0), vec![(10, Action::Send(1, "hello"))]),
            (c1, t, seeded(1), vec![]),
        ],
        link: LinkModel::default(),
        run_ms: 3_000,
    });
    assert!(out.messages(1).is_empty());
    assert_eq!(
        out.failures(1).iter().map(|f| f.0).collect::<Vec<_>>(),
        vec!["name_mismatch"]
    );
    assert_eq!(
        out.failures(0).iter().map(|f| f.0).collect::<Vec<_>>(),
        vec!["name_mismatch"]
    );
}

/// Joins node 0's first Handshake datagram (its certificate, CertificateVerify and Finished) and
/// the 1-RTT datagram it sends right after into one UDP datagram, as RFC 9000 §12.2 allows
/// (long-header packets carry their length; the short-header one goes last). quinn-proto
/// coalesces them itself when the chain leaves room; with STOQ's chains at a 1,200-byte MTU it
/// sends two datagrams, which a receive batch on real sockets hands to the endpoint together
/// all the same, and which a malicious client can join at will.
struct CoalesceFirstFlight {
    held: Option<Bytes>,
    /// Set once the coalesced datagram went out.
    joined: Arc<Mutex<bool>>,
}

impl Interceptor for CoalesceFirstFlight {
    fn intercept(&mut self, link: LinkEnds, payload: Bytes, _rng: &mut DetRng) -> Intercepted {
        let joined = *self.joined.lock().unwrap();
        let Some(&first) = payload.first() else {
            return Intercepted::Pass(payload);
        };
        let long_header = first & 0x80 != 0;
        let handshake = long_header && (first & 0x30) >> 4 == 2;
        if link.from_node != 0 || joined {
            return Intercepted::Pass(payload);
        }
        match self.held.take() {
            None if handshake => {
                self.held = Some(payload);
                Intercepted::Dropped
            }
            Some(held) if !long_header => {
                *self.joined.lock().unwrap() = true;
                let mut both = held.to_vec();
                both.extend_from_slice(&payload);
                Intercepted::Mutated(Bytes::from(both))
            }
            held => {
                self.held = held;
                Intercepted::Pass(payload)
            }
        }
    }
}

/// TLS 1.3 authenticates the client last: its Finished (after its certificate) can share a UDP
/// datagram with the 1-RTT packet carrying what it queued before the handshake (DATAGRAM
/// frames, its message stream, a request stream). quinn-proto processes the whole datagram, so
/// the server holds that data before STOQ has bound the certificate to the address. A refused
/// peer's data must never reach the owner, and is discarded (counted) with its connection.
#[test]
fn data_coalesced_with_a_refused_clients_finished_never_reaches_the_owner() {
    let mut ca = ca(1);
    // Node 0 presents node 2's certificate (a valid chain, the wrong address), and queues
    // messages of every kind before its handshake, so they ride with its Finished.
    let stolen = credentials(&mut ca, 2, 12);
    let c1 = credentials(&mut ca, 1, 11);
    let t = trust(&mut ca);
    let joined = Arc::new(Mutex::new(false));
    let out = run_intercepted(
        Setup {
            seed: 3,
            nodes: vec![
                (
                    stolen,
                    t.clone(),
                    seeded(0),
                    vec![
                        (10, Action::Unreliable(1, "datagram one")),
                        (10, Action::Unreliable(1, "datagram two")),
                        (10, Action::Send(1, "on the message stream")),
                        (10, Action::Request(1, "a request")),
                    ],
                ),
                (c1, t, seeded(1), vec![]),
            ],
            link: LinkModel::default(),
            run_ms: 3_000,
        },
        Some(Box::new(CoalesceFirstFlight {
            held: None,
            joined: joined.clone(),
        })),
    );
    assert!(*joined.lock().unwrap(), "the first flight was coalesced");
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let heard: Vec<&Event> = out
        .events(1)
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                Event::Message { .. } | Event::Request { .. } | Event::BulkOpened { .. } | Event::BulkData { .. }
            )
        })
        .collect();
    assert!(heard.is_empty(), "the server heard a refused peer: {heard:?}");
    assert_eq!(
        out.failures(1).iter().map(|f| f.0).collect::<Vec<_>>(),
        vec!["name_mismatch"]
    );
    assert_eq!(
        out.failures(0).iter().map(|f| f.0).collect::<Vec<_>>(),
        vec!["name_mismatch"]
    );
    // It did arrive with the Finished: two DATAGRAM frames, the message stream and the request
    // stream, discarded unread.
    assert_eq!(out.stats[&1].refused_data_discarded, 4);
    assert_eq!(out.stats[&1].messages_received + out.stats[&1].requests_received, 0);
}

/// The same coalesced first flight from a client whose certificate names its own address: the
/// data held back until its identity is verified reaches the owner right after `Connected`,
/// none of it lost.
#[test]
fn data_coalesced_with_a_verified_clients_finished_arrives_after_connected() {
    let mut ca = ca(1);
    let c0 = credentials(&mut ca, 0, 10);
    let c1 = credentials(&mut ca, 1, 11);
    let t = trust(&mut ca);
    let joined = Arc::new(Mutex::new(false));
    let out = run_intercepted(
        Setup {
            seed: 3,
            nodes: vec![
                (
                    c0,
                    t.clone(),
                    seeded(0),
                    vec![
                        (10, Action::Unreliable(1, "datagram one")),
                        (10, Action::Unreliable(1, "datagram two")),
                        (10, Action::Send(1, "on the message stream")),
                        (10, Action::Request(1, "a request")),
                    ],
                ),
                (c1, t, seeded(1), vec![]),
            ],
            link: LinkModel::default(),
            run_ms: 3_000,
        },
        Some(Box::new(CoalesceFirstFlight {
            held: None,
            joined: joined.clone(),
        })),
    );
    assert!(*joined.lock().unwrap(), "the first flight was coalesced");
    assert!(out.errors.is_empty(), "{:?}", out.errors);
    let server: Vec<String> = out
        .events(1)
        .into_iter()
        .filter_map(|e| match e {
            Event::Connected { .. } => Some("connected".to_string()),
            Event::Message { payload, .. } | Event::Request { payload, .. } => {
                Some(String::from_utf8_lossy(payload).into_owned())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        server,
        vec![
            "connected",
            "datagram one",
            "datagram two",
            "a request",
            "on the message stream"
        ]
    );
    assert_eq!(out.stats[&1].refused_data_discarded, 0);
    let responses: Vec<_> = out
        .events(0)
        .into_iter()
        .filter_map(|e| match e {
            Event::Response { result, .. } => Some(result.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(responses, vec![Ok(Bytes::from_static(b"re:a request"))]);
}

/// The same refusal on real sockets, with no coalescing: the refused client's Finished and its
/// 1-RTT datagram reach the server in one receive batch (`recvmmsg`, GRO), which the endpoint
/// takes in whole before it looks at events (`more_datagrams_follow`), so quinn-proto holds the
/// data before the certificate is bound to the address, as in the coalesced case.
#[test]
fn data_in_the_receive_batch_of_a_refused_clients_finished_never_reaches_the_owner() {
    let mut ca = ca(1);
    let stolen = credentials(&mut ca, 2, 12);
    let c1 = credentials(&mut ca, 1, 11);
    let t = trust(&mut ca);
    let at_epoch = |i: u32| {
        let mut env = runtime::RecordingEnv::new(addr(i), u64::from(i));
        env.wall_epoch = runtime::WallTime::from_unix_nanos(SIM_EPOCH_UNIX_SECS * 1_000_000_000);
        env
    };
    let (mut client_env, mut server_env) = (at_epoch(0), at_epoch(1));
    let mut client = Endpoint::new(&mut client_env, seeded(0), Some(&stolen), t.clone()).unwrap();
    let mut server = Endpoint::new(&mut server_env, seeded(1), Some(&c1), t).unwrap();
    client
        .send_unreliable(&mut client_env, addr(1), Bytes::from_static(b"datagram"))
        .unwrap();
    client
        .send(&mut client_env, addr(1), Bytes::from_static(b"message"))
        .unwrap();
    client
        .request(&mut client_env, addr(1), Bytes::from_static(b"request"))
        .unwrap();
    let mut heard = Vec::new();
    let mut largest_batch = 0;
    // Each side takes what the other sent as one batch; no time passes, nothing is lost.
    for _ in 0..10 {
        let flight = client_env.take_sent();
        largest_batch = largest_batch.max(flight.len());
        let last = flight.len().saturating_sub(1);
        for (i, (_, datagram)) in flight.into_iter().enumerate() {
            server_env.more_follow = i < last;
            server.handle_datagram(&mut server_env, addr(0), datagram);
        }
        while let Some(event) = server.poll_event() {
            heard.push(event);
        }
        for (_, datagram) in server_env.take_sent() {
            client.handle_datagram(&mut client_env, addr(1), datagram);
        }
        while client.poll_event().is_some() {}
    }
    assert!(largest_batch >= 2, "the Finished and the 1-RTT data came in one batch");
    let refused: Vec<&Event> = heard
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::ConnectFailed {
                    class: "name_mismatch",
                    ..
                }
            )
        })
        .collect();
    assert_eq!(refused.len(), 1, "{heard:?}");
    let data: Vec<&Event> = heard
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Message { .. } | Event::Request { .. } | Event::BulkOpened { .. }
            )
        })
        .collect();
    assert!(data.is_empty(), "the server heard a refused peer: {data:?}");
    assert_eq!(server.stats().refused_data_discarded, 3);
}

#[test]
fn rotation_keeps_live_connections_and_new_ones_see_the_new_chain() {
    let mut ca = ca(1);
    let c0 = credentials(&mut ca, 0, 10);
    let c1 = credentials(&mut ca, 1, 11);
    let c2 = credentials(&mut ca, 2, 12);
    ca.rotate(&[77; 32], SIM_EPOCH_UNIX_SECS).unwrap();
    let renewed = credentials(&mut ca, 1, 21);
    let new_serial = trustchain::ca::serial_of(&renewed.chain[0]).unwrap();
    let t = trust(&mut ca);
    let out = run(Setup {
        seed: 5,
        nodes: vec![
            (
                c0,
                t.clone(),
                seeded(0),
                vec![(10, Action::Send(1, "before")), (1_000, Action::Send(1, "after"))],
            ),
            (c1, t.clone(), seeded(1), vec![(500, Action::Present(renewed))]),
            (c2, t, seeded(2), vec![(1_500, Action::Send(1, "newcomer"))]),
        ],
        link: LinkModel::default(),
        run_ms: 4_000,
    });
    assert_eq!(out.messages(1), vec!["before", "after", "newcomer"]);
    let lost = out
        .log
        .iter()
        .filter(|(_, e)| matches!(e, Event::Disconnected { .. }))
        .count();
    assert_eq!(lost, 0);
    let seen_by_2: Vec<_> = out
        .events(2)
        .into_iter()
        .filter_map(|e| match e {
            Event::Connected { identity, .. } => Some(identity.serial.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(seen_by_2, vec![new_serial]);
}

#[test]
fn an_oversized_frame_closes_the_connection_with_a_named_error() {
    let mut ca = ca(1);
    let c0 = credentials(&mut ca, 0, 10);
    let c1 = credentials(&mut ca, 1, 11);
    let t = trust(&mut ca);
    let big: &'static str = Box::leak("x".repeat(2048).into_boxed_str());
    let strict = StoqConfig {
        frame_bytes_max: 1024,
        ..seeded(1)
    };
    let out = run(Setup {
        seed: 1,
        nodes: vec![
            (
                c0,
                t.clone(),
                seeded(0),
                vec![(10, Action::Send(1, "small")), (100, Action::Send(1, big))],
            ),
            (c1, t, strict, vec![]),
        ],
        link: LinkModel::default(),
        run_ms: 2_000,
    });
    assert_eq!(out.messages(1), vec!["small"]);
    let malformed: Vec<_> = out
        .events(1)
        .into_iter()
        .filter_map(|e| match e {
            Event::Malformed { detail, .. } => Some(detail.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(malformed.len(), 1);
    assert!(
        malformed[0].contains("frame of 2048 bytes announced, above the 1024-byte limit"),
        "{}",
        malformed[0]
    );
    let disconnected: Vec<_> = out
        .events(0)
        .into_iter()
        .filter_map(|e| match e {
            Event::Disconnected { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(disconnected.len(), 1);
    assert!(disconnected[0].contains("frame error"), "{}", disconnected[0]);
}

#[test]
fn ipv4_destinations_are_refused_by_name() {
    let mut ca = ca(1);
    let c0 = credentials(&mut ca, 0, 10);
    let t = trust(&mut ca);
    let out = run(Setup {
        seed: 1,
        nodes: vec![(
            c0,
            t,
            seeded(0),
            vec![(10, Action::SendTo("10.0.0.2:7000".parse().unwrap(), "hi"))],
        )],
        link: LinkModel::default(),
        run_ms: 100,
    });
    assert_eq!(out.errors.len(), 1);
    assert!(
        out.errors[0].1.to_string().contains("STOQ is IPv6-only"),
        "{}",
        out.errors[0].1
    );
}

#[test]
fn closing_a_connection_tells_the_peer_why_and_a_later_send_reconnects() {
    let mut ca = ca(1);
    let c0 = credentials(&mut ca, 0, 10);
    let c1 = credentials(&mut ca, 1, 11);
    let t = trust(&mut ca);
    let out = run(Setup {
        seed: 2,
        nodes: vec![
            (
                c0,
                t.clone(),
                seeded(0),
                vec![
                    (10, Action::Send(1, "first")),
                    (500, Action::Close(1)),
                    (1_000, Action::Send(1, "again")),
                ],
            ),
            (c1, t, seeded(1), vec![]),
        ],
        link: LinkModel::default(),
        run_ms: 3_000,
    });
    assert_eq!(out.messages(1), vec!["first", "again"]);
    let closed: Vec<_> = out
        .events(1)
        .into_iter()
        .filter_map(|e| match e {
            Event::Disconnected { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(closed.len(), 1);
    assert!(closed[0].contains("closed by the local node"), "{}", closed[0]);
    let connects = out
        .events(1)
        .into_iter()
        .filter(|e| matches!(e, Event::Connected { .. }))
        .count();
    assert_eq!(connects, 2, "the send after the close dialled again");
}

/// Hands every datagram to the host as a backend with GRO does: a view of a larger receive
/// buffer (here the datagram followed by another's worth of bytes).
struct AsViews(runtime::host::Host);

impl Actor for AsViews {
    fn on_start(&mut self, env: &mut dyn Env) {
        self.0.on_start(env);
    }
    fn on_datagram(&mut self, env: &mut dyn Env, from: SocketAddr, payload: Bytes) {
        let mut run = bytes::BytesMut::with_capacity(2 * payload.len());
        run.extend_from_slice(&payload);
        run.extend_from_slice(&payload);
        let view = run.split_to(payload.len());
        self.0.on_datagram_owned(env, from, view);
    }
    fn on_timer(&mut self, env: &mut dyn Env, token: runtime::TimerToken) {
        self.0.on_timer(env, token);
    }
}

/// Sends one message to node 1 at start (node 0), and keeps what it hears (node 1), noting
/// whether each message's bytes are its own.
struct Keep {
    me: u32,
    heard: Arc<Mutex<Vec<(String, bool)>>>,
}

impl runtime::host::Protocol for Keep {
    type Timer = ();

    fn on_start(&mut self, cx: &mut runtime::host::Context<'_, ()>) {
        if self.me == 0 {
            let at = runtime::Clock::now(cx) + Duration::from_millis(200);
            cx.set_timer(at, ());
        }
    }

    fn on_message(&mut self, _: &mut runtime::host::Context<'_, ()>, _: SocketAddr, payload: Bytes) {
        let text = String::from_utf8_lossy(&payload).into_owned();
        let own = payload.try_into_mut().is_ok();
        self.heard.lock().unwrap().push((text, own));
    }

    fn on_timer(&mut self, cx: &mut runtime::host::Context<'_, ()>, (): ()) {
        let _ = cx.send_to(addr(1), Bytes::from_static(b"kept for a long time"));
        let long = Bytes::from(vec![b'x'; 3000]);
        let _ = cx.send_to(addr(1), long);
    }
}

#[test]
fn a_message_from_a_view_of_a_receive_buffer_is_delivered_as_bytes_of_its_own() {
    const KEEP: runtime::host::Mount = runtime::host::Mount::new("keep", runtime::host::Channel(9));
    let mut ca = ca(1);
    let creds = [credentials(&mut ca, 0, 10), credentials(&mut ca, 1, 11)];
    let trust = trust(&mut ca);
    let heard: Arc<Mutex<Vec<(String, bool)>>> = Arc::default();
    let h = heard.clone();
    let factory = move |i: u32| -> Box<dyn Actor> {
        let transport = Stoq::new(seeded(u64::from(i)), Some(creds[i as usize].clone()), trust.clone());
        let host = runtime::host::Host::new(transport).mount(
            KEEP,
            Keep {
                me: i,
                heard: h.clone(),
            },
        );
        Box::new(AsViews(host))
    };
    let mut sim = Simulation::new(3, NetworkModel::default(), Box::new(factory));
    for i in 0..2 {
        sim.add_node(NodeSpec {
            addrs: vec![addr(i)],
            ..NodeSpec::default()
        });
    }
    sim.run_until(SimTime::from_millis(3_000), |_| {});
    let heard = heard.lock().unwrap().clone();
    // A short message (one QUIC datagram) and a long one (a stream frame): both delivered, and
    // neither keeps a receive buffer alive (a slice of one could not be made mutable alone).
    assert_eq!(heard.len(), 2, "{heard:?}");
    assert!(heard.iter().any(|(t, _)| t == "kept for a long time"), "{heard:?}");
    assert!(
        heard.iter().all(|(_, own)| *own),
        "a delivered message shares its receive buffer: {heard:?}"
    );
}

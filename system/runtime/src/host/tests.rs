use std::net::SocketAddr;

use bytes::Bytes;

use super::*;
use crate::{Entropy, Instant, Probes, RecordingEnv, SendError, Storage};

/// A timer that carries what membership's suspicion timer carries: a full 64-bit node id.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Tick {
    Suspect(u64),
    Round,
}

/// Records what it is called with; sends `reply` back to whoever writes to it.
#[derive(Default)]
struct Recorder {
    fired: Vec<Tick>,
    heard: Vec<(SocketAddr, Bytes)>,
    draws: Vec<u64>,
    draws_per_call: usize,
}

impl Protocol for Recorder {
    type Timer = Tick;
    fn on_start(&mut self, cx: &mut Context<'_, Tick>) {
        for _ in 0..self.draws_per_call {
            self.draws.push(cx.next_u64());
        }
    }
    fn on_message(&mut self, cx: &mut Context<'_, Tick>, from: SocketAddr, payload: Bytes) {
        cx.probe(Probe::new("heard", 0, payload.len() as i64));
        self.heard.push((from, payload));
    }
    fn on_timer(&mut self, _cx: &mut Context<'_, Tick>, timer: Tick) {
        self.fired.push(timer);
    }
}

/// A second protocol type that reads its sibling.
#[derive(Default)]
struct Reader {
    seen_heard: Option<usize>,
}

impl Protocol for Reader {
    type Timer = ();
    fn on_start(&mut self, _cx: &mut Context<'_, ()>) {}
    fn on_message(&mut self, cx: &mut Context<'_, ()>, _from: SocketAddr, _payload: Bytes) {
        self.seen_heard = cx.sibling::<Recorder>().map(|r| r.heard.len());
    }
    fn on_timer(&mut self, _cx: &mut Context<'_, ()>, _timer: ()) {}
}

fn addr(i: u16) -> SocketAddr {
    SocketAddr::new("fd00::1".parse().unwrap(), 7000 + i)
}

fn env() -> RecordingEnv {
    RecordingEnv::new(addr(0), 7)
}

fn framed(channel: u8, body: &[u8]) -> Bytes {
    let mut v = vec![channel];
    v.extend_from_slice(body);
    Bytes::from(v)
}

/// Fires every due timer of `env` on `host`.
fn fire_due(host: &mut Host, env: &mut RecordingEnv) {
    for token in env.due_timers() {
        host.on_timer(env, token);
    }
}

/// Sets timers from inside a protocol call: a one-off protocol for the timer tests.
struct Setter {
    plan: Vec<(u64, Tick)>,
    fired: Vec<Tick>,
}

impl Protocol for Setter {
    type Timer = Tick;
    fn on_start(&mut self, cx: &mut Context<'_, Tick>) {
        for (ms, tick) in self.plan.drain(..) {
            let at = Instant::from_nanos(ms * 1_000_000);
            cx.set_timer(at, tick);
        }
    }
    fn on_message(&mut self, _: &mut Context<'_, Tick>, _: SocketAddr, _: Bytes) {}
    fn on_timer(&mut self, _: &mut Context<'_, Tick>, timer: Tick) {
        self.fired.push(timer);
    }
}

#[test]
fn typed_timers_carry_full_64_bit_values_and_come_back_to_their_owner() {
    let big = u64::MAX - 3; // above 2^56: what bit-packed tokens could not carry
    let mut host = Host::new(BareDatagrams)
        .mount(
            Mount::new("first", Channel(1)),
            Setter {
                plan: vec![(10, Tick::Suspect(big)), (30, Tick::Round)],
                fired: vec![],
            },
        )
        .mount(Mount::new("second", Channel(2)), Recorder::default());
    let mut env = env();
    host.on_start(&mut env);
    assert_eq!(host.pending_timers(), 2);
    env.advance_to(Instant::from_nanos(20_000_000));
    fire_due(&mut host, &mut env);
    assert_eq!(host.protocol::<Setter>().unwrap().fired, vec![Tick::Suspect(big)]);
    env.advance_to(Instant::from_nanos(40_000_000));
    fire_due(&mut host, &mut env);
    assert_eq!(
        host.protocol::<Setter>().unwrap().fired,
        vec![Tick::Suspect(big), Tick::Round]
    );
    assert!(
        host.protocol::<Recorder>().unwrap().fired.is_empty(),
        "a sibling saw another's timer"
    );
    assert_eq!(host.pending_timers(), 0);
}

#[test]
fn a_token_the_host_never_issued_is_counted_not_dispatched() {
    let mut host = Host::new(BareDatagrams).mount(Mount::new("only", Channel(1)), Recorder::default());
    let mut env = env();
    host.on_start(&mut env);
    host.on_timer(&mut env, 999);
    assert_eq!(host.stats().unknown_timers, 1);
    assert!(host.protocol::<Recorder>().unwrap().fired.is_empty());
    assert_eq!(env.probes_named("unknown_timer").count(), 1);
}

#[test]
fn messages_reach_the_protocol_on_their_channel_without_the_channel_byte() {
    let mut host = Host::new(BareDatagrams)
        .mount(Mount::new("recorder", Channel(1)), Recorder::default())
        .mount(Mount::new("reader", Channel(2)), Reader::default());
    let mut env = env();
    host.on_start(&mut env);
    host.on_datagram(&mut env, addr(1), framed(1, b"ping"));
    host.on_datagram(&mut env, addr(2), framed(2, b"x"));
    let recorder = host.protocol::<Recorder>().unwrap();
    assert_eq!(recorder.heard, vec![(addr(1), Bytes::from_static(b"ping"))]);
    // The reader saw its sibling's state through `sibling`, read-only.
    assert_eq!(host.protocol::<Reader>().unwrap().seen_heard, Some(1));
    let heard = env.probes_named("heard").next().unwrap();
    assert_eq!(heard.protocol, "recorder", "probes carry their protocol's name");
}

#[test]
fn unknown_channels_and_empty_datagrams_are_counted_and_probed() {
    let mut host = Host::new(BareDatagrams).mount(Mount::new("recorder", Channel(1)), Recorder::default());
    let mut env = env();
    host.on_start(&mut env);
    host.on_datagram(&mut env, addr(1), framed(9, b"lost"));
    host.on_datagram(&mut env, addr(1), Bytes::new());
    assert_eq!(host.stats().unknown_channel, 1);
    assert_eq!(host.stats().malformed, 1);
    assert!(host.protocol::<Recorder>().unwrap().heard.is_empty());
    let unknown = env.probes_named("unknown_channel").next().unwrap();
    assert_eq!((unknown.protocol, unknown.value), ("datagrams", 1));
    assert_eq!(env.probes_named("malformed").count(), 1);
}

#[test]
fn a_batch_waits_for_its_last_datagram_and_beyond_inbox_max_is_dropped() {
    let mount = Mount {
        inbox_max: 3,
        ..Mount::new("recorder", Channel(1))
    };
    let mut host = Host::new(BareDatagrams).mount(mount, Recorder::default());
    let mut env = env();
    host.on_start(&mut env);
    env.more_follow = true;
    for i in 0..5u8 {
        host.on_datagram(&mut env, addr(1), framed(1, &[i]));
    }
    assert!(
        host.protocol::<Recorder>().unwrap().heard.is_empty(),
        "delivered before the batch ended"
    );
    env.more_follow = false;
    host.on_datagram(&mut env, addr(1), framed(1, &[5]));
    let heard: Vec<u8> = host
        .protocol::<Recorder>()
        .unwrap()
        .heard
        .iter()
        .map(|(_, b)| b[0])
        .collect();
    // Three queued; the rest of the batch, its last datagram included, met a full queue.
    assert_eq!(heard, vec![0, 1, 2]);
    assert_eq!(host.stats().inbox_full, 3);
    assert_eq!(env.probes_named("inbox_full").next().unwrap().value, 3);
    // Drained, the queue takes messages again.
    host.on_datagram(&mut env, addr(1), framed(1, &[6]));
    assert_eq!(host.protocol::<Recorder>().unwrap().heard.len(), 4);
}

#[test]
fn sends_carry_the_senders_channel() {
    struct Sender;
    impl Protocol for Sender {
        type Timer = ();
        fn on_start(&mut self, cx: &mut Context<'_, ()>) {
            cx.send_to(addr(5), Bytes::from_static(b"hello")).unwrap();
        }
        fn on_message(&mut self, _: &mut Context<'_, ()>, _: SocketAddr, _: Bytes) {}
        fn on_timer(&mut self, _: &mut Context<'_, ()>, _: ()) {}
    }
    let mut host = Host::new(BareDatagrams).mount(Mount::new("sender", Channel(42)), Sender);
    let mut env = env();
    host.on_start(&mut env);
    assert_eq!(env.take_sent(), vec![(addr(5), framed(42, b"hello"))]);
}

/// Asks the transport who sent each message it hears.
#[derive(Default)]
struct Asker {
    senders: Vec<Option<String>>,
}

impl Protocol for Asker {
    type Timer = ();
    fn on_start(&mut self, _: &mut Context<'_, ()>) {}
    fn on_message(&mut self, cx: &mut Context<'_, ()>, from: SocketAddr, _: Bytes) {
        self.senders.push(cx.peer_identity(from).map(str::to_owned));
    }
    fn on_timer(&mut self, _: &mut Context<'_, ()>, _: ()) {}
}

#[test]
fn a_protocol_learns_who_the_transport_authenticated_at_an_address() {
    /// Bare datagrams that vouch for one address, as an authenticating transport would.
    struct Vouching {
        addr: SocketAddr,
        name: &'static str,
    }
    impl Transport for Vouching {
        fn name(&self) -> &'static str {
            "vouching"
        }
        fn on_start(&mut self, env: &mut dyn Env, inbox: &mut Inbox) {
            BareDatagrams.on_start(env, inbox);
        }
        fn on_datagram(&mut self, env: &mut dyn Env, from: SocketAddr, payload: Bytes, inbox: &mut Inbox) {
            BareDatagrams.on_datagram(env, from, payload, inbox);
        }
        fn on_timer(&mut self, _: &mut dyn Env, _: TimerToken, _: &mut Inbox) {}
        fn send(
            &mut self,
            env: &mut dyn Env,
            channel: Channel,
            to: SocketAddr,
            payload: Bytes,
        ) -> Result<(), SendError> {
            BareDatagrams.send(env, channel, to, payload)
        }
        fn peer_identity(&self, addr: SocketAddr) -> Option<&str> {
            (addr == self.addr).then_some(self.name)
        }
    }
    let mount = Mount::new("asker", Channel(3));
    let mut env = env();
    let transport = Vouching {
        addr: addr(1),
        name: "node-1.mesh",
    };
    let mut host = Host::new(transport).mount(mount.clone(), Asker::default());
    host.on_start(&mut env);
    host.on_datagram(&mut env, addr(1), framed(3, b"a"));
    host.on_datagram(&mut env, addr(2), framed(3, b"b"));
    assert_eq!(
        host.protocol::<Asker>().unwrap().senders,
        vec![Some("node-1.mesh".to_owned()), None]
    );

    // Bare datagrams authenticate nobody.
    let mut host = Host::new(BareDatagrams).mount(mount, Asker::default());
    host.on_start(&mut env);
    host.on_datagram(&mut env, addr(1), framed(3, b"a"));
    assert_eq!(host.protocol::<Asker>().unwrap().senders, vec![None]);
}

#[test]
fn files_are_namespaced_per_protocol() {
    struct Writer(&'static [u8]);
    impl Protocol for Writer {
        type Timer = ();
        fn on_start(&mut self, cx: &mut Context<'_, ()>) {
            cx.write_all_synced("state", self.0).unwrap();
            assert_eq!(cx.list().unwrap(), vec!["state".to_string()]);
            assert_eq!(cx.read_all("state").unwrap(), self.0);
        }
        fn on_message(&mut self, _: &mut Context<'_, ()>, _: SocketAddr, _: Bytes) {}
        fn on_timer(&mut self, _: &mut Context<'_, ()>, _: ()) {}
    }
    let mut host = Host::new(BareDatagrams)
        .mount(Mount::new("alpha", Channel(1)), Writer(b"a"))
        .mount(Mount::new("beta", Channel(2)), Recorder::default());
    let mut env = env();
    host.on_start(&mut env);
    assert_eq!(env.storage.list().unwrap(), vec!["alpha.state".to_string()]);
    assert_eq!(env.storage.read_all("alpha.state").unwrap(), b"a");
}

#[test]
fn a_protocols_random_draws_do_not_depend_on_its_siblings() {
    struct Drawer(usize);
    impl Protocol for Drawer {
        type Timer = ();
        fn on_start(&mut self, cx: &mut Context<'_, ()>) {
            for _ in 0..self.0 {
                cx.next_u64();
            }
        }
        fn on_message(&mut self, _: &mut Context<'_, ()>, _: SocketAddr, _: Bytes) {}
        fn on_timer(&mut self, _: &mut Context<'_, ()>, _: ()) {}
    }
    // The sibling starts first and draws 0 or 100 times; the recorder's stream must not move.
    let recorder_draws = |sibling_draws: usize| {
        let mut host = Host::new(BareDatagrams)
            .mount(Mount::new("drawer", Channel(1)), Drawer(sibling_draws))
            .mount(
                Mount::new("recorder", Channel(2)),
                Recorder {
                    draws_per_call: 4,
                    ..Recorder::default()
                },
            );
        host.on_start(&mut env());
        host.protocol::<Recorder>().unwrap().draws.clone()
    };
    assert_eq!(recorder_draws(0), recorder_draws(100));
    assert_eq!(recorder_draws(0).len(), 4);
}

#[test]
#[should_panic(expected = "share channel")]
fn two_protocols_on_one_channel_is_refused() {
    let _ = Host::new(BareDatagrams)
        .mount(Mount::new("a", Channel(1)), Recorder::default())
        .mount(Mount::new("b", Channel(1)), Reader::default());
}

#[test]
#[should_panic(expected = "use 1 to")]
fn a_name_that_cannot_prefix_a_file_is_refused() {
    let _ = Host::new(BareDatagrams).mount(Mount::new("Bad/Name", Channel(1)), Recorder::default());
}

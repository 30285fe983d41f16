//! Small simulated clusters of real membership nodes, with a wiretap on every link.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

use bytes::Bytes;
use hypermesh::membership::wire::{Message, Record};
use hypermesh::membership::{MemberState, MembershipConfig, MembershipNode, NodeId, MOUNT};
use runtime::host::{BareDatagrams, Host};
use runtime::{Actor, DetRng};
use simulator::{
    ClockModel, Intercepted, Interceptor, LinkEnds, LinkModel, NetworkModel, NodeIndex, NodeSpec, SimTime, Simulation,
};

use super::bench::framed;

/// Node `i`'s address.
pub fn addr(i: NodeIndex) -> SocketAddr {
    format!("[fd00::1:{:x}]:7000", i + 1).parse().expect("address")
}

/// Node `i`'s id.
pub fn id(i: NodeIndex) -> NodeId {
    NodeId(u64::from(i) + 1)
}

/// A membership message seen on a link.
#[derive(Clone, Debug)]
pub struct Tapped {
    /// Sending node.
    pub from: NodeIndex,
    /// Receiving node.
    pub to: NodeIndex,
    /// What it said.
    pub message: Message,
}

/// Decides which tapped messages are lost on their link (true: lost).
type LossRule = Box<dyn FnMut(&Tapped) -> bool>;

/// Records every membership message sent on any link, losing those a loss rule claims.
struct Wiretap {
    tapped: Rc<RefCell<Vec<Tapped>>>,
    loss_rules: Rc<RefCell<Vec<LossRule>>>,
}

impl Interceptor for Wiretap {
    fn intercept(&mut self, link: LinkEnds, payload: Bytes, _rng: &mut DetRng) -> Intercepted {
        if let Some((&channel, body)) = payload.split_first() {
            if channel == MOUNT.channel.0 {
                let message = Message::decode(body).expect("members send well-formed messages");
                let tapped = Tapped {
                    from: link.from_node,
                    to: link.to_node,
                    message,
                };
                let lost = self.loss_rules.borrow_mut().iter_mut().any(|lose| lose(&tapped));
                self.tapped.borrow_mut().push(tapped);
                if lost {
                    return Intercepted::Dropped;
                }
            }
        }
        Intercepted::Pass(payload)
    }
}

/// How a [`Cluster`] is built: how many seeds, its links, its settings.
pub struct Shape {
    /// Nodes `0..seeds` are the seeds every node joins through.
    pub seeds: NodeIndex,
    /// Every link.
    pub link: LinkModel,
    /// Changes to the guide's settings, made on every node.
    pub settings: fn(&mut MembershipConfig),
}

impl Default for Shape {
    /// One seed, node 0, on clean links, with the guide's settings.
    fn default() -> Self {
        Shape {
            seeds: 1,
            link: LinkModel::default(),
            settings: |_| {},
        }
    }
}

/// A simulated cluster whose nodes all join through its seeds (node 0 unless told otherwise).
pub struct Cluster {
    /// The simulation.
    pub sim: Simulation,
    tap: Rc<RefCell<Vec<Tapped>>>,
    loss_rules: Rc<RefCell<Vec<LossRule>>>,
}

impl Cluster {
    /// `nodes` nodes joining through node 0 on a clean network with the guide's settings,
    /// started at time zero, driven by `seed`.
    pub fn new(seed: u64, nodes: NodeIndex) -> Cluster {
        Cluster::shaped(seed, nodes, Shape::default())
    }

    /// `nodes` nodes built as `shape` says, started at time zero, driven by `seed`.
    pub fn shaped(seed: u64, nodes: NodeIndex, shape: Shape) -> Cluster {
        assert!(shape.seeds >= 1, "a cluster needs a seed");
        let Shape { seeds, link, settings } = shape;
        let factory = move |i: NodeIndex| -> Box<dyn Actor> {
            let mut config = MembershipConfig::new(id(i), (0..seeds).map(addr).collect());
            settings(&mut config);
            config.validate().expect("the test's settings are valid");
            Box::new(Host::new(BareDatagrams).mount(MOUNT, MembershipNode::new(config)))
        };
        let mut sim = Simulation::new(seed, NetworkModel::new(link), Box::new(factory));
        let tap = Rc::new(RefCell::new(Vec::new()));
        let loss_rules = Rc::new(RefCell::new(Vec::new()));
        sim.set_interceptor(Box::new(Wiretap {
            tapped: tap.clone(),
            loss_rules: loss_rules.clone(),
        }));
        let mut cluster = Cluster { sim, tap, loss_rules };
        for _ in 0..nodes {
            cluster.add_node_at(SimTime::ZERO, ClockModel::default());
        }
        cluster
    }

    /// Loses every membership message `lose` returns true for, from now on.
    pub fn lose_all(&mut self, lose: impl FnMut(&Tapped) -> bool + 'static) {
        self.loss_rules.borrow_mut().push(Box::new(lose));
    }

    /// Adds a node that starts at `at` with `clock`; returns its index.
    pub fn add_node_at(&mut self, at: SimTime, clock: ClockModel) -> NodeIndex {
        let i = self.sim.node_count() as NodeIndex;
        self.sim.add_node_at(
            NodeSpec {
                addrs: vec![addr(i)],
                clock,
                ..NodeSpec::default()
            },
            at,
        )
    }

    /// Runs until `at`.
    pub fn run_until(&mut self, at: SimTime) {
        self.sim.run_until(at, |_| {});
    }

    /// Every membership message sent since the tap was last cleared.
    pub fn tapped(&self) -> Vec<Tapped> {
        self.tap.borrow().clone()
    }

    /// Forgets what the tap has seen so far.
    pub fn clear_tap(&mut self) {
        self.tap.borrow_mut().clear();
    }

    /// Delivers `message` to node `to` at `at`, as if node `from` had sent it.
    pub fn forge(&mut self, at: SimTime, from: NodeIndex, to: NodeIndex, message: &Message) {
        self.sim.forge(at, addr(from), addr(to), framed(message));
    }

    /// Every probe named `name` that node `node` recorded, with when.
    pub fn probes_named(&self, node: NodeIndex, name: &str) -> Vec<(SimTime, u64, i64)> {
        self.sim
            .probes()
            .iter()
            .filter(|r| r.node == node && r.probe.name == name)
            .map(|r| {
                assert_eq!(r.probe.protocol, MOUNT.name);
                (r.at, r.probe.subject, r.probe.value)
            })
            .collect()
    }

    /// Every state `observer` recorded for node `subject` (0 alive, 1 suspect, 2 dead), with when.
    pub fn recorded_states(&self, observer: NodeIndex, subject: NodeIndex) -> Vec<(SimTime, i64)> {
        self.probes_named(observer, "member")
            .into_iter()
            .filter(|(_, member, _)| *member == id(subject).0)
            .map(|(at, _, state)| (at, state))
            .collect()
    }
}

/// Node `i`'s record in a member list, with `state`, at its first incarnation.
pub fn record(i: NodeIndex, state: MemberState) -> Record {
    Record {
        node: id(i),
        addr: addr(i),
        incarnation: super::bench::FIRST_INCARNATION,
        state: state.code(),
    }
}

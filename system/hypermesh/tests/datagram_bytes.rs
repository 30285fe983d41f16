//! Every datagram membership sends fits `datagram_bytes_max`, whatever it carries: the limit
//! is what keeps a message below the path's MTU, and one over it is lost on the real network.

// Shared with `departures.rs`, which uses all of it.
#[allow(dead_code)]
mod support;

use std::time::Duration;

use hypermesh::membership::wire::{HEADER_AND_BODY_BYTES_MAX, RECORD_BYTES_MAX, UPDATE_BYTES_MAX};
use hypermesh::membership::MembershipConfig;
use proptest::prelude::*;
use simulator::{FaultAction, NodeSet, SimTime};
use support::cluster::{Cluster, Shape};

/// The smallest limit a config may set: one update or one record beside the largest body.
const DATAGRAM_BYTES_MIN: usize = HEADER_AND_BODY_BYTES_MAX + max(UPDATE_BYTES_MAX, RECORD_BYTES_MAX);

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

/// At the smallest limit, with frequent exchanges (digests carry gossip too) and a crash to
/// gossip about.
fn tight(config: &mut MembershipConfig) {
    config.datagram_bytes_max = DATAGRAM_BYTES_MIN;
    config.push_pull_interval = Duration::from_secs(1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn no_datagram_exceeds_the_configured_limit(seed in any::<u64>(), nodes in 3u32..8) {
        let shape = Shape { seeds: 2, settings: tight, ..Shape::default() };
        let mut cluster = Cluster::shaped(seed, nodes, shape);
        cluster.sim.schedule(SimTime::from_millis(8_000), FaultAction::Crash(NodeSet::from_indices([nodes - 1])));
        cluster.run_until(SimTime::from_millis(20_000));

        let tapped = cluster.tapped();
        prop_assert!(!tapped.is_empty());
        for t in tapped {
            let bytes = t.message.encode().len();
            prop_assert!(bytes <= DATAGRAM_BYTES_MIN, "{bytes} bytes > {DATAGRAM_BYTES_MIN}: {:?}", t.message);
        }
    }
}

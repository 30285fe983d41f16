//! Writes the seed inputs fuzzing starts from into `fuzz/corpus/<target>/seed-*`: one valid
//! input of each message kind, so the fuzzer begins past the magic bytes and version checks.
//! Run from `fuzz/`: `cargo run --example seeds [TARGET]` (every target's seeds, or those of
//! `TARGET` and its `_edits` sibling). Files already there are overwritten.

use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use hypermesh::membership::wire::{self as membership, Body, Claim, NodeId, Record, RefuseReason, Update};
use testbed_fuzz::ca_api::WITH_QUERY;
use trustchain::node::wire::{self as node, Rollout};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("corpus directory");
    std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("seed file");
}

fn membership_seeds() {
    let v4: SocketAddr = "192.0.2.7:7946".parse().expect("address");
    let v6: SocketAddr = "[fd00::7]:7946".parse().expect("address");
    let updates = vec![
        Update {
            node: NodeId(2),
            incarnation: 3,
            claim: Claim::Alive { addr: v6 },
        },
        Update {
            node: NodeId(3),
            incarnation: 1,
            claim: Claim::Suspect { by: NodeId(1) },
        },
        Update {
            node: NodeId(u64::MAX),
            incarnation: 9,
            claim: Claim::Dead { by: NodeId(2) },
        },
    ];
    let bodies = [
        (
            "ping",
            Body::Ping {
                seq: 1,
                target: NodeId(2),
            },
        ),
        ("ack", Body::Ack { seq: 1 }),
        (
            "ping-req",
            Body::PingReq {
                seq: 2,
                target: NodeId(3),
                target_addr: v4,
            },
        ),
        ("gossip", Body::Gossip),
        (
            "push-pull",
            Body::PushPull {
                reply_wanted: true,
                join: true,
                wall_ms: 1_790_000_000_000,
                records: vec![
                    Record {
                        node: NodeId(1),
                        addr: v6,
                        incarnation: 0,
                        state: 0,
                    },
                    Record {
                        node: NodeId(5),
                        addr: v4,
                        incarnation: 4,
                        state: 2,
                    },
                ],
            },
        ),
        (
            "refuse",
            Body::Refuse {
                reason: RefuseReason::ClockSkew { skew_ms: -1500 },
            },
        ),
    ];
    for (name, body) in bodies {
        let message = membership::Message {
            sender: NodeId(1),
            body,
            updates: updates.clone(),
        };
        write("membership_wire", name, &message.encode());
    }
    // The edits target builds its message from the input: sender, then the kind choice (0..6).
    for kind in 0..6u8 {
        write(
            "membership_wire_edits",
            &format!("kind-{kind}"),
            &[0, 0, 0, 0, 0, 0, 0, 1, kind],
        );
    }
}

fn consensus_seeds() {
    for (name, bytes) in testbed_fuzz::consensus_wire::seeds() {
        write("consensus_wire", name, &bytes);
    }
}

fn trustchain_seeds() {
    let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
    let rollout = Some(Rollout {
        issuer: [7; 32],
        start_unix_ms: 1_790_000_000_000,
        waves: 3,
        wave_interval_ms: 60_000,
    });
    let messages = [
        (
            "enroll",
            node::Message::Enroll {
                token: "tcj1.aa.bb".into(),
                csr: b("csr"),
            },
        ),
        (
            "renew",
            node::Message::Renew {
                chain: vec![b("leaf"), b("intermediate")],
                csr: b("csr"),
            },
        ),
        (
            "issued",
            node::Message::Issued {
                chain: vec![b("leaf"), b("intermediate")],
                bundle: b("bundle"),
                crls: vec![b("crl")],
                rollout: rollout.clone(),
            },
        ),
        ("refused", node::Message::Refused { reason: "no".into() }),
        ("fetch-bundle", node::Message::FetchBundle),
        (
            "bundle",
            node::Message::Bundle {
                bundle: b("bundle"),
                crls: vec![b("crl1"), b("crl2")],
                rollout,
            },
        ),
        (
            "hello",
            node::Message::Hello {
                nonce: 9,
                chain: vec![b("leaf")],
                trial: true,
            },
        ),
        (
            "hello-ack",
            node::Message::HelloAck {
                nonce: 9,
                chain: vec![b("leaf")],
            },
        ),
        ("hello-refused", node::Message::HelloRefused { nonce: 9, reason: 255 }),
    ];
    for (name, message) in messages {
        write("trustchain_wire", name, &message.encode());
    }
    // The edits target's first byte picks the kind (0..9).
    for kind in 0..9u8 {
        write("trustchain_wire_edits", &format!("kind-{kind}"), &[kind, 2, 1, 1]);
    }
}

fn stoq_seeds() {
    let frames = |payloads: &[&[u8]]| -> Vec<u8> {
        payloads
            .iter()
            .flat_map(|p| [&(p.len() as u32).to_be_bytes()[..], p].concat())
            .collect()
    };
    let stream = frames(&[b"hello", b"", b"a frame of some length", &[7; 40]]);
    // Limit choice 4 (1024 bytes); no cuts, cuts of 1 byte, cuts with empty chunks.
    write("stoq_frames", "whole", &[&[4, 0][..], &stream].concat());
    write("stoq_frames", "bytewise", &[&[4, 1, 0][..], &stream].concat());
    write("stoq_frames", "mixed-cuts", &[&[4, 3, 2, 130, 9][..], &stream].concat());
    // Limit choice 2 (7 bytes): the third frame is refused.
    write("stoq_frames", "too-large", &[&[2, 1, 5][..], &stream].concat());
    // The stream ends inside a frame.
    write(
        "stoq_frames",
        "truncated",
        &[&[4, 0][..], &stream[..stream.len() - 3]].concat(),
    );
}

fn ca_api_seeds() {
    let enrolled = testbed_fuzz::ca_api::enrolled();
    let (csr, chain) = (enrolled.csr_pem, enrolled.chain_pem);
    // First byte: endpoint % 3 (0 validate, 1 issue, 2 proof), with WITH_QUERY a query before a
    // NUL (`testbed_fuzz::ca_api::request_of`).
    write("ca_api", "validate", &[&[0][..], chain.as_bytes()].concat());
    write(
        "ca_api",
        "validate-query",
        &[
            &[WITH_QUERY][..],
            b"addr=fd00::1&require_logged=true\0",
            chain.as_bytes(),
        ]
        .concat(),
    );
    let token = format!(r#"{{"csr": {csr:?}, "token": "tcj1.0000.0000"}}"#);
    write("ca_api", "issue-token", &[&[1][..], token.as_bytes()].concat());
    let renew = format!(r#"{{"csr": {csr:?}, "chain": {chain:?}}}"#);
    write("ca_api", "issue-renewal", &[&[1][..], renew.as_bytes()].concat());
    write("ca_api", "proof-inclusion", b"\x02index=0&size=1");
    write(
        "ca_api",
        "proof-hash",
        b"\x02hash=0000000000000000000000000000000000000000000000000000000000000000&size=1",
    );
    write("ca_api", "proof-consistency", b"\x02first=1&second=1");
}

fn main() {
    let only = std::env::args().nth(1);
    let wanted = |family: &str| only.as_deref().is_none_or(|target| target.starts_with(family));
    if wanted("membership_wire") {
        membership_seeds();
    }
    if wanted("consensus_wire") {
        consensus_seeds();
    }
    if wanted("trustchain_wire") {
        trustchain_seeds();
    }
    if wanted("stoq_frames") {
        stoq_seeds();
    }
    if wanted("ca_api") {
        ca_api_seeds();
    }
}

//! Criterion benches of TrustChain's certificate-transparency log, against the issue's goal of
//! 20 000 appends per second with proofs:
//!
//! - `ct_append/tree_with_proof`: append a ~1 kB entry to the Merkle tree and produce (and check)
//!   its inclusion proof against the new root, on a tree already holding 100 000 entries.
//! - `ct_append/log_on_disk`: the same through the persistent log on real files (this machine's
//!   disk), one `fsync` per batch of 256 appends, as a CA issuing in bursts would commit.
//!
//! - `ca/issue_leaf`, `ca/validate_chain`: issuing a 24 h leaf (Ed25519, from the node's public
//!   key) and validating a leaf + intermediate chain against the root with rustls-webpki, beside
//!   the guide's "~0.035 s per certificate operation" (goals: issue ≤ 0.2 ms, validate ≤ 0.5 ms).
//!
//! Run: `cargo bench --bench trustchain`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use runtime_tokio::DirStorage;
use trustchain::ca::{key_from_seed, Authority, CaPolicy, NodeIdentity};
use trustchain::ct::{leaf_hash, verify_inclusion, CtLog, MerkleTree};
use trustchain::validate::{validate, ExpectedPeer};

/// About a DER leaf certificate.
const ENTRY_BYTES: usize = 1024;
const PRELOADED: u64 = 100_000;
const BATCH: u64 = 256;

fn entry(i: u64) -> Vec<u8> {
    let mut e = vec![0x5A; ENTRY_BYTES];
    e[..8].copy_from_slice(&i.to_be_bytes());
    e
}

fn ct_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("ct_append");
    group.throughput(Throughput::Elements(1));
    let mut tree = MerkleTree::new();
    for i in 0..PRELOADED {
        tree.append(&entry(i));
    }
    let mut next = PRELOADED;
    group.bench_function("tree_with_proof", |b| {
        b.iter(|| {
            let e = entry(next);
            next += 1;
            let index = tree.append(&e);
            let size = tree.size();
            let proof = tree.inclusion_proof(index, size).expect("in range");
            verify_inclusion(&leaf_hash(&e), index, size, &proof, &tree.root()).expect("verifies");
        })
    });

    let dir = std::env::temp_dir().join(format!("ct-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut disk = DirStorage::open(&dir).expect("temp dir");
    let (mut log, _) = CtLog::open(&mut disk, "ct.log").expect("open log");
    let mut n = 0u64;
    group.bench_function("log_on_disk", |b| {
        b.iter(|| {
            let index = log.append(&mut disk, &entry(n)).expect("append");
            n += 1;
            if n.is_multiple_of(BATCH) {
                log.commit(&mut disk).expect("fsync");
            }
            log.tree().inclusion_proof(index, log.size()).expect("in range")
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

fn ca(c: &mut Criterion) {
    const NOW: i64 = 1_780_000_000;
    let mut group = c.benchmark_group("ca");
    let mut authority = Authority::create(&[1; 32], &[2; 32], NOW, CaPolicy::default()).expect("CA");
    let key = key_from_seed(&[9; 32]);
    let who = NodeIdentity {
        name: "node-7.mesh".into(),
        addr: "fd00::7".parse().expect("address"),
    };
    group.bench_function("issue_leaf", |b| {
        b.iter(|| authority.issue(&who, &key, NOW).expect("issued"))
    });
    let leaf = authority.issue(&who, &key, NOW).expect("issued");
    let intermediates = [authority.intermediate().clone()];
    let roots = [authority.root().clone()];
    let expected = ExpectedPeer::Name("node-7.mesh".into());
    group.bench_function("validate_chain", |b| {
        b.iter(|| validate(&leaf, &intermediates, &roots, NOW as u64, &expected).expect("valid"))
    });
    group.finish();
}

criterion_group!(benches, ct_append, ca);
criterion_main!(benches);

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
//! - `service/validate_request`, `service/renew_request`: the CA service's HTTP handlers in
//!   process (PEM parsing, validation with revocation lists, JSON; a renewal also appends to the
//!   CT log and persists the CA's state, in memory here).
//! - `https/validate_new_connection`: `POST /ca/validate` to `trustchain serve`'s server
//!   on [::1], each on a new TCP connection with a full TLS 1.3 handshake: what the guide's
//!   `curl -6 https://[::1]:8443/ca/validate` ("should complete in ~0.035s") measures.
//!
//! Run: `cargo bench --bench trustchain`.

// A test (or bench) of real processes and sockets: it reads the OS clock and starts threads.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]
// criterion's macros generate undocumented functions.
#![allow(missing_docs)]

use std::sync::{Arc, Mutex};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use runtime::{HttpRequest, HttpService, MemStorage, WallTime};
use runtime_tokio::{CertificateSlot, DirStorage, HttpsClient, HttpsConfig, HttpsServer};
use trustchain::ca::{key_from_seed, request, Authority, CaPolicy, NodeIdentity};
use trustchain::ct::{leaf_hash, verify_inclusion, CtLog, MerkleTree};
use trustchain::validate::{validate, ExpectedPeer};
use trustchain_service::{pem, CaApi, CaService, Credential, ServiceLimits, ServiceSeeds};

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

/// A CA service in memory, and a node's chain (PEM) with the CSR that renews it.
fn service_with_node(now: i64) -> (CaApi, String, String) {
    let mut storage = MemStorage::default();
    let seeds = ServiceSeeds {
        root: [1; 32],
        intermediate: [2; 32],
        log: [3; 32],
        token: [4; 32],
    };
    let mut service = CaService::init(&mut storage, &seeds, CaPolicy::default(), now).expect("CA");
    let who = NodeIdentity {
        name: "node-7.mesh".into(),
        addr: "fd00::7".parse().expect("address"),
    };
    let csr = request(&who, &key_from_seed(&[9; 32])).expect("CSR");
    let issued = service
        .issue(&mut storage, &csr, &Credential::Operator(who), now)
        .expect("issued");
    let chain = pem::certificates(issued.chain.iter().map(|c| c.as_ref()));
    let renew = serde_json::json!({ "csr": pem::encode("CERTIFICATE REQUEST", &csr), "chain": chain }).to_string();
    (CaApi::new(Box::new(storage), service), chain, renew)
}

fn service(c: &mut Criterion) {
    const NOW: i64 = 1_780_000_000;
    let at = WallTime::from_unix_nanos(NOW * 1_000_000_000);
    let mut group = c.benchmark_group("service");
    let (mut api, chain, renew) = service_with_node(NOW);
    let validate = HttpRequest::new("POST", "/ca/validate?name=node-7.mesh", chain);
    assert_eq!(api.handle(&validate, at).status, 200);
    group.bench_function("validate_request", |b| b.iter(|| api.handle(&validate, at)));
    let renew = HttpRequest::new("POST", "/ca/issue", renew);
    // The bench renews one node over and over: lift the per-node limit, or it would time 429s.
    api.parts().0.set_limits(ServiceLimits {
        renewals_per_identity_max: u32::MAX,
        ..ServiceLimits::default()
    });
    assert_eq!(api.handle(&renew, at).status, 200);
    group.bench_function("renew_request", |b| b.iter(|| api.handle(&renew, at)));
    group.finish();
}

fn https(c: &mut Criterion) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    let (mut api, chain, _) = service_with_node(now);
    // The server's own certificate, as `serve` makes it.
    let server_who = NodeIdentity {
        name: "trustchain.mesh".into(),
        addr: std::net::Ipv6Addr::LOCALHOST,
    };
    let server_key = key_from_seed(&[11; 32]);
    let (service, storage) = api.parts();
    let issued = service
        .issue(
            storage,
            &request(&server_who, &server_key).expect("CSR"),
            &Credential::Server(server_who.addr),
            now,
        )
        .expect("server certificate");
    let root = service.root().to_vec();
    let slot = CertificateSlot::new(
        issued.chain.iter().map(|c| c.to_vec()).collect(),
        server_key.serialize_der(),
    )
    .expect("certificate");
    let api = Arc::new(Mutex::new(api));
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let server =
                HttpsServer::bind(HttpsConfig::new("[::1]:0".parse().expect("addr")), slot, api).expect("bind");
            addr_tx.send(server.local_addr().expect("bound")).expect("send");
            server.serve(std::future::pending()).await;
        });
    });
    let addr = addr_rx.recv().expect("server address");
    let client = HttpsClient::new(addr, "trustchain.mesh", &[root]).expect("client");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let target = "/ca/validate?name=node-7.mesh";
    let (status, _) = runtime
        .block_on(client.call("POST", target, chain.clone()))
        .expect("answer");
    assert_eq!(status, 200);
    let mut group = c.benchmark_group("https");
    group.bench_function("validate_new_connection", |b| {
        b.iter(|| {
            runtime
                .block_on(client.call("POST", target, chain.clone()))
                .expect("answer")
        })
    });
    group.finish();
}

criterion_group!(benches, ct_append, ca, service, https);
criterion_main!(benches);

//! `trustchain`: an operator runs a CA from its state directory and a node enrolls
//! through the HTTPS API, end to end over real sockets on [::1].

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use bytes::Bytes;
use common::{ca_with_trust, fresh_dir, run_hypermesh, run_trustchain, text};
use hypermesh::consensus::control::{Proof, Removal};
use hypermesh::consensus::{
    Block, CertifiedBlock, IsolationProof, QcSummary, QuorumCertificate, Reason, Report, ValidatorKey, ValidatorSet,
    Vote,
};
use operator::validators::{key_hex, Validators};
use runtime_tokio::HttpsClient;
use serde_json::Value;
use trustchain::ca::{key_from_seed, request, NodeIdentity};
use trustchain::ct::{leaf_hash, verify_inclusion, Hash, SignedTreeHead};
use trustchain_service::pem;

fn openssl_available() -> bool {
    let found = Command::new("openssl").arg("version").output().is_ok();
    assert!(
        found || std::env::var_os("TESTBED_REQUIRE_OPENSSL").is_none(),
        "no openssl on PATH"
    );
    found
}

/// A running `trustchain serve`, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(state: &Path) -> Server {
        Server::start_with(state, &[])
    }

    /// `trustchain serve` with `more` flags.
    fn start_with(state: &Path, more: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_trustchain"))
            .args(["serve", "--state", state.to_str().unwrap(), "--listen", "[::1]:0"])
            .args(more)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .strip_prefix("listening on https://")
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .parse()
            .unwrap();
        Server { child, addr }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTPS request to the CA, trusting only `root_pem`, naming the server `trustchain.mesh`.
fn https(server: &Server, root_pem: &Path, method: &str, target: &str, body: &str) -> (u16, String) {
    https_bytes(server, root_pem, method, target, body.as_bytes().to_vec())
}

/// [`https`] with a binary body.
fn https_bytes(server: &Server, root_pem: &Path, method: &str, target: &str, body: Vec<u8>) -> (u16, String) {
    let roots: Vec<Vec<u8>> = pem::chain(&std::fs::read(root_pem).unwrap())
        .unwrap()
        .into_iter()
        .map(|c| c.to_vec())
        .collect();
    let client = HttpsClient::new(server.addr, "trustchain.mesh", &roots).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (status, body) = runtime
        .block_on(client.call(method, target, body))
        .expect("an answer, over TLS verified against root.pem");
    (status, text(&body))
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// A CSR for node-1.mesh / fd00::1: made by openssl with a P-256 key when it is installed (a
/// client the CA did not write), else by rcgen with Ed25519.
fn csr(dir: &Path) -> PathBuf {
    let path = dir.join("csr.pem");
    if openssl_available() {
        let key = dir.join("node.key");
        let ok = Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
            ])
            .arg(&key)
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok);
        let out = Command::new("openssl")
            .args([
                "req",
                "-new",
                "-subj",
                "/CN=node-1.mesh",
                "-addext",
                "subjectAltName=DNS:node-1.mesh,IP:fd00::1",
                "-key",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    } else {
        let who = NodeIdentity {
            name: "node-1.mesh".into(),
            addr: "fd00::1".parse().unwrap(),
        };
        let der = request(&who, &key_from_seed(&[7; 32])).unwrap();
        std::fs::write(&path, pem::encode("CERTIFICATE REQUEST", &der)).unwrap();
    }
    path
}

#[test]
fn an_operator_runs_a_ca_and_a_node_enrolls_over_https() {
    let dir = fresh_dir("trustchain-service");
    let (state, root) = ca_with_trust(&dir);
    let state_arg = state.to_str().unwrap();
    let trust = dir.join("trust");

    let again = run_trustchain(&["ca", "init", "--state", state_arg]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        text(&again.stderr).contains("already exists"),
        "{}",
        text(&again.stderr)
    );
    let token = run_trustchain(&[
        "token",
        "--state",
        state_arg,
        "--name",
        "node-1.mesh",
        "--addr",
        "fd00::1",
    ]);
    assert!(token.status.success(), "{}", text(&token.stderr));
    let token = text(&token.stdout).trim().to_owned();
    let csr_pem = std::fs::read_to_string(csr(&dir)).unwrap();

    let server = Server::start(&state);
    // Nobody without a credential obtains a certificate.
    let no_token = serde_json::json!({ "csr": csr_pem }).to_string();
    let (status, body) = https(&server, &root, "POST", "/ca/issue", &no_token);
    assert_eq!(status, 403, "{body}");
    assert!(json(&body)["error"].as_str().unwrap().contains("join token"));
    let flipped = if token.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{flipped}", &token[..token.len() - 1]);
    let (status, _) = https(
        &server,
        &root,
        "POST",
        "/ca/issue",
        &serde_json::json!({ "csr": csr_pem, "token": forged }).to_string(),
    );
    assert_eq!(status, 403);
    let (status, body) = https(
        &server,
        &root,
        "POST",
        "/ca/issue",
        &serde_json::json!({ "csr": csr_pem, "token": token }).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let issued = json(&body);
    let chain_pem = issued["chain"].as_str().unwrap().to_owned();
    let chain_path = dir.join("chain.pem");
    std::fs::write(&chain_path, &chain_pem).unwrap();

    // The guide's own check of the chain.
    if openssl_available() {
        let chain = pem::chain(chain_pem.as_bytes()).unwrap();
        let leaf = dir.join("leaf.pem");
        std::fs::write(&leaf, pem::encode("CERTIFICATE", &chain[0])).unwrap();
        let out = Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(&root)
            .arg("-untrusted")
            .arg(trust.join("intermediate.pem"))
            .arg(&leaf)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
        assert!(text(&out.stdout).contains(": OK"));
    }

    let (status, body) = https(
        &server,
        &root,
        "POST",
        "/ca/validate?name=node-1.mesh&require_logged=true",
        &chain_pem,
    );
    assert_eq!(status, 200, "{body}");
    let verdict = json(&body);
    assert_eq!(verdict["valid"], true, "{verdict}");
    let (status, body) = https(
        &server,
        &root,
        "POST",
        "/ca/validate",
        "-----BEGIN CERTIFICATE-----\ngarbage",
    );
    assert_eq!(status, 400, "{body}");
    assert!(json(&body)["error"].as_str().is_some());
    assert_eq!(https(&server, &root, "GET", "/ca/issue", "").0, 405);
    assert_eq!(https(&server, &root, "GET", "/nope", "").0, 404);
    let (status, body) = https(&server, &root, "POST", "/ca/validate", &"A".repeat(100_000));
    assert_eq!(status, 413, "{body}");

    // The certificate is in the CT log: the signed head verifies with the installed key, and the
    // served proof ties the leaf to it.
    let (_, body) = https(&server, &root, "GET", "/ct/sth", "");
    let sth_json = json(&body);
    let hash = |v: &Value| -> Hash {
        let s = v.as_str().unwrap();
        (0..32)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect::<Vec<_>>()
            .try_into()
            .unwrap()
    };
    let signature: Vec<u8> = {
        let s = sth_json["signature"].as_str().unwrap();
        (0..64)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    };
    let sth = SignedTreeHead {
        tree_size: sth_json["tree_size"].as_u64().unwrap(),
        timestamp_ms: sth_json["timestamp_ms"].as_u64().unwrap(),
        root_hash: hash(&sth_json["root_hash"]),
        signature: signature.try_into().unwrap(),
    };
    let log_key = std::fs::read_to_string(trust.join("ct-log.pub")).unwrap();
    let log_key: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&log_key[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    sth.verify(&log_key)
        .expect("the tree head is signed by the installed log key");
    let index = verdict["ct_index"].as_u64().unwrap();
    let (status, body) = https(
        &server,
        &root,
        "GET",
        &format!("/ct/proof?index={index}&size={}", sth.tree_size),
        "",
    );
    assert_eq!(status, 200, "{body}");
    let path: Vec<Hash> = json(&body)["audit_path"].as_array().unwrap().iter().map(hash).collect();
    let leaf = &pem::chain(chain_pem.as_bytes()).unwrap()[0];
    verify_inclusion(&leaf_hash(leaf), index, sth.tree_size, &path, &sth.root_hash).expect("the leaf is in the log");

    // While it serves, the state directory is locked against other writers.
    let busy = run_trustchain(&["rotate", "--state", state_arg]);
    assert_eq!(busy.status.code(), Some(2));
    assert!(
        text(&busy.stderr).contains("in use by process"),
        "{}",
        text(&busy.stderr)
    );
    drop(server);

    // Operator commands after the server stopped (killed: nothing acknowledged is lost).
    let revoke = run_trustchain(&["revoke", "--state", state_arg, "--cert", chain_path.to_str().unwrap()]);
    assert!(revoke.status.success(), "{}", text(&revoke.stderr));
    let check = run_trustchain(&["validate", "--state", state_arg, chain_path.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(1));
    assert!(
        text(&check.stdout).contains("invalid (revoked)"),
        "{}",
        text(&check.stdout)
    );
    let rotate = run_trustchain(&[
        "rotate",
        "--state",
        state_arg,
        "--overlap-period",
        "1h",
        "--gradual-rollout",
        "--verify-before-switch",
    ]);
    assert!(rotate.status.success(), "{}", text(&rotate.stderr));
    assert!(
        text(&rotate.stdout).contains("6 waves 300 s apart"),
        "{}",
        text(&rotate.stdout)
    );
    let twice = run_trustchain(&["rotate", "--state", state_arg]);
    assert_eq!(twice.status.code(), Some(2));
    assert!(text(&twice.stderr).contains("rotation is in progress"));

    // A restarted server publishes the overlap: both intermediates, and the plan.
    let server = Server::start(&state);
    let (status, body) = https(&server, &root, "GET", "/ca/bundle?format=json", "");
    assert_eq!(status, 200, "{body}");
    let bundle = json(&body);
    assert_eq!(bundle["issuers"].as_array().unwrap().len(), 2, "{bundle}");
    assert_eq!(bundle["rotation"]["waves"], 6);
    let (_, crl) = https(&server, &root, "GET", "/ca/crl", "");
    assert_eq!(
        crl.matches("BEGIN X509 CRL").count(),
        2,
        "one list per intermediate held"
    );
}

#[test]
fn ipv4_and_bad_flags_are_refused_by_name() {
    let dir = fresh_dir("trustchain-service-refusals");
    let state = dir.join("ca");
    let state_arg = state.to_str().unwrap();
    let none = run_trustchain(&["token", "--state", state_arg, "--name", "n.mesh", "--addr", "fd00::1"]);
    assert_eq!(none.status.code(), Some(2));
    assert!(text(&none.stderr).contains("no CA in"), "{}", text(&none.stderr));
    assert!(run_trustchain(&["ca", "init", "--state", state_arg]).status.success());
    let v4 = run_trustchain(&["serve", "--state", state_arg, "--listen", "127.0.0.1:0"]);
    assert_eq!(v4.status.code(), Some(2));
    assert!(text(&v4.stderr).contains("IPv6-only"), "{}", text(&v4.stderr));
    let mapped = run_trustchain(&["serve", "--state", state_arg, "--listen", "[::ffff:127.0.0.1]:0"]);
    assert_eq!(mapped.status.code(), Some(2));
    assert!(text(&mapped.stderr).contains("IPv6-only"), "{}", text(&mapped.stderr));
    let v4_node = run_trustchain(&["token", "--state", state_arg, "--name", "n.mesh", "--addr", "10.0.0.1"]);
    assert_eq!(v4_node.status.code(), Some(2));
    assert!(text(&v4_node.stderr).contains("IPv6-only"), "{}", text(&v4_node.stderr));
    let bad_plan = run_trustchain(&[
        "rotate",
        "--state",
        state_arg,
        "--overlap-period",
        "10m",
        "--gradual-rollout",
    ]);
    assert_eq!(bad_plan.status.code(), Some(2));
    assert!(
        text(&bad_plan.stderr).contains("lengthen --overlap-period"),
        "{}",
        text(&bad_plan.stderr)
    );
    let bad_serial = run_trustchain(&["revoke", "--state", state_arg, "--serial", "xyz"]);
    assert_eq!(bad_serial.status.code(), Some(2));
    assert!(text(&bad_serial.stderr).contains("not a certificate serial"));
    let no_csr = run_trustchain(&[
        "issue",
        "--state",
        state_arg,
        "--csr",
        "/nonexistent.pem",
        "--token",
        "t",
    ]);
    assert_eq!(no_csr.status.code(), Some(2));
    assert!(text(&no_csr.stderr).contains("/nonexistent.pem"));
}

/// The guide's own invocations, as it writes them, from an operator's working directory: the
/// default state directory, `ca install` with no arguments, and the graceful rotation.
#[test]
fn the_guides_invocations_work_as_written() {
    let dir = fresh_dir("guide-invocations");
    let trustchain = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_trustchain"))
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("trustchain runs");
        assert!(out.status.success(), "trustchain {args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    trustchain(&["ca", "init"]);
    trustchain(&["ca", "install"]);
    for file in ["root.pem", "intermediate.pem", "bundle.pem", "ct-log.pub"] {
        assert!(dir.join(file).exists(), "ca install wrote no {file}");
    }
    let rotated = trustchain(&[
        "rotate",
        "--overlap-period",
        "1h",
        "--gradual-rollout",
        "--verify-before-switch",
    ]);
    assert!(rotated.contains("overlap 3600 s"), "{rotated}");
    assert!(rotated.contains("verify-before-switch: on"), "{rotated}");
    // And with the state directory named, as `trustchain ca init --state DIR`.
    trustchain(&["ca", "init", "--state", "DIR"]);
    assert!(dir.join("DIR").is_dir());
}

/// Issue 13, item 5, as the operator meets it: revoking a serial revokes its node and key, and
/// both the CLI and `/ca/issue` refuse the node's token replayed and its renewal, saying why.
#[test]
fn a_revoked_node_is_refused_its_token_replay_and_renewal_by_the_cli_and_the_api() {
    let dir = fresh_dir("trustchain-revoke-identity");
    let (state, root) = ca_with_trust(&dir);
    let state_arg = state.to_str().unwrap();
    let token = run_trustchain(&[
        "token",
        "--state",
        state_arg,
        "--name",
        "node-1.mesh",
        "--addr",
        "fd00::1",
    ]);
    assert!(token.status.success(), "{}", text(&token.stderr));
    let token = text(&token.stdout).trim().to_owned();
    let csr_path = csr(&dir);
    let chain_path = dir.join("chain.pem");
    let issue = |out: &Path| {
        run_trustchain(&[
            "issue",
            "--state",
            state_arg,
            "--csr",
            csr_path.to_str().unwrap(),
            "--token",
            &token,
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let issued = issue(&chain_path);
    assert!(issued.status.success(), "{}", text(&issued.stderr));
    let serial = text(&issued.stderr)
        .split_whitespace()
        .skip_while(|w| *w != "serial")
        .nth(1)
        .unwrap()
        .to_owned();
    let revoked = run_trustchain(&["revoke", "--state", state_arg, "--serial", &serial]);
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    let said = text(&revoked.stdout);
    assert!(said.contains("revoked node node-1.mesh (fd00::1)"), "{said}");
    assert!(said.contains("revoked its key"), "{said}");

    // The CLI: the spent token with the same key (the lost-answer retry) is refused.
    let replay = issue(&dir.join("again.pem"));
    assert_eq!(replay.status.code(), Some(2));
    assert!(text(&replay.stderr).contains("revoked"), "{}", text(&replay.stderr));

    // The API: the same, and renewal with the revoked chain; a 403 whose JSON names why.
    let server = Server::start(&state);
    let csr_pem = std::fs::read_to_string(&csr_path).unwrap();
    let chain_pem = std::fs::read_to_string(&chain_path).unwrap();
    for body in [
        serde_json::json!({ "csr": csr_pem, "token": token }),
        serde_json::json!({ "csr": csr_pem, "chain": chain_pem }),
    ] {
        let (status, answer) = https(&server, &root, "POST", "/ca/issue", &body.to_string());
        assert_eq!(status, 403, "{answer}");
        let answer = json(&answer);
        assert_eq!(answer["refusal"], "revoked", "{answer}");
        assert!(answer["error"].as_str().unwrap().contains("revoked"), "{answer}");
    }
}

/// Issue 13, item 8: any node key could impersonate the CA to a client checking its address;
/// the CA's server name is now reserved, names are checked, and clients refuse an address.
#[test]
fn the_cas_server_name_is_never_granted_and_clients_verify_the_ca_by_it() {
    let dir = fresh_dir("trustchain-reserved-name");
    let (state, root) = ca_with_trust(&dir);
    let state_arg = state.to_str().unwrap();
    let token = |name: &str| run_trustchain(&["token", "--state", state_arg, "--name", name, "--addr", "::1"]);
    for (name, why) in [
        ("trustchain.mesh", "own server name"),
        ("TRUSTCHAIN.mesh", "own server name"),
        ("*.mesh", "wildcard"),
        (
            &format!("{}.mesh", vec!["a".repeat(60); 5].join(".")),
            "over the 253 bytes",
        ),
    ] {
        let refused = token(name);
        assert_eq!(refused.status.code(), Some(2), "{name}: {}", text(&refused.stdout));
        let message = text(&refused.stderr);
        assert!(message.contains(why), "{name}: {message}");
    }
    // The server serves only under the name reserved at init.
    let other = run_trustchain(&[
        "serve",
        "--state",
        state_arg,
        "--listen",
        "[::1]:0",
        "--server-name",
        "ca.mesh",
    ]);
    assert_eq!(other.status.code(), Some(2));
    assert!(
        text(&other.stderr).contains("reserved trustchain.mesh"),
        "{}",
        text(&other.stderr)
    );
    // A node refuses to check the CA by address.
    let node = run_hypermesh(&[
        "node",
        "--listen",
        "[::1]:0",
        "--name",
        "node-1.mesh",
        "--ca",
        "[::1]:8443",
        "--ca-name",
        "::1",
        "--ca-root",
        root.to_str().unwrap(),
        "--token",
        "t",
        "--state",
        dir.join("node").to_str().unwrap(),
    ]);
    assert_eq!(node.status.code(), Some(2));
    assert!(
        text(&node.stderr).contains("--ca-name ::1 is an address"),
        "{}",
        text(&node.stderr)
    );
    // A CA created with its own server name is served, and verified, under it.
    let named = dir.join("named");
    let init = run_trustchain(&[
        "ca",
        "init",
        "--state",
        named.to_str().unwrap(),
        "--server-name",
        "ca.example.org",
    ]);
    assert!(init.status.success(), "{}", text(&init.stderr));
    let refused = run_trustchain(&[
        "token",
        "--state",
        named.to_str().unwrap(),
        "--name",
        "ca.example.org",
        "--addr",
        "fd00::9",
    ]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stdout));
}

/// Issue 13, item 9: the root key sat in the state file the server reads. `ca init --root-key`
/// keeps it in a file of its own: `serve` works without it, and `rotate` asks for it.
#[test]
fn a_root_key_kept_offline_is_needed_only_to_rotate() {
    let dir = fresh_dir("trustchain-offline-root");
    let state = dir.join("ca");
    let state_arg = state.to_str().unwrap();
    let key = dir.join("root.key");
    let init = run_trustchain(&["ca", "init", "--state", state_arg, "--root-key", key.to_str().unwrap()]);
    assert!(init.status.success(), "{}", text(&init.stderr));
    assert!(
        text(&init.stdout).contains("rotate --root-key"),
        "{}",
        text(&init.stdout)
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    // The root key's seed (the last 32 bytes of its PKCS#8) is nowhere in the state directory.
    let der = pem::chain(
        std::fs::read_to_string(&key)
            .unwrap()
            .replace("PRIVATE KEY", "CERTIFICATE")
            .as_bytes(),
    )
    .unwrap();
    let seed_hex: String = der[0][16..].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(seed_hex.len(), 64);
    for file in std::fs::read_dir(&state).unwrap() {
        let path = file.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !text(&bytes).contains(&seed_hex) && !bytes.windows(32).any(|w| w == &der[0][16..]),
            "{} holds the root key",
            path.display()
        );
    }
    // With the key file gone, `ca install` and `serve` work.
    let away = dir.join("elsewhere.key");
    std::fs::rename(&key, &away).unwrap();
    let install = run_trustchain(&[
        "ca",
        "install",
        "--state",
        state_arg,
        "--out",
        dir.join("trust").to_str().unwrap(),
    ]);
    assert!(install.status.success(), "{}", text(&install.stderr));
    let root = dir.join("trust").join("root.pem");
    let server = Server::start(&state);
    let (status, body) = https(&server, &root, "GET", "/ca/bundle?format=json", "");
    assert_eq!(status, 200, "{body}");
    drop(server);
    let scheduled = run_trustchain(&[
        "serve",
        "--state",
        state_arg,
        "--listen",
        "[::1]:0",
        "--rotate-every",
        "1h",
    ]);
    assert_eq!(scheduled.status.code(), Some(2));
    assert!(
        text(&scheduled.stderr).contains("root key"),
        "{}",
        text(&scheduled.stderr)
    );
    // Rotation asks for it, refuses another CA's, and works with it.
    let rotate = |extra: &[&str]| {
        let mut args = vec!["rotate", "--state", state_arg];
        args.extend(extra);
        run_trustchain(&args)
    };
    let without = rotate(&[]);
    assert_eq!(without.status.code(), Some(2));
    assert!(
        text(&without.stderr).contains("--root-key FILE"),
        "{}",
        text(&without.stderr)
    );
    let other = dir.join("other");
    let other_key = dir.join("other.key");
    let init = run_trustchain(&[
        "ca",
        "init",
        "--state",
        other.to_str().unwrap(),
        "--root-key",
        other_key.to_str().unwrap(),
    ]);
    assert!(init.status.success(), "{}", text(&init.stderr));
    let wrong = rotate(&["--root-key", other_key.to_str().unwrap()]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        text(&wrong.stderr).contains("not this CA's root key"),
        "{}",
        text(&wrong.stderr)
    );
    let rotated = rotate(&["--root-key", away.to_str().unwrap()]);
    assert!(rotated.status.success(), "{}", text(&rotated.stderr));
    assert!(text(&rotated.stdout).contains("rotated"), "{}", text(&rotated.stdout));
    for file in std::fs::read_dir(&state).unwrap() {
        let bytes = std::fs::read(file.unwrap().path()).unwrap();
        assert!(
            !text(&bytes).contains(&seed_hex),
            "the rotation wrote the root key into the state"
        );
    }
}

#[test]
fn ct_verify_checks_the_log_and_a_damaged_committed_record_stops_the_ca_with_the_way_out() {
    let dir = fresh_dir("ct-verify");
    let (state, _) = ca_with_trust(&dir);
    let state_arg = state.to_str().unwrap();
    let csr = csr(&dir);
    for _ in 0..2 {
        let out = run_trustchain(&[
            "issue",
            "--state",
            state_arg,
            "--csr",
            csr.to_str().unwrap(),
            "--approve",
            "--name",
            "node-1.mesh",
            "--addr",
            "fd00::1",
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let verify = |extra: &[&str]| {
        let mut args = vec!["ct", "verify", "--state", state_arg];
        args.extend_from_slice(extra);
        run_trustchain(&args)
    };
    let sound = verify(&["--json"]);
    assert!(sound.status.success(), "{}{}", text(&sound.stdout), text(&sound.stderr));
    let report = json(text(&sound.stdout).trim());
    assert_eq!(report["sound"], true);
    let entries = report["entries"].as_u64().unwrap();
    assert!(entries >= 2, "{report}");
    assert_eq!(report["committed"].as_u64(), Some(entries));

    // Rot inside the first record: entries signed heads may cover are damaged.
    let log = state.join(trustchain_service::LOG_FILE);
    let mut bytes = std::fs::read(&log).unwrap();
    bytes[20] ^= 0x40;
    std::fs::write(&log, &bytes).unwrap();
    let damaged = verify(&[]);
    assert_eq!(damaged.status.code(), Some(1), "{}", text(&damaged.stdout));
    assert!(
        text(&damaged.stdout).contains("record 0 at byte 0 is damaged"),
        "{}",
        text(&damaged.stdout)
    );
    // The CA refuses to open it rather than cut committed entries, and says what to do.
    let refused = run_trustchain(&[
        "issue",
        "--state",
        state_arg,
        "--csr",
        csr.to_str().unwrap(),
        "--approve",
        "--name",
        "node-1.mesh",
        "--addr",
        "fd00::1",
    ]);
    assert_eq!(refused.status.code(), Some(2));
    let message = text(&refused.stderr);
    assert!(
        message.contains("at byte 0") && message.contains("trustchain ct verify"),
        "{message}"
    );
    assert_eq!(std::fs::read(&log).unwrap(), bytes, "a committed entry was cut");
}

#[test]
fn a_warning_written_to_a_pipe_carries_no_terminal_colour_codes() {
    let dir = fresh_dir("plain-logs");
    let (state, _) = ca_with_trust(&dir);
    let csr = csr(&dir);
    let issue = || {
        run_trustchain(&[
            "issue",
            "--state",
            state.to_str().unwrap(),
            "--csr",
            csr.to_str().unwrap(),
            "--approve",
            "--name",
            "node-1.mesh",
            "--addr",
            "fd00::1",
        ])
    };
    assert!(issue().status.success());
    // A torn tail past the committed records: opening the CA drops it, with a warning.
    let log = state.join(trustchain_service::LOG_FILE);
    let mut bytes = std::fs::read(&log).unwrap();
    bytes.extend_from_slice(&[0x55; 5]);
    std::fs::write(&log, &bytes).unwrap();
    let out = issue();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("dropped a torn last record"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "colour codes on a pipe: {stderr:?}");
}

/// Four validators' keys (seeds `[i + 1; 32]`), and their validators file at `path`: node-`i`.mesh
/// at `[fd00::i+1]:7000`.
fn four_validators(path: &Path) -> Vec<ValidatorKey> {
    let keys: Vec<ValidatorKey> = (0..4u8).map(|i| ValidatorKey::from_seed(&[i + 1; 32])).collect();
    let mut file = String::from("epoch = 1\n");
    for (i, k) in keys.iter().enumerate() {
        file.push_str(&format!(
            "[[validator]]\nname = \"node-{i}.mesh\"\naddress = \"[fd00::{}]:7000\"\npublic_key = \"{}\"\n",
            i + 1,
            key_hex(&k.public_key())
        ));
    }
    std::fs::write(path, file).unwrap();
    keys
}

/// A certified chain over `from` (a committed block: genesis, or an epoch's start), one block
/// per view in `views`, each certified by validators 0, 1 and 2 in `set`'s epoch, the first
/// block carrying `first`.
fn certified_chain(
    set: &ValidatorSet,
    keys: &[ValidatorKey],
    from: QcSummary,
    views: &[u64],
    first: Vec<Bytes>,
) -> Vec<CertifiedBlock> {
    let (mut parent, mut height) = (from.block, from.height);
    let mut chain = Vec::new();
    for (i, &view) in views.iter().enumerate() {
        let block = Block {
            height: height + 1,
            view,
            parent,
            proposer: set.leader(view),
            timestamp_ms: 1_790_000_000_000 + view,
            transactions: if i == 0 { first.clone() } else { vec![] },
        };
        let summary = QcSummary {
            view,
            height: block.height,
            block: block.digest(),
        };
        let votes: Vec<Vote> = (0..3).map(|s| Vote::sign(set, &keys[s], summary).unwrap()).collect();
        let qc = QuorumCertificate {
            view,
            height: block.height,
            block: summary.block,
            signers: votes.iter().map(|v| v.signer).collect(),
            signatures: votes.iter().map(|v| v.signature).collect(),
        };
        (parent, height) = (summary.block, block.height);
        chain.push(CertifiedBlock { block, qc });
    }
    chain
}

/// The removal of `accused` on reports of `reporters`, signed in `set`'s epoch.
fn reported(set: &ValidatorSet, keys: &[ValidatorKey], accused: u16, reporters: &[usize]) -> Bytes {
    let reports = reporters
        .iter()
        .map(|&r| Report::sign(set, &keys[r], accused, Reason::Slow, set.first_view() + 5).unwrap())
        .collect();
    Removal {
        accused,
        proof: Proof::Reports(reports),
    }
    .encode()
}

/// Issue 14, item 4: "a committed reconfiguration removes the node from the validator set,
/// TrustChain revokes its certificate". A CA served with the validators file takes a proof that
/// consensus committed a validator's removal, from anyone, and revokes that validator's
/// certificates; a proof that does not show a committed removal is refused, naming why.
#[test]
fn a_ca_with_the_validator_set_revokes_a_validator_on_the_proof_of_its_committed_isolation() {
    let dir = fresh_dir("trustchain-isolate");
    let (state, root) = ca_with_trust(&dir);
    let state_arg = state.to_str().unwrap();
    let validators = dir.join("validators.toml");
    let keys = four_validators(&validators);
    let set = Validators::load(&validators).unwrap().set().unwrap();

    // Validator 3 enrolls with its key, as `hypermesh node` would.
    let token = run_trustchain(&[
        "token",
        "--state",
        state_arg,
        "--name",
        "node-3.mesh",
        "--addr",
        "fd00::4",
    ]);
    assert!(token.status.success(), "{}", text(&token.stderr));
    let token = text(&token.stdout).trim().to_owned();
    let who = NodeIdentity {
        name: "node-3.mesh".into(),
        addr: "fd00::4".parse().unwrap(),
    };
    let csr = request(&who, &key_from_seed(&[4; 32])).unwrap();
    let server = Server::start_with(&state, &["--validators", validators.to_str().unwrap()]);
    let body = serde_json::json!({ "csr": pem::encode("CERTIFICATE REQUEST", &csr), "token": token });
    let (status, issued) = https(&server, &root, "POST", "/ca/issue", &body.to_string());
    assert_eq!(status, 200, "{issued}");
    let issued = json(&issued);
    let serial = issued["serial"].as_str().unwrap().to_owned();
    let chain_pem = issued["chain"].as_str().unwrap().to_owned();

    // Reports of validator 3 by 0, 1 and 2 (the guide's confirmation_required: 3), in the
    // file's epoch (1), whose views start at `first`.
    let first = set.first_view();
    let removal = reported(&set, &keys, 3, &[0, 1, 2]);
    let proof = |views: &[u64]| IsolationProof {
        chain: certified_chain(&set, &keys, QcSummary::GENESIS, views, vec![removal.clone()]),
    };

    // Certified in two views that are not consecutive: not shown committed, refused, nothing
    // revoked.
    let (status, answer) = https_bytes(
        &server,
        &root,
        "POST",
        "/ca/isolate",
        proof(&[first, first + 2]).encode().to_vec(),
    );
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("nothing in it is shown committed"), "{answer}");
    let (status, answer) = https_bytes(&server, &root, "POST", "/ca/isolate", b"not a proof".to_vec());
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("does not decode"), "{answer}");
    let (_, verdict) = https(&server, &root, "POST", "/ca/validate", &chain_pem);
    assert_eq!(json(&verdict)["valid"], true, "{verdict}");

    // The removal ends epoch 1; epoch 2's set is the three left, and its blocks are certified
    // by them. Validator 2's removal, reported in epoch 1 by 0, 1 and 3, commits in epoch 2.
    let ended = proof(&[first, first + 1]);
    let epoch_2 = set.next(&BTreeSet::from([3]), ended.chain[0].qc.summary()).unwrap();
    let second = reported(&set, &keys, 2, &[0, 1, 3]);
    let in_epoch_2 = IsolationProof {
        chain: certified_chain(
            &epoch_2,
            &keys,
            epoch_2.start(),
            &[epoch_2.first_view(), epoch_2.first_view() + 1],
            vec![second.clone()],
        ),
    };
    // Handed in before the proof of epoch 1's end: not taken yet, and says so for a retry.
    let (status, answer) = https_bytes(&server, &root, "POST", "/ca/isolate", in_epoch_2.encode().to_vec());
    assert_eq!(status, 409, "{answer}");
    assert_eq!(json(&answer)["refusal"], "epoch_ahead", "{answer}");
    assert!(answer.contains("the proof of epoch 1's end comes first"), "{answer}");

    // Committed by the two-chain rule. Validator 3's certificate is revoked.
    let committed = ended.encode().to_vec();
    let (status, answer) = https_bytes(&server, &root, "POST", "/ca/isolate", committed.clone());
    assert_eq!(status, 200, "{answer}");
    let answer = json(&answer);
    assert_eq!(
        (answer["epoch"].as_u64(), answer["epoch_known"].as_u64()),
        (Some(1), Some(2)),
        "{answer}"
    );
    let isolated = &answer["isolated"][0];
    assert_eq!(isolated["validator"], 3, "{answer}");
    assert_eq!(isolated["name"], "node-3.mesh", "{answer}");
    assert_eq!(isolated["newly_revoked"], true, "{answer}");
    assert!(
        isolated["serials"].as_array().unwrap().iter().any(|s| s == &serial),
        "{answer}"
    );
    let (_, verdict) = https(&server, &root, "POST", "/ca/validate", &chain_pem);
    let verdict = json(&verdict);
    assert_eq!(verdict["valid"], false, "{verdict}");
    assert_eq!(verdict["class"], "revoked", "{verdict}");
    // Every replica hands its proof in: the second changes nothing.
    let (status, again) = https_bytes(&server, &root, "POST", "/ca/isolate", committed.clone());
    assert_eq!(status, 200, "{again}");
    assert_eq!(json(&again)["isolated"][0]["newly_revoked"], false, "{again}");
    // Its token and key buy nothing more.
    let (status, refused) = https(&server, &root, "POST", "/ca/issue", &body.to_string());
    assert_eq!(status, 403, "{refused}");
    // Another certified block of epoch 1 with a removal, after its end: never applied.
    let after_the_end = IsolationProof {
        chain: certified_chain(&set, &keys, QcSummary::GENESIS, &[first + 3, first + 4], vec![second]),
    };
    let (status, answer) = https_bytes(&server, &root, "POST", "/ca/isolate", after_the_end.encode().to_vec());
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("epoch 1 ended at height 1"), "{answer}");

    // Now epoch 2's proof holds: validator 2 is revoked too.
    let (status, answer) = https_bytes(&server, &root, "POST", "/ca/isolate", in_epoch_2.encode().to_vec());
    assert_eq!(status, 200, "{answer}");
    let answer = json(&answer);
    assert_eq!(
        (answer["epoch"].as_u64(), answer["epoch_known"].as_u64()),
        (Some(2), Some(3)),
        "{answer}"
    );
    assert_eq!(answer["isolated"][0]["name"], "node-2.mesh", "{answer}");
    assert_eq!(answer["isolated"][0]["newly_revoked"], true, "{answer}");
    drop(server);

    // Restarted, the CA follows the epochs its kept proofs took it through.
    let server = Server::start_with(&state, &["--validators", validators.to_str().unwrap()]);
    let (status, answer) = https_bytes(&server, &root, "POST", "/ca/isolate", in_epoch_2.encode().to_vec());
    assert_eq!(status, 200, "{answer}");
    let answer = json(&answer);
    assert_eq!(answer["epoch_known"].as_u64(), Some(3), "{answer}");
    assert_eq!(answer["isolated"][0]["validator"], 2, "{answer}");
    drop(server);

    // Without a validator set the CA takes no proofs, and says how to make it.
    let plain = Server::start(&state);
    let (status, answer) = https_bytes(&plain, &root, "POST", "/ca/isolate", committed);
    assert_eq!(status, 404, "{answer}");
    assert!(answer.contains("--validators"), "{answer}");
}

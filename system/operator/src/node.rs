//! `hypermesh node`: a production node on real sockets. It enrolls with a TrustChain CA over HTTPS
//! (join token, CSR from a fresh Ed25519 key), fetches the CA's trust bundle and revocation
//! lists, then runs the HyperMesh membership protocol over STOQ (QUIC, mutual TLS with the
//! enrolled certificate) until SIGINT or SIGTERM.
//!
//! Standard output, for operators and tests: first `listening on ADDR as NAME (serial S)`, then
//! one JSON line per protocol observation (`{"at_ms", "probe", "subject", "value"}`: `member`
//! with value 0 alive, 1 suspect, 2 dead; `joined`; `stoq_connected`; `stoq_refused`; …).

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use clap::Args;
use hypermesh::membership::{self, MembershipConfig, MembershipNode, NodeId};
use runtime::host::Host;
use runtime::{Actor, WallTime};
use runtime_tokio::{HttpsClient, NodeSpec, ProbeRecord};
use stoq::{require_ipv6, Credentials, Stoq, StoqConfig, Trust};
use tokio::sync::{mpsc, watch};
use trustchain::ca::{key_from_seed, request, serial_of, NodeIdentity};
use trustchain::trust::{fingerprint, TrustBundle};
use trustchain_service::pem;

use crate::trustchain::Failure;

/// How long each call to the CA may take.
const CA_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// `hypermesh node` arguments.
#[derive(Args)]
pub struct NodeArgs {
    /// The node's own IPv6 address and UDP port, e.g. [fd00::7]:7000 (port 0: the OS picks). Its
    /// certificate names this address, so it must be specific, not [::].
    #[arg(long)]
    listen: String,
    /// The node's name, as its join token grants it (e.g. node-7.mesh).
    #[arg(long)]
    name: String,
    /// Membership id, any 64-bit value (default: derived from the name).
    #[arg(long)]
    id: Option<u64>,
    /// Seed nodes to join through (bootstrap phase 0), IPv6 only; repeatable.
    #[arg(long = "seed")]
    seeds: Vec<String>,
    /// The CA's HTTPS address (`trustchain serve --listen`).
    #[arg(long)]
    ca: String,
    /// The name the CA's certificate carries.
    #[arg(long, default_value = "trustchain.mesh")]
    ca_name: String,
    /// The CA's root certificate (root.pem from `trustchain ca install`): the only
    /// anchor trusted to reach the CA, and pinned in the bundle the CA hands out.
    #[arg(long, value_name = "FILE")]
    ca_root: PathBuf,
    /// The join token the operator issued for this node (`trustchain token`).
    #[arg(long)]
    token: String,
    /// Directory for the node's files.
    #[arg(long, default_value = "testbed-node")]
    state: PathBuf,
}

/// Runs `hypermesh node`. Exit 0 after a signal; 2 on bad arguments or a failed enrollment.
pub fn run(args: NodeArgs) -> ExitCode {
    match node(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn ipv6_arg(what: &str, text: &str) -> Result<SocketAddr, Failure> {
    let addr: SocketAddr = text
        .parse()
        .map_err(|_| Failure(format!("{what} {text:?} is not an address:port (IPv6 as [addr]:port)")))?;
    Ok(require_ipv6(what, addr)?)
}

fn node(args: NodeArgs) -> Result<(), Failure> {
    let listen = ipv6_arg("--listen", &args.listen)?;
    let ip = match listen.ip() {
        IpAddr::V6(v6) if !v6.is_unspecified() => v6,
        _ => {
            return Err(Failure(format!(
                "--listen {listen} is unspecified: give the node's own IPv6 address (its certificate names it)"
            )))
        }
    };
    let seeds = args
        .seeds
        .iter()
        .enumerate()
        .map(|(i, s)| ipv6_arg(&format!("--seed {}", i + 1), s))
        .collect::<Result<Vec<_>, _>>()?;
    let ca = ipv6_arg("--ca", &args.ca)?;
    let root_pem =
        std::fs::read(&args.ca_root).map_err(|e| Failure(format!("--ca-root {}: {e}", args.ca_root.display())))?;
    let roots = pem::chain(&root_pem).map_err(|e| Failure(format!("--ca-root {}: {e}", args.ca_root.display())))?;
    let who = NodeIdentity {
        name: args.name.clone(),
        addr: ip,
    };
    let (credentials, trust) = enroll(ca, &args.ca_name, &roots, &who, &args.token)?;
    let serial = serial_of(&credentials.chain[0]).map(|s| hex(&s)).unwrap_or_default();

    let id = NodeId(args.id.unwrap_or_else(|| name_id(&args.name)));
    let membership = MembershipConfig::new(id, seeds);
    membership
        .validate()
        .map_err(|e| Failure(format!("membership settings: {e}")))?;
    std::fs::create_dir_all(&args.state).map_err(|e| Failure(format!("--state {}: {e}", args.state.display())))?;
    let spec = NodeSpec::new(vec![listen], args.state.clone());

    let (stop_tx, stop_rx) = watch::channel(false);
    let (probe_tx, mut probe_rx) = mpsc::unbounded_channel::<ProbeRecord>();
    let (bound_tx, bound_rx) = std_mpsc::channel::<SocketAddr>();
    let node = std::thread::spawn(move || {
        runtime_tokio::run_node(
            0,
            &spec,
            move |addrs| -> Box<dyn Actor + Send> {
                let _ = bound_tx.send(addrs[0]);
                let transport = Stoq::new(StoqConfig::default(), Some(credentials), trust);
                Box::new(Host::new(transport).mount(membership::MOUNT, MembershipNode::new(membership)))
            },
            stop_rx,
            Some(probe_tx),
        )
    });
    let bound = match bound_rx.recv_timeout(Duration::from_secs(10)) {
        Ok(addr) => addr,
        Err(_) => {
            return match node.join() {
                Ok(Err(e)) => Err(Failure(format!("cannot start the node on {listen}: {e}"))),
                _ => Err(Failure(format!("the node on {listen} did not start"))),
            };
        }
    };
    println!(
        "listening on {bound} as {} (id {}, certificate serial {serial})",
        args.name, id.0
    );
    let _ = std::io::stdout().flush();

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let printing = async {
            while let Some(record) = probe_rx.recv().await {
                let line = serde_json::json!({
                    "at_ms": record.at.as_nanos() / 1_000_000,
                    "probe": record.probe.name,
                    "subject": record.probe.subject,
                    "value": record.probe.value,
                });
                println!("{line}");
                let _ = std::io::stdout().flush();
            }
        };
        tokio::select! {
            () = crate::trustchain::stop_signal() => {}
            () = printing => {}
        }
    });
    let _ = stop_tx.send(true);
    match node.join() {
        Ok(Ok(stats)) => {
            eprintln!("stopped ({} datagrams received)", stats.datagrams_received);
            Ok(())
        }
        Ok(Err(e)) => Err(Failure(format!("node failed: {e}"))),
        Err(_) => Err(Failure("the node thread panicked".into())),
    }
}

/// Enrolls `who` with the CA at `ca` (reached over HTTPS trusting only `roots`): a fresh key, a
/// CSR, the join token; then the CA's bundle (which must pin one of `roots`) and revocation lists.
fn enroll(
    ca: SocketAddr,
    ca_name: &str,
    roots: &[pki_types::CertificateDer<'static>],
    who: &NodeIdentity,
    token: &str,
) -> Result<(Credentials, Trust), Failure> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| Failure(format!("no OS randomness for the node key: {e}")))?;
    let key = key_from_seed(&seed);
    let csr = request(who, &key).map_err(|e| Failure(format!("cannot make a CSR for {}: {e}", who.name)))?;
    let root_ders: Vec<Vec<u8>> = roots.iter().map(|c| c.to_vec()).collect();
    let client = HttpsClient::new(ca, ca_name, &root_ders).map_err(|e| Failure(format!("CA client: {e}")))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let call = |method: &'static str, target: &'static str, body: String| {
        let client = &client;
        async move {
            match tokio::time::timeout(CA_CALL_TIMEOUT, client.call(method, target, body)).await {
                Ok(Ok((status, body))) => Ok((status, String::from_utf8_lossy(&body).into_owned())),
                Ok(Err(e)) => Err(Failure(format!("CA at {ca}: {target}: {e}"))),
                Err(_) => Err(Failure(format!(
                    "CA at {ca}: {target}: no answer within {CA_CALL_TIMEOUT:?}"
                ))),
            }
        }
    };
    runtime.block_on(async {
        let body = serde_json::json!({ "csr": pem::encode("CERTIFICATE REQUEST", &csr), "token": token }).to_string();
        let (status, answer) = call("POST", "/ca/issue", body).await?;
        if status != 200 {
            return Err(Failure(format!("the CA refused enrollment (HTTP {status}): {answer}")));
        }
        let answer: serde_json::Value =
            serde_json::from_str(&answer).map_err(|e| Failure(format!("CA answer is not JSON: {e}")))?;
        let chain_pem = answer["chain"]
            .as_str()
            .ok_or_else(|| Failure("CA answer has no chain".into()))?;
        let chain = pem::chain(chain_pem.as_bytes())?;

        // The bundle is binary: read it as bytes.
        let (status, raw) = tokio::time::timeout(
            CA_CALL_TIMEOUT,
            client.call("GET", "/ca/bundle?format=tc", String::new()),
        )
        .await
        .map_err(|_| Failure(format!("CA at {ca}: /ca/bundle: no answer within {CA_CALL_TIMEOUT:?}")))?
        .map_err(|e| Failure(format!("CA at {ca}: /ca/bundle: {e}")))?;
        if status != 200 {
            return Err(Failure(format!("the CA refused its bundle (HTTP {status})")));
        }
        let bundle = TrustBundle::decode(&raw).map_err(|e| Failure(format!("CA bundle: {e}")))?;
        let now = wall_now_s();
        let pinned = roots.iter().any(|r| bundle.trusts(&fingerprint(r), now));
        if !pinned {
            return Err(Failure(
                "the CA's bundle does not hold the root given with --ca-root: refusing it".into(),
            ));
        }
        let (status, crl_pem) = call("GET", "/ca/crl", String::new()).await?;
        if status != 200 {
            return Err(Failure(format!("the CA refused its revocation lists (HTTP {status})")));
        }
        let crls = pem::crls(crl_pem.as_bytes())?;
        let trust = Trust { bundle, crls };
        // Check what we got the way peers will.
        let security_check = trust
            .bundle
            .validate(&chain, &trust.crls, now, &trustchain::validate::ExpectedPeer::Any);
        if let Err(e) = security_check {
            return Err(Failure(format!("the certificate the CA issued does not validate: {e}")));
        }
        Ok((
            Credentials {
                chain,
                key_pkcs8: key.serialize_der(),
            },
            trust,
        ))
    })
}

fn wall_now_s() -> i64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    WallTime::from_unix_nanos(nanos)
        .as_unix_nanos()
        .div_euclid(1_000_000_000)
}

/// A stable membership id from a node name: its 64-bit FNV-1a hash.
fn name_id(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

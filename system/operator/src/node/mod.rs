//! `hypermesh node`: a production node on real sockets. It enrolls with a TrustChain CA over HTTPS
//! (join token, CSR from a fresh Ed25519 key kept in its state directory), fetches the CA's trust
//! bundle and revocation lists, then runs the HyperMesh membership protocol over STOQ (QUIC,
//! mutual TLS with the enrolled certificate) until SIGINT or SIGTERM. While it runs it renews its
//! leaf at `--renew-fraction` of its life (new handshakes present the new chain; live connections
//! stay) and refreshes the bundle and revocation lists every `--trust-refresh` (live connections
//! to peers they refuse are closed). Restarted with the same `--state`, it needs no token.
//!
//! Its membership id is bound to its certificate: the 64-bit FNV-1a hash of the name it
//! certifies (`IdentityBinding::NameHash`), and it hears a member only from the address whose
//! certificate names that member: a message whose sender is not the FNV-1a hash of the name its
//! peer's certificate certifies is refused (`identity_refused`).
//!
//! Standard output, for operators and tests: first `listening on ADDR as NAME (id N, certificate
//! serial S)`, then one JSON line per protocol observation (`{"at_ms", "probe", "subject",
//! "value"}`: `member` with value 0 alive, 1 suspect, 2 dead; `joined`; …) and per certificate
//! event (`{"event": "renewed", "serial"}`, `trust_refreshed`, `revoked`, `renewal_failed`).
//! STOQ's connection lines name the peer by the low 64 bits of its IPv6 address (`subject`):
//! `stoq_connected` (value 1) mutual TLS completed; `stoq_refused` a connection refused or
//! unanswered before use, `value` its class (the index in
//! `trustchain::validate::ValidationError::CLASSES`, then `stoq::TRANSPORT_CLASSES`: timeout,
//! reset, closed, tls); `stoq_lost` (value 1) a live connection ended (idle, reset, the peer
//! gone); the next message to that peer dials again.
//!
//! With `--validators FILE` the node also runs HotStuff-2 consensus ([`consensus`]): the replica
//! of the validator its certificate's name is listed as, on the same host and STOQ transport as
//! membership (channel 3), signing with its TrustChain leaf key, its log and safety records in
//! `--state` (`consensus.*` files). It prints `{"event": "consensus", "validator", "validators",
//! "epoch"}` after the first line, then consensus's probes (`commit` with the height as
//! `subject`, `view`, `timeout`, `recovered`, `catchup`, …; see
//! `hypermesh::consensus::replica`). Every probe line names its `protocol` (`membership`,
//! `consensus`, `stoq`).
//!
//! With `machine = "erc8004"` in the validators file, `--rpc ADDR` serves JSON-RPC over the
//! registries this replica holds (`{"event": "rpc", "listening"}`) and `--api ADDR` the registry
//! REST API ([`api`]; `{"event": "api", "listening"}`), its `/health` naming the replica's role
//! and whether its partition can commit ([`status`]).
//!
//! When its replica commits the isolation of a validator (a removal shown Byzantine, probe
//! `isolated`), it keeps a proof of it (probe `isolation_proof`); the node hands that proof to the
//! CA (`POST /ca/isolate`, taken by a CA served with `--validators`), which revokes the isolated
//! validator's certificates, identity and key, and refreshes its trust at once, so that STOQ
//! refuses the isolated validator's handshakes and closes its live connections. It prints
//! `{"event": "isolation_reported", "validator", "ca"}` (`ca`: the CA's answer, with the serials
//! revoked), or `isolation_report_failed` with the reason and whether it tries again (every 5 s
//! while the CA cannot be reached; not after the CA refused the proof).

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use clap::Args;
use erc8004::rpc::RpcService;
use hypermesh::membership::{self, IdentityBinding, MembershipConfig, MembershipNode};
use runtime::host::Host;
use runtime::units::parse_duration;
use runtime::Actor;
use runtime_tokio::{BackendError, HttpsConfig, HttpsServer, NodeSpec, NodeStats, ProbeRecord};
use stoq::Stoq;
use tokio::sync::{mpsc, watch};

use crate::trustchain::Failure;
use crate::validators::{Machine, Validators};

mod api;
mod ca_client;
pub(crate) mod consensus;
pub(crate) mod enroll;
pub(crate) mod flags;
pub(crate) mod identity;
mod keeper;
mod rpc;
mod status;

use api::NodeSource;
use enroll::{enroll, EnrollFlags};
use flags::{peer_arg, SEED_FLAG};
use keeper::Keeper;
use rpc::SharedChain;
use status::ReplicaStatus;

use crate::api::ServedApi;
use erc8004_api::service::ApiConfig;
use runtime_tokio::ErrorStyle;

/// How often the node hands the heap's free pages back to the OS
/// ([`runtime_tokio::release_free_memory`]): with 999 peers, 27 MB of its 77 MB resident were
/// free pages glibc kept. A walk of the arenas costs about a millisecond.
const FREE_MEMORY_RELEASE_INTERVAL: Duration = Duration::from_secs(10);

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
    /// The join token the operator issued for this node (`trustchain token`): needed the first
    /// time, and again only if the stored certificate expired or was revoked.
    #[arg(long)]
    token: Option<String>,
    /// Directory for the node's files (0700): its key and chain (0600), membership's
    /// incarnation, and with --validators the consensus log and safety records. A node restarted
    /// with the same directory needs no new token and catches up from its log.
    #[arg(long, default_value = "hypermesh-node")]
    state: PathBuf,
    /// Renew the leaf at this fraction of its lifetime.
    #[arg(long, default_value_t = 2.0 / 3.0)]
    renew_fraction: f64,
    /// Fetch the CA's bundle and revocation lists this often (live connections to peers they
    /// refuse are closed).
    #[arg(long, default_value = "10m")]
    trust_refresh: String,
    /// The validators file (TOML: `epoch`, one `[[validator]]` per validator with `name`,
    /// `address`, `public_key`, optional `[[client]]` entries). With it the node also runs
    /// HotStuff-2 consensus as the validator its certificate's name is listed as, signing with
    /// its certificate's key; without it, membership only.
    #[arg(long, value_name = "FILE")]
    validators: Option<PathBuf>,
    /// Serve JSON-RPC for the ERC-8004 registries on this IPv6 address and port (plain HTTP),
    /// answering from this validator's state and handing transactions to consensus; needs a
    /// validators file with `machine = "erc8004"`.
    #[arg(long, value_name = "ADDR")]
    rpc: Option<String>,
    /// Serve the registry REST API on this IPv6 address and port (plain HTTP), over this
    /// validator's state, its keys made by `hypermesh keys create --state` with the same state
    /// directory; needs a validators file with `machine = "erc8004"`.
    #[arg(long, value_name = "ADDR")]
    api: Option<String>,
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

fn node(args: NodeArgs) -> Result<(), Failure> {
    let seeds = args
        .seeds
        .iter()
        .map(|s| peer_arg(&SEED_FLAG, s))
        .collect::<Result<Vec<_>, _>>()?;
    if !(0.1..=0.95).contains(&args.renew_fraction) {
        return Err(Failure(format!(
            "--renew-fraction {} is outside 0.1..=0.95",
            args.renew_fraction
        )));
    }
    let trust_refresh = parse_duration(&args.trust_refresh)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            Failure(format!(
                "--trust-refresh {:?} is not a positive duration",
                args.trust_refresh
            ))
        })?;
    // The validators file is checked before enrolling, so a mistake in it costs no join token.
    let validators = match &args.validators {
        Some(path) => {
            let file = Validators::load(path)?;
            consensus::check_seat(path, &file, &args.name, &args.listen)?;
            Some((path.as_path(), file))
        }
        None => None,
    };
    let registries = matches!(
        validators.as_ref().map(|(_, f)| f.machine),
        Some(Machine::Erc8004 { .. })
    );
    let listen_flag = |flag: &str, text: &Option<String>, example: &str| -> Result<Option<SocketAddr>, Failure> {
        let Some(text) = text else { return Ok(None) };
        if !registries {
            return Err(Failure(format!(
                "{flag} serves the ERC-8004 registries: give a validators file with machine = \"erc8004\""
            )));
        }
        text.parse::<SocketAddr>()
            .map(Some)
            .map_err(|e| Failure(format!("{flag} {text}: not an address and port such as {example}: {e}")))
    };
    let rpc_listen = listen_flag("--rpc", &args.rpc, "[::1]:8545")?;
    let api_listen = listen_flag("--api", &args.api, "[::1]:8000")?;
    let enrolled = enroll(&EnrollFlags {
        listen: &args.listen,
        name: &args.name,
        ca: &args.ca,
        ca_name: &args.ca_name,
        ca_root: &args.ca_root,
        token: args.token.as_deref(),
        state: &args.state,
    })?;

    // The membership id is bound to the certificate: derived from the name it certifies.
    let certified = enrolled.certified.clone();
    let id = IdentityBinding::hashed(&certified);
    let mut membership = MembershipConfig::new(id, seeds);
    // And so is every peer's: a node speaks only as the member its certificate names.
    membership.identity = Some(IdentityBinding::NameHash);
    membership
        .validate()
        .map_err(|e| Failure(format!("membership settings: {e}")))?;
    // The chain, when the file asks for the registries: the replica applies blocks to it and
    // the JSON-RPC endpoint reads it.
    let chain = match validators.as_ref().map(|(_, file)| file.machine) {
        Some(Machine::Erc8004 { chain_id }) => Some(SharedChain::new(chain_id)),
        _ => None,
    };
    let replica = match (validators, &chain) {
        (Some((path, file)), Some(chain)) => {
            let (replica, seat) = consensus::replica(path, &file, &enrolled, chain.clone())?;
            Some((Mounted::Chain(replica), seat))
        }
        (Some((path, file)), None) => {
            let (replica, seat) = consensus::replica(path, &file, &enrolled, file.machine())?;
            Some((Mounted::ListAppend(replica), seat))
        }
        (None, _) => None,
    };
    let (config, setup) = enrolled.stoq()?;
    let security = setup.security().clone();
    let seat = replica.as_ref().map(|(_, seat)| *seat);
    // What the replica says of itself, for the API's /health.
    let status = seat.map(|seat| ReplicaStatus::new(seat, consensus::silence_max()));
    let running = start_host(enrolled.listen, enrolled.state.path(), move || {
        let host = Host::new(Stoq::with_setup(config, setup)).mount(membership::MOUNT, MembershipNode::new(membership));
        match replica {
            Some((Mounted::ListAppend(replica), _)) => Box::new(host.mount(hypermesh::consensus::MOUNT, replica)),
            Some((Mounted::Chain(replica), _)) => Box::new(host.mount(hypermesh::consensus::MOUNT, replica)),
            None => Box::new(host),
        }
    })?;
    println!(
        "listening on {} as {certified} (id {}, certificate serial {})",
        running.bound, id.0, enrolled.serial
    );
    let _ = std::io::stdout().flush();
    if let Some(seat) = seat {
        emit(serde_json::json!({
            "event": "consensus",
            "validator": seat.index,
            "validators": seat.validators,
            "epoch": seat.epoch,
        }));
    }

    let mut keeper = Keeper {
        client: &enrolled.ca,
        state: &enrolled.state,
        who: &enrolled.who,
        security: &security,
        identity: enrolled.identity,
        renew_fraction: args.renew_fraction,
        revoked: false,
    };
    let Running {
        thread,
        stop,
        mut probes,
        ..
    } = running;
    let (isolation_tx, isolations) = mpsc::unbounded_channel::<u16>();
    let rpc_server = match (rpc_listen, &chain) {
        (Some(listen), Some(chain)) => {
            let _entered = enrolled.runtime.enter();
            let mut config = HttpsConfig::new(listen);
            config.body_bytes_max = erc8004::rpc::BODY_BYTES_MAX;
            let service = Arc::new(Mutex::new(RpcService::new(chain.clone())));
            let server = HttpsServer::bind_plain(config, service).map_err(|e| Failure(format!("--rpc: {e}")))?;
            emit(serde_json::json!({ "event": "rpc", "listening": format!("http://{}", server.local_addr()?) }));
            Some(server)
        }
        _ => None,
    };
    let api_server = match (api_listen, chain, &status) {
        (Some(listen), Some(chain), Some(status)) => {
            let _entered = enrolled.runtime.enter();
            let applied = chain.applied();
            let source = NodeSource {
                rpc: RpcService::new(chain),
                status: status.clone(),
            };
            let served = ServedApi::new(source, enrolled.state.path(), ApiConfig::default());
            let mut config = HttpsConfig::new(listen);
            // Reads answer from memory: on the connection's task, not the blocking pool.
            config.answer_inline = true;
            config.error_style = ErrorStyle::CodeAndMessage;
            let served = Arc::new(Mutex::new(served));
            // A transaction posted is answered once committed: each block applied wakes the
            // answers held for one.
            let server = HttpsServer::bind_plain(config, served.clone())
                .map_err(|e| Failure(format!("--api: {e}")))?
                .with_changes(applied);
            served
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .watch_server(server.load());
            emit(serde_json::json!({ "event": "api", "listening": format!("http://{}", server.local_addr()?) }));
            Some(server)
        }
        _ => None,
    };
    enrolled.runtime.block_on(async {
        let rpc = async {
            match rpc_server {
                Some(server) => server.serve(std::future::pending()).await,
                None => std::future::pending().await,
            }
        };
        let api = async {
            match api_server {
                Some(server) => server.serve(std::future::pending()).await,
                None => std::future::pending().await,
            }
        };
        let serving = async {
            tokio::select! {
                () = rpc => {}
                () = api => {}
            }
        };
        let printing = async {
            while let Some(record) = probes.recv().await {
                if let Some(status) = &status {
                    status.observe(&record, runtime_tokio::host_wall_now());
                }
                emit(probe_line(&record));
                if let Some(validator) = kept_isolation_proof(&record) {
                    let _ = isolation_tx.send(validator);
                }
            }
        };
        let releasing = async {
            let mut every = tokio::time::interval(FREE_MEMORY_RELEASE_INTERVAL);
            loop {
                every.tick().await;
                runtime_tokio::release_free_memory();
            }
        };
        tokio::select! {
            () = crate::trustchain::stop_signal() => {}
            () = printing => {}
            () = releasing => {}
            () = keeper.run(trust_refresh, isolations) => {}
            () = serving => {}
        }
    });
    let stats = stop_host(thread, &stop)?;
    eprintln!("stopped ({} datagrams received)", stats.datagrams_received);
    Ok(())
}

/// The validator whose isolation proof the replica just kept, if `record` says so (the probe
/// `isolation_proof`, with the blocks the proof carries, 0 if storing it failed).
fn kept_isolation_proof(record: &ProbeRecord) -> Option<u16> {
    let p = &record.probe;
    (p.protocol == hypermesh::consensus::MOUNT.name && p.name == "isolation_proof" && p.value > 0)
        .then(|| u16::try_from(p.subject).ok())
        .flatten()
}

/// A probe as the node prints it.
pub(crate) fn probe_line(record: &ProbeRecord) -> serde_json::Value {
    serde_json::json!({
        "at_ms": record.at.as_nanos() / 1_000_000,
        "protocol": record.probe.protocol,
        "probe": record.probe.name,
        "subject": record.probe.subject,
        "value": record.probe.value,
    })
}

/// A host running on a thread of its own (tokio's event loop on real sockets).
pub(crate) struct Running {
    /// The thread driving it.
    pub thread: JoinHandle<Result<NodeStats, BackendError>>,
    /// Set to stop it.
    pub stop: watch::Sender<bool>,
    /// The address its socket is bound to.
    pub bound: SocketAddr,
    /// Its probes.
    pub probes: mpsc::UnboundedReceiver<ProbeRecord>,
}

/// Binds `listen`, stores files in `state`, and runs the actor `build` makes, on its own thread.
pub(crate) fn start_host(
    listen: SocketAddr,
    state: &Path,
    build: impl FnOnce() -> Box<dyn Actor + Send> + Send + 'static,
) -> Result<Running, Failure> {
    let spec = NodeSpec::new(vec![listen], state.to_path_buf());
    let (stop, stop_rx) = watch::channel(false);
    let (probe_tx, probes) = mpsc::unbounded_channel::<ProbeRecord>();
    let (bound_tx, bound_rx) = std_mpsc::channel::<SocketAddr>();
    let thread = std::thread::spawn(move || {
        runtime_tokio::run_node(
            0,
            &spec,
            move |addrs| -> Box<dyn Actor + Send> {
                let _ = bound_tx.send(addrs[0]);
                build()
            },
            stop_rx,
            Some(probe_tx),
        )
    });
    match bound_rx.recv_timeout(Duration::from_secs(10)) {
        Ok(bound) => Ok(Running {
            thread,
            stop,
            bound,
            probes,
        }),
        Err(_) => match thread.join() {
            Ok(Err(e)) => Err(Failure(format!("cannot start on {listen}: {e}"))),
            _ => Err(Failure(format!("the process on {listen} did not start"))),
        },
    }
}

/// Stops a host started by [`start_host`] and waits for its thread.
pub(crate) fn stop_host(
    thread: JoinHandle<Result<NodeStats, BackendError>>,
    stop: &watch::Sender<bool>,
) -> Result<NodeStats, Failure> {
    let _ = stop.send(true);
    match thread.join() {
        Ok(Ok(stats)) => Ok(stats),
        Ok(Err(e)) => Err(Failure(format!("node failed: {e}"))),
        Err(_) => Err(Failure("the node thread panicked".into())),
    }
}

/// One line of the node's output.
pub(crate) fn emit(line: serde_json::Value) {
    println!("{line}");
    let _ = std::io::stdout().flush();
}

/// The replica a node mounts, by the state machine its validators file asks for.
enum Mounted {
    ListAppend(hypermesh::consensus::Replica<hypermesh::replication::kv::ListAppend>),
    Chain(hypermesh::consensus::Replica<SharedChain>),
}

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

use std::io::Write;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc as std_mpsc;
use std::time::Duration;

use clap::Args;
use hypermesh::membership::{self, IdentityBinding, MembershipConfig, MembershipNode};
use runtime::host::Host;
use runtime::units::parse_duration;
use runtime::{Actor, WallTime};
use runtime_tokio::{NodeSpec, ProbeRecord};
use stoq::{Credentials, PacketProtection, QuicSetup, Security, Stoq, StoqConfig, Trust};
use tokio::sync::{mpsc, watch};
use trustchain::ca::{key_from_seed, leaf_identity, serial_of, NodeIdentity};
use trustchain::trust::validity_of;
use trustchain::validate::ExpectedPeer;
use trustchain_service::pem;

use crate::trustchain::Failure;

mod ca_client;
mod identity;

use ca_client::CaClient;
use identity::{Identity, StateDir};

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
    /// Directory for the node's files (0700): its key and chain (0600) and membership's
    /// incarnation. A node restarted with the same directory needs no new token.
    #[arg(long, default_value = "hypermesh-node")]
    state: PathBuf,
    /// Renew the leaf at this fraction of its lifetime.
    #[arg(long, default_value_t = 2.0 / 3.0)]
    renew_fraction: f64,
    /// Fetch the CA's bundle and revocation lists this often (live connections to peers they
    /// refuse are closed).
    #[arg(long, default_value = "10m")]
    trust_refresh: String,
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

/// What an address flag names, for its messages: who is at the address and an example of one
/// the node accepts.
struct AddressFlag {
    /// The flag, e.g. `--seed`.
    flag: &'static str,
    /// Whose address it is, e.g. "a seed node's".
    whose: &'static str,
    /// An example the node accepts, e.g. `[fd00::1]:7000`.
    example: &'static str,
    /// Why IPv4 will not do, e.g. "seeds are reached over IPv6 only".
    ipv6_only: &'static str,
}

/// `--seed`: a node to join through.
const SEED_FLAG: AddressFlag = AddressFlag {
    flag: "--seed",
    whose: "a seed node's",
    example: "[fd00::1]:7000",
    ipv6_only: "seeds are reached over IPv6 only",
};
/// `--ca`: where `trustchain serve` listens.
const CA_FLAG: AddressFlag = AddressFlag {
    flag: "--ca",
    whose: "the CA's",
    example: "[fd00::1]:8443",
    ipv6_only: "the CA is reached over IPv6 only",
};

/// The IPv6 address and port of a peer (a seed, the CA) the node dials: refused, by the flag
/// and the value given, when it is not an address and port, is IPv4 (STOQ and the node are
/// IPv6-only) or is the unspecified address (which names no one to dial).
fn peer_arg(f: &AddressFlag, text: &str) -> Result<SocketAddr, Failure> {
    let AddressFlag {
        flag,
        whose,
        example,
        ipv6_only,
    } = f;
    let Ok(addr) = text.parse::<SocketAddr>() else {
        return Err(Failure(format!(
            "{flag} {text:?} is not an address and port: give {whose} IPv6 address in brackets \
             and its port, e.g. {flag} {example}"
        )));
    };
    match ipv6_of(&addr) {
        None => Err(Failure(format!(
            "{flag} {addr} is {}: {ipv6_only}; give {whose} IPv6 address and port, e.g. {flag} \
             {example}",
            ipv4_kind(&addr)
        ))),
        Some(ip) if ip.is_unspecified() => Err(Failure(format!(
            "{flag} {addr} is the unspecified address, which names no one to reach: give {whose} \
             own IPv6 address, e.g. {flag} {example}"
        ))),
        Some(_) => Ok(addr),
    }
}

/// The node's own address (`--listen`): a specific IPv6 address, since its certificate names
/// the address and peers check it. A refusal suggests an address the node accepts, keeping the
/// port given: `[::1]` for a loopback or unspecified address (one machine), else an example
/// of a host's own address.
fn listen_arg(text: &str) -> Result<(SocketAddr, Ipv6Addr), Failure> {
    let Ok(addr) = text.parse::<SocketAddr>() else {
        return Err(Failure(format!(
            "--listen {text:?} is not an address and port: give the node's own IPv6 address in \
             brackets and a port, e.g. --listen [::1]:7000 on one machine, or the host's own \
             address such as --listen [fd00::7]:7000"
        )));
    };
    let port = addr.port();
    let elsewhere = format!("or the host's own IPv6 address such as --listen [fd00::7]:{port}");
    match ipv6_of(&addr) {
        None => {
            let loopback = addr.ip().is_loopback() || addr.ip().to_canonical().is_loopback();
            let suggestion = if loopback {
                format!("--listen [::1]:{port}, the IPv6 loopback")
            } else {
                format!("--listen [::1]:{port} on one machine, {elsewhere}")
            };
            Err(Failure(format!(
                "--listen {addr} is {}, and the node runs over IPv6 only: use {suggestion}",
                ipv4_kind(&addr)
            )))
        }
        Some(ip) if ip.is_unspecified() => Err(Failure(format!(
            "--listen {addr} is the unspecified address: the node's certificate names the address it \
             listens on, so give one address, e.g. --listen [::1]:{port} on one machine, {elsewhere}"
        ))),
        Some(ip) => Ok((addr, ip)),
    }
}

/// "an IPv4 address", or for one written as IPv6 (`[::ffff:10.0.0.1]`) a word on that, since
/// the brackets make it look like IPv6.
fn ipv4_kind(addr: &SocketAddr) -> &'static str {
    if addr.is_ipv6() {
        "an IPv4 address written as IPv6 (::ffff:…)"
    } else {
        "an IPv4 address"
    }
}

/// The IPv6 address of `addr`; `None` for IPv4, including IPv4 written as IPv6
/// (`[::ffff:10.0.0.1]`), which still travels over IPv4.
fn ipv6_of(addr: &SocketAddr) -> Option<Ipv6Addr> {
    match addr.ip() {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => Some(v6),
        _ => None,
    }
}

fn node(args: NodeArgs) -> Result<(), Failure> {
    let (listen, ip) = listen_arg(&args.listen)?;
    let seeds = args
        .seeds
        .iter()
        .map(|s| peer_arg(&SEED_FLAG, s))
        .collect::<Result<Vec<_>, _>>()?;
    let ca = peer_arg(&CA_FLAG, &args.ca)?;
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
    let root_pem =
        std::fs::read(&args.ca_root).map_err(|e| Failure(format!("--ca-root {}: {e}", args.ca_root.display())))?;
    let roots = pem::chain(&root_pem).map_err(|e| Failure(format!("--ca-root {}: {e}", args.ca_root.display())))?;
    let who = NodeIdentity {
        name: args.name.clone(),
        addr: ip,
    };
    let state = StateDir::open(&args.state)?;
    let client = CaClient::new(ca, &args.ca_name, roots)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (identity, trust) = runtime.block_on(establish(&client, &state, &who, args.token.as_deref()))?;
    let serial = serial_of(&identity.chain[0]).map(|s| hex(&s)).unwrap_or_default();

    // The membership id is bound to the certificate: derived from the name it certifies.
    let certified = leaf_identity(&identity.chain[0])
        .map(|(node, _)| node.name)
        .ok_or_else(|| Failure("the certificate names no node".into()))?;
    let id = IdentityBinding::hashed(&certified);
    let mut membership = MembershipConfig::new(id, seeds);
    // And so is every peer's: a node speaks only as the member its certificate names.
    membership.identity = Some(IdentityBinding::NameHash);
    membership
        .validate()
        .map_err(|e| Failure(format!("membership settings: {e}")))?;
    let config = StoqConfig::default();
    let setup = QuicSetup::new(
        &config,
        Some(&credentials(&identity)),
        trust,
        PacketProtection::Encrypted,
    )
    .map_err(|e| Failure(format!("STOQ: {e}")))?;
    let security = setup.security().clone();
    let spec = NodeSpec::new(vec![listen], state.path().to_path_buf());

    let (stop_tx, stop_rx) = watch::channel(false);
    let (probe_tx, mut probe_rx) = mpsc::unbounded_channel::<ProbeRecord>();
    let (bound_tx, bound_rx) = std_mpsc::channel::<SocketAddr>();
    let node = std::thread::spawn(move || {
        runtime_tokio::run_node(
            0,
            &spec,
            move |addrs| -> Box<dyn Actor + Send> {
                let _ = bound_tx.send(addrs[0]);
                let transport = Stoq::with_setup(config, setup);
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
        "listening on {bound} as {certified} (id {}, certificate serial {serial})",
        id.0
    );
    let _ = std::io::stdout().flush();

    let mut keeper = Keeper {
        client: &client,
        state: &state,
        who: &who,
        security: &security,
        identity,
        renew_fraction: args.renew_fraction,
        revoked: false,
    };
    runtime.block_on(async {
        let printing = async {
            while let Some(record) = probe_rx.recv().await {
                emit(serde_json::json!({
                    "at_ms": record.at.as_nanos() / 1_000_000,
                    "probe": record.probe.name,
                    "subject": record.probe.subject,
                    "value": record.probe.value,
                }));
            }
        };
        tokio::select! {
            () = crate::trustchain::stop_signal() => {}
            () = printing => {}
            () = keeper.run(trust_refresh) => {}
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

/// One line of the node's output.
fn emit(line: serde_json::Value) {
    println!("{line}");
    let _ = std::io::stdout().flush();
}

fn credentials(identity: &Identity) -> Credentials {
    Credentials {
        chain: identity.chain.clone(),
        key_pkcs8: key_from_seed(&identity.key_seed).serialize_der(),
    }
}

/// The node's identity and trust at start: the stored identity if it still validates (renewed
/// first if it is due or its issuer was retired), else a fresh key enrolled with `token`.
async fn establish(
    client: &CaClient,
    state: &StateDir,
    who: &NodeIdentity,
    token: Option<&str>,
) -> Result<(Identity, Trust), Failure> {
    let now = wall_now_s();
    let trust = client.trust(now).await?;
    if let Some(mut stored) = state.load()? {
        let check = trust
            .bundle
            .validate(&stored.chain, &trust.crls, now, &ExpectedPeer::Any);
        match check {
            Ok(()) => return Ok((stored, trust)),
            // A leaf of an intermediate retired while the node was down: the CA renews it.
            Err(e) if e.class() == "unknown_issuer" => {
                stored.chain = client.renew(who, &stored.key_seed, &stored.chain).await?;
                state.save_chain(&stored.chain)?;
                return Ok((stored, trust));
            }
            Err(e) if token.is_none() => {
                return Err(Failure(format!(
                    "the stored certificate in {} is not usable ({}: {e}): enroll again with a new --token",
                    state.path().display(),
                    e.class()
                )))
            }
            Err(_) => {}
        }
    }
    let token = token.ok_or_else(|| {
        Failure(format!(
            "no identity in {}: give the join token the operator issued (--token)",
            state.path().display()
        ))
    })?;
    let mut key_seed = [0u8; 32];
    getrandom::fill(&mut key_seed).map_err(|e| Failure(format!("no OS randomness for the node key: {e}")))?;
    let chain = client.enroll(who, &key_seed, token).await?;
    // Check what we got the way peers will, before keeping it.
    if let Err(e) = trust.bundle.validate(&chain, &trust.crls, now, &ExpectedPeer::Any) {
        return Err(Failure(format!("the certificate the CA issued does not validate: {e}")));
    }
    state.save_key(&key_seed)?;
    state.save_chain(&chain)?;
    Ok((Identity { key_seed, chain }, trust))
}

/// Keeps a running node's certificate and trust current: renews the leaf at its renewal point
/// and refreshes the bundle and revocation lists, handing both to STOQ (new handshakes present
/// the renewed chain; live connections to peers the new trust refuses are closed).
struct Keeper<'a> {
    client: &'a CaClient,
    state: &'a StateDir,
    who: &'a NodeIdentity,
    security: &'a Security,
    identity: Identity,
    renew_fraction: f64,
    /// The CA's lists revoke this node: renewing is pointless (the CA refuses a revoked
    /// chain), so the keeper stops asking and says so once.
    revoked: bool,
}

/// How long a revoked node's keeper waits before it would try to renew again: in effect never
/// (the operator enrolls it anew with a new token and a fresh state directory).
const REVOKED_RENEW_PAUSE: Duration = Duration::from_secs(365 * 24 * 3600);

impl Keeper<'_> {
    /// When the current leaf is due for renewal (Unix seconds).
    fn renew_at(&self) -> i64 {
        match validity_of(&self.identity.chain[0]) {
            Some(v) => v.not_before + ((v.not_after - v.not_before) as f64 * self.renew_fraction) as i64,
            None => wall_now_s(),
        }
    }

    async fn run(&mut self, trust_refresh: Duration) {
        let mut refresh = tokio::time::interval(trust_refresh);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        refresh.tick().await; // the first tick is immediate; trust was just fetched
        let mut retry = RENEW_RETRY_MIN;
        loop {
            let wait = if self.revoked {
                REVOKED_RENEW_PAUSE
            } else {
                Duration::from_secs(u64::try_from(self.renew_at() - wall_now_s()).unwrap_or(0))
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => match self.renew().await {
                    Ok(()) => retry = RENEW_RETRY_MIN,
                    Err(Failure(message)) => {
                        tracing::warn!(%message, "renewal failed; retrying");
                        emit(serde_json::json!({ "event": "renewal_failed", "reason": message }));
                        tokio::time::sleep(retry).await;
                        retry = (retry * 2).min(RENEW_RETRY_MAX);
                    }
                },
                _ = refresh.tick() => {
                    if let Err(Failure(message)) = self.refresh().await {
                        tracing::warn!(%message, "trust refresh failed; keeping the current trust");
                    }
                }
            }
        }
    }

    async fn renew(&mut self) -> Result<(), Failure> {
        let chain = self
            .client
            .renew(self.who, &self.identity.key_seed, &self.identity.chain)
            .await?;
        let renewed = Identity {
            key_seed: self.identity.key_seed,
            chain,
        };
        self.security
            .present(&credentials(&renewed))
            .map_err(|e| Failure(format!("the renewed chain cannot be presented: {e}")))?;
        self.state.save_chain(&renewed.chain)?;
        let serial = serial_of(&renewed.chain[0]).map(|s| hex(&s)).unwrap_or_default();
        self.identity = renewed;
        emit(serde_json::json!({ "event": "renewed", "serial": serial }));
        Ok(())
    }

    async fn refresh(&mut self) -> Result<(), Failure> {
        let trust = self.client.trust(wall_now_s()).await?;
        let revoked = trust
            .bundle
            .validate(&self.identity.chain, &trust.crls, wall_now_s(), &ExpectedPeer::Any)
            .err()
            .filter(|e| e.class() == "revoked");
        self.security.trust(trust);
        emit(serde_json::json!({ "event": "trust_refreshed" }));
        if revoked.is_some() && !self.revoked {
            // Peers will refuse this node from their next refresh on; say so, once, where the
            // operator looks, and stop asking the CA to renew a revoked chain.
            self.revoked = true;
            tracing::warn!("this node's certificate is revoked: enroll it again with a new token");
            emit(serde_json::json!({ "event": "revoked" }));
        }
        Ok(())
    }
}

/// First wait after a failed renewal; it doubles up to [`RENEW_RETRY_MAX`].
const RENEW_RETRY_MIN: Duration = Duration::from_secs(1);
/// Longest wait between renewal attempts.
const RENEW_RETRY_MAX: Duration = Duration::from_secs(60);

fn wall_now_s() -> i64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    WallTime::from_unix_nanos(nanos)
        .as_unix_nanos()
        .div_euclid(1_000_000_000)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

//! `trustchain ...`: the operator's commands for a TrustChain CA kept in a state
//! directory, and `serve`, which runs its HTTPS API.
//!
//! Every command takes the directory's lock first, so two processes never write one CA; `ca
//! install` only reads the public material and works while a server runs.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use runtime::{AddressFamily, Storage};
use runtime_tokio::{CertificateSlot, DirStorage, HttpsConfig, HttpsServer};
use trustchain::ca::{key_from_seed, request, serial_of, CaPolicy, NodeIdentity};
use trustchain::trust::validity_of;
use trustchain::validate::ExpectedPeer;
use trustchain_service::isolation::ISOLATION_BODY_BYTES_MAX;
use trustchain_service::pem;
use trustchain_service::{
    CaApi, CaService, Credential, PublicMaterial, Revocation, RotationPlan, ServiceLimits, ServiceSeeds,
    RENEWALS_PER_IDENTITY_MAX_DEFAULT, SERVER_NAME_DEFAULT,
};

use runtime::units::parse_duration;

use crate::isolation::ValidatorSetVerifier;
use crate::lock::lock_dir;
use crate::EXIT_BAD_INPUT;

/// Exit code of `validate` for a chain that is not valid.
const EXIT_INVALID: u8 = 1;
/// How often the server checks for due work (overlap ends, its own renewal, scheduled rotation).
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(30);

/// Operates a TrustChain CA.
#[derive(Subcommand)]
pub enum TrustchainCommand {
    /// The CA itself.
    #[command(subcommand)]
    Ca(CaCommand),
    /// The certificate-transparency log.
    #[command(subcommand)]
    Ct(CtCommand),
    /// Prints a join token: the credential with which one node enrolls once.
    Token {
        /// The CA's state directory.
        #[command(flatten)]
        state: StateDir,
        /// The node's name, e.g. node-7.mesh.
        #[arg(long)]
        name: String,
        /// The node's IPv6 address.
        #[arg(long)]
        addr: String,
        /// How long the token may be used.
        #[arg(long, default_value = "24h", value_parser = parse_duration)]
        valid_for: Duration,
    },
    /// Issues a certificate for a CSR (PEM), against a join token or with the operator's approval
    /// of the names given; prints the chain (leaf, intermediate) as PEM.
    Issue {
        /// The CA's state directory.
        #[command(flatten)]
        state: StateDir,
        /// The certificate signing request (PEM).
        #[arg(long, value_name = "FILE")]
        csr: PathBuf,
        /// The join token to enroll with.
        #[arg(long, conflicts_with = "approve")]
        token: Option<String>,
        /// The operator approves this CSR for --name and --addr.
        #[arg(long, requires_all = ["name", "addr"])]
        approve: bool,
        /// With --approve: the node's name.
        #[arg(long)]
        name: Option<String>,
        /// With --approve: the node's IPv6 address.
        #[arg(long)]
        addr: Option<String>,
        /// Write the chain here instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Validates a PEM chain (leaf first) now, against the CA's bundle and revocation lists.
    /// Exit 0: valid; 1: not valid (the reason says what to do); 2: bad input.
    Validate {
        /// The CA's state directory.
        #[command(flatten)]
        state: StateDir,
        /// The chain (PEM).
        chain: PathBuf,
        /// The node name the leaf must carry.
        #[arg(long, conflicts_with = "addr")]
        name: Option<String>,
        /// The address the leaf must carry.
        #[arg(long)]
        addr: Option<String>,
        /// The leaf must be in the CA's certificate-transparency log.
        #[arg(long)]
        require_logged: bool,
        /// Print the verdict as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Rotates the issuing intermediate. The previous one stays in trust bundles for the overlap
    /// (`--overlap-period 0` is the abrupt switch); the rollout plan is published in the bundle.
    Rotate {
        /// The CA's state directory.
        #[command(flatten)]
        state: StateDir,
        /// How long bundles hold both intermediates (0: the abrupt switch).
        #[arg(long, default_value = "1h", value_parser = parse_duration)]
        overlap_period: Duration,
        /// Nodes move to the new intermediate in waves.
        #[arg(long)]
        gradual_rollout: bool,
        /// With --gradual-rollout: how many waves.
        #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=1000))]
        waves: u32,
        /// With --gradual-rollout: time between waves.
        #[arg(long, default_value = "5m", value_parser = parse_duration)]
        wave_interval: Duration,
        /// Nodes check a chain from the new intermediate against peers' bundles before using it.
        #[arg(long)]
        verify_before_switch: bool,
        /// The root key file, for a CA that keeps it offline (`ca init --root-key`): certifying
        /// the new intermediate needs it.
        #[arg(long, value_name = "FILE")]
        root_key: Option<PathBuf>,
    },
    /// Revokes a certificate, by serial or by its PEM file, with its holder: the node's identity
    /// (its earlier join tokens and its leaves, including ones renewed since, are refused and put
    /// on the revocation lists) and its key (refused for ever). A token issued afterwards
    /// re-admits the node with a new key.
    Revoke {
        /// The CA's state directory.
        #[command(flatten)]
        state: StateDir,
        /// The serial in hex (as `openssl x509 -serial` prints it).
        #[arg(long, conflicts_with = "cert", required_unless_present = "cert")]
        serial: Option<String>,
        /// The certificate (PEM; the first certificate of a chain).
        #[arg(long, value_name = "FILE")]
        cert: Option<PathBuf>,
    },
    /// Serves the CA's HTTPS API (IPv6 only): /ca/validate, /ca/issue, /ca/bundle, /ca/crl,
    /// /ct/sth, /ct/proof, and with --validators /ca/isolate. Prints `listening on https://ADDR`
    /// once ready.
    Serve {
        /// The CA's state directory.
        #[command(flatten)]
        state: StateDir,
        /// Where to listen.
        #[arg(long, default_value = "[::1]:8443")]
        listen: SocketAddr,
        /// The server certificate's DNS name (its IP name is the listen address): the name the CA
        /// reserved at `ca init` (default trustchain.mesh), which clients verify and no node is
        /// granted. Giving another is refused.
        #[arg(long)]
        server_name: Option<String>,
        /// Rotate the intermediate this often (with the default plan: 1 h overlap, 6 waves 5 min
        /// apart, verify before switch).
        #[arg(long, value_parser = parse_duration)]
        rotate_every: Option<Duration>,
        /// Connections served at once.
        #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=65_536))]
        connections_max: u32,
        /// Renewals served per node (certified name) within --renewal-window; more get 429.
        #[arg(long, default_value_t = RENEWALS_PER_IDENTITY_MAX_DEFAULT, value_parser = clap::value_parser!(u32).range(1..))]
        renewals_max: u32,
        /// The window renewals are counted over (default: one leaf lifetime).
        #[arg(long, value_parser = parse_duration)]
        renewal_window: Option<Duration>,
        /// The cluster's validators file (as `hypermesh node --validators` reads it): with it the
        /// CA takes proofs that consensus isolated a validator (POST /ca/isolate, sent by the
        /// nodes) and revokes that validator's certificates, identity and key; it follows the
        /// epochs after the file's set from those proofs, and keeps them in --state.
        #[arg(long, value_name = "FILE")]
        validators: Option<PathBuf>,
    },
}

/// The CA's lifecycle.
#[derive(Subcommand)]
pub enum CaCommand {
    /// Creates a CA (root, intermediate, CT log, token key) in a new state directory.
    Init {
        /// The CA's state directory.
        #[command(flatten)]
        state: StateDir,
        /// Leaf certificate lifetime.
        #[arg(long, default_value = "24h", value_parser = parse_duration)]
        leaf_lifetime: Duration,
        /// How far leaves' notBefore is set back, for peers whose clocks lag.
        #[arg(long, default_value = "5m", value_parser = parse_duration)]
        backdate: Duration,
        /// How long a revocation list is current.
        #[arg(long, default_value = "24h", value_parser = parse_duration)]
        crl_lifetime: Duration,
        /// Keep the root key in this new file (0600, best outside the state directory) instead of
        /// the state file: `serve` never reads it, and only `rotate --root-key` needs it.
        #[arg(long, value_name = "FILE")]
        root_key: Option<PathBuf>,
        /// The name the CA's HTTPS server is certified for and clients verify it by; no token
        /// or approval ever grants it to a node.
        #[arg(long, default_value = SERVER_NAME_DEFAULT)]
        server_name: String,
    },
    /// Writes the CA's public certificates for clients: root.pem, intermediate.pem, bundle.pem
    /// and ct-log.pub, so `openssl verify -CAfile root.pem -untrusted intermediate.pem` works.
    Install {
        /// The CA's state directory.
        #[command(flatten)]
        state: StateDir,
        /// Where to write them (the guide's plain `trustchain ca install`: here).
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: PathBuf,
    },
}

/// The CA's certificate-transparency log.
#[derive(Subcommand)]
pub enum CtCommand {
    /// Checks every record of the log, the committed size it recorded, and the signed tree heads
    /// given (as `/ct/sth` serves them: JSON, one per line), without changing anything. Exit 0:
    /// sound; 1: damage found (each problem said in words); 2: bad input.
    Verify {
        /// The CA's state directory.
        #[command(flatten)]
        state: StateDir,
        /// A file of signed tree heads the log published (JSON lines); repeatable.
        #[arg(long = "heads", value_name = "FILE")]
        heads: Vec<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Where the CA's state lives.
#[derive(Args)]
pub struct StateDir {
    /// The CA's state directory (keys: keep it private).
    #[arg(long = "state", value_name = "DIR", default_value = "trustchain-ca")]
    dir: PathBuf,
}

/// A failure with the message the operator sees (shared by the operator commands).
#[derive(Debug)]
pub(crate) struct Failure(pub(crate) String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}

/// Runs `command`; exit 0 on success, 1 for an invalid chain, 2 for any error.
pub fn run(command: TrustchainCommand) -> ExitCode {
    let result = match command {
        TrustchainCommand::Ca(CaCommand::Init {
            state,
            leaf_lifetime,
            backdate,
            crl_lifetime,
            root_key,
            server_name,
        }) => init(
            &state.dir,
            CaPolicy {
                leaf_lifetime,
                backdate,
                crl_lifetime,
                ..CaPolicy::default()
            },
            root_key.as_deref(),
            &server_name,
        ),
        TrustchainCommand::Ca(CaCommand::Install { state, out }) => install(&state.dir, &out),
        TrustchainCommand::Ct(CtCommand::Verify { state, heads, json }) => verify_log(&state.dir, &heads, json),
        TrustchainCommand::Token {
            state,
            name,
            addr,
            valid_for,
        } => token(&state.dir, &name, &addr, valid_for),
        TrustchainCommand::Issue {
            state,
            csr,
            token,
            approve,
            name,
            addr,
            out,
        } => issue(&state.dir, &csr, token, approve.then_some((name, addr)), out.as_deref()),
        TrustchainCommand::Validate {
            state,
            chain,
            name,
            addr,
            require_logged,
            json,
        } => validate(&state.dir, &chain, name, addr, require_logged, json),
        TrustchainCommand::Rotate {
            state,
            overlap_period,
            gradual_rollout,
            waves,
            wave_interval,
            verify_before_switch,
            root_key,
        } => rotate(
            &state.dir,
            &RotationPlan {
                overlap: overlap_period,
                waves: if gradual_rollout { waves } else { 0 },
                wave_interval: if gradual_rollout { wave_interval } else { Duration::ZERO },
                verify_before_switch,
            },
            root_key.as_deref(),
        ),
        TrustchainCommand::Revoke { state, serial, cert } => revoke(&state.dir, serial, cert.as_deref()),
        TrustchainCommand::Serve {
            state,
            listen,
            server_name,
            rotate_every,
            connections_max,
            renewals_max,
            renewal_window,
            validators,
        } => serve(
            &state.dir,
            listen,
            server_name.as_deref(),
            rotate_every,
            connections_max as usize,
            (renewals_max, renewal_window),
            validators.as_deref(),
        ),
    };
    match result {
        Ok(code) => code,
        Err(Failure(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

/// Seconds since the Unix epoch by the host's clock.
fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn fresh_seed() -> Result<[u8; 32], Failure> {
    let mut seed = [0; 32];
    getrandom::fill(&mut seed).map_err(|e| Failure(format!("the OS random source failed: {e}")))?;
    Ok(seed)
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, Failure> {
    fs::read(path).map_err(|e| Failure(format!("cannot read {what} {}: {e}", path.display())))
}

fn identity(name: &str, addr: &str) -> Result<NodeIdentity, Failure> {
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| Failure(format!("--addr {addr:?} is not an IP address")))?;
    match addr {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => Ok(NodeIdentity {
            name: name.to_owned(),
            addr: v6,
        }),
        _ => Err(Failure(format!(
            "--addr {addr} is IPv4: nodes are IPv6-only, give the node's IPv6 address"
        ))),
    }
}

/// A state directory opened for writing: its lock is held while this lives.
struct LockedState {
    storage: DirStorage,
    _lock: File,
}

impl LockedState {
    fn open(dir: &Path, create: bool) -> Result<LockedState, Failure> {
        if !create
            && !dir.join(format!("{}.a", trustchain_service::STATE_FILE)).exists()
            && !dir.join(format!("{}.b", trustchain_service::STATE_FILE)).exists()
        {
            return Err(Failure(format!(
                "no CA in {}: create one with `trustchain ca init --state {}`",
                dir.display(),
                dir.display()
            )));
        }
        let storage = DirStorage::open(dir)?;
        let lock = lock_dir(dir, |holder| {
            format!(
                "the CA in {} is in use by process {holder} (a running `trustchain serve`?): stop it first, or use its HTTPS API",
                dir.display()
            )
        })?;
        Ok(LockedState { storage, _lock: lock })
    }

    fn service(&mut self) -> Result<CaService, Failure> {
        Ok(CaService::open(&mut self.storage)?)
    }
}

fn init(dir: &Path, policy: CaPolicy, root_key: Option<&Path>, server_name: &str) -> Result<ExitCode, Failure> {
    if policy.leaf_lifetime < Duration::from_secs(60) {
        return Err(Failure("--leaf-lifetime must be at least 1m".into()));
    }
    let mut state = LockedState::open(dir, true)?;
    let seeds = ServiceSeeds {
        root: fresh_seed()?,
        intermediate: fresh_seed()?,
        log: fresh_seed()?,
        token: fresh_seed()?,
    };
    let mut service = CaService::init(&mut state.storage, &seeds, policy, now())
        .map_err(|e| Failure(format!("{}: {e}", dir.display())))?;
    service.set_server_name(&mut state.storage, server_name)?;
    if let Some(path) = root_key {
        // The key file first, synced: until the state drops the key, a crash loses nothing.
        write_secret(path, &pem::ed25519_private_key(&seeds.root))?;
        service.keep_root_offline(&mut state.storage)?;
    }
    let root = service.root();
    println!(
        "created a TrustChain CA in {} (root serial {}, server name {}); next: `trustchain ca install --state {} --out DIR`",
        dir.display(),
        serial_of(&root).map(|s| hex(&s)).unwrap_or_default(),
        service.server_name(),
        dir.display()
    );
    if let Some(path) = root_key {
        println!(
            "the root key is in {} only (not in the state directory): keep it offline; `trustchain rotate --root-key {}` needs it",
            path.display(),
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `text` to a new file at `path`, readable by its owner only, synced.
fn write_secret(path: &Path, text: &str) -> Result<(), Failure> {
    use std::os::unix::fs::OpenOptionsExt;
    let failed = |e: std::io::Error| Failure(format!("cannot write the root key to {}: {e}", path.display()));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(failed)?;
    file.write_all(text.as_bytes()).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    Ok(())
}

fn install(dir: &Path, out: &Path) -> Result<ExitCode, Failure> {
    if !dir.is_dir() {
        return Err(Failure(format!(
            "no CA in {}: create one with `trustchain ca init --state {}`",
            dir.display(),
            dir.display()
        )));
    }
    let mut storage = DirStorage::open(dir)?;
    let public = PublicMaterial::load(&mut storage)?;
    fs::create_dir_all(out).map_err(|e| Failure(format!("cannot create {}: {e}", out.display())))?;
    let root = pem::encode("CERTIFICATE", &public.root);
    let intermediates = pem::certificates(public.intermediates.iter().rev().map(|c| c.as_ref()));
    let files = [
        ("root.pem", root.clone()),
        ("intermediate.pem", intermediates.clone()),
        ("bundle.pem", format!("{root}{intermediates}")),
        ("ct-log.pub", format!("{}\n", hex(&public.log_public_key))),
    ];
    for (name, text) in files {
        let path = out.join(name);
        fs::write(&path, text).map_err(|e| Failure(format!("cannot write {}: {e}", path.display())))?;
    }
    println!(
        "installed root.pem, intermediate.pem, bundle.pem and ct-log.pub in {}; check a chain with: openssl verify -CAfile {}/root.pem -untrusted {}/intermediate.pem leaf.pem",
        out.display(),
        out.display(),
        out.display()
    );
    if let Some(r) = public.rotation {
        println!(
            "a rotation is in progress: both intermediates are trusted until {} (Unix s)",
            r.overlap_end
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn token(dir: &Path, name: &str, addr: &str, valid_for: Duration) -> Result<ExitCode, Failure> {
    let who = identity(name, addr)?;
    let mut state = LockedState::open(dir, false)?;
    let mut service = state.service()?;
    let token = service.token(&mut state.storage, who, valid_for, now())?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

fn issue(
    dir: &Path,
    csr: &Path,
    token: Option<String>,
    approved: Option<(Option<String>, Option<String>)>,
    out: Option<&Path>,
) -> Result<ExitCode, Failure> {
    let csr = pem::csr(&read(csr, "CSR")?)?;
    let credential = match (token, approved) {
        (Some(t), None) => Credential::Token(t),
        (None, Some((Some(name), Some(addr)))) => Credential::Operator(identity(&name, &addr)?),
        _ => {
            return Err(Failure(
                "give an enrollment credential: --token T, or --approve --name N --addr A".into(),
            ))
        }
    };
    let mut state = LockedState::open(dir, false)?;
    let mut service = state.service()?;
    let issued = service.issue(&mut state.storage, &csr, &credential, now())?;
    let text = pem::certificates(issued.chain.iter().map(|c| c.as_ref()));
    match out {
        Some(path) => fs::write(path, &text).map_err(|e| Failure(format!("cannot write {}: {e}", path.display())))?,
        None => print!("{text}"),
    }
    eprintln!(
        "issued serial {} to {} ({}), valid until {} (Unix s), CT log index {}",
        hex(&issued.serial),
        issued.identity.name,
        issued.identity.addr,
        issued.not_after,
        issued.receipt.index
    );
    Ok(ExitCode::SUCCESS)
}

fn validate(
    dir: &Path,
    chain: &Path,
    name: Option<String>,
    addr: Option<String>,
    require_logged: bool,
    json: bool,
) -> Result<ExitCode, Failure> {
    let chain = pem::chain(&read(chain, "chain")?)?;
    let expected = match (name, addr) {
        (Some(n), _) => ExpectedPeer::Name(n),
        (None, Some(a)) => ExpectedPeer::Addr(
            a.parse()
                .map_err(|_| Failure(format!("--addr {a:?} is not an IP address")))?,
        ),
        (None, None) => ExpectedPeer::Any,
    };
    let mut state = LockedState::open(dir, false)?;
    let mut service = state.service()?;
    let verdict = service.validate(&mut state.storage, &chain, &expected, require_logged, now())?;
    if json {
        println!("{}", serde_json::to_string(&verdict)?);
    } else if verdict.valid {
        println!(
            "valid: {} ({}), serial {}, until {} (Unix s){}",
            verdict.name.as_deref().unwrap_or("?"),
            verdict.addr.as_deref().unwrap_or("?"),
            verdict.serial.as_deref().unwrap_or("?"),
            verdict.not_after.unwrap_or(0),
            verdict
                .ct_index
                .map(|i| format!(", CT log index {i}"))
                .unwrap_or_default()
        );
    } else {
        println!(
            "invalid ({}): {}",
            verdict.class.unwrap_or("other"),
            verdict.reason.as_deref().unwrap_or("")
        );
    }
    Ok(if verdict.valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    })
}

fn rotate(dir: &Path, plan: &RotationPlan, root_key: Option<&Path>) -> Result<ExitCode, Failure> {
    let mut state = LockedState::open(dir, false)?;
    let mut service = state.service()?;
    if let Some(path) = root_key {
        let seed = pem::ed25519_seed(&read(path, "root key")?, "the root key file")?;
        service
            .attach_root(&seed)
            .map_err(|e| Failure(format!("--root-key {}: {e}", path.display())))?;
    }
    let report = service.rotate(&mut state.storage, &fresh_seed()?, plan, now())?;
    let serial = serial_of(&report.new_intermediate).map(|s| hex(&s)).unwrap_or_default();
    match report.rotation {
        Some(r) => println!(
            "rotated: new intermediate serial {serial}; bundles hold both until {} (Unix s, overlap {} s); rollout: {}; verify-before-switch: {}",
            r.overlap_end,
            r.overlap_end - r.started,
            if r.waves > 0 {
                format!("{} waves {} s apart", r.waves, r.wave_interval_s)
            } else {
                "none (nodes switch at renewal)".into()
            },
            if r.verify_before_switch { "on" } else { "off" },
        ),
        None => println!(
            "rotated abruptly: new intermediate serial {serial}; the previous one is no longer trusted, so peers still presenting its leaves will fail handshakes until they renew"
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn revoke(dir: &Path, serial: Option<String>, cert: Option<&Path>) -> Result<ExitCode, Failure> {
    let mut state = LockedState::open(dir, false)?;
    let mut service = state.service()?;
    let revocation = match (serial, cert) {
        (Some(s), _) => service.revoke(&mut state.storage, &s, now())?,
        (None, Some(path)) => {
            let chain = pem::chain(&read(path, "certificate")?)?;
            service
                .revoke_certificate(&mut state.storage, &chain[0], now())
                .map_err(|e| Failure(format!("{}: {e}", path.display())))?
        }
        (None, None) => return Err(Failure("give --serial HEX or --cert FILE".into())),
    };
    print!("{}", describe_revocation(&revocation));
    Ok(ExitCode::SUCCESS)
}

/// What a revocation did, for the operator.
fn describe_revocation(r: &Revocation) -> String {
    let mut out = String::new();
    let serial = r.serials.first().map_or("?", String::as_str);
    if !r.newly_revoked {
        out.push_str(&format!(
            "serial {serial} was already revoked, with its holder as far as known\n"
        ));
        return out;
    }
    out.push_str(&format!(
        "revoked serial {serial}; clients see it in the next /ca/crl they fetch\n"
    ));
    match &r.identity {
        Some(who) => {
            out.push_str(&format!(
                "revoked node {} ({}): its join tokens issued so far and its renewals are refused; a token issued from now on re-admits it\n",
                who.name, who.addr
            ));
            if r.key_revoked {
                out.push_str("revoked its key: no request holding it is served again\n");
            }
            if r.serials.len() > 1 {
                out.push_str(&format!(
                    "also revoked its other live certificates: {}\n",
                    r.serials[1..].join(", ")
                ));
            }
        }
        None => out.push_str(
            "this CA no longer knows whose certificate that was (expired, or issued before it kept track): to refuse its holder's token and renewals too, revoke with --cert FILE\n",
        ),
    }
    out
}

/// `trustchain ct verify`: read-only, so it needs no lock (a running `serve` may be appending;
/// a record it has not committed yet is reported as a torn tail, not as damage).
fn verify_log(dir: &Path, head_files: &[PathBuf], json: bool) -> Result<ExitCode, Failure> {
    let mut storage = DirStorage::open(dir)?;
    let public = PublicMaterial::load(&mut storage)?;
    let mut heads = Vec::new();
    for file in head_files {
        let text = fs::read_to_string(file).map_err(|e| Failure(format!("cannot read {}: {e}", file.display())))?;
        for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let head = parse_head(line).map_err(|e| Failure(format!("{}:{}: {e}", file.display(), n + 1)))?;
            heads.push(head);
        }
    }
    let report = trustchain::ct::verify(
        &mut storage,
        trustchain_service::LOG_FILE,
        &heads,
        &public.log_public_key,
    )?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "sound": report.is_sound(),
                "entries": report.entries,
                "bytes": report.bytes,
                "file_bytes": report.file_bytes,
                "committed": report.committed,
                "heads_checked": report.heads_checked,
                "problems": report.problems,
            })
        );
    } else {
        println!(
            "{} whole records ({} of {} bytes); committed: {}; {} tree head(s) checked",
            report.entries,
            report.bytes,
            report.file_bytes,
            report
                .committed
                .map_or("no marker (a log written before markers)".to_string(), |c| c
                    .to_string()),
            report.heads_checked
        );
        for problem in &report.problems {
            println!("problem: {problem}");
        }
        if report.is_sound() {
            println!("the log is sound");
        }
    }
    Ok(if report.is_sound() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_INVALID)
    })
}

/// One signed tree head as `/ct/sth` serves it.
fn parse_head(line: &str) -> Result<trustchain::ct::SignedTreeHead, String> {
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("not a JSON tree head: {e}"))?;
    let field = |name: &str| v.get(name).ok_or_else(|| format!("tree head without `{name}`"));
    let number = |name: &str| field(name)?.as_u64().ok_or_else(|| format!("`{name}` is not a number"));
    let bytes = |name: &str, len: usize| -> Result<Vec<u8>, String> {
        let text = field(name)?
            .as_str()
            .ok_or_else(|| format!("`{name}` is not a string"))?;
        let decoded = unhex(text).ok_or_else(|| format!("`{name}` is not hex"))?;
        if decoded.len() != len {
            return Err(format!("`{name}` has {} bytes, not {len}", decoded.len()));
        }
        Ok(decoded)
    };
    Ok(trustchain::ct::SignedTreeHead {
        tree_size: number("tree_size")?,
        timestamp_ms: number("timestamp_ms")?,
        root_hash: bytes("root_hash", 32)?.try_into().expect("32 bytes"),
        signature: bytes("signature", 64)?.try_into().expect("64 bytes"),
    })
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The server's TLS identity.
struct ServerCertificate {
    /// Leaf, intermediate (DER).
    chain: Vec<Vec<u8>>,
    /// The leaf's key, PKCS#8.
    key: Vec<u8>,
    /// When to renew it (2/3 of its life), Unix s.
    renew_at: i64,
}

/// The server's own certificate: a leaf of its CA for `server_name` and the listen address.
fn server_certificate(
    service: &mut CaService,
    storage: &mut dyn Storage,
    who: &NodeIdentity,
) -> Result<ServerCertificate, Failure> {
    let key = key_from_seed(&fresh_seed()?);
    let csr = request(who, &key)?;
    let issued = service.issue(storage, &csr, &Credential::Server(who.addr), now())?;
    let chain = issued.chain.iter().map(|c| c.to_vec()).collect();
    let renew_at = validity_of(&issued.chain[0]).map_or(now(), |v| v.not_before + (v.not_after - v.not_before) * 2 / 3);
    Ok(ServerCertificate {
        chain,
        key: key.serialize_der(),
        renew_at,
    })
}

fn serve(
    dir: &Path,
    listen: SocketAddr,
    server_name: Option<&str>,
    rotate_every: Option<Duration>,
    connections_max: usize,
    (renewals_max, renewal_window): (u32, Option<Duration>),
    validators: Option<&Path>,
) -> Result<ExitCode, Failure> {
    if AddressFamily::of(&listen) == AddressFamily::V4 {
        return Err(Failure(format!(
            "cannot listen on {listen}: IPv4 is refused, this stack is IPv6-only; use [::1]:8443 or [::]:8443"
        )));
    }
    // Checked before the state is locked: a mistake in the file is reported at once.
    let verifier = validators.map(ValidatorSetVerifier::load).transpose()?;
    let mut state = LockedState::open(dir, false)?;
    let mut service = state.service()?;
    let reserved = service.server_name().to_owned();
    if let Some(name) = server_name.filter(|n| !n.eq_ignore_ascii_case(&reserved)) {
        return Err(Failure(format!(
            "--server-name {name}: this CA reserved {reserved} for its server at `ca init` (nodes can never be granted it, which is what lets clients trust it); serve under {reserved}, or create a CA with `ca init --server-name {name}`"
        )));
    }
    let server_name = reserved.as_str();
    if rotate_every.is_some() && service.root_offline() {
        return Err(Failure(
            "--rotate-every needs the root key, which this CA keeps offline (`ca init --root-key`) and `serve` never reads: rotate with `trustchain rotate --root-key FILE` while the server is stopped".into(),
        ));
    }
    let policy = service.policy();
    service.set_limits(ServiceLimits {
        renewals_per_identity_max: renewals_max,
        renewal_window: renewal_window.unwrap_or(policy.leaf_lifetime),
    });
    let ip = match listen.ip() {
        IpAddr::V6(v6) if !v6.is_unspecified() => v6,
        _ => Ipv6Addr::LOCALHOST,
    };
    let who = NodeIdentity {
        name: server_name.to_owned(),
        addr: ip,
    };
    let certificate = server_certificate(&mut service, &mut state.storage, &who)?;
    let renew_at = certificate.renew_at;
    let slot = CertificateSlot::new(certificate.chain, certificate.key)?;
    let LockedState { storage, _lock } = state;
    let mut api = CaApi::new(Box::new(storage), service);
    let body_bytes_max = match verifier {
        Some(verifier) => {
            api = api.with_isolation(Box::new(verifier)).map_err(Failure)?;
            ISOLATION_BODY_BYTES_MAX
        }
        None => trustchain_service::REQUEST_BODY_BYTES_MAX,
    };
    let api = Arc::new(Mutex::new(api));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async move {
        let mut config = HttpsConfig::new(listen);
        config.connections_max = connections_max;
        config.body_bytes_max = body_bytes_max;
        let server = HttpsServer::bind(config, slot.clone(), api.clone())?;
        let bound = server.local_addr()?;
        println!("listening on https://{bound} (certificate for {server_name} and {ip}; clients trust root.pem from `trustchain ca install`)");
        std::io::stdout().flush()?;
        let housekeeping = housekeeping(api, slot, who, renew_at, rotate_every);
        tokio::select! {
            () = server.serve(stop_signal()) => {}
            failure = housekeeping => return Err(failure),
        }
        eprintln!("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM. Nothing is lost by stopping at any point: every
/// change was synced before it was answered.
pub(crate) async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// The server's due work: retiring an intermediate at its overlap's end (requests do it too),
/// scheduled rotations, and renewing its own certificate (after a rotation, from the new issuer).
/// Returns only if the CA's storage fails.
async fn housekeeping(
    api: Arc<Mutex<CaApi>>,
    slot: CertificateSlot,
    who: NodeIdentity,
    mut renew_at: i64,
    rotate_every: Option<Duration>,
) -> Failure {
    let mut tick = tokio::time::interval(HOUSEKEEPING_INTERVAL);
    loop {
        tick.tick().await;
        let due = (|| -> Result<(), Failure> {
            // A request that panicked was caught inside the lock (`CaApi` reopens its state), so
            // a poisoned lock holds nothing half-done.
            let mut api = api.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            if !api.is_serving() {
                return Err(Failure(
                    "the CA failed and could not reopen its state: restart the server".into(),
                ));
            }
            let (service, storage) = api.parts();
            let t = now();
            service.maintain(storage, t)?;
            let mut renew = t >= renew_at;
            if let Some(every) = rotate_every {
                if service.rotation().is_none() && t >= service.rotated_at() + every.as_secs() as i64 {
                    service.rotate(storage, &fresh_seed()?, &RotationPlan::default(), t)?;
                    tracing::warn!("rotated the intermediate on schedule");
                    renew = true;
                }
            }
            if renew {
                let certificate = server_certificate(service, storage, &who)?;
                slot.replace(certificate.chain, certificate.key)?;
                renew_at = certificate.renew_at;
            }
            Ok(())
        })();
        if let Err(e) = due {
            return e;
        }
    }
}

//! Enrollment, shared by every certified process (`hypermesh node`, `hypermesh client`): the
//! flags checked, the CA reached over HTTPS (trusting only `--ca-root`), the stored identity
//! used or a key enrolled with a join token, and STOQ set up to present it.

use std::path::Path;

use runtime::WallTime;
use std::net::SocketAddr;
use stoq::{Credentials, PacketProtection, QuicSetup, StoqConfig, Trust};
use trustchain::ca::{key_from_seed, leaf_identity, serial_of, NodeIdentity};
use trustchain::validate::ExpectedPeer;
use trustchain_service::pem;

use super::ca_client::CaClient;
use super::flags::{listen_arg, peer_arg, CA_FLAG};
use super::identity::{Identity, StateDir};
use crate::trustchain::Failure;

/// What a certified process is started with.
pub(crate) struct EnrollFlags<'a> {
    /// `--listen`.
    pub listen: &'a str,
    /// `--name`.
    pub name: &'a str,
    /// `--ca`.
    pub ca: &'a str,
    /// `--ca-name`.
    pub ca_name: &'a str,
    /// `--ca-root`.
    pub ca_root: &'a Path,
    /// `--token`.
    pub token: Option<&'a str>,
    /// `--state`.
    pub state: &'a Path,
}

/// A process holding a certified identity, ready to run STOQ.
pub(crate) struct Enrolled {
    /// Where it listens (the port may be 0).
    pub listen: SocketAddr,
    /// Its name and address, as its certificate carries them.
    pub who: NodeIdentity,
    /// The name its certificate certifies.
    pub certified: String,
    /// Its certificate's serial, hex.
    pub serial: String,
    /// Its state directory.
    pub state: StateDir,
    /// The CA.
    pub ca: CaClient,
    /// The runtime its CA calls run on.
    pub runtime: tokio::runtime::Runtime,
    /// Its key and chain.
    pub identity: Identity,
    /// The CA's bundle and revocation lists.
    pub trust: Trust,
}

/// Checks the flags, reaches the CA and establishes the identity (see [`establish`]).
pub(crate) fn enroll(flags: &EnrollFlags<'_>) -> Result<Enrolled, Failure> {
    let (listen, ip) = listen_arg(flags.listen)?;
    let ca = peer_arg(&CA_FLAG, flags.ca)?;
    let root_path = flags.ca_root;
    let root_pem = std::fs::read(root_path).map_err(|e| Failure(format!("--ca-root {}: {e}", root_path.display())))?;
    let roots = pem::chain(&root_pem).map_err(|e| Failure(format!("--ca-root {}: {e}", root_path.display())))?;
    let who = NodeIdentity {
        name: flags.name.to_owned(),
        addr: ip,
    };
    let state = StateDir::open(flags.state)?;
    let ca = CaClient::new(ca, flags.ca_name, roots)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let (identity, trust) = runtime.block_on(establish(&ca, &state, &who, flags.token))?;
    let serial = serial_of(&identity.chain[0]).map(|s| hex(&s)).unwrap_or_default();
    let certified = leaf_identity(&identity.chain[0])
        .map(|(node, _)| node.name)
        .ok_or_else(|| Failure("the certificate names no node".into()))?;
    Ok(Enrolled {
        listen,
        who,
        certified,
        serial,
        state,
        ca,
        runtime,
        identity,
        trust,
    })
}

impl Enrolled {
    /// STOQ's settings and its setup presenting this identity (the setup's `security()` is the
    /// handle a renewal or trust refresh goes through while the process runs).
    pub(crate) fn stoq(&self) -> Result<(StoqConfig, QuicSetup), Failure> {
        let config = StoqConfig::default();
        let setup = QuicSetup::new(
            &config,
            Some(&credentials(&self.identity)),
            self.trust.clone(),
            PacketProtection::Encrypted,
        )
        .map_err(|e| Failure(format!("STOQ: {e}")))?;
        Ok((config, setup))
    }
}

/// A fresh Ed25519 key seed from the OS.
pub(crate) fn fresh_key() -> Result<[u8; 32], Failure> {
    let mut key_seed = [0u8; 32];
    getrandom::fill(&mut key_seed).map_err(|e| Failure(format!("no OS randomness for the node key: {e}")))?;
    Ok(key_seed)
}

pub(crate) fn credentials(identity: &Identity) -> Credentials {
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
    let stored = state.load()?;
    let had_chain = stored.is_some();
    if let Some(mut stored) = stored {
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
    // A key made beforehand (`hypermesh key`, so its public key could go into a validators
    // file) is enrolled as it is; a node enrolling again after its chain became unusable
    // (expired, revoked) gets a fresh key, as a revoked key must not come back.
    let key_seed = match state.load_key()? {
        Some(seed) if !had_chain => seed,
        _ => fresh_key()?,
    };
    let chain = client.enroll(who, &key_seed, token).await?;
    // Check what we got the way peers will, before keeping it.
    if let Err(e) = trust.bundle.validate(&chain, &trust.crls, now, &ExpectedPeer::Any) {
        return Err(Failure(format!("the certificate the CA issued does not validate: {e}")));
    }
    state.save_key(&key_seed)?;
    state.save_chain(&chain)?;
    Ok((Identity { key_seed, chain }, trust))
}

pub(crate) fn wall_now_s() -> i64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    WallTime::from_unix_nanos(nanos)
        .as_unix_nanos()
        .div_euclid(1_000_000_000)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

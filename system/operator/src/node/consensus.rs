//! Consensus on a node (`hypermesh node --validators FILE`): the HotStuff-2 replica of the
//! validator the node's certificate names, mounted beside membership on the same host and STOQ
//! transport (channel 3).
//!
//! **The key.** A validator signs votes, timeouts and proposals with the Ed25519 key of its
//! TrustChain leaf: the node's key seed (`node.key` in `--state`) gives both the certificate's
//! key (`trustchain::ca::key_from_seed`) and the replica's ([`ValidatorKey::from_seed`]), and
//! the node checks that the key its certificate carries ([`ed25519_key_from_spki`] over the
//! leaf's SubjectPublicKeyInfo) is the one the validators file lists for its name. Renewals keep
//! the key; enrolling again (after an expiry or a revocation) makes a new one, which must then
//! be put in the file on every node (a new epoch).
//!
//! **State.** The replica's files go through the host's storage into `--state`:
//! `consensus.log.*` (committed blocks with their certificates), `consensus.safety.*` (the last
//! view voted in and the highest certificate, saved before any vote leaves) and
//! `consensus.voted.*` (proposals voted for, until committed). A restarted node replays its log
//! and fetches what it missed from its peers.

use std::net::SocketAddr;
use std::path::Path;

use hypermesh::consensus::{ed25519_key_from_spki, ConsensusConfig, PublicKey, Replica, ValidatorKey};
use hypermesh::replication::StateMachine;
use runtime::durable;
use runtime_tokio::DirStorage;

use super::enroll::Enrolled;
use super::identity::Identity;
use crate::trustchain::Failure;
use crate::validators::{key_hex, Machine, Validators};

/// Where a node sits in the validator set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seat {
    /// Its validator index.
    pub index: usize,
    /// Validators in the set.
    pub validators: usize,
    /// The set's epoch.
    pub epoch: u64,
}

/// Before enrolling: the file lists `name`, at the address the node listens on.
pub(crate) fn check_seat(path: &Path, file: &Validators, name: &str, listen: &str) -> Result<(), Failure> {
    let shown = path.display();
    let Some(index) = file.index_of(name) else {
        return Err(Failure(format!(
            "--validators {shown}: no [[validator]] is named {name:?} (--name): add this node (name, \
             address, public_key from `hypermesh key --state DIR`), or start it without --validators"
        )));
    };
    let listed = file.validators[index].address;
    if listen.parse::<SocketAddr>().ok() != Some(listed) {
        return Err(Failure(format!(
            "--validators {shown}: validator {index} ({name:?}): address: {listed}, but this node \
             listens on {listen} (--listen): peers send to the address in the file, so give the \
             same one to both"
        )));
    }
    Ok(())
}

/// The Ed25519 public key a certificate (DER) carries; refused if it carries another kind.
pub(crate) fn certificate_key(certificate: &[u8]) -> Result<PublicKey, Failure> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate)
        .map_err(|e| Failure(format!("the certificate does not parse: {e}")))?;
    ed25519_key_from_spki(parsed.public_key().raw).map_err(|e| Failure(format!("the certificate's key: {e}")))
}

/// The key this identity signs consensus messages with: its leaf's, checked against the seed
/// it is stored as (a mismatch means the state directory holds a key and a chain of two
/// different enrollments).
pub(crate) fn signing_key(identity: &Identity, state: &Path) -> Result<ValidatorKey, Failure> {
    let key = ValidatorKey::from_seed(&identity.key_seed);
    let certified = certificate_key(identity.chain[0].as_ref())?;
    if certified != key.public_key() {
        return Err(Failure(format!(
            "{}: the stored key ({}) is not the key of the stored certificate ({}): restore the \
             pair from a backup, or enroll again with a new state directory",
            state.display(),
            key_hex(&key.public_key()),
            key_hex(&certified)
        )));
    }
    Ok(key)
}

/// The file in a state directory naming the state machine its consensus log was applied to.
pub(crate) const MACHINE_FILE: &str = "consensus-machine";

/// Checks that the state directory `state` holds consensus state of `machine`, or none yet (then
/// records it): a log replayed into another machine (list-append into the registries, or the
/// registries of another chain id) would give a state no other validator holds, silently.
pub(crate) fn check_machine(state: &Path, machine: Machine) -> Result<(), Failure> {
    let named = match machine {
        Machine::ListAppend => "list-append".to_owned(),
        Machine::Erc8004 { chain_id } => format!("erc8004 chain_id {chain_id}"),
    };
    let mut storage = DirStorage::open(state)?;
    let stored = durable::load(&mut storage, MACHINE_FILE)
        .map_err(|e| Failure(format!("{}: reading {MACHINE_FILE}: {e}", state.display())))?;
    match stored {
        Some((_, bytes)) if bytes != named.as_bytes() => Err(Failure(format!(
            "{}: this node's consensus state is of the {} machine, and the validators file asks for {named}: \
             every validator keeps its machine; start it with the file it ran with, or with a new state directory",
            state.display(),
            String::from_utf8_lossy(&bytes)
        ))),
        Some(_) => Ok(()),
        None => durable::save(&mut storage, MACHINE_FILE, 1, named.as_bytes())
            .map_err(|e| Failure(format!("{}: writing {MACHINE_FILE}: {e}", state.display()))),
    }
}

/// The replica's settings (the defaults).
pub(crate) fn config() -> ConsensusConfig {
    ConsensusConfig::default()
}

/// Without a commit for this long, the replica's partition is taken as unable to commit: twice
/// the longest view timeout, so that a view that timed out at the longest and the views that
/// must follow it before a commit do not count as a stall.
pub(crate) fn silence_max() -> std::time::Duration {
    config().view_timeout_max * 2
}

/// The replica of the validator `enrolled` is, from the checked file at `path`, applying
/// blocks to `machine`.
pub(crate) fn replica<M: StateMachine + 'static>(
    path: &Path,
    file: &Validators,
    enrolled: &Enrolled,
    machine: M,
) -> Result<(Replica<M>, Seat), Failure> {
    let shown = path.display();
    let name = &enrolled.certified;
    let index = file.index_of(name).ok_or_else(|| {
        Failure(format!(
            "--validators {shown}: this node's certificate names {name:?}, which no [[validator]] carries"
        ))
    })?;
    let key = signing_key(&enrolled.identity, enrolled.state.path())?;
    let listed = &file.validators[index];
    if listed.public_key != key.public_key() {
        return Err(Failure(format!(
            "--validators {shown}: validator {index} ({name:?}): public_key: {} is not this node's \
             key, {} (its certificate's; `hypermesh key --state {}` prints it): a node that \
             enrolled again has a new key, which every node's file must list",
            key_hex(&listed.public_key),
            key_hex(&key.public_key()),
            enrolled.state.path().display()
        )));
    }
    if listed.address != enrolled.listen {
        return Err(Failure(format!(
            "--validators {shown}: validator {index} ({name:?}): address: {}, but this node listens on {}",
            listed.address, enrolled.listen
        )));
    }
    check_machine(enrolled.state.path(), file.machine)?;
    let set = file.set().map_err(|e| Failure(format!("--validators {shown}: {e}")))?;
    let seat = Seat {
        index,
        validators: set.len(),
        epoch: set.epoch(),
    };
    let replica = Replica::new(config(), set, file.addresses(), index as u16, key, machine);
    Ok((replica, seat))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_directory_keeps_the_machine_its_log_was_applied_to() {
        let dir = std::env::temp_dir().join(format!("consensus-machine-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let registries = Machine::Erc8004 { chain_id: 8004 };
        check_machine(&dir, registries).unwrap();
        check_machine(&dir, registries).expect("the same machine again");
        let Failure(why) = check_machine(&dir, Machine::ListAppend).unwrap_err();
        assert!(
            why.contains("of the erc8004 chain_id 8004 machine, and the validators file asks for list-append"),
            "{why}"
        );
        let Failure(why) = check_machine(&dir, Machine::Erc8004 { chain_id: 1 }).unwrap_err();
        assert!(why.contains("asks for erc8004 chain_id 1"), "{why}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

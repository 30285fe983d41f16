//! The CA role of bootstrap phase 1: created at the first start of the first seed node,
//! persisted in its storage, answering enrollment, renewal and bundle requests, rotating its
//! intermediate and revoking on schedule.
//!
//! Its whole state is one synced file (`tc.ca`) plus the CT log (`tc.ct`): phase 2 replaces the
//! file with state replicated by HyperMesh consensus, and nothing else here depends on where
//! the state lives.

use std::net::{IpAddr, Ipv6Addr};

use bytes::Bytes;
use pki_types::CertificateDer;
use runtime::{Storage, StorageError};

use super::config::AuthorityConfig;
use super::wire::{Message, Rollout};
use crate::ca::{csr_public_key, leaf_identity, serial_of, Authority, AuthorityRecord};
use crate::ct::{CtLog, LogKey};
use crate::enroll::{TokenKey, UsedTokens};
use crate::logged::LoggedAuthority;
use crate::trust::{fingerprint, TrustBundle};
use crate::validate::ExpectedPeer;

/// The CA's state (two slots, `tc.ca.a` and `tc.ca.b`: see [`super::durable`]).
pub const STATE_FILE: &str = "ca";
/// The CA's CT log.
pub const LOG_FILE: &str = "ct";
/// Serials remembered per node (for revocation): a node renews every 16 h, so a few cover every
/// certificate of it that is still valid.
const SERIALS_PER_NODE_MAX: usize = 4;

/// Why the CA role could not start.
#[derive(Debug, thiserror::Error)]
pub enum CaStartError {
    /// Storage failed.
    #[error("CA storage: {0}")]
    Storage(#[from] StorageError),
    /// The state file is damaged.
    #[error("CA state file {STATE_FILE} is damaged: {0}")]
    Damaged(String),
    /// The CT log could not be opened.
    #[error("CT log {LOG_FILE}: {0}")]
    Log(String),
}

/// The CA role's state.
pub struct CaRole {
    cfg: AuthorityConfig,
    logged: LoggedAuthority,
    log_seed: [u8; 32],
    tokens: TokenKey,
    used: UsedTokens,
    /// What was issued to each node, in first-enrollment order.
    issued_to: Vec<Holder>,
    revocations_done: u32,
    rollout: Option<Rollout>,
    /// Intermediates retired from bundles, with when: their leaves may still be unexpired, and
    /// their holders (a node that was down through a whole overlap) may still renew with them.
    retired: Vec<(Bytes, i64)>,
    crls: Vec<Bytes>,
    crls_made_at: Option<i64>,
    /// Revocation lists were signed with CRL numbers the stored record does not hold yet. Nodes
    /// order trust updates by CRL number, so a list must never leave before its number is durable:
    /// a CA restarted from an older record would reuse numbers, and nodes would refuse its next
    /// lists (a revocation among them) as stale.
    crl_numbers_unsaved: bool,
    /// Every node's address by index (revocations name nodes by index).
    peer_addrs: Vec<Ipv6Addr>,
    /// The state's sequence number in storage.
    seq: u64,
}

/// What the CA did, for the node to report as probes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaEvent {
    /// A certificate was issued to node `addr`.
    Issued,
    /// A request was refused (reason code: 1 token, 2 CSR, 3 chain, 4 not yet issuing).
    Refused(i64),
    /// The intermediate was rotated (count so far).
    Rotated(u64),
    /// The previous intermediate left the bundle.
    Retired,
    /// Node `index`'s certificates were revoked.
    Revoked(usize),
}

impl CaRole {
    /// Loads the CA from storage, or creates it at its first start from `seeds` (root,
    /// intermediate and CT log keys: fresh entropy, unused if the CA already exists).
    pub fn start(
        storage: &mut dyn Storage,
        seeds: [[u8; 32]; 3],
        cfg: AuthorityConfig,
        peer_addrs: Vec<Ipv6Addr>,
        now_unix_s: i64,
    ) -> Result<CaRole, CaStartError> {
        let (log, _) = CtLog::open(storage, LOG_FILE).map_err(|e| CaStartError::Log(e.to_string()))?;
        let tokens = TokenKey::new(&cfg.token_secret);
        let stored = crate::durable::load(storage, STATE_FILE)?;
        let seq = stored.as_ref().map_or(0, |(seq, _)| *seq);
        let mut role = match stored {
            Some((_, bytes)) => {
                let s = State::decode(&bytes).ok_or_else(|| CaStartError::Damaged("cannot decode".into()))?;
                let mut authority =
                    Authority::from_record(&s.record).map_err(|e| CaStartError::Damaged(e.to_string()))?;
                // Certificates logged after the last save used serials the record does not count.
                authority.skip_serials(log.size().saturating_sub(s.log_size));
                CaRole {
                    logged: LoggedAuthority::new(authority, log, LogKey::from_seed(&s.log_seed)),
                    log_seed: s.log_seed,
                    used: UsedTokens::from_entries(s.used),
                    issued_to: s.issued_to,
                    revocations_done: s.revocations_done,
                    rollout: s.rollout,
                    retired: s.retired,
                    cfg,
                    tokens,
                    crls: Vec::new(),
                    crls_made_at: None,
                    crl_numbers_unsaved: false,
                    peer_addrs: peer_addrs.clone(),
                    seq,
                }
            }
            None => {
                let [root_seed, int_seed, log_seed] = seeds;
                let authority = Authority::create(&root_seed, &int_seed, now_unix_s, cfg.policy.clone())
                    .map_err(|e| CaStartError::Damaged(e.to_string()))?;
                CaRole {
                    logged: LoggedAuthority::new(authority, log, LogKey::from_seed(&log_seed)),
                    log_seed,
                    used: UsedTokens::default(),
                    issued_to: Vec::new(),
                    revocations_done: 0,
                    rollout: None,
                    retired: Vec::new(),
                    cfg,
                    tokens,
                    crls: Vec::new(),
                    crls_made_at: None,
                    crl_numbers_unsaved: false,
                    peer_addrs: peer_addrs.clone(),
                    seq,
                }
            }
        };
        role.save(storage)?;
        Ok(role)
    }

    fn authority(&mut self) -> &mut Authority {
        self.logged.authority()
    }

    /// Persists the state (synced) before anything that depends on it is sent.
    fn save(&mut self, storage: &mut dyn Storage) -> Result<(), StorageError> {
        let state = State {
            record: self.authority().record(),
            log_seed: self.log_seed,
            log_size: self.logged.log().size(),
            issued_to: self.issued_to.clone(),
            used: self.used.entries().to_vec(),
            revocations_done: self.revocations_done,
            rollout: self.rollout.clone(),
            retired: self.retired.clone(),
        };
        self.seq += 1;
        crate::durable::save(storage, STATE_FILE, self.seq, &state.encode())
    }

    /// The bundle nodes should hold now: the root, the issuing intermediate, and older ones
    /// still in their overlap (retiring at the end of it).
    pub fn bundle(&mut self) -> TrustBundle {
        let overlap = self.cfg.overlap.as_secs() as i64;
        let a = self.authority();
        let ints: Vec<CertificateDer<'static>> = a.intermediates().cloned().collect();
        let retire_at = a.rotated_at() + overlap;
        let mut b = TrustBundle::new(a.root().clone(), ints[0].clone());
        for i in &ints[1..] {
            b.add_issuer(i.clone());
        }
        for old in &ints[..ints.len() - 1] {
            b.retire(&fingerprint(old), retire_at);
        }
        b
    }

    /// Current revocation lists, re-signed when a quarter of their currency has passed.
    fn crls(&mut self, now: i64) -> Vec<Bytes> {
        let refresh = (self.cfg.policy.crl_lifetime.as_secs() / 4) as i64;
        if self.crls_made_at.is_none_or(|t| now - t >= refresh || now < t) {
            match self.authority().revocation_lists(now) {
                Ok(lists) => {
                    self.crls = lists.into_iter().map(|c| Bytes::from(c.to_vec())).collect();
                    self.crls_made_at = Some(now);
                    self.crl_numbers_unsaved = true;
                }
                Err(e) => tracing::warn!("cannot sign revocation lists: {e}"),
            }
        }
        self.crls.clone()
    }

    fn invalidate_crls(&mut self) {
        self.crls_made_at = None;
    }

    /// The bundle message nodes are sent, once the numbers of its revocation lists are durable
    /// (`None` if they could not be saved: nothing leaves, and the next call tries again).
    pub fn bundle_message(&mut self, storage: &mut dyn Storage, now: i64) -> Option<Message> {
        let message = Message::Bundle {
            bundle: Bytes::from(self.bundle().encode()),
            crls: self.crls(now),
            rollout: self.rollout.clone(),
        };
        self.persist_crl_numbers(storage).then_some(message)
    }

    /// Saves the record if lists were signed since: whether their numbers are durable.
    fn persist_crl_numbers(&mut self, storage: &mut dyn Storage) -> bool {
        if !self.crl_numbers_unsaved {
            return true;
        }
        match self.save(storage) {
            Ok(()) => {
                self.crl_numbers_unsaved = false;
                true
            }
            Err(e) => {
                tracing::warn!("CRL numbers not saved, lists held back: {e}");
                false
            }
        }
    }

    /// The current bundle and revocation lists as the CA's own node uses them.
    pub fn trust(&mut self, now: i64) -> (TrustBundle, Vec<Bytes>) {
        (self.bundle(), self.crls(now))
    }

    /// Answers a request from `from` (the requester's address).
    pub fn handle(
        &mut self,
        storage: &mut dyn Storage,
        from: IpAddr,
        message: Message,
        now: i64,
    ) -> (Option<Message>, Option<CaEvent>) {
        let (reply, event) = match message {
            Message::FetchBundle => (self.bundle_message(storage, now), None),
            Message::Enroll { token, csr } => self.enroll(storage, from, &token, &csr, now),
            Message::Renew { chain, csr } => self.renew(storage, from, &chain, &csr, now),
            _ => (None, None),
        };
        // An answer carries revocation lists: they leave only once their numbers are durable.
        let reply = reply.filter(|_| self.persist_crl_numbers(storage));
        (reply, event)
    }

    fn refuse(code: i64, reason: String) -> (Option<Message>, Option<CaEvent>) {
        (Some(Message::Refused { reason }), Some(CaEvent::Refused(code)))
    }

    fn certified_nodes(&self) -> u32 {
        self.issued_to.len() as u32
    }

    fn enroll(
        &mut self,
        storage: &mut dyn Storage,
        from: IpAddr,
        token: &str,
        csr: &[u8],
        now: i64,
    ) -> (Option<Message>, Option<CaEvent>) {
        if self.certified_nodes() < self.cfg.quorum_before_issuing {
            return Self::refuse(
                4,
                format!(
                    "CA not issuing: it waits for {} certified cluster members and has {}",
                    self.cfg.quorum_before_issuing,
                    self.certified_nodes()
                ),
            );
        }
        let grant = match self.tokens.verify(token, now) {
            Ok(g) => g,
            Err(e) => return Self::refuse(1, e.to_string()),
        };
        if IpAddr::V6(grant.identity.addr) != from {
            return Self::refuse(1, format!("join token is for {}, not {from}", grant.identity.addr));
        }
        if let Err(e) = self.used.spend(&grant, now) {
            // A retry whose answer was lost: the same identity, proving the same key it was
            // certified for, gets a certificate again. Anyone else reusing the token is refused.
            let same_holder = csr_public_key(csr).ok().is_some_and(|key| {
                self.issued_to
                    .iter()
                    .any(|h| h.addr == grant.identity.addr && h.key == key)
            });
            if !same_holder {
                return Self::refuse(1, e.to_string());
            }
        }
        self.issue(storage, csr, &grant.identity, now)
    }

    fn renew(
        &mut self,
        storage: &mut dyn Storage,
        from: IpAddr,
        chain: &[Bytes],
        csr: &[u8],
        now: i64,
    ) -> (Option<Message>, Option<CaEvent>) {
        let chain: Vec<CertificateDer<'_>> = chain.iter().map(|c| CertificateDer::from(c.as_ref())).collect();
        let crls = self.crls(now);
        let crls: Vec<_> = crls
            .iter()
            .map(|c| pki_types::CertificateRevocationListDer::from(c.as_ref()))
            .collect();
        // The CA accepts what it issued and has not revoked, including leaves of intermediates
        // retired from bundles (peers no longer accept those; their holders must renew).
        let mut trusted = self.bundle();
        for (int, _) in &self.retired {
            trusted.add_issuer(CertificateDer::from(int.to_vec()));
        }
        if let Err(e) = trusted.validate(&chain, &crls, now, &ExpectedPeer::Addr(from)) {
            return Self::refuse(3, format!("renewal refused, the presented chain is invalid: {e}"));
        }
        let serial = chain.first().and_then(|leaf| serial_of(leaf)).unwrap_or_default();
        if self.authority().revoked().any(|s| s == serial.as_slice()) {
            return Self::refuse(3, "renewal refused: the certificate is revoked".into());
        }
        let Some((identity, key)) = chain.first().and_then(|leaf| leaf_identity(leaf)) else {
            return Self::refuse(3, "renewal refused: the leaf names no node".into());
        };
        match csr_public_key(csr) {
            Ok(k) if k == key => self.issue(storage, csr, &identity, now),
            Ok(_) => Self::refuse(
                2,
                "renewal refused: the CSR is for another key than the certificate".into(),
            ),
            Err(e) => Self::refuse(2, e.to_string()),
        }
    }

    fn issue(
        &mut self,
        storage: &mut dyn Storage,
        csr: &[u8],
        who: &crate::ca::NodeIdentity,
        now: i64,
    ) -> (Option<Message>, Option<CaEvent>) {
        let (leaf, _receipt) = match self.logged.issue_from_csr(storage, csr, who, now) {
            Ok(issued) => issued,
            Err(e) => return Self::refuse(2, e.to_string()),
        };
        let serial = serial_of(&leaf).unwrap_or_default();
        let key = leaf_identity(&leaf).map(|(_, k)| k).unwrap_or_default();
        match self.issued_to.iter_mut().find(|h| h.addr == who.addr) {
            Some(h) => {
                h.key = key;
                h.serials.push(serial);
                if h.serials.len() > SERIALS_PER_NODE_MAX {
                    h.serials.remove(0);
                }
            }
            None => self.issued_to.push(Holder {
                addr: who.addr,
                key,
                serials: vec![serial],
            }),
        }
        if let Err(e) = self.save(storage) {
            // Not persisted: not handed out (a restart would not know it).
            return Self::refuse(2, format!("CA storage failed: {e}"));
        }
        let chain = vec![
            Bytes::from(leaf.to_vec()),
            Bytes::from(self.authority().intermediate().to_vec()),
        ];
        let reply = Message::Issued {
            chain,
            bundle: Bytes::from(self.bundle().encode()),
            crls: self.crls(now),
            rollout: self.rollout.clone(),
        };
        (Some(reply), Some(CaEvent::Issued))
    }

    /// The next time (Unix s) something is scheduled: rotation, end of overlap, revocation.
    pub fn next_due(&mut self) -> Option<i64> {
        let (root_created, rotated_at, held) = {
            let a = self.authority();
            (a.root_created(), a.rotated_at(), a.intermediates().count())
        };
        let rotation = self.cfg.rotate_every.map(|d| rotated_at + d.as_secs() as i64);
        let retire = (held > 1).then(|| rotated_at + self.cfg.overlap.as_secs() as i64);
        let revoke = self
            .cfg
            .revocations
            .get(self.revocations_done as usize)
            .map(|(at, _)| root_created + at.as_secs() as i64);
        [rotation, retire, revoke].into_iter().flatten().min()
    }

    /// Does whatever is due at `now`; returns what happened (the caller pushes the new bundle if
    /// anything did).
    /// `fresh_seed` keys a new intermediate if a rotation is due.
    pub fn run_due(&mut self, storage: &mut dyn Storage, fresh_seed: [u8; 32], now: i64) -> Vec<CaEvent> {
        let mut events = Vec::new();
        let (root_created, rotated_at, held) = {
            let a = self.authority();
            (a.root_created(), a.rotated_at(), a.intermediates().count())
        };
        let overlap = self.cfg.overlap.as_secs() as i64;
        if held > 1 && now >= rotated_at + overlap {
            self.retire_previous(now);
            self.rollout = None;
            events.push(CaEvent::Retired);
        }
        if let Some(every) = self.cfg.rotate_every {
            if now >= rotated_at + every.as_secs() as i64 {
                match self.authority().rotate(&fresh_seed, now) {
                    Ok(new) => {
                        if overlap == 0 {
                            self.retire_previous(now);
                        }
                        let rotations = self.authority().record().intermediates.len() as u64;
                        self.rollout = (self.cfg.rollout_waves > 0).then(|| Rollout {
                            issuer: fingerprint(&new),
                            start_unix_ms: (now + self.cfg.rollout_interval.as_secs() as i64) * 1000,
                            waves: self.cfg.rollout_waves,
                            wave_interval_ms: self.cfg.rollout_interval.as_millis() as u64,
                        });
                        events.push(CaEvent::Rotated(rotations));
                    }
                    Err(e) => tracing::warn!("rotation failed: {e}"),
                }
            }
        }
        while let Some((at, node)) = self.cfg.revocations.get(self.revocations_done as usize).cloned() {
            if now < root_created + at.as_secs() as i64 {
                break;
            }
            self.revocations_done += 1;
            let addr = match self.cfg_peer_addr(node) {
                Some(a) => a,
                None => continue,
            };
            let serials = self
                .issued_to
                .iter()
                .find(|h| h.addr == addr)
                .map(|h| h.serials.clone())
                .unwrap_or_default();
            for s in serials {
                self.authority().revoke(&s, now);
            }
            events.push(CaEvent::Revoked(node));
        }
        if !events.is_empty() {
            self.invalidate_crls();
            if let Err(e) = self.save(storage) {
                tracing::warn!("CA state not saved: {e}");
            }
        }
        events
    }

    fn retire_previous(&mut self, now: i64) {
        let gone = self.authority().retire_previous();
        self.retired
            .extend(gone.into_iter().map(|c| (Bytes::from(c.to_vec()), now)));
        // A leaf outlives its issuer's retirement by at most its lifetime.
        let keep = self.cfg.policy.leaf_lifetime.as_secs() as i64;
        self.retired.retain(|(_, at)| now - at <= keep);
    }

    fn cfg_peer_addr(&self, node: usize) -> Option<Ipv6Addr> {
        self.peer_addrs.get(node).copied()
    }

    /// Whether changes are pushed to nodes (else they poll).
    pub fn push_bundles(&self) -> bool {
        self.cfg.push_bundles
    }

    /// The CT log's public key (nodes check inclusion receipts with it).
    pub fn log_public_key(&self) -> [u8; 32] {
        self.logged.log_public_key()
    }
}

/// A node the CA has certified: its address, its key, its recent serials (newest last).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Holder {
    addr: Ipv6Addr,
    key: Vec<u8>,
    serials: Vec<Vec<u8>>,
}

/// The persisted part of [`CaRole`].
struct State {
    record: AuthorityRecord,
    log_seed: [u8; 32],
    log_size: u64,
    issued_to: Vec<Holder>,
    used: Vec<(u64, i64)>,
    revocations_done: u32,
    rollout: Option<Rollout>,
    retired: Vec<(Bytes, i64)>,
}

impl State {
    fn encode(&self) -> Vec<u8> {
        let record = self.record.encode();
        let mut out = Vec::with_capacity(record.len() + 256);
        out.extend_from_slice(&(record.len() as u32).to_be_bytes());
        out.extend_from_slice(&record);
        out.extend_from_slice(&self.log_seed);
        out.extend_from_slice(&self.log_size.to_be_bytes());
        out.extend_from_slice(&(self.issued_to.len() as u32).to_be_bytes());
        for h in &self.issued_to {
            out.extend_from_slice(&h.addr.octets());
            out.push(h.key.len() as u8);
            out.extend_from_slice(&h.key);
            out.push(h.serials.len() as u8);
            for s in &h.serials {
                out.push(s.len() as u8);
                out.extend_from_slice(s);
            }
        }
        out.extend_from_slice(&(self.used.len() as u32).to_be_bytes());
        for (id, exp) in &self.used {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&exp.to_be_bytes());
        }
        out.extend_from_slice(&self.revocations_done.to_be_bytes());
        match &self.rollout {
            None => out.push(0),
            Some(r) => {
                out.push(1);
                out.extend_from_slice(&r.issuer);
                out.extend_from_slice(&r.start_unix_ms.to_be_bytes());
                out.extend_from_slice(&r.waves.to_be_bytes());
                out.extend_from_slice(&r.wave_interval_ms.to_be_bytes());
            }
        }
        out.push(self.retired.len() as u8);
        for (der, at) in &self.retired {
            out.extend_from_slice(&(der.len() as u32).to_be_bytes());
            out.extend_from_slice(der);
            out.extend_from_slice(&at.to_be_bytes());
        }
        out
    }

    fn decode(b: &[u8]) -> Option<State> {
        let mut at = 0usize;
        let mut take = |n: usize| -> Option<&[u8]> {
            let end = at.checked_add(n).filter(|e| *e <= b.len())?;
            let out = &b[at..end];
            at = end;
            Some(out)
        };
        let u32_ = |x: &[u8]| u32::from_be_bytes(x.try_into().expect("4"));
        let u64_ = |x: &[u8]| u64::from_be_bytes(x.try_into().expect("8"));
        let len = u32_(take(4)?) as usize;
        let record = AuthorityRecord::decode(take(len)?).ok()?;
        let log_seed = take(32)?.try_into().ok()?;
        let log_size = u64_(take(8)?);
        let n = u32_(take(4)?) as usize;
        let mut issued_to = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            let addr = Ipv6Addr::from(<[u8; 16]>::try_from(take(16)?).ok()?);
            let key_len = usize::from(take(1)?[0]);
            let key = take(key_len)?.to_vec();
            let k = usize::from(take(1)?[0]);
            let mut serials = Vec::new();
            for _ in 0..k {
                let l = usize::from(take(1)?[0]);
                serials.push(take(l)?.to_vec());
            }
            issued_to.push(Holder { addr, key, serials });
        }
        let n = u32_(take(4)?) as usize;
        let mut used = Vec::with_capacity(n.min(UsedTokens::CAPACITY));
        for _ in 0..n {
            used.push((u64_(take(8)?), u64_(take(8)?) as i64));
        }
        let revocations_done = u32_(take(4)?);
        let rollout = match take(1)?[0] {
            0 => None,
            _ => Some(Rollout {
                issuer: take(32)?.try_into().ok()?,
                start_unix_ms: u64_(take(8)?) as i64,
                waves: u32_(take(4)?),
                wave_interval_ms: u64_(take(8)?),
            }),
        };
        let n = usize::from(take(1)?[0]);
        let mut retired = Vec::with_capacity(n);
        for _ in 0..n {
            let len = u32_(take(4)?) as usize;
            let der = Bytes::copy_from_slice(take(len)?);
            retired.push((der, u64_(take(8)?) as i64));
        }
        if take(1).is_some() {
            return None;
        }
        Some(State {
            retired,
            record,
            log_seed,
            log_size,
            issued_to,
            used,
            revocations_done,
            rollout,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;
    use crate::ca::{key_from_seed, request, NodeIdentity};
    use crate::enroll::Grant;
    use runtime::MemStorage as Disk;

    const NOW: i64 = 1_780_000_000;

    fn setup() -> (AuthorityConfig, Vec<Ipv6Addr>, NodeIdentity, String) {
        let cfg = AuthorityConfig::new([5; 32]);
        let addrs: Vec<Ipv6Addr> = (1..=3).map(|i| Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, i)).collect();
        let who = NodeIdentity {
            name: "node-1.mesh".into(),
            addr: addrs[1],
        };
        let token = TokenKey::new(&[5; 32]).issue(&Grant {
            identity: who.clone(),
            expires: NOW + 3600,
            id: 1,
        });
        (cfg, addrs, who, token)
    }

    fn token_again(who: &NodeIdentity) -> String {
        TokenKey::new(&[5; 32]).issue(&Grant {
            identity: who.clone(),
            expires: NOW + 3600,
            id: 1,
        })
    }

    /// The highest CRL number among a bundle message's lists.
    fn crl_number_of(message: &Message) -> u64 {
        let Message::Bundle { crls, .. } = message else {
            panic!("expected a bundle, got {message:?}")
        };
        crls.iter()
            .filter_map(|c| super::super::crl_number(c))
            .max()
            .expect("numbered lists")
    }

    #[test]
    fn crl_numbers_are_durable_before_lists_leave_so_a_restarted_ca_never_reuses_them() {
        let (cfg, addrs, _, _) = setup();
        let mut disk = Disk::default();
        let refresh = (cfg.policy.crl_lifetime.as_secs() / 4) as i64;
        let mut ca = CaRole::start(&mut disk, [[1; 32], [2; 32], [3; 32]], cfg.clone(), addrs.clone(), NOW).unwrap();
        // Lists re-signed twice, each time sent out.
        let first = crl_number_of(&ca.bundle_message(&mut disk, NOW).unwrap());
        let second = crl_number_of(&ca.bundle_message(&mut disk, NOW + refresh).unwrap());
        assert!(second > first);
        // Power cut: only what was synced survives; the CA restarts from its record.
        disk.crash_keeping(0);
        let mut again = CaRole::start(&mut disk, [[1; 32], [2; 32], [3; 32]], cfg, addrs, NOW + refresh).unwrap();
        let third = crl_number_of(&again.bundle_message(&mut disk, NOW + 2 * refresh).unwrap());
        assert!(
            third > second,
            "the restarted CA numbered its lists {third}, not above the {second} nodes already hold"
        );
    }

    fn issued_serial(reply: Option<Message>) -> Vec<u8> {
        match reply {
            Some(Message::Issued { chain, .. }) => serial_of(&chain[0]).unwrap(),
            other => panic!("expected a certificate, got {other:?}"),
        }
    }

    #[test]
    fn a_restarted_ca_keeps_its_root_and_never_reuses_a_serial_even_if_its_last_save_was_lost() {
        let (cfg, addrs, who, token) = setup();
        let mut disk = Disk::default();
        let mut ca = CaRole::start(&mut disk, [[1; 32], [2; 32], [3; 32]], cfg.clone(), addrs.clone(), NOW).unwrap();
        let root = ca.bundle().roots_at(NOW);
        let csr = Bytes::from(request(&who, &key_from_seed(&[9; 32])).unwrap());
        let from = IpAddr::V6(who.addr);
        let enroll = Message::Enroll {
            token,
            csr: csr.clone(),
        };
        let chain = match ca.handle(&mut disk, from, enroll.clone(), NOW).0 {
            Some(Message::Issued { chain, .. }) => chain,
            other => panic!("{other:?}"),
        };
        // The token is spent: another key cannot use it; the same key (a retry whose answer was
        // lost) gets a certificate again.
        let thief = Bytes::from(request(&who, &key_from_seed(&[6; 32])).unwrap());
        let stolen = Message::Enroll {
            token: token_again(&who),
            csr: thief,
        };
        assert_eq!(ca.handle(&mut disk, from, stolen, NOW).1, Some(CaEvent::Refused(1)));
        assert_eq!(ca.handle(&mut disk, from, enroll, NOW).1, Some(CaEvent::Issued));
        // Lose the newest state slot, as if the CA crashed after logging the certificate but
        // before its record reached the disk.
        disk.files
            .remove(if ca.seq.is_multiple_of(2) { "tc.ca.a" } else { "tc.ca.b" });
        let mut again = CaRole::start(&mut disk, [[7; 32], [7; 32], [7; 32]], cfg, addrs, NOW + 10).unwrap();
        assert_eq!(
            again.bundle().roots_at(NOW),
            root,
            "same root after restart; the new seeds are unused"
        );
        let renewed = again
            .handle(
                &mut disk,
                from,
                Message::Renew {
                    chain: chain.clone(),
                    csr,
                },
                NOW + 20,
            )
            .0;
        assert_ne!(
            issued_serial(renewed),
            serial_of(&chain[0]).unwrap(),
            "a serial already in the CT log is never issued again"
        );
    }

    #[test]
    fn renewal_needs_a_valid_chain_for_the_same_key() {
        let (cfg, addrs, who, token) = setup();
        let mut disk = Disk::default();
        let mut ca = CaRole::start(&mut disk, [[1; 32], [2; 32], [3; 32]], cfg, addrs, NOW).unwrap();
        let from = IpAddr::V6(who.addr);
        let csr = Bytes::from(request(&who, &key_from_seed(&[9; 32])).unwrap());
        let chain = match ca.handle(&mut disk, from, Message::Enroll { token, csr }, NOW).0 {
            Some(Message::Issued { chain, .. }) => chain,
            other => panic!("{other:?}"),
        };
        let other_key = Bytes::from(request(&who, &key_from_seed(&[8; 32])).unwrap());
        let refused = ca.handle(
            &mut disk,
            from,
            Message::Renew {
                chain: chain.clone(),
                csr: other_key,
            },
            NOW,
        );
        assert_eq!(refused.1, Some(CaEvent::Refused(2)));
        // From another address than the certificate names.
        let elsewhere = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 9));
        let csr = Bytes::from(request(&who, &key_from_seed(&[9; 32])).unwrap());
        let refused = ca.handle(
            &mut disk,
            elsewhere,
            Message::Renew {
                chain: chain.clone(),
                csr: csr.clone(),
            },
            NOW,
        );
        assert_eq!(refused.1, Some(CaEvent::Refused(3)));
        // Expired by then.
        let late = NOW + 2 * 86_400;
        let refused = ca.handle(&mut disk, from, Message::Renew { chain, csr }, late);
        assert_eq!(refused.1, Some(CaEvent::Refused(3)));
    }
}

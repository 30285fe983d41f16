//! Keeps a running process's certificate and trust current: renews its leaf at its renewal
//! point and refreshes the CA's bundle and revocation lists, handing both to STOQ; and hands the
//! CA the proof of each isolation its replica committed, refreshing at once after, so that STOQ
//! refuses the isolated validator from then on.

use std::collections::BTreeSet;
use std::time::Duration;

use hypermesh::consensus::replica::REMOVAL;
use hypermesh::consensus::MOUNT;
use runtime::durable;
use runtime_tokio::DirStorage;
use stoq::Security;
use tokio::sync::mpsc;
use trustchain::ca::{serial_of, NodeIdentity};
use trustchain::trust::validity_of;
use trustchain::validate::ExpectedPeer;

use super::ca_client::CaClient;
use super::emit;
use super::enroll::{credentials, hex, wall_now_s};
use super::identity::{Identity, StateDir};
use crate::trustchain::Failure;

/// Keeps a running node's certificate and trust current: renews the leaf at its renewal point
/// and refreshes the bundle and revocation lists, handing both to STOQ (new handshakes present
/// the renewed chain; live connections to peers the new trust refuses are closed).
pub(crate) struct Keeper<'a> {
    pub(crate) client: &'a CaClient,
    pub(crate) state: &'a StateDir,
    pub(crate) who: &'a NodeIdentity,
    pub(crate) security: &'a Security,
    pub(crate) identity: Identity,
    pub(crate) renew_fraction: f64,
    /// The CA's lists revoke this node: renewing is pointless (the CA refuses a revoked
    /// chain), so the keeper stops asking and says so once.
    pub(crate) revoked: bool,
}

/// How long the keeper waits before handing in an isolation proof again after the CA could not
/// take it (unreachable, or failing).
const ISOLATION_RETRY: Duration = Duration::from_secs(5);

impl Keeper<'_> {
    /// When the current leaf is due for renewal (Unix seconds).
    fn renew_at(&self) -> i64 {
        match validity_of(&self.identity.chain[0]) {
            Some(v) => v.not_before + ((v.not_after - v.not_before) as f64 * self.renew_fraction) as i64,
            None => wall_now_s(),
        }
    }

    /// Runs until dropped. `isolations`: validators whose isolation proof the replica just
    /// kept (their index), to hand to the CA.
    pub(crate) async fn run(&mut self, trust_refresh: Duration, mut isolations: mpsc::UnboundedReceiver<u16>) {
        let mut refresh = tokio::time::interval(trust_refresh);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        refresh.tick().await; // the first tick is immediate; trust was just fetched
        let mut retry = RENEW_RETRY_MIN;
        // Isolations the CA has not taken yet.
        let mut unreported = BTreeSet::new();
        loop {
            let wait = Duration::from_secs(u64::try_from(self.renew_at() - wall_now_s()).unwrap_or(0));
            tokio::select! {
                // A revoked node never renews (the CA refuses a revoked chain): the operator
                // enrolls it anew with a new token and a fresh state directory.
                () = tokio::time::sleep(wait), if !self.revoked => match self.renew().await {
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
                Some(validator) = isolations.recv() => {
                    unreported.insert(validator);
                    self.report_isolations(&mut unreported).await;
                }
                () = tokio::time::sleep(ISOLATION_RETRY), if !unreported.is_empty() => {
                    self.report_isolations(&mut unreported).await;
                }
            }
        }
    }

    /// Hands the CA the proof of each isolation in `unreported`; those it took leave the set,
    /// and trust is refreshed at once so that STOQ refuses them from now on. A proof the CA
    /// refused is not handed in again (it will not hold later either). Proofs go round again
    /// while the CA takes some: a proof of a later epoch is taken only after the proof of the
    /// epoch before's end, which may come after it in validator order.
    async fn report_isolations(&mut self, unreported: &mut BTreeSet<u16>) {
        let mut taken = false;
        let mut round = true;
        while std::mem::take(&mut round) {
            for validator in unreported.clone() {
                match self.report_isolation(validator).await {
                    Ok(answer) => {
                        unreported.remove(&validator);
                        (taken, round) = (true, true);
                        emit(
                            serde_json::json!({ "event": "isolation_reported", "validator": validator, "ca": answer }),
                        );
                    }
                    Err((Failure(message), again)) => {
                        if !again {
                            unreported.remove(&validator);
                        }
                        tracing::warn!(validator, %message, again, "the CA did not take an isolation proof");
                        emit(serde_json::json!({
                            "event": "isolation_report_failed",
                            "validator": validator,
                            "reason": message,
                            "retrying": again,
                        }));
                    }
                }
            }
        }
        if taken {
            if let Err(Failure(message)) = self.refresh().await {
                tracing::warn!(%message, "trust refresh after an isolation failed; keeping the current trust");
            }
        }
    }

    /// The CA's answer to the proof kept for `validator`, or why not and whether to try again.
    async fn report_isolation(&self, validator: u16) -> Result<serde_json::Value, (Failure, bool)> {
        let name = format!("{}.{REMOVAL}.{validator}", MOUNT.name);
        let proof = DirStorage::open(self.state.path())
            .map_err(|e| Failure(format!("{}: {e}", self.state.path().display())))
            .and_then(|mut storage| {
                // All three copies the replica keeps (two may have rotted).
                durable::Mirror::load(&mut storage, &name).map_err(|e| Failure(format!("reading {name}: {e}")))
            })
            .map_err(|f| (f, true))?;
        let (_, Some(proof)) = proof else {
            return Err((Failure(format!("no intact isolation proof in {name}")), false));
        };
        match self.client.isolate(proof).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(refusal)) => Err((Failure(refusal), false)),
            Err(failure) => Err((failure, true)),
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

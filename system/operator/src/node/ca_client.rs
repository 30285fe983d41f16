//! The node's side of the CA's HTTPS API: enroll with a join token, renew with the current
//! chain, fetch the bundle and revocation lists, and hand in proofs of isolations consensus
//! committed.

use std::net::SocketAddr;
use std::time::Duration;

use pki_types::CertificateDer;
use runtime_tokio::HttpsClient;
use stoq::Trust;
use trustchain::ca::{check_node_name, key_from_seed, request, NodeIdentity};
use trustchain::trust::{fingerprint, TrustBundle};
use trustchain_service::{pem, SERVER_NAME_DEFAULT};

use crate::trustchain::Failure;

/// How long each call to the CA may take.
pub const CA_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A client of one CA, trusting only the roots the operator gave.
pub struct CaClient {
    addr: SocketAddr,
    client: HttpsClient,
    roots: Vec<CertificateDer<'static>>,
}

impl CaClient {
    /// A client of the CA at `addr`, whose certificate names `name` and leads to one of `roots`.
    ///
    /// `name` must be a DNS name, the one the CA reserved for its server: nodes' leaves carry
    /// addresses too (often the CA's own, `::1`, beside it), so a CA checked by its address
    /// alone could be impersonated by any node key; the reserved name is never granted to a node.
    pub fn new(addr: SocketAddr, name: &str, roots: Vec<CertificateDer<'static>>) -> Result<Self, Failure> {
        if name.parse::<std::net::IpAddr>().is_ok() {
            return Err(Failure(format!(
                "--ca-name {name} is an address: a node's certificate may carry the CA's address too, so the CA is verified by the DNS name it reserved for its server (`trustchain ca init --server-name`, default {SERVER_NAME_DEFAULT}), which no node is granted"
            )));
        }
        check_node_name(name).map_err(|e| Failure(format!("--ca-name {name:?}: it {e}")))?;
        let ders: Vec<Vec<u8>> = roots.iter().map(|c| c.to_vec()).collect();
        let client = HttpsClient::new(addr, name, &ders).map_err(|e| Failure(format!("CA client: {e}")))?;
        Ok(CaClient { addr, client, roots })
    }

    async fn call(&self, method: &str, target: &str, body: impl Into<bytes::Bytes>) -> Result<(u16, Vec<u8>), Failure> {
        let path = target.split('?').next().unwrap_or(target);
        match tokio::time::timeout(CA_CALL_TIMEOUT, self.client.call(method, target, body)).await {
            Ok(Ok((status, body))) => Ok((status, body.to_vec())),
            Ok(Err(e)) => Err(Failure(format!("CA at {}: {path}: {e}", self.addr))),
            Err(_) => Err(Failure(format!(
                "CA at {}: {path}: no answer within {CA_CALL_TIMEOUT:?}",
                self.addr
            ))),
        }
    }

    /// Enrolls `who` holding the key made from `key_seed` with the operator's join `token`: the issued chain.
    pub async fn enroll(
        &self,
        who: &NodeIdentity,
        key_seed: &[u8; 32],
        token: &str,
    ) -> Result<Vec<CertificateDer<'static>>, Failure> {
        let csr = request(who, &key_from_seed(key_seed))
            .map_err(|e| Failure(format!("cannot make a CSR for {}: {e}", who.name)))?;
        let body = serde_json::json!({ "csr": pem::encode("CERTIFICATE REQUEST", &csr), "token": token });
        self.issue(body, "enrollment").await
    }

    /// Renews the leaf of `chain` for the same key (from `key_seed`) (the chain is the credential).
    pub async fn renew(
        &self,
        who: &NodeIdentity,
        key_seed: &[u8; 32],
        chain: &[CertificateDer<'static>],
    ) -> Result<Vec<CertificateDer<'static>>, Failure> {
        let csr = request(who, &key_from_seed(key_seed))
            .map_err(|e| Failure(format!("cannot make a CSR for {}: {e}", who.name)))?;
        let body = serde_json::json!({
            "csr": pem::encode("CERTIFICATE REQUEST", &csr),
            "chain": pem::certificates(chain.iter().map(|c| c.as_ref())),
        });
        self.issue(body, "renewal").await
    }

    async fn issue(&self, body: serde_json::Value, what: &str) -> Result<Vec<CertificateDer<'static>>, Failure> {
        let (status, answer) = self.call("POST", "/ca/issue", body.to_string()).await?;
        let answer = String::from_utf8_lossy(&answer);
        if status != 200 {
            return Err(Failure(format!("the CA refused {what} (HTTP {status}): {answer}")));
        }
        let answer: serde_json::Value =
            serde_json::from_str(&answer).map_err(|e| Failure(format!("CA answer is not JSON: {e}")))?;
        let chain_pem = answer["chain"]
            .as_str()
            .ok_or_else(|| Failure("CA answer has no chain".into()))?;
        Ok(pem::chain(chain_pem.as_bytes())?)
    }

    /// Hands the CA a proof that consensus isolated a validator (`POST /ca/isolate`): the CA's
    /// answer, naming each validator it revoked and the serials, or (inner `Err`) its refusal
    /// of the proof, which handing it in again would not change. The outer `Err`: the call
    /// failed (unreachable, a 5xx) or the proof is of an epoch the CA has not reached, worth
    /// trying again.
    pub async fn isolate(&self, proof: Vec<u8>) -> Result<Result<serde_json::Value, String>, Failure> {
        let (status, answer) = self.call("POST", "/ca/isolate", proof).await?;
        let answer = String::from_utf8_lossy(&answer);
        let class = serde_json::from_str::<serde_json::Value>(&answer)
            .ok()
            .and_then(|a| a["refusal"].as_str().map(str::to_owned));
        match status {
            200 => serde_json::from_str(&answer)
                .map(Ok)
                .map_err(|e| Failure(format!("CA answer is not JSON: {e}"))),
            // Of an epoch the CA has not followed yet: it may hold once the earlier ends are in.
            409 if class.as_deref() == Some("epoch_ahead") => Err(Failure(format!(
                "the CA takes the isolation proof later (HTTP {status}): {}",
                answer.trim()
            ))),
            400..=499 => Ok(Err(format!(
                "the CA refused the isolation proof (HTTP {status}): {}",
                answer.trim()
            ))),
            _ => Err(Failure(format!(
                "the CA failed on the isolation proof (HTTP {status}): {}",
                answer.trim()
            ))),
        }
    }

    /// The CA's bundle (refused unless it pins one of the operator's roots at `now_s`) and its
    /// revocation lists.
    pub async fn trust(&self, now_s: i64) -> Result<Trust, Failure> {
        // The bundle is binary: read it as bytes.
        let (status, raw) = self.call("GET", "/ca/bundle?format=tc", String::new()).await?;
        if status != 200 {
            return Err(Failure(format!("the CA refused its bundle (HTTP {status})")));
        }
        let bundle = TrustBundle::decode(&raw).map_err(|e| Failure(format!("CA bundle: {e}")))?;
        if !self.roots.iter().any(|r| bundle.trusts(&fingerprint(r), now_s)) {
            return Err(Failure(
                "the CA's bundle does not hold the root given with --ca-root: refusing it".into(),
            ));
        }
        let (status, crl_pem) = self.call("GET", "/ca/crl", String::new()).await?;
        if status != 200 {
            return Err(Failure(format!("the CA refused its revocation lists (HTTP {status})")));
        }
        let crls = pem::crls(&crl_pem)?;
        Ok(Trust { bundle, crls })
    }
}

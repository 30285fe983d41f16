//! The HTTP API of the CA: what nodes, operators and `curl` ask it.
//!
//! | Method | Path | Answer |
//! |---|---|---|
//! | POST | `/ca/validate[?name=N\|addr=A][&require_logged=true]` | body: a PEM chain, leaf first; JSON [`Verdict`] |
//! | POST | `/ca/issue` | body: JSON `{"csr": PEM, "token": T}` or `{"csr": PEM, "chain": PEM}` (renewal); the chain and CT receipt, or 403 (`"refusal": "revoked"` and others), 429 (`"refusal": "rate_limited"`, with `Retry-After`) |
//! | GET | `/ca/bundle[?format=pem\|json\|tc]` | root and accepted intermediates (PEM), with rotation details (JSON), or the nodes' binary bundle |
//! | GET | `/ca/crl` | current revocation lists, PEM |
//! | GET | `/ct/sth` | the CT log's signed tree head, JSON |
//! | GET | `/ct/proof?index=I&size=N`, `?hash=H&size=N`, `?first=M&second=N` | inclusion or consistency proof, JSON |
//! | POST | `/ca/isolate` | body: an isolation proof (binary, at most [`ISOLATION_BODY_BYTES_MAX`]); with a validator set ([`CaApi::with_isolation`]) revokes each validator it shows isolated, JSON; 400 naming what the proof does not show; 409 for a proof of an epoch the CA has not reached (`"refusal": "epoch_ahead"`: hand it in again later) or beyond [`crate::isolation::IsolationVerifier::isolations_max`] revoked (`"refusal": "isolations_max"`); 404 without a validator set |
//!
//! Every refusal is a 4xx whose JSON body (`{"error": ...}`) says what was wrong; a refused
//! issuance also names its class (`"refusal"`, [`IssueRefusal::class`]).

use std::net::IpAddr;

use runtime::{durable, HttpRequest, HttpResponse, HttpService, Storage, WallTime};
use serde::Deserialize;
use serde_json::json;
use trustchain::ca::{serial_of, NodeIdentity};
use trustchain::ct::Hash;
use trustchain::trust::fingerprint;
use trustchain::validate::ExpectedPeer;

use crate::isolation::{IsolationRefusal, IsolationVerifier, ISOLATION_BODY_BYTES_MAX};
use crate::pem;
use crate::service::{CaService, Credential, IssueRefusal, Verdict};
use crate::state::{hex, unhex};

/// The largest request body accepted: a chain of a few certificates or a CSR is a few KiB.
pub const REQUEST_BODY_BYTES_MAX: usize = 64 * 1024;

const JSON: &str = "application/json";
const PEM: &str = "application/x-pem-file";
const ENDPOINTS: &str =
    "POST /ca/validate, POST /ca/issue, GET /ca/bundle, GET /ca/crl, GET /ct/sth, GET /ct/proof, POST /ca/isolate";

/// The CA service with its storage, answering HTTP requests.
pub struct CaApi {
    storage: Box<dyn Storage + Send>,
    /// `None` only if reopening after a panic failed: every request then gets a 503 naming why.
    service: Option<CaService>,
    broken: Option<String>,
    isolation: Option<Box<dyn IsolationVerifier>>,
}

impl std::fmt::Debug for CaApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaApi")
            .field("service", &self.service)
            .field("broken", &self.broken)
            .field("isolation", &self.isolation.is_some())
            .finish_non_exhaustive()
    }
}

fn error(status: u16, message: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::new(status, JSON, format!("{}\n", json!({ "error": message.to_string() })))
}

/// A refusal whose class (`"refusal"`) tells a program what to do about it.
fn classed(status: u16, class: &str, message: impl std::fmt::Display) -> HttpResponse {
    let body = json!({ "error": message.to_string(), "refusal": class });
    HttpResponse::new(status, JSON, format!("{body}\n"))
}

/// The storage name of the proof that ended `epoch` of the epochs `chain` names.
fn kept_proof(chain: &str, epoch: u64) -> String {
    format!("isolation.{chain}.{epoch}")
}

/// A refused issuance: its status, its message and its class; a rate limit says when to retry.
fn refusal(refused: &IssueRefusal, now: i64) -> HttpResponse {
    let body = json!({ "error": refused.to_string(), "refusal": refused.class() });
    let response = HttpResponse::new(refused.status(), JSON, format!("{body}\n"));
    match refused {
        IssueRefusal::RateLimited { retry_at, .. } => {
            response.with_header("retry-after", retry_at.saturating_sub(now).max(1).to_string())
        }
        _ => response,
    }
}

fn ok_json(value: serde_json::Value) -> HttpResponse {
    HttpResponse::new(200, JSON, format!("{value:#}\n"))
}

/// The body of `/ca/issue`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IssueBody {
    csr: String,
    token: Option<String>,
    chain: Option<String>,
}

impl CaApi {
    /// Serves `service`, whose state is in `storage`.
    pub fn new(storage: Box<dyn Storage + Send>, service: CaService) -> Self {
        CaApi {
            storage,
            service: Some(service),
            broken: None,
            isolation: None,
        }
    }

    /// Takes isolation proofs at `/ca/isolate`, checked by `verifier`, which first follows the
    /// epochs the proofs kept in this CA's storage took it through; why not, naming the proof
    /// and what is wrong (a storage that cannot be read, or a proof of another validator set
    /// under this one's name).
    pub fn with_isolation(mut self, mut verifier: Box<dyn IsolationVerifier>) -> Result<Self, String> {
        loop {
            let name = kept_proof(&verifier.chain_name(), verifier.epoch());
            match durable::load(&mut *self.storage, &name) {
                Ok(Some((_, proof))) => verifier
                    .follow(&proof)
                    .map_err(|e| format!("the kept isolation proof {name} is not followed: {e}"))?,
                Ok(None) => break,
                Err(e) => return Err(format!("reading the kept isolation proof {name}: {e}")),
            }
        }
        self.isolation = Some(verifier);
        Ok(self)
    }

    /// The service and its storage, for the server's own housekeeping (its certificate, scheduled
    /// rotations).
    ///
    /// # Panics
    ///
    /// If the service could not be reopened after a panic (every request is answered 503 then);
    /// the server's housekeeping stops with it.
    pub fn parts(&mut self) -> (&mut CaService, &mut dyn Storage) {
        let service = self
            .service
            .as_mut()
            .unwrap_or_else(|| panic!("the CA could not be reopened: {:?}", self.broken));
        (service, &mut *self.storage)
    }

    /// Whether the API serves (false once reopening after a panic failed).
    pub fn is_serving(&self) -> bool {
        self.service.is_some()
    }

    /// After a panic in the middle of a request, the in-memory state may be half-updated: drop it
    /// and reopen what is durable (every change is synced before it is answered, so nothing
    /// acknowledged is lost).
    fn recover(&mut self) {
        let Some(service) = self.service.take() else {
            return;
        };
        match service.reopened(&mut *self.storage) {
            Ok(fresh) => self.service = Some(fresh),
            Err(e) => {
                tracing::error!("the CA could not be reopened after a failure: {e}");
                self.broken = Some(e.to_string());
            }
        }
    }

    fn service(&mut self) -> &mut CaService {
        self.service.as_mut().expect("route runs only while serving")
    }

    fn route(&mut self, request: &HttpRequest, now: i64) -> HttpResponse {
        let allowed = match request.path.as_str() {
            "/ca/validate" | "/ca/issue" | "/ca/isolate" => "POST",
            "/ca/bundle" | "/ca/crl" | "/ct/sth" | "/ct/proof" => "GET",
            other => return error(404, format!("no endpoint {other}; this CA serves {ENDPOINTS}")),
        };
        if request.method != allowed {
            return error(405, format!("{} takes {allowed}, not {}", request.path, request.method))
                .with_header("allow", allowed);
        }
        let body_max = if request.path == "/ca/isolate" {
            ISOLATION_BODY_BYTES_MAX
        } else {
            REQUEST_BODY_BYTES_MAX
        };
        if request.body.len() > body_max {
            return error(
                413,
                format!(
                    "request body of {} bytes is over the {body_max}-byte limit",
                    request.body.len()
                ),
            );
        }
        let query = match request.query_pairs() {
            Ok(q) => q,
            Err(e) => return error(400, e),
        };
        let (service, storage) = self.parts();
        if let Err(e) = service.maintain(storage, now) {
            return error(500, e);
        }
        let result = match request.path.as_str() {
            "/ca/validate" => self.validate(&query, &request.body, now),
            "/ca/issue" => self.issue(&query, &request.body, now),
            "/ca/bundle" => self.bundle(&query, now),
            "/ca/crl" => self.crl(&query, now),
            "/ct/sth" => self.sth(&query, now),
            "/ca/isolate" => self.isolate(&query, &request.body, now),
            _ => self.proof(&query),
        };
        result.unwrap_or_else(|e| e)
    }

    fn validate(&mut self, query: &[(String, String)], body: &[u8], now: i64) -> Result<HttpResponse, HttpResponse> {
        let mut expected = ExpectedPeer::Any;
        let mut require_logged = false;
        for (k, v) in query {
            let peer = match k.as_str() {
                "name" => ExpectedPeer::Name(v.clone()),
                "addr" => ExpectedPeer::Addr(v.parse::<IpAddr>().map_err(|_| {
                    error(
                        400,
                        format!("addr={v:?} is not an IP address (IPv6, e.g. addr=fd00::7)"),
                    )
                })?),
                "require_logged" => {
                    require_logged = flag(k, v)?;
                    continue;
                }
                other => return Err(unknown_parameter(other, "name, addr, require_logged")),
            };
            if expected != ExpectedPeer::Any {
                return Err(error(400, "give at most one of name= and addr="));
            }
            expected = peer;
        }
        let chain = pem::chain(body).map_err(|e| error(400, e))?;
        let (service, storage) = self.parts();
        let verdict: Verdict = service
            .validate(storage, &chain, &expected, require_logged, now)
            .map_err(|e| error(500, e))?;
        let value = serde_json::to_value(&verdict).map_err(|e| error(500, e))?;
        Ok(ok_json(value))
    }

    fn issue(&mut self, query: &[(String, String)], body: &[u8], now: i64) -> Result<HttpResponse, HttpResponse> {
        if let Some((k, _)) = query.first() {
            return Err(unknown_parameter(k, "none"));
        }
        let request: IssueBody = serde_json::from_slice(body).map_err(|e| {
            error(
                400,
                format!(r#"request body is not {{"csr": PEM, "token": T}} or {{"csr": PEM, "chain": PEM}}: {e}"#),
            )
        })?;
        let csr = pem::csr(request.csr.as_bytes()).map_err(|e| error(400, e))?;
        let credential = match (request.token, request.chain) {
            (Some(token), None) => Credential::Token(token),
            (None, Some(chain)) => Credential::Renewal(pem::chain(chain.as_bytes()).map_err(|e| error(400, e))?),
            (Some(_), Some(_)) => return Err(error(400, "give one credential: a token or a chain, not both")),
            (None, None) => return Err(refusal(&IssueRefusal::NoCredential, now)),
        };
        let (service, storage) = self.parts();
        let issued = service
            .issue(storage, &csr, &credential, now)
            .map_err(|e| refusal(&e, now))?;
        let r = &issued.receipt;
        Ok(ok_json(json!({
            "chain": pem::certificates(issued.chain.iter().map(|c| c.as_ref())),
            "serial": hex(&issued.serial),
            "name": issued.identity.name,
            "addr": issued.identity.addr.to_string(),
            "not_after": issued.not_after,
            "ct": {
                "index": r.index,
                "tree_size": r.sth.tree_size,
                "timestamp_ms": r.sth.timestamp_ms,
                "root_hash": hex(&r.sth.root_hash),
                "signature": hex(&r.sth.signature),
                "audit_path": r.proof.iter().map(|h| hex(h)).collect::<Vec<_>>(),
                "log_public_key": hex(&self.service().log_public_key()),
            },
        })))
    }

    fn isolate(&mut self, query: &[(String, String)], body: &[u8], now: i64) -> Result<HttpResponse, HttpResponse> {
        if let Some((k, _)) = query.first() {
            return Err(unknown_parameter(k, "none"));
        }
        let Some(verifier) = self.isolation.as_mut() else {
            return Err(error(
                404,
                "this CA takes no isolation proofs: it was started without a validator set (trustchain serve --validators FILE)",
            ));
        };
        let shown = verifier.verify(body).map_err(|refusal| match refusal {
            IsolationRefusal::Ahead(why) => classed(
                409,
                "epoch_ahead",
                format!("the isolation proof is not taken yet: {why}"),
            ),
            IsolationRefusal::Invalid(why) => error(400, format!("the isolation proof is refused: {why}")),
        })?;
        if shown.ends_last_epoch {
            // Kept before it is followed: after a restart the CA follows the same epochs.
            let name = kept_proof(&verifier.chain_name(), verifier.epoch());
            durable::save(&mut *self.storage, &name, 1, body)
                .map_err(|e| error(500, format!("cannot keep the isolation proof as {name}: {e}")))?;
            verifier
                .follow(body)
                .map_err(|e| error(500, format!("the isolation proof kept as {name} is not followed: {e}")))?;
            tracing::info!(epoch = verifier.epoch(), "followed the validator set into a new epoch");
        }
        let (isolated, epoch) = (shown.isolated, verifier.epoch());
        let (keys, isolations_max) = (verifier.keys(), verifier.isolations_max());
        let (service, storage) = self.parts();
        let mut answers = Vec::with_capacity(isolated.len());
        for v in isolated {
            let out = keys.iter().filter(|k| service.key_revoked(k)).count();
            if !service.key_revoked(&v.key) && out >= isolations_max {
                return Err(classed(
                    409,
                    "isolations_max",
                    format!(
                        "validator {} ({}) is not revoked: {out} of the set's {} validators already are, and the \
                         CA revokes at most {isolations_max} (it never revokes the last)",
                        v.validator,
                        v.name,
                        keys.len()
                    ),
                ));
            }
            let identity = NodeIdentity {
                name: v.name.clone(),
                addr: v.addr,
            };
            let revoked = service
                .revoke_holder(storage, identity, v.key, now)
                .map_err(|e| error(500, e))?;
            tracing::warn!(
                validator = v.validator,
                name = %v.name,
                height = v.height,
                newly = revoked.newly_revoked,
                "revoked a validator isolated by consensus"
            );
            answers.push(json!({
                "validator": v.validator,
                "name": v.name,
                "height": v.height,
                "newly_revoked": revoked.newly_revoked,
                "serials": revoked.serials,
            }));
        }
        Ok(ok_json(
            json!({ "epoch": shown.epoch, "epoch_known": epoch, "isolated": answers }),
        ))
    }

    fn bundle(&mut self, query: &[(String, String)], now: i64) -> Result<HttpResponse, HttpResponse> {
        let mut format = "pem";
        for (k, v) in query {
            match (k.as_str(), v.as_str()) {
                ("format", f @ ("pem" | "json" | "tc")) => format = f,
                ("format", f) => return Err(error(400, format!("format={f:?}: use pem, json or tc"))),
                (other, _) => return Err(unknown_parameter(other, "format")),
            }
        }
        let bundle = self.service().bundle();
        Ok(match format {
            "tc" => HttpResponse::new(200, "application/octet-stream", bundle.encode()),
            "json" => {
                let rotation = self.service().rotation().cloned();
                let issuers: Vec<_> = bundle
                    .issuers_at(now)
                    .iter()
                    .map(|c| {
                        let fp = fingerprint(c);
                        let retiring = rotation.as_ref().is_some_and(|r| r.new_issuer != hex(&fp));
                        json!({
                            "fingerprint": hex(&fp),
                            "serial": serial_of(c).map(|s| hex(&s)),
                            "retire_at": retiring.then(|| rotation.as_ref().map(|r| r.overlap_end)).flatten(),
                            "pem": pem::encode("CERTIFICATE", c),
                        })
                    })
                    .collect();
                let roots: Vec<_> = bundle
                    .roots_at(now)
                    .iter()
                    .map(|c| json!({ "fingerprint": hex(&fingerprint(c)), "pem": pem::encode("CERTIFICATE", c) }))
                    .collect();
                ok_json(json!({
                    "version": bundle.version(),
                    "roots": roots,
                    "issuers": issuers,
                    "rotation": rotation,
                    "ct_log_public_key": hex(&self.service().log_public_key()),
                }))
            }
            _ => {
                let mut certs = bundle.roots_at(now);
                certs.extend(bundle.issuers_at(now));
                HttpResponse::new(200, PEM, pem::certificates(certs.iter().map(|c| c.as_ref())))
            }
        })
    }

    fn crl(&mut self, query: &[(String, String)], now: i64) -> Result<HttpResponse, HttpResponse> {
        if let Some((k, _)) = query.first() {
            return Err(unknown_parameter(k, "none"));
        }
        let (service, storage) = self.parts();
        let crls = service.crls(storage, now).map_err(|e| error(500, e))?;
        let text: String = crls.iter().map(|c| pem::encode("X509 CRL", c)).collect();
        Ok(HttpResponse::new(200, PEM, text))
    }

    fn sth(&mut self, query: &[(String, String)], now: i64) -> Result<HttpResponse, HttpResponse> {
        if let Some((k, _)) = query.first() {
            return Err(unknown_parameter(k, "none"));
        }
        let sth = self.service().tree_head(now).map_err(|e| error(500, e))?;
        Ok(ok_json(json!({
            "tree_size": sth.tree_size,
            "timestamp_ms": sth.timestamp_ms,
            "root_hash": hex(&sth.root_hash),
            "signature": hex(&sth.signature),
            "log_public_key": hex(&self.service().log_public_key()),
        })))
    }

    fn proof(&mut self, query: &[(String, String)]) -> Result<HttpResponse, HttpResponse> {
        let (mut index, mut hash, mut size, mut first, mut second) = (None, None, None, None, None);
        for (k, v) in query {
            match k.as_str() {
                "index" => index = Some(number(k, v)?),
                "size" => size = Some(number(k, v)?),
                "first" => first = Some(number(k, v)?),
                "second" => second = Some(number(k, v)?),
                "hash" => {
                    let h: Hash = unhex(v)
                        .and_then(|b| b.try_into().ok())
                        .ok_or_else(|| error(400, format!("hash={v:?} is not a SHA-256 leaf hash (64 hex digits)")))?;
                    hash = Some(h);
                }
                other => return Err(unknown_parameter(other, "index, hash, size, first, second")),
            }
        }
        let proof_error = |e: trustchain::ct::ProofError| error(400, e);
        match (index, hash, size, first, second) {
            (Some(index), None, Some(size), None, None) => {
                let path = self.service().inclusion_proof(index, size).map_err(proof_error)?;
                Ok(ok_json(json!({
                    "index": index, "tree_size": size,
                    "audit_path": path.iter().map(|h| hex(h)).collect::<Vec<_>>(),
                })))
            }
            (None, Some(hash), Some(size), None, None) => {
                let index = self
                    .service()
                    .index_of(&hash)
                    .ok_or_else(|| error(404, "no certificate with that leaf hash in the CT log"))?;
                let path = self.service().inclusion_proof(index, size).map_err(proof_error)?;
                Ok(ok_json(json!({
                    "index": index, "tree_size": size,
                    "audit_path": path.iter().map(|h| hex(h)).collect::<Vec<_>>(),
                })))
            }
            (None, None, None, Some(first), Some(second)) => {
                let proof = self.service().consistency_proof(first, second).map_err(proof_error)?;
                Ok(ok_json(json!({
                    "first": first, "second": second,
                    "consistency": proof.iter().map(|h| hex(h)).collect::<Vec<_>>(),
                })))
            }
            _ => Err(error(
                400,
                "ask for an inclusion proof with index=I&size=N (or hash=H&size=N), or a consistency proof with first=M&second=N",
            )),
        }
    }
}

fn unknown_parameter(name: &str, known: &str) -> HttpResponse {
    error(
        400,
        format!("unknown query parameter {name:?}; this endpoint takes: {known}"),
    )
}

fn number(name: &str, value: &str) -> Result<u64, HttpResponse> {
    value
        .parse()
        .map_err(|_| error(400, format!("{name}={value:?} is not a non-negative integer")))
}

fn flag(name: &str, value: &str) -> Result<bool, HttpResponse> {
    match value {
        "" | "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(error(400, format!("{name}={value:?}: use true or false"))),
    }
}

impl HttpService for CaApi {
    fn handle(&mut self, request: &HttpRequest, now: WallTime) -> HttpResponse {
        let now = now.as_unix_nanos().div_euclid(1_000_000_000);
        if let Some(why) = &self.broken {
            return error(
                503,
                format!("the CA failed and could not reopen its state ({why}); restart the server"),
            );
        }
        // A panic is a bug; it must not leave a half-updated CA serving, nor unwind into the
        // server (where it would poison the lock every request takes).
        let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.route(request, now)));
        let response = answered.unwrap_or_else(|_| {
            self.recover();
            error(
                500,
                "internal error while answering this request: the CA reloaded its state from disk, dropping anything half-done; retry",
            )
        });
        tracing::debug!(method = %request.method, path = %request.path, status = response.status, "request");
        response
    }
}

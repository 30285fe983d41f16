//! The API's clients in the simulator, one per node after the API node, each with one request
//! outstanding at a time (one keep-alive connection), by role (`crate::scenario::ClientRole`).
//! Every client asks the same request again when no answer came within `request_timeout`, or
//! after `Retry-After` when told 503: a read is asked again as it was, a transaction is sent
//! again signed as it was (the API answers a transaction it holds by its hash, so nothing is
//! done twice).
//!
//! What each judges, as probes:
//! - a writer is the only one to give its agents feedback, so it knows how many entries each
//!   holds: a read of an agent or its statistics sent after a write was acknowledged must count
//!   it (`stale_read` otherwise), and must not count more than were sent (`phantom_read`);
//! - paced and eager clients count their 429s (`rate_limited`);
//! - the auth client checks each refusal's status and code (`auth_wrong` otherwise);
//! - a searcher checks every agent an owner search answered is the owner's (`search_wrong`
//!   otherwise) and reports each search's latency from its first send (`search_latency_ms`);
//! - writers and registrars report each agent id acknowledged to them (`agent_acked`), and each
//!   write acknowledged (`write_acked`), so the judges can hold them against the chain;
//! - a writer sent registrations the registry must refuse after minting (`refused_midway`)
//!   reports each answered as reverted for its reserved key (`reverted_midway`) or, wrongly,
//!   included (`revert_missing`);
//! - a registrar that counts its ids (`AgentIds::Counted`) reports each id its receipt
//!   contradicts (`id_counted_wrong`), and each count it could not read (`count_failed`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use alloy_primitives::{Address, B256, U256};
use alloy_sol_types::{SolCall, SolEvent};
use bytes::Bytes;
use erc8004::abi::{
    IdentityRegistry as I, MetadataEntry, ReputationRegistry as R, IDENTITY_REGISTRY, REPUTATION_REGISTRY,
};
use erc8004::chain::ChainConfig;
use erc8004::identity::{AGENT_WALLET, RESERVED_KEY};
use erc8004::wallet::{Envelope, Wallet};
use runtime::{Actor, Env, HttpRequest, Instant, Probe, TimerToken, WallTime};

use super::wire::{self, Answer};
use crate::scenario::{AgentIds, ClientRole};

/// Feedback values given, at most.
const VALUE_MAX: u64 = 100;
/// The longest back-off a paced client waits after repeated 429s.
const BACKOFF_MAX: Duration = Duration::from_secs(64);
/// The first back-off after a 429.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);

/// When clients send their first request, from the run's start.
const FIRST_REQUEST_AT: Duration = Duration::from_millis(500);

const TICK: TimerToken = 1;
/// Tokens from here are timeouts of the send numbered `token - TIMEOUT`.
const TIMEOUT: TimerToken = 1 << 32;
/// Tokens from here ask again, after a 503's `Retry-After`, what the send numbered
/// `token - RESEND` asked.
const RESEND: TimerToken = 1 << 48;

/// The credentials the auth client presents, and the key it should be let in with.
#[derive(Clone, Debug)]
pub struct AuthKeys {
    /// A well-formed key nobody issued.
    pub unknown: String,
    /// A key issued and revoked.
    pub revoked: String,
}

/// One client's settings.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// What it does.
    pub role: ClientRole,
    /// The API node.
    pub server: SocketAddr,
    /// Its own key.
    pub key: String,
    /// The failing credentials (the auth client's).
    pub auth: AuthKeys,
    /// Its wallets: `Wallet::development(seed, first)` and the next.
    pub wallet_seed: u64,
    /// The index of its first wallet.
    pub wallet_first: u64,
    /// Agents it registers (writers, registrars).
    pub agents: u32,
    /// Agent ids readers pick from.
    pub agents_known: u64,
    /// The largest page a reader asks for (its pages' `limit` drawn from 1 to it).
    pub reader_limit_max: u32,
    /// The owners a searcher searches for: every client's owner wallet (only writers' and
    /// registrars' own agents).
    pub owners: Vec<Address>,
    /// Between requests.
    pub interval: Duration,
    /// Before asking again.
    pub request_timeout: Duration,
    /// When it stops (the run's time).
    pub stop: Duration,
    /// Whether a paced client paces and backs off.
    pub backoff: bool,
    /// Registrations a writer sends that the registry refuses after minting, one before each
    /// of its first that many registrations.
    pub refused_midway: u32,
    /// Where a registrar takes its new agents' ids from.
    pub agent_ids: AgentIds,
}

/// What an outstanding request is for.
#[derive(Clone, Debug)]
enum Purpose {
    Register,
    /// A registration the registry mints and then refuses (its second metadata entry is the
    /// reserved key): it must revert, leaving nothing.
    RegisterRefusedMidway,
    /// The count of agents, read just before a registration to take it as the new id.
    CountAgents,
    Feedback {
        agent: U256,
    },
    /// A read of the agent (`stats`: its statistics), with the writes acknowledged when sent.
    Judged {
        agent: U256,
        stats: bool,
        acked: u64,
        sent: u64,
    },
    Read,
    /// A search of `owner`'s agents, first sent at `since`.
    Search {
        owner: Address,
        since: Instant,
    },
    Auth {
        case: usize,
    },
}

struct Outstanding {
    id: u64,
    request: HttpRequest,
    purpose: Purpose,
    /// Whether an answer to it was already counted as a failed write.
    failed: bool,
}

/// One auth case: how the header is written, and the answer's (status, code).
struct AuthCase {
    header: Option<String>,
    expect: (u16, &'static str),
}

/// A client (see the module documentation).
pub struct ApiClient {
    config: ClientConfig,
    owner: Wallet,
    giver: Wallet,
    owner_nonce: u64,
    giver_nonce: u64,
    next_id: u64,
    outstanding: Option<Outstanding>,
    /// A writer's agents, and per agent the writes acknowledged and sent.
    agents: Vec<U256>,
    acked: BTreeMap<U256, u64>,
    sent: BTreeMap<U256, u64>,
    /// A writer's step in its round: read, read statistics, write.
    step: u64,
    /// A paced client's 429s in a row.
    limited_in_row: u32,
    auth_case: usize,
    registered: u32,
    /// Registrations refused after their mint, answered.
    refused_midway: u32,
    /// The agent count read for the registration under way (`AgentIds::Counted`).
    counted: Option<u64>,
    stopped: bool,
}

impl ApiClient {
    /// A client that has not started.
    pub fn new(config: ClientConfig) -> ApiClient {
        let owner = Wallet::development(config.wallet_seed, config.wallet_first);
        let giver = Wallet::development(config.wallet_seed, config.wallet_first + 1);
        ApiClient {
            config,
            owner,
            giver,
            owner_nonce: 0,
            giver_nonce: 0,
            next_id: 1,
            outstanding: None,
            agents: Vec::new(),
            acked: BTreeMap::new(),
            sent: BTreeMap::new(),
            step: 0,
            limited_in_row: 0,
            auth_case: 0,
            registered: 0,
            refused_midway: 0,
            counted: None,
            stopped: false,
        }
    }

    fn run_time(env: &dyn Env) -> Duration {
        Duration::from_nanos(env.now().as_nanos())
    }

    /// Until the registrars' next shared instant: the next whole interval of the run.
    fn until_next_instant(&self, env: &dyn Env) -> Duration {
        let now = Self::run_time(env).as_nanos() as u64;
        let every = self.config.interval.as_nanos() as u64;
        Duration::from_nanos(every - now % every)
    }

    fn tick_after(&mut self, env: &mut dyn Env, after: Duration) {
        let at = env.now() + after;
        env.set_timer(at, TICK);
    }

    /// `call` to the identity registry, signed by its owner wallet at its next nonce, posted.
    fn registration(&self, call: impl SolCall) -> HttpRequest {
        let raw = self.owner.sign_call(
            Envelope::Eip1559,
            ChainConfig::default().chain_id,
            self.owner_nonce,
            IDENTITY_REGISTRY,
            call.abi_encode().into(),
        );
        transaction(&raw)
    }

    /// The next request of its role, if it has one.
    fn next_request(&mut self, env: &mut dyn Env) -> Option<(HttpRequest, Purpose)> {
        let chain_id = ChainConfig::default().chain_id;
        match self.config.role {
            ClientRole::Writer
                if self.registered < self.config.agents
                    && self.refused_midway <= self.registered
                    && self.refused_midway < self.config.refused_midway =>
            {
                let entry = |key: &str| MetadataEntry {
                    metadataKey: key.into(),
                    metadataValue: alloy_primitives::Bytes::from_static(b"sim"),
                };
                let call = I::register_2Call {
                    agentURI: format!("ipfs://refused-{}-{}", self.config.wallet_first, self.refused_midway),
                    metadata: vec![entry("name"), entry(AGENT_WALLET)],
                };
                Some((self.registration(call), Purpose::RegisterRefusedMidway))
            }
            ClientRole::Registrar
                if self.registered < self.config.agents
                    && self.config.agent_ids == AgentIds::Counted
                    && self.counted.is_none() =>
            {
                let count = HttpRequest::new("GET", "/metrics", Vec::new());
                Some((count, Purpose::CountAgents))
            }
            ClientRole::Writer | ClientRole::Registrar if self.registered < self.config.agents => {
                let call = I::register_1Call {
                    agentURI: format!("ipfs://agent-{}-{}", self.config.wallet_first, self.registered),
                };
                Some((self.registration(call), Purpose::Register))
            }
            ClientRole::Registrar => None,
            ClientRole::Writer => {
                let agent = self.agents[(self.step / 3) as usize % self.agents.len()];
                let step = self.step % 3;
                self.step += 1;
                if step == 2 {
                    let call = R::giveFeedbackCall {
                        agentId: agent,
                        value: env.below(VALUE_MAX + 1) as i128,
                        valueDecimals: 0,
                        tag1: "sim".into(),
                        tag2: String::new(),
                        endpoint: String::new(),
                        feedbackURI: String::new(),
                        feedbackHash: B256::ZERO,
                    };
                    let raw = self.giver.sign_call(
                        Envelope::Eip1559,
                        chain_id,
                        self.giver_nonce,
                        REPUTATION_REGISTRY,
                        call.abi_encode().into(),
                    );
                    *self.sent.entry(agent).or_default() += 1;
                    Some((transaction(&raw), Purpose::Feedback { agent }))
                } else {
                    let stats = step == 1;
                    let target = if stats {
                        format!("/api/v1/agents/{agent}/stats")
                    } else {
                        format!("/api/v1/agents/{agent}")
                    };
                    let purpose = Purpose::Judged {
                        agent,
                        stats,
                        acked: self.acked.get(&agent).copied().unwrap_or(0),
                        sent: self.sent.get(&agent).copied().unwrap_or(0),
                    };
                    Some((HttpRequest::new("GET", &target, Vec::new()), purpose))
                }
            }
            ClientRole::Reader => {
                let id = env.below(self.config.agents_known.max(1));
                let target = match env.below(4) {
                    0 => format!("/api/v1/agents/{id}"),
                    1 => format!(
                        "/api/v1/agents/{id}/feedback?limit={}",
                        1 + env.below(u64::from(self.config.reader_limit_max))
                    ),
                    2 => format!(
                        "/api/v1/agents/?limit={}&cursor={id}",
                        1 + env.below(u64::from(self.config.reader_limit_max))
                    ),
                    _ => format!("/api/v1/agents/{id}/stats"),
                };
                Some((HttpRequest::new("GET", &target, Vec::new()), Purpose::Read))
            }
            ClientRole::Searcher if self.config.owners.is_empty() => None,
            ClientRole::Searcher => {
                let owner = self.config.owners[env.below(self.config.owners.len() as u64) as usize];
                let target = format!(
                    "/api/v1/agents/?owner={}&limit={}",
                    owner.to_checksum(None),
                    1 + env.below(u64::from(self.config.reader_limit_max))
                );
                let purpose = Purpose::Search {
                    owner,
                    since: env.now(),
                };
                Some((HttpRequest::new("GET", &target, Vec::new()), purpose))
            }
            ClientRole::Paced | ClientRole::Eager => {
                let id = env.below(self.config.agents_known.max(1));
                let target = format!("/api/v1/agents/{id}");
                Some((HttpRequest::new("GET", &target, Vec::new()), Purpose::Read))
            }
            ClientRole::Auth => {
                let case = self.auth_case % AUTH_CASES;
                self.auth_case += 1;
                let mut request = HttpRequest::new("GET", "/api/v1/agents/?limit=1", Vec::new());
                if let Some(header) = self.auth_case_of(case).header {
                    request.headers.push(("authorization".into(), Bytes::from(header)));
                }
                return Some((request, Purpose::Auth { case }));
            }
        }
        .map(|(mut request, purpose)| {
            let header = format!("Bearer {}", self.config.key);
            request.headers.push(("authorization".into(), Bytes::from(header)));
            (request, purpose)
        })
    }

    fn auth_case_of(&self, case: usize) -> AuthCase {
        let key = &self.config.key;
        let (header, expect) = match case {
            0 => (Some(format!("Bearer {key}")), (200, "")),
            // The guide's pitfall: whitespace around the credential is documented as ignored.
            1 => (Some(format!("  Bearer {key} \t")), (200, "")),
            2 => (None, (401, "missing_api_key")),
            3 => (Some("Bearer not-a-key".into()), (401, "malformed_api_key")),
            4 => (Some(format!("Basic {key}")), (401, "malformed_api_key")),
            5 => (
                Some(format!("Bearer {}", self.config.auth.unknown)),
                (401, "unknown_api_key"),
            ),
            _ => (
                Some(format!("Bearer {}", self.config.auth.revoked)),
                (401, "revoked_api_key"),
            ),
        };
        AuthCase { header, expect }
    }

    /// Sends the outstanding request, numbered afresh: an answer to an earlier send of it is
    /// then not taken for this one's.
    fn send(&mut self, env: &mut dyn Env) {
        let id = self.next_id;
        let Some(out) = &mut self.outstanding else { return };
        self.next_id += 1;
        out.id = id;
        let _ = env.send_to(self.config.server, wire::encode_request(out.id, &out.request));
        let at = env.now() + self.config.request_timeout;
        env.set_timer(at, TIMEOUT + out.id);
    }

    fn on_tick(&mut self, env: &mut dyn Env) {
        if self.outstanding.is_some() || self.stopped {
            return;
        }
        if Self::run_time(env) >= self.config.stop {
            self.stopped = true;
            return;
        }
        let Some((request, purpose)) = self.next_request(env) else {
            return;
        };
        self.outstanding = Some(Outstanding {
            id: 0,
            request,
            purpose,
            failed: false,
        });
        self.send(env);
    }

    fn on_answer(&mut self, env: &mut dyn Env, answer: Answer) {
        let Some(out) = self.outstanding.take() else { return };
        let status = answer.status;
        env.probe(Probe::new("answer", u64::from(status), 1));
        if status == 503 || status == 500 {
            // Not processed (503), or its outcome unknown (500): asked again as it was.
            let after = answer.retry_after().unwrap_or(self.config.interval);
            env.probe(Probe::new(
                if status == 503 {
                    "refused_busy"
                } else {
                    "outcome_unknown"
                },
                0,
                1,
            ));
            return self.resend_after(env, out, after);
        }
        if status == 429
            && matches!(
                out.purpose,
                Purpose::Register | Purpose::RegisterRefusedMidway | Purpose::Feedback { .. }
            )
        {
            // Not processed: a write is sent again as signed after Retry-After, never counted
            // failed (an earlier send of it may be in the chain; the API answers that by hash).
            let after = answer.retry_after().unwrap_or(self.config.interval);
            env.probe(Probe::new("rate_limited", 0, 1));
            return self.resend_after(env, out, after);
        }
        let mut wait = self.config.interval;
        match out.purpose {
            Purpose::Register => {
                if let Some(assigned) = registered_id(&answer) {
                    self.owner_nonce += 1;
                    self.registered += 1;
                    // Counted: the id read before sending is the one taken, whatever the
                    // receipt says (the original's race; the judges find the ids taken twice).
                    let id = match self.counted.take() {
                        Some(counted) => {
                            let counted = U256::from(counted);
                            if counted != assigned {
                                env.probe(Probe::new("id_counted_wrong", counted.saturating_to(), 1));
                            }
                            counted
                        }
                        None => assigned,
                    };
                    self.agents.push(id);
                    env.probe(Probe::new("agent_acked", id.saturating_to(), 1));
                } else if status == 200 {
                    // Included and reverted: its nonce is spent; the next registration is a new
                    // transaction, counted failed once.
                    env.probe(Probe::new("write_failed", u64::from(status), 1));
                    self.owner_nonce += 1;
                    self.counted = None;
                } else {
                    return self.refused_registration(env, out, status);
                }
                if self.config.role == ClientRole::Registrar {
                    wait = self.until_next_instant(env);
                }
            }
            Purpose::RegisterRefusedMidway => {
                if status == 200 {
                    // Included: its nonce is spent either way.
                    self.owner_nonce += 1;
                    self.refused_midway += 1;
                    let body = answer.json();
                    // Reverted for its reserved key, which the registry checks after minting;
                    // a revert for anything else is not the one sent for, and fails the run.
                    let probe = match (&body["success"], body["revert_reason"].as_str()) {
                        (serde_json::Value::Bool(false), Some(RESERVED_KEY)) => "reverted_midway",
                        (serde_json::Value::Bool(false), _) => "write_failed",
                        _ => "revert_missing",
                    };
                    env.probe(Probe::new(probe, u64::from(status), 1));
                } else {
                    return self.refused_registration(env, out, status);
                }
            }
            Purpose::CountAgents => {
                let count = (status == 200).then(|| agents_gauge(&answer.body)).flatten();
                match count {
                    // The registration follows at once, as the original's insert followed its
                    // `SELECT MAX(id)`.
                    Some(count) => {
                        self.counted = Some(count);
                        wait = Duration::ZERO;
                    }
                    // Counted again at the registrars' next shared instant.
                    None => {
                        env.probe(Probe::new("count_failed", u64::from(status), 1));
                        wait = self.until_next_instant(env);
                    }
                }
            }
            Purpose::Feedback { agent } => {
                let included = answer.json()["success"] == true;
                if status == 200 && included {
                    self.giver_nonce += 1;
                    *self.acked.entry(agent).or_default() += 1;
                    env.probe(Probe::new("write_acked", agent.saturating_to(), 1));
                } else {
                    // Refused (a nonce it should not have used, a revert): the judges count it.
                    env.probe(Probe::new("write_failed", u64::from(status), 1));
                    if status == 200 {
                        self.giver_nonce += 1;
                    }
                    *self.sent.entry(agent).or_default() -= 1;
                }
            }
            Purpose::Judged {
                agent,
                stats,
                acked,
                sent,
            } => {
                let body = answer.json();
                let seen = if stats {
                    &body["feedback"]["given"]
                } else {
                    &body["feedback"]
                };
                match seen.as_u64() {
                    Some(seen) if status == 200 => {
                        env.probe(Probe::new("read_judged", u64::from(stats), 1));
                        if seen < acked {
                            env.probe(Probe::new("stale_read", agent.saturating_to(), (acked - seen) as i64));
                        }
                        if seen > sent {
                            env.probe(Probe::new("phantom_read", agent.saturating_to(), (seen - sent) as i64));
                        }
                    }
                    _ => env.probe(Probe::new("read_failed", u64::from(status), 1)),
                }
            }
            Purpose::Read => {
                if status == 429 {
                    let role = match self.config.role {
                        ClientRole::Paced => 1,
                        ClientRole::Eager => 2,
                        _ => 0,
                    };
                    env.probe(Probe::new("rate_limited", role, 1));
                    if self.config.role == ClientRole::Paced && self.config.backoff {
                        // Exponential, with jitter, never before Retry-After.
                        let exp = BACKOFF_FIRST
                            .saturating_mul(1 << self.limited_in_row.min(6))
                            .min(BACKOFF_MAX);
                        let jittered = exp.mul_f64(0.5 + env.unit_f64() / 2.0);
                        let told = answer.retry_after().unwrap_or(Duration::ZERO);
                        wait = jittered.max(told);
                        self.limited_in_row += 1;
                    }
                } else {
                    self.limited_in_row = 0;
                    if self.config.role == ClientRole::Paced && self.config.backoff {
                        wait = wait.max(paced_wait(&answer, env.wall_now()));
                    }
                }
            }
            Purpose::Search { owner, since } => {
                let latency = env.now().saturating_since(since);
                env.probe(Probe::new(
                    "search_latency_ms",
                    u64::from(status),
                    latency.as_millis() as i64,
                ));
                if status == 200 {
                    let body = answer.json();
                    let theirs = body["agents"].as_array().is_some_and(|agents| {
                        agents
                            .iter()
                            .all(|a| a["owner"].as_str().and_then(|o| o.parse::<Address>().ok()) == Some(owner))
                    });
                    if !theirs {
                        env.probe(Probe::new("search_wrong", 0, 1));
                    }
                }
            }
            Purpose::Auth { case } => {
                let code = answer.json()["error"]["code"].as_str().unwrap_or("").to_string();
                let expect = self.auth_case_of(case).expect;
                if (status, code.as_str()) == expect {
                    env.probe(Probe::new("auth_as_documented", case as u64, 1));
                } else {
                    env.probe(Probe::new("auth_wrong", case as u64, i64::from(status)));
                }
            }
        }
        self.tick_after(env, wait);
    }

    /// A registration refused with `status` (nothing of it done): counted failed once, and sent
    /// again as signed after the interval (a refusal that lasts is the API's to explain, in its
    /// answers).
    fn refused_registration(&mut self, env: &mut dyn Env, mut out: Outstanding, status: u16) {
        if !out.failed {
            env.probe(Probe::new("write_failed", u64::from(status), 1));
        }
        out.failed = true;
        let again = self.config.interval;
        self.resend_after(env, out, again);
    }

    /// Asks `out` again after `after`. Its answered send's number is retired for a number of
    /// the wait, so the answered send's timeout, still set, finds nothing to time out.
    fn resend_after(&mut self, env: &mut dyn Env, mut out: Outstanding, after: Duration) {
        out.id = self.next_id;
        self.next_id += 1;
        let at = env.now() + after;
        env.set_timer(at, RESEND + out.id);
        self.outstanding = Some(out);
    }

    /// The outstanding request's send `id` went unanswered (`timeout`), or was refused and is due
    /// again: sent again, unless the client has stopped.
    fn again(&mut self, env: &mut dyn Env, id: u64, timeout: bool) {
        if self.outstanding.as_ref().is_none_or(|o| o.id != id) {
            return;
        }
        if Self::run_time(env) >= self.config.stop {
            // Stopped with a request unanswered: a write's outcome is unknown.
            if let Some(Purpose::Feedback { agent }) = self.outstanding.take().map(|o| o.purpose) {
                env.probe(Probe::new("write_unknown", agent.saturating_to(), 1));
            }
            self.stopped = true;
            return;
        }
        if timeout {
            env.probe(Probe::new("timeout", 0, 1));
        }
        self.send(env);
    }
}

/// Cases the auth client presents in turn.
const AUTH_CASES: usize = 7;

/// A paced client's wait after an answer: none while its allowance lasts; with none left,
/// until `X-RateLimit-Reset`.
fn paced_wait(answer: &Answer, now: WallTime) -> Duration {
    let remaining = answer
        .header("x-ratelimit-remaining")
        .and_then(|s| s.parse::<u64>().ok());
    let reset = answer.header("x-ratelimit-reset").and_then(|s| s.parse::<i64>().ok());
    match (remaining, reset) {
        (Some(0), Some(reset)) => {
            let wait_ns = reset.saturating_mul(1_000_000_000).saturating_sub(now.as_unix_nanos());
            Duration::from_nanos(u64::try_from(wait_ns).unwrap_or(0))
        }
        _ => Duration::ZERO,
    }
}

/// The agents registered, as `/metrics` exports them (`erc8004_agents`), if the body says.
fn agents_gauge(body: &[u8]) -> Option<u64> {
    std::str::from_utf8(body)
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("erc8004_agents "))
        .and_then(|value| value.trim().parse().ok())
}

/// `POST /api/v1/transactions` of `raw`.
fn transaction(raw: &[u8]) -> HttpRequest {
    let body = serde_json::json!({ "raw": format!("0x{}", alloy_primitives::hex::encode(raw)) });
    let mut request = HttpRequest::new("POST", "/api/v1/transactions", body.to_string());
    request
        .headers
        .push(("content-type".into(), Bytes::from_static(b"application/json")));
    request
}

/// The agent id a registration's receipt names (its `Registered` log), if it was included.
fn registered_id(answer: &Answer) -> Option<U256> {
    let body = answer.json();
    if answer.status != 200 || body["success"] != true {
        return None;
    }
    let registry = IDENTITY_REGISTRY.to_checksum(None);
    let signature = I::Registered::SIGNATURE_HASH.to_string();
    body["logs"]
        .as_array()?
        .iter()
        .find(|log| log["address"] == registry.as_str() && log["topics"][0] == signature.as_str())
        .and_then(|log| log["topics"][1].as_str())
        .and_then(|topic| topic.parse::<B256>().ok())
        .map(|topic| U256::from_be_bytes(topic.0))
}

impl Actor for ApiClient {
    fn on_start(&mut self, env: &mut dyn Env) {
        // A client never restarts (faults spare clients). Its first request waits for the API
        // node to be up: every node starts within `workload.start_spread`, which scenarios of
        // this workload keep below FIRST_REQUEST_AT.
        let wait = FIRST_REQUEST_AT.saturating_sub(Self::run_time(env));
        self.tick_after(env, wait);
    }

    fn on_datagram(&mut self, env: &mut dyn Env, _from: SocketAddr, payload: Bytes) {
        let Some((id, answer)) = wire::decode_response(&payload) else {
            return;
        };
        if self.outstanding.as_ref().is_some_and(|o| o.id == id) {
            self.on_answer(env, answer);
        }
    }

    fn on_timer(&mut self, env: &mut dyn Env, token: TimerToken) {
        match token {
            TICK => self.on_tick(env),
            t if t >= RESEND => self.again(env, t - RESEND, false),
            t if t >= TIMEOUT => self.again(env, t - TIMEOUT, true),
            _ => {}
        }
    }
}

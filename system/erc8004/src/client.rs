//! [`RegistryClient`]: a simulated agent developer's client. It holds a few wallets (keys drawn
//! from the run's seed), and submits signed registry transactions through HyperMesh consensus
//! (the consensus client protocol: `Submit` to `f + 1` replicas, an outcome believed once
//! `f + 1` agree): agents registered, feedback given to other wallets' agents, validations
//! requested and answered, metadata set; now and then feedback to its own agent, which the
//! registry reverts (self-feedback). Each wallet has one transaction in flight at a time,
//! so its nonces go in order; a transaction not answered in time is sent again, the same
//! bytes (the replicas answer a committed one from what they remember).
//!
//! At [`ClientConfig::stop_after`] it stops submitting; at [`ClientConfig::verify_after`] it
//! checks the cluster: it asks every replica for the digest of its state
//! ([`crate::chain::Query::Digest`]), and one replica (in turn) for the receipt of each
//! transaction it saw included, asking the next replica again for those not answered within
//! [`VERIFY_RETRY`] (up to [`VERIFY_ROUNDS`] rounds).
//!
//! # Probes (protocol `consensus`)
//!
//! | name | subject | value |
//! |---|---|---|
//! | `erc_submitted` | transaction number | the action (0 register, 1 feedback, 2 request, 3 response, 4 metadata) |
//! | `erc_included` | transaction number | 1 succeeded, 0 reverted |
//! | `erc_refused` | transaction number | 1 refused by the chain, 2 not admitted |
//! | `erc_unknown` | transaction number | sends made without an answer (the wallet is retired) |
//! | `erc_agent` | agent id | the client's process number (an id registered and acknowledged) |
//! | `erc_head` | the replica's index | its head block |
//! | `erc_digest` | the replica's index | the first 8 bytes of its state digest |
//! | `erc_receipts_asked` | 0 | receipts it asks for at the check |
//! | `erc_receipt` | transaction number | 1 the receipt is there, 0 it is not |

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use alloy_primitives::{keccak256, Bytes as EthBytes, B256, U256};
use alloy_sol_types::SolCall;
use bytes::Bytes;
use hypermesh::consensus::client::agreeing;
use hypermesh::consensus::{sha256, AnswerKind, Consistency, Digest, Message, Query as WireQuery, Submit};
use runtime::host::{Context, Protocol};
use runtime::{Clock, Entropy, Instant, Probe, Probes};

use crate::abi::{
    IdentityRegistry as I, MetadataEntry, ReputationRegistry as R, ValidationRegistry as V, IDENTITY_REGISTRY,
    REPUTATION_REGISTRY, VALIDATION_REGISTRY,
};
use crate::chain::Query;
use crate::wallet::{Envelope, Wallet};

/// How a registry client behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// The replicas it submits to.
    pub replicas: Vec<SocketAddr>,
    /// Its process number (unique per client): its wallets and probes are its own.
    pub process: u64,
    /// The run's seed, for the wallets' keys.
    pub seed: u64,
    /// Wallets it holds.
    pub wallets: u64,
    /// The chain id it signs for.
    pub chain_id: u64,
    /// Time between submissions (one wallet each).
    pub interval: Duration,
    /// How long it waits for an answer before sending again.
    pub answer_timeout: Duration,
    /// Sends of one transaction before the wallet is given up (its nonce is then unknown).
    pub sends_max: u32,
    /// Replicas each transaction goes to, and agreeing answers needed: `f + 1`.
    pub answers_required: usize,
    /// When (since its start) it stops submitting.
    pub stop_after: Duration,
    /// When (since its start) it checks the cluster: late enough after `stop_after` for the
    /// last transactions to commit everywhere.
    pub verify_after: Duration,
}

/// The client's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientTimer {
    /// Submit the next transaction.
    Next,
    /// Transaction number `n` is overdue.
    Overdue(u64),
    /// Check the cluster.
    Verify,
    /// Ask again for the receipts not answered, round `n`.
    VerifyAgain(u32),
}

/// How long the check waits for answers before asking another replica again.
pub const VERIFY_RETRY: Duration = Duration::from_millis(500);
/// Rounds of asking for receipts.
pub const VERIFY_ROUNDS: u32 = 4;

/// What a transaction does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Register,
    Feedback,
    Request,
    Respond,
    Metadata,
}

struct WalletState {
    wallet: Wallet,
    nonce: u64,
    busy: bool,
    retired: bool,
    /// Agents it owns.
    agents: Vec<U256>,
    /// Validation requests naming it, to answer.
    to_answer: Vec<B256>,
}

struct InFlight {
    number: u64,
    wallet: usize,
    action: Action,
    raw: Bytes,
    hash: B256,
    sends: u32,
    /// For a request: the validator wallet and the request hash.
    request: Option<(usize, B256)>,
    answers: Vec<((u64, AnswerKind), BTreeSet<SocketAddr>)>,
}

/// The simulated registry client: see the module documentation.
pub struct RegistryClient {
    config: ClientConfig,
    wallets: Vec<WalletState>,
    counter: u64,
    turn: usize,
    started: Instant,
    in_flight: BTreeMap<Digest, InFlight>,
    by_number: BTreeMap<u64, Digest>,
    /// Every agent its wallets registered (to give feedback to).
    agents: Vec<(usize, U256)>,
    /// Transactions seen included: number and hash.
    included: Vec<(u64, B256)>,
    /// Receipt queries under way: query id → transaction number.
    receipts: BTreeMap<u64, u64>,
    verifying: bool,
}

/// Query ids: digests from 1 << 62, receipts from 1 << 61.
const DIGEST_QUERY: u64 = 1 << 62;
const RECEIPT_QUERY: u64 = 1 << 61;

impl RegistryClient {
    /// A client with `config`.
    pub fn new(config: ClientConfig) -> RegistryClient {
        assert!(
            !config.replicas.is_empty() && config.wallets > 0,
            "a client needs replicas and wallets"
        );
        assert!(
            (1..=config.replicas.len()).contains(&config.answers_required),
            "answers_required must be 1..=replicas"
        );
        let wallets = (0..config.wallets)
            .map(|i| WalletState {
                wallet: Wallet::development(config.seed, config.process * 1_000 + i),
                nonce: 0,
                busy: false,
                retired: false,
                agents: Vec::new(),
                to_answer: Vec::new(),
            })
            .collect();
        RegistryClient {
            config,
            wallets,
            counter: 0,
            turn: 0,
            started: Instant::ZERO,
            in_flight: BTreeMap::new(),
            by_number: BTreeMap::new(),
            agents: Vec::new(),
            included: Vec::new(),
            receipts: BTreeMap::new(),
            verifying: false,
        }
    }

    fn send(&self, cx: &mut Context<'_, ClientTimer>, message: Bytes, first: usize) {
        let n = self.config.replicas.len();
        for k in 0..self.config.answers_required {
            let _ = cx.send_to(self.config.replicas[(first + k) % n], message.clone());
        }
    }

    /// The next idle wallet, in turn.
    fn idle_wallet(&mut self) -> Option<usize> {
        let n = self.wallets.len();
        (0..n)
            .map(|k| (self.turn + k) % n)
            .find(|&w| !self.wallets[w].busy && !self.wallets[w].retired)
            .inspect(|&w| self.turn = w + 1)
    }

    fn submit(&mut self, cx: &mut Context<'_, ClientTimer>) {
        let Some(w) = self.idle_wallet() else {
            return;
        };
        self.counter += 1;
        let number = (self.config.process << 32) | self.counter;
        let roll = cx.next_u64();
        let others: Vec<&(usize, U256)> = self.agents.iter().filter(|(owner, _)| *owner != w).collect();
        let state = &self.wallets[w];
        let (action, to, input, request) = if let Some(hash) = state.to_answer.first().copied() {
            let call = V::validationResponseCall {
                requestHash: hash,
                response: (roll % 101) as u8,
                responseURI: format!("ipfs://response-{number}"),
                responseHash: keccak256(number.to_be_bytes()),
                tag: if roll.is_multiple_of(3) {
                    "hard".into()
                } else {
                    String::new()
                },
            };
            (Action::Respond, VALIDATION_REGISTRY, call.abi_encode(), None)
        } else if state.agents.is_empty() || roll.is_multiple_of(5) {
            let uri = format!("ipfs://agent-{number}");
            let input = if roll.is_multiple_of(2) {
                I::register_1Call { agentURI: uri }.abi_encode()
            } else {
                let entry = MetadataEntry {
                    metadataKey: "services".into(),
                    metadataValue: EthBytes::from(format!("mcp:{number}").into_bytes()),
                };
                I::register_2Call {
                    agentURI: uri,
                    metadata: vec![entry],
                }
                .abi_encode()
            };
            (Action::Register, IDENTITY_REGISTRY, input, None)
        } else if roll % 5 == 1 && (!others.is_empty() || roll % 7 == 1) {
            // Now and then feedback to its own agent, which the registry refuses (self-feedback):
            // a reverted transaction, included with status 0.
            let agent = match others.is_empty() || roll % 7 == 1 {
                true => &state.agents[0],
                false => &others[(roll as usize / 5) % others.len()].1,
            };
            let call = R::giveFeedbackCall {
                agentId: *agent,
                value: (roll % 200) as i128 - 50,
                valueDecimals: (roll % 3) as u8,
                tag1: if roll.is_multiple_of(2) {
                    "quality".into()
                } else {
                    "speed".into()
                },
                tag2: String::new(),
                endpoint: String::new(),
                feedbackURI: String::new(),
                feedbackHash: B256::ZERO,
            };
            (Action::Feedback, REPUTATION_REGISTRY, call.abi_encode(), None)
        } else if roll % 5 == 2 && self.wallets.len() > 1 {
            let agent = state.agents[(roll as usize / 5) % state.agents.len()];
            let validator = (w + 1 + (roll as usize / 7) % (self.wallets.len() - 1)) % self.wallets.len();
            let hash = keccak256([self.config.process.to_be_bytes(), self.counter.to_be_bytes()].concat());
            let call = V::validationRequestCall {
                validatorAddress: self.wallets[validator].wallet.address(),
                agentId: agent,
                requestURI: format!("ipfs://request-{number}"),
                requestHash: hash,
            };
            (
                Action::Request,
                VALIDATION_REGISTRY,
                call.abi_encode(),
                Some((validator, hash)),
            )
        } else {
            let agent = state.agents[(roll as usize / 5) % state.agents.len()];
            let call = I::setMetadataCall {
                agentId: agent,
                metadataKey: "version".into(),
                metadataValue: EthBytes::from(number.to_be_bytes().to_vec()),
            };
            (Action::Metadata, IDENTITY_REGISTRY, call.abi_encode(), None)
        };
        let raw = state
            .wallet
            .sign_call(Envelope::Eip1559, self.config.chain_id, state.nonce, to, input.into());
        let raw = Bytes::from(raw.to_vec());
        let digest = sha256(&raw);
        cx.probe(Probe::new("erc_submitted", number, action as i64));
        self.wallets[w].busy = true;
        self.in_flight.insert(
            digest,
            InFlight {
                number,
                wallet: w,
                action,
                hash: keccak256(&raw),
                raw,
                sends: 0,
                request,
                answers: Vec::new(),
            },
        );
        self.by_number.insert(number, digest);
        self.resend(cx, digest);
    }

    /// Sends the transaction `digest` (again), to replicas drawn anew.
    fn resend(&mut self, cx: &mut Context<'_, ClientTimer>, digest: Digest) {
        let first = cx.next_u64() as usize % self.config.replicas.len();
        let Some(t) = self.in_flight.get_mut(&digest) else {
            return;
        };
        t.sends += 1;
        let number = t.number;
        let message = Message::Submit(Submit {
            forwarded: false,
            transaction: t.raw.clone(),
        })
        .encode();
        self.send(cx, message, first);
        let at = cx.now() + self.config.answer_timeout;
        cx.set_timer(at, ClientTimer::Overdue(number));
    }

    fn answered(
        &mut self,
        cx: &mut Context<'_, ClientTimer>,
        from: SocketAddr,
        digest: Digest,
        height: u64,
        kind: AnswerKind,
    ) {
        let required = self.config.answers_required;
        let Some(t) = self.in_flight.get_mut(&digest) else {
            return;
        };
        let answer = (height, kind);
        if agreeing(&mut t.answers, &answer, from) < required {
            return;
        }
        let t = self.in_flight.remove(&digest).expect("found above");
        self.by_number.remove(&t.number);
        let wallet = &mut self.wallets[t.wallet];
        wallet.busy = false;
        match answer.1 {
            AnswerKind::Applied(body) => {
                let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                // Included (or, never with one in flight per wallet, held): the nonce is used.
                wallet.nonce += 1;
                let ok = body["status"] == true;
                cx.probe(Probe::new("erc_included", t.number, i64::from(ok)));
                self.included.push((t.number, t.hash));
                if !ok {
                    return;
                }
                match t.action {
                    Action::Register => {
                        let output: EthBytes = serde_json::from_value(body["output"].clone()).unwrap_or_default();
                        if let Ok(agent) = I::register_0Call::abi_decode_returns(&output) {
                            wallet.agents.push(agent);
                            self.agents.push((t.wallet, agent));
                            cx.probe(Probe::new(
                                "erc_agent",
                                agent.saturating_to::<u64>(),
                                self.config.process as i64,
                            ));
                        }
                    }
                    Action::Request => {
                        if let Some((validator, hash)) = t.request {
                            self.wallets[validator].to_answer.push(hash);
                        }
                    }
                    Action::Respond => {
                        wallet.to_answer.remove(0);
                    }
                    Action::Feedback | Action::Metadata => {}
                }
            }
            AnswerKind::Refused(why) => {
                cx.probe(Probe::new("erc_refused", t.number, 1));
                // A used nonce: the chain says which is next.
                if let Some(next) = why.split("its next is ").nth(1).and_then(|n| n.trim().parse().ok()) {
                    wallet.nonce = next;
                }
            }
            AnswerKind::NotAdmitted(_) => cx.probe(Probe::new("erc_refused", t.number, 2)),
            AnswerKind::Forgotten => {
                // Committed, outcome forgotten: the nonce is used, the rest unknown.
                wallet.nonce += 1;
                cx.probe(Probe::new("erc_unknown", t.number, i64::from(t.sends)));
            }
        }
    }

    fn overdue(&mut self, cx: &mut Context<'_, ClientTimer>, number: u64) {
        let Some(&digest) = self.by_number.get(&number) else {
            return;
        };
        let t = &self.in_flight[&digest];
        if t.sends < self.config.sends_max && !self.verifying {
            self.resend(cx, digest);
            return;
        }
        // No answer after every send: whether it committed is unknown, so is the wallet's
        // nonce. The wallet sends no more.
        let t = self.in_flight.remove(&digest).expect("found above");
        self.by_number.remove(&number);
        self.wallets[t.wallet].retired = true;
        cx.probe(Probe::new("erc_unknown", number, i64::from(t.sends)));
    }

    fn verify(&mut self, cx: &mut Context<'_, ClientTimer>) {
        self.verifying = true;
        let digest = serde_json::to_vec(&Query::Digest).expect("a query serializes");
        for (i, replica) in self.config.replicas.iter().enumerate() {
            let message = Message::Query(WireQuery {
                id: DIGEST_QUERY + i as u64,
                consistency: Consistency::Local,
                request: Bytes::from(digest.clone()),
            })
            .encode();
            let _ = cx.send_to(*replica, message);
        }
        cx.probe(Probe::new("erc_receipts_asked", 0, self.included.len() as i64));
        for (k, (number, _)) in self.included.iter().enumerate() {
            self.receipts.insert(RECEIPT_QUERY + k as u64, *number);
        }
        self.ask_receipts(cx, 0);
    }

    /// Asks for every receipt not answered yet, each of the replica `round` places after the
    /// one asked first.
    fn ask_receipts(&mut self, cx: &mut Context<'_, ClientTimer>, round: u32) {
        let n = self.config.replicas.len();
        for (&id, number) in &self.receipts {
            let k = (id - RECEIPT_QUERY) as usize;
            let Some((_, hash)) = self.included.iter().find(|(m, _)| m == number) else {
                continue;
            };
            let request = serde_json::to_vec(&Query::Receipt { hash: *hash }).expect("a query serializes");
            let message = Message::Query(WireQuery {
                id,
                consistency: Consistency::Local,
                request: Bytes::from(request),
            })
            .encode();
            let _ = cx.send_to(self.config.replicas[(k + round as usize) % n], message);
        }
        if round + 1 < VERIFY_ROUNDS && !self.receipts.is_empty() {
            cx.set_timer(cx.now() + VERIFY_RETRY, ClientTimer::VerifyAgain(round + 1));
        }
    }

    fn query_answered(&mut self, cx: &mut Context<'_, ClientTimer>, id: u64, result: Result<Bytes, String>) {
        let Ok(body) = result else {
            return;
        };
        let Ok(body) = serde_json::from_slice::<serde_json::Value>(&body) else {
            return;
        };
        if (DIGEST_QUERY..DIGEST_QUERY + self.config.replicas.len() as u64).contains(&id) {
            let replica = id - DIGEST_QUERY;
            let head = body["head"].as_u64().unwrap_or(0);
            let digest: B256 = serde_json::from_value(body["digest"].clone()).unwrap_or_default();
            let prefix = i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
            cx.probe(Probe::new("erc_head", replica, head as i64));
            cx.probe(Probe::new("erc_digest", replica, prefix));
        } else if let Some(number) = self.receipts.remove(&id) {
            cx.probe(Probe::new("erc_receipt", number, i64::from(!body.is_null())));
        }
    }
}

impl Protocol for RegistryClient {
    type Timer = ClientTimer;

    fn on_start(&mut self, cx: &mut Context<'_, ClientTimer>) {
        self.started = cx.now();
        cx.set_timer(cx.now() + self.config.interval, ClientTimer::Next);
        cx.set_timer(cx.now() + self.config.verify_after, ClientTimer::Verify);
    }

    fn on_message(&mut self, cx: &mut Context<'_, ClientTimer>, from: SocketAddr, payload: Bytes) {
        match Message::decode(&payload) {
            Ok(Message::Answer(a)) => self.answered(cx, from, a.transaction, a.height, a.kind),
            Ok(Message::QueryAnswer(a)) => self.query_answered(cx, a.id, a.result),
            _ => {}
        }
    }

    fn on_timer(&mut self, cx: &mut Context<'_, ClientTimer>, timer: ClientTimer) {
        match timer {
            ClientTimer::Next => {
                if cx.now().saturating_since(self.started) < self.config.stop_after {
                    self.submit(cx);
                    cx.set_timer(cx.now() + self.config.interval, ClientTimer::Next);
                }
            }
            ClientTimer::Overdue(number) => self.overdue(cx, number),
            ClientTimer::Verify => self.verify(cx),
            ClientTimer::VerifyAgain(round) => self.ask_receipts(cx, round),
        }
    }
}

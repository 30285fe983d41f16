//! The API node: the development chain (`erc8004::dev::DevLedger`) on the node's simulated disk,
//! and the REST API (`erc8004_api::service::Api`) over it, exactly as `hypermesh dev --api`
//! serves them, behind a model of the original's database pool: each request holds one of
//! `pool` connections for its service time (`read_time`, plus `miss_time` when the answer was
//! read from the store, plus `row_time` for each row an owner search examined, plus
//! `write_time` for a transaction), requests find a free one or wait
//! in a queue of `queue_max` (unbounded: the guide's exhaustion), and one past the bound is
//! answered 503 with `Retry-After` at once, never processed. The answer leaves when its service
//! time is over; a crash loses the answers still in service (their clients ask again).
//!
//! Probes, every second: the cache's counters (as increases) and size, the view's age and stale
//! reads, the longest queue, the owner searches run and the rows they examined, the answers by
//! status, and the guide's alerts as the API evaluates
//! them (each answer's latency from its arrival, queueing included, and the refusals the pool
//! gave on the API's behalf counted in); when asked (`check_at`), the chain's truth
//! for the judges: its agents and each agent's feedback entries, and how many of its agents no
//! successful registration made (a reverted one's writes kept: the guide's partial writes).

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use alloy_sol_types::SolEvent;
use bytes::Bytes;
use erc8004::abi::{IdentityRegistry, IDENTITY_REGISTRY};
use erc8004::chain::ChainConfig;
use erc8004::dev::{DevLedger, LedgerOn};
use erc8004::rpc::RpcService;
use erc8004_api::alerts::Alert;
use erc8004_api::cache::CacheCounters;
use erc8004_api::gate::{error, Gate};
use erc8004_api::index::SearchTally;
use erc8004_api::keys::ApiKeys;
use erc8004_api::service::{Api, ApiConfig};
use runtime::{Actor, Env, HttpRequest, HttpResponse, Instant, Probe, Storage, TimerToken};

use super::wire;

/// The API node's settings.
pub struct ServerConfig {
    /// The API keys file (`hypermesh keys` writes the same).
    pub keys: Vec<u8>,
    /// The cache and statistics.
    pub api: ApiConfig,
    /// Requests served at once.
    pub pool: usize,
    /// Requests waiting at most (`None`: unbounded).
    pub queue_max: Option<usize>,
    /// Service time of every request.
    pub read_time: Duration,
    /// Added when the store was read.
    pub miss_time: Duration,
    /// Added for a transaction.
    pub write_time: Duration,
    /// Added per row an owner search examined.
    pub row_time: Duration,
    /// The cache is down from, until (the run's time).
    pub cache_down: Option<(Duration, Duration)>,
    /// When to probe the chain's truth (the run's time).
    pub check_at: Duration,
    /// The chain's settings (`on_revert`: the guide's partial writes as a variant).
    pub chain: ChainConfig,
}

/// Between samples of the figures.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// Before opening the chain again after its disk failed.
const REOPEN_AFTER: Duration = Duration::from_millis(100);
/// The `Retry-After` of a request refused for a full queue, or while the chain is not open.
const RETRY_AFTER_S: u64 = 1;

const SAMPLE: TimerToken = 1;
const CACHE_DOWN: TimerToken = 2;
const CACHE_UP: TimerToken = 3;
const CHECK: TimerToken = 4;
const REOPEN: TimerToken = 5;
/// Tokens from here name answers in service.
const IN_SERVICE: TimerToken = 1 << 32;

/// An answer in service: to whom, for which request, which arrived when.
struct InService {
    to: SocketAddr,
    id: u64,
    answer: HttpResponse,
    arrived: Instant,
}

/// The API node (see the module documentation).
pub struct ApiNode {
    config: Arc<ServerConfig>,
    ledger: Option<DevLedger>,
    api: Api,
    queue: VecDeque<(SocketAddr, u64, HttpRequest, Instant)>,
    in_service: BTreeMap<TimerToken, InService>,
    next_token: TimerToken,
    /// Since the last sample: answers by status, the longest queue, the cache's counters then.
    answers: BTreeMap<u16, i64>,
    queue_longest: usize,
    counted: CacheCounters,
    stale_counted: u64,
    searched_counted: SearchTally,
}

impl ApiNode {
    /// A node that has not started.
    pub fn new(config: Arc<ServerConfig>) -> ApiNode {
        let keys = ApiKeys::from_json(&config.keys).expect("the workload writes a readable keys file");
        let api = Api::new(Gate::new(keys), config.api);
        ApiNode {
            config,
            ledger: None,
            api,
            queue: VecDeque::new(),
            in_service: BTreeMap::new(),
            next_token: IN_SERVICE,
            answers: BTreeMap::new(),
            queue_longest: 0,
            counted: CacheCounters::default(),
            stale_counted: 0,
            searched_counted: SearchTally::default(),
        }
    }

    fn open(&mut self, env: &mut dyn Env) {
        match DevLedger::open(env, self.config.chain.clone()) {
            Ok((ledger, opened)) => {
                env.probe(Probe::new("api_opened", opened.replayed, opened.truncated_bytes as i64));
                self.ledger = Some(ledger);
            }
            Err(e) => {
                tracing::debug!("the API node's chain did not open: {e}");
                env.probe(Probe::new("api_open_failed", 0, 1));
                let at = env.now() + REOPEN_AFTER;
                env.set_timer(at, REOPEN);
            }
        }
    }

    /// Takes `request` in: served if a connection is free, else queued, else refused.
    fn admit(&mut self, env: &mut dyn Env, from: SocketAddr, id: u64, request: HttpRequest) {
        let arrived = env.now();
        if self.busy() < self.config.pool {
            return self.serve(env, from, id, request, arrived);
        }
        if self.config.queue_max.is_some_and(|max| self.queue.len() >= max) {
            let busy = error(
                503,
                "server_busy",
                "every connection to the store is busy and the queue is full: this request was not processed; \
                 send it again after Retry-After",
            )
            .with_header("Retry-After", RETRY_AFTER_S.to_string());
            self.api.record_backend_answer(busy.status);
            return self.send(env, from, id, &busy, arrived);
        }
        self.queue.push_back((from, id, request, arrived));
        self.queue_longest = self.queue_longest.max(self.queue.len());
    }

    fn busy(&self) -> usize {
        self.in_service.len()
    }

    /// Answers `request` now; the answer leaves after its service time.
    fn serve(&mut self, env: &mut dyn Env, from: SocketAddr, id: u64, request: HttpRequest, arrived: Instant) {
        let before = self.api.cache().counters();
        let rows_before = self.api.searched().rows_examined;
        let now = env.wall_now();
        let answer = match self.ledger.as_mut() {
            Some(ledger) => {
                let storage: &mut dyn Storage = env;
                let mut source = RpcService::new(LedgerOn { ledger, storage });
                self.api.handle(&mut source, &request, now)
            }
            None => {
                let refused = error(
                    503,
                    "store_unavailable",
                    "the chain is not open (its disk failed): this request was not processed; send it again after Retry-After",
                )
                .with_header("Retry-After", RETRY_AFTER_S.to_string());
                self.api.record_backend_answer(refused.status);
                refused
            }
        };
        if self.ledger.as_ref().is_some_and(|l| l.unsure().is_some()) {
            // A commit failed after its block was written: as `hypermesh dev` asks its operator
            // to, restart the chain, replaying what its log holds.
            env.probe(Probe::new("api_reopen", 0, 1));
            self.ledger = None;
            self.open(env);
        }
        let after = self.api.cache().counters();
        let mut time = self.config.read_time;
        if after.misses + after.errors > before.misses + before.errors {
            time += self.config.miss_time;
        }
        if request.method == "POST" {
            time += self.config.write_time;
        }
        let rows = self.api.searched().rows_examined - rows_before;
        time += self
            .config
            .row_time
            .saturating_mul(u32::try_from(rows).unwrap_or(u32::MAX));
        if time.is_zero() {
            return self.send(env, from, id, &answer, arrived);
        }
        let token = self.next_token;
        self.next_token += 1;
        self.in_service.insert(
            token,
            InService {
                to: from,
                id,
                answer,
                arrived,
            },
        );
        let at = env.now() + time;
        env.set_timer(at, token);
    }

    /// Sends `answer`, counting it and its latency from `arrived` (queueing and service time).
    fn send(&mut self, env: &mut dyn Env, to: SocketAddr, id: u64, answer: &HttpResponse, arrived: Instant) {
        *self.answers.entry(answer.status).or_default() += 1;
        self.api
            .record_latency(env.now().saturating_since(arrived).as_secs_f64());
        // A lost answer is the client's to ask again.
        let _ = env.send_to(to, wire::encode_response(id, answer));
    }

    fn sample(&mut self, env: &mut dyn Env) {
        let c = self.api.cache().counters();
        let was = self.counted;
        for (name, now, then) in [
            ("cache_hits", c.hits, was.hits),
            ("cache_misses", c.misses, was.misses),
            ("cache_evictions", c.evictions, was.evictions),
            ("cache_invalidations", c.invalidations, was.invalidations),
            ("cache_stale_served", c.stale_served, was.stale_served),
            ("cache_errors", c.errors, was.errors),
        ] {
            env.probe(Probe::new(name, 0, (now - then) as i64));
        }
        self.counted = c;
        env.probe(Probe::new("cache_entries", 0, self.api.cache().len() as i64));
        env.probe(Probe::new("cache_bytes", 0, self.api.cache().bytes() as i64));
        let view = self.api.view();
        env.probe(Probe::new(
            "view_age_ms",
            0,
            view.age(env.wall_now()).as_millis() as i64,
        ));
        env.probe(Probe::new(
            "view_stale_reads",
            0,
            (view.stale_reads() - self.stale_counted) as i64,
        ));
        self.stale_counted = view.stale_reads();
        env.probe(Probe::new("queue_longest", 0, self.queue_longest as i64));
        let searched = self.api.searched();
        let was = self.searched_counted;
        env.probe(Probe::new("searches", 0, (searched.searches - was.searches) as i64));
        env.probe(Probe::new(
            "search_rows",
            0,
            (searched.rows_examined - was.rows_examined) as i64,
        ));
        self.searched_counted = searched;
        self.queue_longest = self.queue.len();
        for (status, count) in std::mem::take(&mut self.answers) {
            env.probe(Probe::new("answers", u64::from(status), count));
        }
        let firing: Vec<Alert> = self
            .api
            .evaluate_alerts(env.wall_now())
            .iter()
            .map(|f| f.alert)
            .collect();
        for (i, alert) in Alert::ALL.iter().enumerate() {
            env.probe(Probe::new("alert_firing", i as u64, i64::from(firing.contains(alert))));
        }
        let at = env.now() + SAMPLE_EVERY;
        env.set_timer(at, SAMPLE);
    }

    /// The chain's truth for the judges.
    fn check(&mut self, env: &mut dyn Env) {
        let Some(ledger) = &self.ledger else {
            env.probe(Probe::new("truth_unavailable", 0, 1));
            return;
        };
        let chain = ledger.chain();
        let registries = chain.registries();
        env.probe(Probe::new("truth_agents", 0, registries.agent_count() as i64));
        // Every agent is minted by a registration that succeeded, whose receipt's `Registered`
        // log names it: counted over the whole chain, so only while it keeps every block.
        if chain.oldest_kept() <= 1 {
            let registered = (1..=chain.head())
                .filter_map(|number| chain.block(number))
                .flat_map(|block| &block.transactions)
                .filter_map(|hash| chain.receipt(hash))
                .flat_map(|receipt| &receipt.logs)
                .filter(|log| {
                    log.address == IDENTITY_REGISTRY
                        && log.topics().first() == Some(&IdentityRegistry::Registered::SIGNATURE_HASH)
                })
                .count();
            let partial = registries.agent_count().saturating_sub(registered);
            env.probe(Probe::new("truth_partial_agents", 0, partial as i64));
        }
        for id in registries.agent_ids() {
            let agent = registries.agent(id).expect("listed");
            env.probe(Probe::new("truth_feedback", id.to::<u64>(), agent.feedback as i64));
        }
    }

    /// The timer of run time `at`, if still to come: set, and true.
    fn at_run_time(env: &mut dyn Env, at: Duration, token: TimerToken) -> bool {
        let at = Instant::from_nanos(at.as_nanos() as u64);
        if at > env.now() {
            env.set_timer(at, token);
            return true;
        }
        false
    }
}

impl Actor for ApiNode {
    fn on_start(&mut self, env: &mut dyn Env) {
        self.open(env);
        let at = env.now() + SAMPLE_EVERY;
        env.set_timer(at, SAMPLE);
        if let Some((from, length)) = self.config.cache_down {
            let down_set = Self::at_run_time(env, from, CACHE_DOWN);
            let up_set = Self::at_run_time(env, from + length, CACHE_UP);
            // Restarted inside the window: the cache is still down.
            if !down_set && up_set {
                self.api.cache_mut().set_failing(true);
            }
        }
        Self::at_run_time(env, self.config.check_at, CHECK);
    }

    fn on_datagram(&mut self, env: &mut dyn Env, from: SocketAddr, payload: Bytes) {
        match wire::decode_request(&payload) {
            Some((id, request)) => self.admit(env, from, id, request),
            None => env.probe(Probe::new("api_unreadable", 0, 1)),
        }
    }

    fn on_timer(&mut self, env: &mut dyn Env, token: TimerToken) {
        match token {
            SAMPLE => self.sample(env),
            CACHE_DOWN => {
                self.api.cache_mut().set_failing(true);
                env.probe(Probe::new("cache_down", 0, 1));
            }
            CACHE_UP => {
                self.api.cache_mut().set_failing(false);
                env.probe(Probe::new("cache_down", 0, 0));
            }
            CHECK => self.check(env),
            REOPEN if self.ledger.is_none() => self.open(env),
            REOPEN => {}
            token => {
                let Some(done) = self.in_service.remove(&token) else {
                    return;
                };
                self.send(env, done.to, done.id, &done.answer, done.arrived);
                while self.busy() < self.config.pool {
                    let Some((from, id, request, arrived)) = self.queue.pop_front() else {
                        break;
                    };
                    self.serve(env, from, id, request, arrived);
                }
            }
        }
    }
}

//! The API as an [`HttpService`]: routes, parameters and errors, over the registries' chain.
//!
//! Built so far: `GET /health` and `GET /metrics` (no key), and behind the [`Gate`]
//! `GET /api/v1/agents/` (a page in id order: `limit` 1 to [`PAGE_LIMIT_MAX`], default
//! [`PAGE_LIMIT_DEFAULT`], and `cursor`, the last id of the previous page; filtered by owner,
//! registration file, feedback tag and trusted reputation: [`crate::list`]),
//! `GET /api/v1/agents/{id}`, `/{id}/feedback` and `/{id}/validations` (pages the same way, their
//! cursors opaque strings), `/{id}/reputation` (the summary the registry's `getSummary` gives,
//! over `clients`, optionally one or both tags), `/{id}/stats` (the guide's materialized
//! views, [`crate::view::StatsView`]) and `/{id}/registration` (its registration file,
//! [`crate::registration`]), and `POST /api/v1/transactions` (a signed transaction handed
//! to the chain, answered with its receipt once included, else 202 and then by
//! `GET /api/v1/transactions/{hash}`), and `GET /api/v1/openapi.json` (the
//! OpenAPI document of them all). A parameter a route does not serve is refused with 400 naming
//! it, never ignored.
//!
//! Every read first brings the [`Follower`] to the chain's head, in the same read of the chain
//! that answers it; answers then come from the [`ResponseCache`] while nothing they show has
//! changed since, and from the registries otherwise.
//!
//! Every answer is JSON but `/metrics`. Everything under `/api/v1` needs a key first (the gate's
//! 401 or 429), then an unknown route is 404, a method other than GET or HEAD 405 with `Allow`, a
//! bad parameter 400 naming it; every `/api/v1` answer let through the gate carries the key's
//! rate-limit headers. Ids are decimal strings (they are 256-bit), addresses checksummed hex,
//! feedback values decimal strings (128-bit).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use alloy_primitives::{Address, B256, U256};
use erc8004::chain::Chain;
use erc8004::dev::DevChain;
use erc8004::read::{Agent, FeedbackEntry, ValidationEntry};
use erc8004::registries::Registries;
use erc8004::reputation::summarize;
use erc8004::rpc::{RpcNode, RpcService, SendError};
use runtime::{HttpRequest, HttpResponse, HttpService, Storage, WallTime};
use serde_json::{json, Value};

use crate::alerts::{AlertRules, AlertState, Firing, Tallies};
use crate::cache::{CacheConfig, CacheErrors, ResponseCache};
use crate::gate::{error, Gate, JSON};
use crate::health::ConsensusHealth;
use crate::index::{Search, SearchTally};
use crate::keys::Whitespace;
use crate::metrics::{ApiMetrics, LoadGauge, Scrape, Stopwatch, CONTENT_TYPE};
use crate::view::{AgentStats, Depends, Follower, Refresh, StatsView};

/// Agents per page at most.
pub const PAGE_LIMIT_MAX: usize = 100;
/// Agents per page when `limit` is not given.
pub const PAGE_LIMIT_DEFAULT: usize = 20;

/// Where the API reads the registries from, and hands transactions to: the chain a node holds.
pub trait ChainSource {
    /// Runs `read` on the chain as it is now.
    fn with_chain<T>(&self, read: impl FnOnce(&Chain) -> T) -> T;

    /// The chain's head as last committed, read without taking the chain ([`DevChain::head_watch`]),
    /// if the source can tell: while it is where the API last read the chain, nothing changed,
    /// and an answer from the cache needs no read of the chain at all (not even waiting for a
    /// commit that is syncing). `None`: every answer reads the chain first.
    fn committed_head(&self) -> Option<u64> {
        None
    }

    /// Hands the signed transaction `raw` to the chain, as [`RpcService::send_raw`] does: its
    /// hash once taken, or why not. A source that only reads refuses every one.
    fn submit(&mut self, raw: &[u8], now: WallTime) -> Result<B256, SendError> {
        let _ = (raw, now);
        Err(SendError::NotTaken(
            "this API only reads: its node takes no transactions here".into(),
        ))
    }

    /// The consensus replica's health, on a cluster node (`None`: no replica, as on the
    /// development chain, which commits each transaction as it takes it).
    fn consensus(&self) -> Option<ConsensusHealth> {
        None
    }
}

impl ChainSource for Chain {
    fn with_chain<T>(&self, read: impl FnOnce(&Chain) -> T) -> T {
        read(self)
    }
}

impl<S: Storage + Send> ChainSource for DevChain<S> {
    fn with_chain<T>(&self, read: impl FnOnce(&Chain) -> T) -> T {
        read(self.chain())
    }
}

impl<N: RpcNode> ChainSource for RpcService<N> {
    fn with_chain<T>(&self, read: impl FnOnce(&Chain) -> T) -> T {
        read(&self.node().chain())
    }

    fn submit(&mut self, raw: &[u8], now: WallTime) -> Result<B256, SendError> {
        self.send_raw(raw, now)
    }
}

/// A source whose committed head is published apart from it ([`DevChain::head_watch`]): reads
/// of the cache need not take the chain while nothing was committed.
pub struct Watched<S> {
    /// The source.
    pub source: S,
    /// Its head as last committed.
    pub head: Arc<AtomicU64>,
}

impl<S: ChainSource> ChainSource for Watched<S> {
    fn with_chain<T>(&self, read: impl FnOnce(&Chain) -> T) -> T {
        self.source.with_chain(read)
    }

    fn committed_head(&self) -> Option<u64> {
        Some(self.head.load(Ordering::Acquire))
    }

    fn submit(&mut self, raw: &[u8], now: WallTime) -> Result<B256, SendError> {
        self.source.submit(raw, now)
    }

    fn consensus(&self) -> Option<ConsensusHealth> {
        self.source.consensus()
    }
}

/// A chain shared with its writer (the JSON-RPC endpoint, a test): read under its lock, which a
/// panic elsewhere does not keep poisoned.
impl<C: ChainSource> ChainSource for Arc<Mutex<C>> {
    fn with_chain<T>(&self, read: impl FnOnce(&Chain) -> T) -> T {
        let source = self.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        source.with_chain(read)
    }

    fn submit(&mut self, raw: &[u8], now: WallTime) -> Result<B256, SendError> {
        let mut source = self.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        source.submit(raw, now)
    }

    fn consensus(&self) -> Option<ConsensusHealth> {
        let source = self.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        source.consensus()
    }
}

/// The API's settings beyond its keys.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ApiConfig {
    /// The cache's bounds and invalidation.
    pub cache: CacheConfig,
    /// How the statistics are kept current.
    pub refresh: Refresh,
    /// The guide's alerts' thresholds.
    pub alerts: AlertRules,
    /// How the owner filter finds agents (without its index: the guide's slow query).
    pub search: Search,
    /// Agents a filtered page of the list examines at most.
    pub filter_rows_max: u64,
    /// How long `POST /api/v1/transactions` waits for a transaction taken but not yet included
    /// (consensus to commit it, an earlier nonce to come) before it answers `202` instead of its
    /// receipt. The wait is the backend's ([`runtime::Pending`]): one that cannot wait answers
    /// `202` at once. Zero: never wait.
    pub commit_wait: std::time::Duration,
    /// How the `Authorization` header's whitespace is read (`Literal`: the guide's pitfall).
    pub whitespace: Whitespace,
}

impl Default for ApiConfig {
    /// The default cache, statistics kept incrementally.
    fn default() -> Self {
        ApiConfig {
            cache: CacheConfig::default(),
            refresh: Refresh::Incremental,
            alerts: AlertRules::default(),
            search: Search::Indexed,
            filter_rows_max: crate::list::FILTER_ROWS_MAX,
            commit_wait: COMMIT_WAIT,
            whitespace: Whitespace::Ignored,
        }
    }
}

/// The default [`ApiConfig::commit_wait`]: consensus commits in well under a second while its
/// quorum is up; a partition that cannot commit is answered `202` within this.
pub const COMMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The REST API of one node: [`Api`] over the source it reads.
pub struct ApiService<S> {
    source: S,
    api: Api,
}

/// The API's own state (keys, follower, views, cache, figures), apart from the chain it reads:
/// each request is handed the source ([`Api::handle`]), so an actor whose storage is lent for
/// each call (the simulator's) serves the same API as [`ApiService`] does.
pub struct Api {
    gate: Gate,
    follower: Follower,
    view: StatsView,
    cache: ResponseCache,
    metrics: ApiMetrics,
    stopwatch: Option<Stopwatch>,
    /// The OpenAPI document, written once.
    openapi: String,
    /// What the alerts read besides the cache's counters, and the alerts.
    tallies: Tallies,
    alerts: AlertState,
    evaluated_at: Option<WallTime>,
    /// The server's queue in front of the API, if the backend tells it.
    load: Option<LoadGauge>,
    search: Search,
    filter_rows_max: u64,
    commit_wait: std::time::Duration,
    /// The filtered lists' searches so far.
    searched: SearchTally,
}

/// Between evaluations of the alerts (each request checks whether one is due).
pub const ALERTS_EVALUATE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// A route: what the path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Health,
    Metrics,
    Agents,
    Agent(U256),
    Feedback(U256),
    Validations(U256),
    Reputation(U256),
    Stats(U256),
    Registration(U256),
    Transactions,
    Transaction(B256),
    OpenApi,
}

/// Every route's template, as `/metrics` labels them and the OpenAPI document lists them.
pub const TEMPLATES: &[&str] = &[
    "/health",
    "/metrics",
    "/api/v1/openapi.json",
    "/api/v1/agents/",
    "/api/v1/agents/{id}",
    "/api/v1/agents/{id}/feedback",
    "/api/v1/agents/{id}/validations",
    "/api/v1/agents/{id}/reputation",
    "/api/v1/agents/{id}/stats",
    "/api/v1/agents/{id}/registration",
    "/api/v1/transactions",
    "/api/v1/transactions/{hash}",
];

impl Route {
    /// The route's template, the label its requests are counted under.
    fn template(self) -> &'static str {
        match self {
            Route::Health => "/health",
            Route::Metrics => "/metrics",
            Route::Agents => "/api/v1/agents/",
            Route::Agent(_) => "/api/v1/agents/{id}",
            Route::Feedback(_) => "/api/v1/agents/{id}/feedback",
            Route::Validations(_) => "/api/v1/agents/{id}/validations",
            Route::Reputation(_) => "/api/v1/agents/{id}/reputation",
            Route::Stats(_) => "/api/v1/agents/{id}/stats",
            Route::Registration(_) => "/api/v1/agents/{id}/registration",
            Route::Transactions => "/api/v1/transactions",
            Route::Transaction(_) => "/api/v1/transactions/{hash}",
            Route::OpenApi => "/api/v1/openapi.json",
        }
    }

    /// The methods it takes, as `Allow` lists them.
    fn allow(self) -> &'static str {
        match self {
            Route::Transactions => "POST",
            _ => "GET, HEAD",
        }
    }
}

/// The label of requests no route matched.
const UNMATCHED: &str = "unmatched";

impl<S: ChainSource> ApiService<S> {
    /// The API over `source` with the default settings, letting through what `gate` admits.
    pub fn new(source: S, gate: Gate) -> Self {
        Self::with_config(source, gate, ApiConfig::default())
    }

    /// The API over `source` with `config`.
    pub fn with_config(source: S, gate: Gate, config: ApiConfig) -> Self {
        ApiService {
            source,
            api: Api::new(gate, config),
        }
    }

    /// Measures each request's duration with `stopwatch` (the backend's monotonic clock); without
    /// one, no duration is recorded.
    pub fn with_stopwatch(mut self, stopwatch: Stopwatch) -> Self {
        self.api.stopwatch = Some(stopwatch);
        self
    }

    /// Reads the server's queue in front of the API with `load` ([`Api::set_server_load`]).
    pub fn set_server_load(&mut self, load: LoadGauge) {
        self.api.set_server_load(load);
    }

    /// The gate, to give it new keys.
    pub fn gate_mut(&mut self) -> &mut Gate {
        self.api.gate_mut()
    }

    /// The cache (its counters, its size).
    pub fn cache(&self) -> &ResponseCache {
        self.api.cache()
    }

    /// The cache, to make it fail (a fault) or work again.
    pub fn cache_mut(&mut self) -> &mut ResponseCache {
        self.api.cache_mut()
    }

    /// The statistics view.
    pub fn view(&self) -> &StatsView {
        self.api.view()
    }

    /// The request figures.
    pub fn metrics(&self) -> &ApiMetrics {
        self.api.metrics()
    }

    /// The filtered lists' searches so far and the rows they examined.
    pub fn searched(&self) -> SearchTally {
        self.api.searched()
    }
}

impl Api {
    /// The API with `config`, letting through what `gate` admits.
    pub fn new(mut gate: Gate, config: ApiConfig) -> Self {
        gate.set_whitespace(config.whitespace);
        Api {
            gate,
            follower: Follower::default(),
            view: StatsView::new(config.refresh),
            cache: ResponseCache::new(config.cache),
            metrics: ApiMetrics::default(),
            stopwatch: None,
            openapi: format!("{}\n", crate::openapi::document()),
            tallies: Tallies::default(),
            alerts: AlertState::new(config.alerts),
            evaluated_at: None,
            load: None,
            search: config.search,
            filter_rows_max: config.filter_rows_max,
            commit_wait: config.commit_wait,
            searched: SearchTally::default(),
        }
    }

    /// The filtered lists' searches so far and the rows they examined (the index's entries, or
    /// the registry's table read without it).
    pub fn searched(&self) -> SearchTally {
        self.searched
    }

    /// Reads the server's queue in front of the API with `load` (the backend's counters):
    /// `/metrics` exports it, and the error-rate alert counts the requests it refused, which
    /// the API never sees.
    pub fn set_server_load(&mut self, load: LoadGauge) {
        self.load = Some(load);
    }

    /// Evaluates the alerts at `now` over the figures so far: the alerts firing.
    pub fn evaluate_alerts(&mut self, now: WallTime) -> &[Firing] {
        let c = self.cache.counters();
        let refused = self.load.as_ref().map_or(0, |load| load().refused_busy);
        let tallies = Tallies {
            hits: c.hits,
            lookups: c.hits + c.misses + c.lookup_errors,
            answers: self.tallies.answers + refused,
            errors: self.tallies.errors + refused,
            ..self.tallies
        };
        self.alerts.evaluate(now, tallies);
        self.evaluated_at = Some(now);
        self.alerts.firing()
    }

    /// The alerts firing at the last evaluation.
    pub fn alerts_firing(&self) -> &[Firing] {
        self.alerts.firing()
    }

    /// Counts an answer the backend gave on the API's behalf without calling it (503 for a
    /// full queue), so that the error-rate alert sees it.
    pub fn record_backend_answer(&mut self, status: u16) {
        self.tallies.answers += 1;
        if status >= 500 {
            self.tallies.errors += 1;
        }
    }

    /// Counts an answer's latency as the backend measured it (from arrival to sent, queueing
    /// included), for the latency alert, where the API has no stopwatch of its own.
    pub fn record_latency(&mut self, seconds: f64) {
        self.tallies.observe_latency(seconds);
    }

    /// The gate, to give it new keys.
    pub fn gate_mut(&mut self) -> &mut Gate {
        &mut self.gate
    }

    /// The cache (its counters, its size).
    pub fn cache(&self) -> &ResponseCache {
        &self.cache
    }

    /// The cache, to make it fail (a fault) or work again.
    pub fn cache_mut(&mut self) -> &mut ResponseCache {
        &mut self.cache
    }

    /// The statistics view.
    pub fn view(&self) -> &StatsView {
        &self.view
    }

    /// The request figures.
    pub fn metrics(&self) -> &ApiMetrics {
        &self.metrics
    }

    /// Answers `request` from `source` at `now`. Never panics on any input: bad requests get a
    /// 4xx naming the problem.
    pub fn handle<S: ChainSource>(&mut self, source: &mut S, request: &HttpRequest, now: WallTime) -> HttpResponse {
        let due = self.evaluated_at.is_none_or(|at| {
            now.nanos_since(at) >= i64::try_from(ALERTS_EVALUATE_EVERY.as_nanos()).unwrap_or(i64::MAX)
        });
        if due {
            self.evaluate_alerts(now);
        }
        let started = self.stopwatch.as_ref().map(|clock| clock());
        let route = route_of(&request.path);
        let label = route.as_ref().map_or(UNMATCHED, |r| r.template());
        let mut answer = self.respond(source, route, request, now);
        if let Some(pending) = &mut answer.pending {
            // Counted when the backend settles it ([`Api::resume`]), timed from here.
            pending.token = HeldTransaction::token(&pending.token, started);
            return answer;
        }
        self.record(label, answer.status, started);
        answer
    }

    /// Asked again about `first`, the `202` of a transaction taken and not yet included (see
    /// [`runtime::HttpService::resume`]): its receipt once included, with `first`'s headers (the
    /// rate limit's); at the `last` call, `first` as it is if still not. Counted here, timed from
    /// the request.
    pub fn resume<S: ChainSource>(
        &mut self,
        source: &mut S,
        first: &HttpResponse,
        _now: WallTime,
        last: bool,
    ) -> Option<HttpResponse> {
        let held = HeldTransaction::parse(&first.pending.as_ref()?.token)?;
        let answer = match source.with_chain(|chain| receipt_json(chain, held.hash)) {
            Some(receipt) => {
                let mut answer = ok(receipt);
                answer.headers = first.headers.clone();
                answer
            }
            None if last => {
                let mut answer = first.clone();
                answer.pending = None;
                answer
            }
            None => return None,
        };
        self.record(Route::Transactions.template(), answer.status, held.started);
        Some(answer)
    }

    /// Counts an answer of `status` on the route `label`, timed from `started` (the stopwatch's).
    fn record(&mut self, label: &'static str, status: u16, started: Option<u64>) {
        let seconds = self
            .stopwatch
            .as_ref()
            .zip(started)
            .map(|(clock, started)| clock().saturating_sub(started) as f64 / 1e9);
        self.metrics.observe(label, status, seconds);
        self.tallies.answers += 1;
        if status >= 500 {
            self.tallies.errors += 1;
        }
        if let Some(seconds) = seconds {
            self.tallies.observe_latency(seconds);
        }
    }

    /// `POST /api/v1/transactions`: a signed transaction (`{"raw": "0x…"}`) handed to the chain;
    /// 200 with its receipt once included, 202 if taken and not yet included (held for an
    /// earlier nonce, or waiting for consensus), else why not.
    fn transaction<S: ChainSource>(&mut self, source: &mut S, request: &HttpRequest, now: WallTime) -> HttpResponse {
        if !request.query.is_empty() {
            return error(
                400,
                "unknown_parameter",
                "this route takes no query: send {\"raw\": \"0x…\"}",
            );
        }
        let raw = match transaction_body(&request.body) {
            Ok(raw) => raw,
            Err(why) => return error(400, "bad_body", &why),
        };
        let hash = match source.submit(&raw, now) {
            Ok(hash) => hash,
            Err(refused) => return refused_transaction(&refused),
        };
        if let Some(receipt) = source.with_chain(|chain| receipt_json(chain, hash)) {
            return ok(receipt);
        }
        let wait_ms = self.commit_wait.as_millis();
        let taken = HttpResponse::new(
            202,
            JSON,
            format!(
                "{}\n",
                json!({
                    "hash": hash.to_string(),
                    "status": "taken",
                    "message": format!(
                        "taken, not included yet (held for an earlier nonce of its sender, or consensus has \
                         not committed it; this API waits up to {wait_ms} ms for it where its server can hold \
                         an answer): GET /api/v1/transactions/{hash} answers its receipt once it is"
                    ),
                })
            ),
        );
        if self.commit_wait.is_zero() {
            return taken;
        }
        let wait = i64::try_from(self.commit_wait.as_nanos()).unwrap_or(i64::MAX);
        taken.pending(
            hash.to_string(),
            WallTime::from_unix_nanos(now.as_unix_nanos().saturating_add(wait)),
        )
    }

    /// The answer to `route`, once past the gate and the method check.
    fn answer<S: ChainSource>(
        &mut self,
        source: &mut S,
        route: Route,
        request: &HttpRequest,
        now: WallTime,
    ) -> HttpResponse {
        let Api {
            follower,
            view,
            cache,
            metrics,
            alerts,
            search,
            filter_rows_max,
            searched,
            gate,
            load,
            ..
        } = self;
        let key = format!("{}?{}", request.path, request.query);
        let cacheable = !matches!(route, Route::Health | Route::Metrics | Route::Transaction(_));
        if cacheable && cache.is_failing() && cache.config().on_error == CacheErrors::Fail {
            // The guide's faulty setting: the failed lookup (counted) fails the read, as the
            // original's unhandled Redis error did.
            let _ = cache.get(&key, follower);
            return error(
                500,
                "cache_error",
                "the cache failed, and this API is set to fail reads rather than read the registries",
            );
        }
        let looked = cacheable && source.committed_head() == Some(follower.head());
        if looked {
            // Nothing committed since the follower last read the chain: a cached answer is
            // current, and is served without waiting for the chain's lock.
            if let Some(hit) = cache.get(&key, follower) {
                return hit;
            }
        }
        // Parsed only past the fast path: an entry is kept for a whole query that read.
        let params = match request.query_pairs() {
            Ok(p) => p,
            Err(e) => return error(400, "bad_query", &e),
        };
        let consensus = if matches!(route, Route::Health) {
            source.consensus()
        } else {
            None
        };
        source.with_chain(|chain| {
            follower.catch_up(chain, view, now);
            match route {
                Route::Transaction(hash) => match params.first() {
                    Some((name, _)) => error(
                        400,
                        "unknown_parameter",
                        &format!("this route takes no parameter {name:?}"),
                    ),
                    None => match receipt_json(chain, hash) {
                        Some(receipt) => ok(receipt),
                        None => error(
                            404,
                            "transaction_not_found",
                            &format!("no transaction {hash} is included (yet): one taken is included once committed"),
                        ),
                    },
                },
                Route::Health => crate::health::answer(chain, view, cache, alerts.firing(), consensus, now),
                Route::Metrics => {
                    let scrape = Scrape {
                        cache,
                        view,
                        view_age_seconds: view.age(now).as_secs_f64(),
                        chain_head: chain.head(),
                        agents: chain.registries().agent_count(),
                        alerts: alerts.firing(),
                        searched: *searched,
                        gate,
                        server: load.as_ref().map(|load| load()),
                    };
                    HttpResponse::new(200, CONTENT_TYPE, metrics.exposition(&scrape))
                }
                _ => {
                    // Looked up above already and missed: an answer is read either way (and the
                    // follower has just read anything committed since).
                    if !looked {
                        if let Some(hit) = cache.get(&key, follower) {
                            return hit;
                        }
                    }
                    let registries = chain.registries();
                    let search = (*search, *filter_rows_max, &mut *searched);
                    let (answer, depends) = read(route, &params, &registries, view, follower, search);
                    if answer.status == 200 {
                        if let Some(depends) = depends {
                            cache.put(key, answer.clone(), depends, follower.generation());
                        }
                    }
                    answer
                }
            }
        })
    }

    fn respond<S: ChainSource>(
        &mut self,
        source: &mut S,
        route: Result<Route, HttpResponse>,
        request: &HttpRequest,
        now: WallTime,
    ) -> HttpResponse {
        // Everything under /api/v1 needs a key and carries its rate-limit headers, whatever the
        // route or method; /health and /metrics need neither.
        let gated = request.path == "/api/v1" || request.path.starts_with("/api/v1/");
        let admitted = if gated {
            match self.gate.admit(request, now) {
                Ok(admitted) => Some(admitted),
                Err(refused) => return refused,
            }
        } else {
            None
        };
        let mut answer = match route {
            Err(answer) => answer,
            // HEAD is GET without the body, which the server leaves out.
            Ok(route) if !route.allow().split(", ").any(|m| m == request.method) => error(
                405,
                "method_not_allowed",
                &format!(
                    "{} {} is not served: this route takes {}",
                    request.method,
                    request.path,
                    route.allow()
                ),
            )
            .with_header("Allow", route.allow()),
            Ok(Route::Transactions) => self.transaction(source, request, now),
            Ok(Route::OpenApi) if !request.query.is_empty() => error(
                400,
                "unknown_parameter",
                "this route takes no query: GET /api/v1/openapi.json",
            ),
            Ok(Route::OpenApi) => HttpResponse::new(200, JSON, self.openapi.clone()),
            Ok(route) => self.answer(source, route, request, now),
        };
        if let Some(admitted) = admitted {
            answer.headers.extend(admitted.headers);
        }
        answer
    }
}

/// The receipt of transaction `hash` as the API answers it, if the chain included it.
fn receipt_json(chain: &Chain, hash: B256) -> Option<Value> {
    let receipt = chain.receipt(&hash)?;
    Some(json!({
        "hash": hash.to_string(),
        "status": "included",
        "block_number": receipt.block_number,
        "success": receipt.status,
        "revert_reason": receipt.revert.as_ref().map(|(_, reason)| reason.clone()),
        "logs": receipt.logs.iter().map(|log| json!({
            "address": log.address.to_checksum(None),
            "topics": log.topics().iter().map(|t| t.to_string()).collect::<Vec<_>>(),
            "data": log.data.data.to_string(),
        })).collect::<Vec<_>>(),
    }))
}

/// Reads `route` from the registries: the answer, and what it shows (`None`: not to be cached).
fn read(
    route: Route,
    params: &[(String, String)],
    registries: &Registries,
    view: &mut StatsView,
    follower: &Follower,
    (search, rows_max, searched): (Search, u64, &mut SearchTally),
) -> (HttpResponse, Option<Depends>) {
    let about = |id: U256| {
        Some(Depends {
            agents: vec![id],
            ..Depends::default()
        })
    };
    match route {
        Route::Health | Route::Metrics | Route::Transactions | Route::Transaction(_) | Route::OpenApi => {
            unreachable!("answered before the cache")
        }
        Route::Agents => {
            let query = match crate::list::parse(params) {
                Ok(query) => query,
                Err(answer) => return (answer, None),
            };
            let (answer, depends) = crate::list::answer(&query, (search, rows_max), view, registries, searched);
            (answer, Some(depends))
        }
        Route::Reputation(id) => {
            let filter = match reputation_filter(params) {
                Ok(filter) => filter,
                Err(answer) => return (answer, None),
            };
            if !registries.is_agent(id) {
                return (not_an_agent(id), None);
            }
            let counted = registries.feedback_entries(id).into_iter().filter(|e| filter.counts(e));
            let summary = summarize(counted.map(|e| (e.feedback.value, e.feedback.decimals)));
            let answer = ok(json!({
                "agent_id": id.to_string(),
                "clients": filter.clients.iter().map(|c| c.to_checksum(None)).collect::<Vec<_>>(),
                "tag1": filter.tag1,
                "tag2": filter.tag2,
                "count": summary.count,
                "value": summary.value.to_string(),
                "decimals": summary.decimals,
            }));
            (answer, about(id))
        }
        Route::Agent(id) => {
            if let Some(refused) = no_parameters(params) {
                return (refused, None);
            }
            match registries.agent(id) {
                Some(agent) => (ok(agent_json(&agent)), about(id)),
                None => (not_an_agent(id), None),
            }
        }
        Route::Registration(id) => {
            if let Some(refused) = no_parameters(params) {
                return (refused, None);
            }
            let Some(uri) = registries.uri(id) else {
                return (not_an_agent(id), None);
            };
            let depends = Depends {
                identities: vec![id],
                ..Depends::default()
            };
            (ok(crate::registration::answer(id, uri)), Some(depends))
        }
        Route::Stats(id) => {
            if let Some(refused) = no_parameters(params) {
                return (refused, None);
            }
            if !registries.is_agent(id) {
                return (not_an_agent(id), None);
            }
            let (stats, stale) = view.agent(id, follower);
            // A periodic view may not hold an agent registered since it was made.
            let answer = ok(stats_json(id, &stats.cloned().unwrap_or_default()));
            // A stale answer is not kept: each read of it is served from the view, and counted.
            let depends = (!stale).then(|| Depends {
                agents: vec![id],
                stats: true,
                ..Depends::default()
            });
            (answer, depends)
        }
        Route::Feedback(id) => {
            let (limit, cursor) = match page_params(params, feedback_cursor) {
                Ok(page) => page,
                Err(answer) => return (answer, None),
            };
            if !registries.is_agent(id) {
                return (not_an_agent(id), None);
            }
            let (entries, more) = paged(registries.feedback_page(id, cursor, limit + 1), limit);
            let next = more
                .then(|| entries.last().map(|e| format!("{}-{}", e.client, e.index)))
                .flatten();
            let answer = ok(json!({
                "agent_id": id.to_string(),
                "feedback": entries.iter().map(feedback_json).collect::<Vec<_>>(),
                "next_cursor": next,
            }));
            (answer, about(id))
        }
        Route::Validations(id) => {
            let (limit, start) = match page_params(params, decimal_u64) {
                Ok(page) => page,
                Err(answer) => return (answer, None),
            };
            if !registries.is_agent(id) {
                return (not_an_agent(id), None);
            }
            let start = start.unwrap_or(0);
            let (entries, more) = paged(registries.validation_page(id, start, limit + 1), limit);
            let next = more.then(|| (start + limit as u64).to_string());
            let answer = ok(json!({
                "agent_id": id.to_string(),
                "validations": entries.iter().map(validation_json).collect::<Vec<_>>(),
                "next_cursor": next,
            }));
            (answer, about(id))
        }
    }
}

/// A transaction whose answer the backend holds ([`runtime::Pending`]): its hash, and when its
/// request began by the API's stopwatch, written in the mark's token as `HASH` or
/// `HASH@NANOS`.
struct HeldTransaction {
    hash: B256,
    started: Option<u64>,
}

impl HeldTransaction {
    /// `hash` (the token [`Api::transaction`] wrote) with `started`.
    fn token(hash: &str, started: Option<u64>) -> String {
        match started {
            Some(started) => format!("{hash}@{started}"),
            None => hash.to_owned(),
        }
    }

    /// The token read back; `None`: not one this API wrote.
    fn parse(token: &str) -> Option<HeldTransaction> {
        let (hash, started) = match token.split_once('@') {
            Some((hash, started)) => (hash, Some(started.parse().ok()?)),
            None => (token, None),
        };
        Some(HeldTransaction {
            hash: hash.parse().ok()?,
            started,
        })
    }
}

/// The 400 for a route that takes no parameter, if one was given.
fn no_parameters(params: &[(String, String)]) -> Option<HttpResponse> {
    params.first().map(|(name, _)| {
        error(
            400,
            "unknown_parameter",
            &format!("this route takes no parameter {name:?}"),
        )
    })
}

impl<S: ChainSource + Send> HttpService for ApiService<S> {
    fn handle(&mut self, request: &HttpRequest, now: WallTime) -> HttpResponse {
        self.api.handle(&mut self.source, request, now)
    }

    fn resume(&mut self, first: &HttpResponse, now: WallTime, last: bool) -> Option<HttpResponse> {
        self.api.resume(&mut self.source, first, now, last)
    }
}

/// A decimal number as ids are written: digits only, no leading zero, no sign, no separators
/// (the number parser alone would take "" as 0, hex and underscores).
pub(crate) fn decimal_id(text: &str) -> Option<U256> {
    let canonical =
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse::<U256>().ok()).flatten()
}

/// The route `path` names, or the 404 (or 400 for an id that is not one).
fn route_of(path: &str) -> Result<Route, HttpResponse> {
    let not_found = || error(404, "not_found", &format!("no route {path}: the API is under /api/v1/"));
    match path {
        "/health" => return Ok(Route::Health),
        "/metrics" => return Ok(Route::Metrics),
        _ => {}
    }
    match path {
        "/api/v1/transactions" => return Ok(Route::Transactions),
        "/api/v1/openapi.json" => return Ok(Route::OpenApi),
        _ => {}
    }
    if let Some(hash) = path.strip_prefix("/api/v1/transactions/").filter(|h| !h.is_empty()) {
        let written = hash.len() == 66 && hash.starts_with("0x") && hash[2..].bytes().all(|b| b.is_ascii_hexdigit());
        return match hash.parse::<B256>().ok().filter(|_| written) {
            Some(hash) => Ok(Route::Transaction(hash)),
            None => Err(error(
                400,
                "bad_transaction_hash",
                &format!("{hash:?} is not a transaction hash: give 0x and 64 hex digits, as POST answered it"),
            )),
        };
    }
    let rest = path
        .strip_prefix("/api/v1/agents")
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        .ok_or_else(not_found)?;
    // One URL per resource: a trailing slash is allowed, an empty segment inside is not.
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let parts: Vec<&str> = rest.split('/').skip(1).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(not_found());
    }
    let id = |text: &str| -> Result<U256, HttpResponse> {
        decimal_id(text).ok_or_else(|| {
            error(
                400,
                "bad_agent_id",
                &format!("{text:?} is not an agent id: give a decimal number, e.g. /api/v1/agents/0"),
            )
        })
    };
    match parts.as_slice() {
        [] => Ok(Route::Agents),
        [agent] => Ok(Route::Agent(id(agent)?)),
        [agent, "feedback"] => Ok(Route::Feedback(id(agent)?)),
        [agent, "validations"] => Ok(Route::Validations(id(agent)?)),
        [agent, "reputation"] => Ok(Route::Reputation(id(agent)?)),
        [agent, "stats"] => Ok(Route::Stats(id(agent)?)),
        [agent, "registration"] => Ok(Route::Registration(id(agent)?)),
        _ => Err(not_found()),
    }
}

/// Clients a reputation summary names at most.
pub const REPUTATION_CLIENTS_MAX: usize = 100;

/// Which feedback a reputation summary counts: the reference's `getSummary` (the named clients'
/// entries, not revoked, matching each tag that is given).
struct ReputationFilter {
    clients: Vec<Address>,
    tag1: String,
    tag2: String,
}

impl ReputationFilter {
    fn counts(&self, entry: &FeedbackEntry) -> bool {
        let f = &entry.feedback;
        !f.revoked
            && self.clients.contains(&entry.client)
            && (self.tag1.is_empty() || f.tag1 == self.tag1)
            && (self.tag2.is_empty() || f.tag2 == self.tag2)
    }
}

/// Adds the comma-separated addresses of a `clients` parameter to `clients`, each once; one that
/// does not read is the 400 naming it.
pub(crate) fn add_clients(value: &str, clients: &mut Vec<Address>) -> Result<(), HttpResponse> {
    for text in value.split(',').filter(|t| !t.is_empty()) {
        let client = text.parse::<Address>().map_err(|_| {
            error(
                400,
                "bad_client",
                &format!("client {text:?} is not an address (0x and 40 hex digits)"),
            )
        })?;
        if !clients.contains(&client) {
            clients.push(client);
        }
    }
    Ok(())
}

/// `clients` (required, comma-separated addresses: as the reference, a summary is over the
/// clients a reader trusts, never over whoever wrote), `tag1`, `tag2`.
fn reputation_filter(params: &[(String, String)]) -> Result<ReputationFilter, HttpResponse> {
    let mut filter = ReputationFilter {
        clients: Vec::new(),
        tag1: String::new(),
        tag2: String::new(),
    };
    for (name, value) in params {
        match name.as_str() {
            "clients" => add_clients(value, &mut filter.clients)?,
            "tag1" => filter.tag1 = value.clone(),
            "tag2" => filter.tag2 = value.clone(),
            other => {
                return Err(error(
                    400,
                    "unknown_parameter",
                    &format!("parameter {other:?} is not served: this route takes clients, tag1 and tag2"),
                ))
            }
        }
    }
    if filter.clients.is_empty() {
        return Err(error(
            400,
            "clients_required",
            "give clients=ADDRESS[,ADDRESS…]: a summary is over the clients you trust, as the registry's getSummary",
        ));
    }
    if filter.clients.len() > REPUTATION_CLIENTS_MAX {
        return Err(error(
            400,
            "too_many_clients",
            &format!("{} clients: at most {REPUTATION_CLIENTS_MAX}", filter.clients.len()),
        ));
    }
    Ok(filter)
}

/// The transaction a request body carries: `{"raw": "0x…"}`, the signed envelope in hex.
fn transaction_body(body: &[u8]) -> Result<Vec<u8>, String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        raw: String,
    }
    let body: Body = serde_json::from_slice(body).map_err(|e| format!("the body is not {{\"raw\": \"0x…\"}} ({e})"))?;
    let hex = body
        .raw
        .strip_prefix("0x")
        .filter(|hex| !hex.starts_with("0x"))
        .ok_or_else(|| "raw: give the signed transaction as 0x-prefixed hex".to_owned())?;
    alloy_primitives::hex::decode(hex).map_err(|e| format!("raw is not hex: {e}"))
}

/// The answer to a transaction the chain did not take: nothing of it was done.
fn refused_transaction(refused: &SendError) -> HttpResponse {
    match refused {
        SendError::Undecodable(why) => error(
            400,
            "bad_transaction",
            &format!("not a signed transaction for this chain: {why}"),
        ),
        SendError::NonceTooLow { .. } => error(409, "nonce_too_low", &refused.to_string()),
        SendError::NonceTooHigh { .. } => error(409, "nonce_too_high", &refused.to_string()),
        SendError::NonceHeld { .. } => error(409, "nonce_held", &refused.to_string()),
        SendError::Unsure(why) => error(
            500,
            "outcome_unknown",
            &format!(
                "the node failed while taking the transaction, which may or may not be in the chain: {why}; send the same signed transaction again once the node is back (it is answered by its hash, never applied twice)"
            ),
        ),
        SendError::NotTaken(why) => error(
            503,
            "not_accepted",
            &format!("the transaction was not accepted, nothing of it was done: {why}; send it again"),
        )
        .with_header("Retry-After", "1"),
    }
}

fn not_an_agent(id: U256) -> HttpResponse {
    error(404, "agent_not_found", &format!("no agent has id {id}"))
}

/// A feedback cursor: `ADDRESS-INDEX`, the client and index of the last entry of a page.
fn feedback_cursor(text: &str) -> Option<(Address, u64)> {
    let (client, index) = text.split_once('-')?;
    Some((client.parse().ok()?, decimal_u64(index)?))
}

/// [`decimal_id`] for a number that fits 64 bits.
fn decimal_u64(text: &str) -> Option<u64> {
    decimal_id(text).and_then(|n| u64::try_from(n).ok())
}

/// A page of at most `limit` from `items`, fetched one longer, and whether more follow it: a
/// full last page is told apart from one with more after it.
pub(crate) fn paged<T>(mut items: Vec<T>, limit: usize) -> (Vec<T>, bool) {
    let more = items.len() > limit;
    items.truncate(limit);
    (items, more)
}

/// A page's `limit`: 1 to [`PAGE_LIMIT_MAX`], or the 400 naming it.
pub(crate) fn page_limit(value: &str) -> Result<usize, HttpResponse> {
    value
        .parse::<usize>()
        .ok()
        .filter(|l| (1..=PAGE_LIMIT_MAX).contains(l))
        .ok_or_else(|| {
            error(
                400,
                "bad_limit",
                &format!("limit {value:?}: give a number from 1 to {PAGE_LIMIT_MAX}"),
            )
        })
}

/// The 400 of a `cursor` that does not read.
pub(crate) fn bad_cursor(value: &str) -> HttpResponse {
    error(
        400,
        "bad_cursor",
        &format!("cursor {value:?}: give the next_cursor of the previous page"),
    )
}

/// `limit` (1 to [`PAGE_LIMIT_MAX`], default [`PAGE_LIMIT_DEFAULT`]) and `cursor` (read by
/// `cursor_of`), and nothing else.
fn page_params<C>(
    params: &[(String, String)],
    cursor_of: impl Fn(&str) -> Option<C>,
) -> Result<(usize, Option<C>), HttpResponse> {
    let mut limit = PAGE_LIMIT_DEFAULT;
    let mut cursor = None;
    for (name, value) in params {
        match name.as_str() {
            "limit" => limit = page_limit(value)?,
            "cursor" => cursor = Some(cursor_of(value).ok_or_else(|| bad_cursor(value))?),
            other => {
                return Err(error(
                    400,
                    "unknown_parameter",
                    &format!("parameter {other:?} is not served (yet): this route takes limit and cursor"),
                ))
            }
        }
    }
    Ok((limit, cursor))
}

pub(crate) fn ok(body: Value) -> HttpResponse {
    HttpResponse::new(200, JSON, format!("{body}\n"))
}

/// An agent as a page of the list shows it: its identity record only (its feedback and
/// validations are at `/agents/{id}`), so that feedback to it leaves the pages it is on as
/// they were.
pub(crate) fn identity_json(agent: &Agent) -> Value {
    json!({
        "id": agent.id.to_string(),
        "owner": agent.owner.to_checksum(None),
        "uri": agent.uri,
        "metadata_keys": agent.metadata_keys,
    })
}

/// An agent whole: its identity record and its counts.
fn agent_json(agent: &Agent) -> Value {
    let mut json = identity_json(agent);
    json["clients"] = agent.clients.into();
    json["feedback"] = agent.feedback.into();
    json["validations"] = agent.validations.into();
    json
}

fn feedback_json(entry: &FeedbackEntry) -> Value {
    let f = &entry.feedback;
    json!({
        "client": entry.client.to_checksum(None),
        "index": entry.index,
        "value": f.value.to_string(),
        "decimals": f.decimals,
        "tag1": f.tag1,
        "tag2": f.tag2,
        "revoked": f.revoked,
    })
}

fn validation_json(entry: &ValidationEntry) -> Value {
    let v = &entry.validation;
    json!({
        "request_hash": entry.request_hash.to_string(),
        "validator": v.validator.to_checksum(None),
        "response": v.response,
        "has_response": v.has_response,
        "tag": v.tag,
        "last_update": v.last_update,
    })
}

fn stats_json(id: U256, stats: &AgentStats) -> Value {
    let mean = stats.mean();
    json!({
        "agent_id": id.to_string(),
        "feedback": {
            "given": stats.feedback,
            "revoked": stats.revoked,
            "clients": stats.clients,
            // Over every client's feedback not revoked: for a summary over the clients you
            // trust, ask /reputation?clients=.
            "mean": { "count": mean.count, "value": mean.value.to_string(), "decimals": mean.decimals },
        },
        "validations": {
            "requested": stats.validations,
            "responded": stats.responded,
            "response_mean": stats.response_mean(),
        },
    })
}

/// Whether `text` is written as an address: `0x` and 40 hex digits (the parser alone takes
/// other forms).
pub(crate) fn is_address(text: &str) -> bool {
    text.len() == 42 && text.starts_with("0x") && text[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::{route_of, TEMPLATES};

    /// Each template in [`TEMPLATES`] is served by the route it names, with the methods the
    /// OpenAPI document lists for it, and the document lists exactly these paths. (A route
    /// added to the router but to neither list is not caught here: add it to `TEMPLATES`.)
    #[test]
    fn every_route_is_in_the_openapi_document_and_every_documented_path_is_served() {
        let document = crate::openapi::document();
        for template in TEMPLATES {
            let path = template
                .replace("{id}", "2")
                .replace("{hash}", &format!("0x{}", "ab".repeat(32)));
            let route = route_of(&path).unwrap_or_else(|_| panic!("{path} is not served"));
            assert_eq!(route.template(), *template);
            let documented: BTreeSet<String> = document["paths"][template]
                .as_object()
                .unwrap_or_else(|| panic!("{template} is not documented"))
                .keys()
                .map(|m| m.to_uppercase())
                .collect();
            let served: BTreeSet<String> = route.allow().split(", ").map(str::to_owned).collect();
            assert_eq!(documented, served, "{template}");
        }
        let documented: BTreeSet<&str> = document["paths"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(documented, TEMPLATES.iter().copied().collect::<BTreeSet<_>>());
    }
}

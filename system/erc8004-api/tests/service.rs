//! The API's routes over registries built by real calls: what a client reads, and each error.

use std::sync::{Arc, Mutex};

use alloy_primitives::{keccak256, Address, B256, U256};
use alloy_sol_types::{SolCall, SolEvent};
use bytes::Bytes;
use erc8004::abi::{IdentityRegistry as I, ReputationRegistry as R, IDENTITY_REGISTRY, REPUTATION_REGISTRY};
use erc8004::chain::ChainConfig;
use erc8004::dev::DevChain;
use erc8004::rpc::RpcService;
use erc8004::wallet::{Envelope, Wallet};
use erc8004_api::gate::Gate;
use erc8004_api::keys::ApiKeys;
use erc8004_api::service::{ApiConfig, ApiService};
use runtime::{HttpRequest, HttpResponse, HttpService, MemStorage, WallTime};
use serde_json::Value;

const NOW: u64 = 1_790_000_000;

/// The development chain behind its JSON-RPC endpoint, shared by the API and the test that
/// writes to it (as `hypermesh dev` shares it).
type Shared = Arc<Mutex<RpcService<DevChain<MemStorage>>>>;

fn wallet(i: u64) -> Wallet {
    Wallet::development(42, i)
}

/// `from` calls `to` with `call` in a block of its own; the call must succeed.
fn send<C: SolCall>(chain: &Shared, from: &Wallet, to: Address, call: C) {
    let mut service = chain.lock().unwrap();
    let chain = service.node_mut();
    let nonce = chain.chain().nonce(from.address());
    let id = chain.chain().config().chain_id;
    let raw = from.sign_call(Envelope::Eip1559, id, nonce, to, call.abi_encode().into());
    chain
        .commit(
            Bytes::copy_from_slice(&raw),
            WallTime::from_unix_nanos(NOW as i64 * 1_000_000_000),
        )
        .expect("committed");
    let receipt = chain.chain().receipt(&keccak256(&raw)).expect("included");
    assert!(receipt.status, "reverted: {:?}", receipt.revert);
}

fn feedback(agent: u64, value: i128, tag1: &str) -> R::giveFeedbackCall {
    R::giveFeedbackCall {
        agentId: U256::from(agent),
        value,
        valueDecimals: 2,
        tag1: tag1.into(),
        tag2: String::new(),
        endpoint: String::new(),
        feedbackURI: String::new(),
        feedbackHash: B256::ZERO,
    }
}

/// A chain with agents 0-4 (owned by wallet 0) and two feedback entries for agent 2 (wallets 1
/// and 3, -2.50 tagged "speed").
fn chain() -> Shared {
    let (chain, _) = DevChain::open(MemStorage::default(), ChainConfig::default()).unwrap();
    let chain = Arc::new(Mutex::new(RpcService::new(chain)));
    for i in 0..5 {
        let register = I::register_1Call {
            agentURI: format!("ipfs://agent-{i}"),
        };
        send(&chain, &wallet(0), IDENTITY_REGISTRY, register);
    }
    send(&chain, &wallet(1), REPUTATION_REGISTRY, feedback(2, -250, "speed"));
    // A second client, for a second page of feedback.
    send(&chain, &wallet(3), REPUTATION_REGISTRY, feedback(2, -250, "speed"));
    chain
}

/// The API over `chain` with `config`, and a standard key.
fn api_with(chain: &Shared, config: ApiConfig) -> (ApiService<Shared>, String) {
    let mut keys = ApiKeys::new();
    let (key, _) = keys.create(&[9; 36], "standard", "tests", NOW as i64).unwrap();
    (ApiService::with_config(chain.clone(), Gate::new(keys), config), key)
}

fn api() -> (ApiService<Shared>, String) {
    api_with(&chain(), ApiConfig::default())
}

fn call(api: &mut ApiService<Shared>, method: &str, target: &str, key: Option<&str>) -> (HttpResponse, Value) {
    let mut request = HttpRequest::new(method, target, "");
    if let Some(key) = key {
        request = request.with_header("authorization", format!("Bearer {key}"));
    }
    let answer = api.handle(&request, WallTime::from_unix_nanos(NOW as i64 * 1_000_000_000));
    let body = serde_json::from_slice(&answer.body).unwrap_or_else(|e| panic!("{target}: not JSON ({e})"));
    (answer, body)
}

fn header<'a>(answer: &'a HttpResponse, name: &str) -> Option<&'a str> {
    answer
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[test]
fn agents_are_read_a_page_at_a_time_and_one_by_one_with_a_key() {
    let (mut api, key) = api();
    let key = Some(key.as_str());
    let (answer, page) = call(&mut api, "GET", "/api/v1/agents/?limit=2", key);
    assert_eq!(answer.status, 200, "{page}");
    assert_eq!(answer.content_type, "application/json");
    assert_eq!(header(&answer, "x-ratelimit-limit"), Some("1000"));
    assert_eq!(header(&answer, "x-ratelimit-remaining"), Some("999"));
    let ids: Vec<&str> = page["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!((ids, page["next_cursor"].as_str()), (vec!["0", "1"], Some("1")));
    // By offset: the page after that many agents, continued by its cursor.
    for (query, want, next) in [
        ("offset=2&limit=2", vec!["2", "3"], Some("3")),
        ("offset=0&limit=1", vec!["0"], Some("0")),
        ("offset=4", vec!["4"], None),
        ("offset=5", vec![], None),
        ("offset=10000", vec![], None),
    ] {
        let (answer, page) = call(&mut api, "GET", &format!("/api/v1/agents/?{query}"), key);
        assert_eq!(answer.status, 200, "{query}: {page}");
        let want: Vec<String> = want.iter().map(|id| id.to_string()).collect();
        assert_eq!(ids_of(&page), (want, next.map(str::to_string)), "{query}");
    }
    let (_, page) = call(&mut api, "GET", "/api/v1/agents/?limit=2&cursor=3", key);
    assert_eq!(page["agents"][0]["id"], "4");
    assert!(page["next_cursor"].is_null(), "the last page: {page}");
    let (_, page) = call(&mut api, "GET", "/api/v1/agents", key);
    assert_eq!(page["agents"].as_array().unwrap().len(), 5);
    // A last page that is exactly full says there is no more.
    let (_, page) = call(&mut api, "GET", "/api/v1/agents/?limit=5", key);
    assert!(page["next_cursor"].is_null(), "{page}");
    let (_, page) = call(&mut api, "GET", "/api/v1/agents/?limit=4", key);
    assert_eq!(page["next_cursor"], "3");
    // HEAD is GET (the server leaves the body out), and a trailing slash names the same agent.
    let (answer, _) = call(&mut api, "HEAD", "/api/v1/agents/2/", key);
    assert_eq!(answer.status, 200);

    let (answer, agent) = call(&mut api, "GET", "/api/v1/agents/2", key);
    assert_eq!(answer.status, 200);
    assert_eq!(agent["uri"], "ipfs://agent-2");
    assert_eq!(agent["owner"], wallet(0).address().to_checksum(None));
    assert_eq!(
        (agent["clients"].as_u64(), agent["feedback"].as_u64()),
        (Some(2), Some(2))
    );
    let (_, feedback) = call(&mut api, "GET", "/api/v1/agents/2/feedback", key);
    assert_eq!(feedback["feedback"][0]["value"], "-250");
    assert_eq!(
        (
            feedback["feedback"][0]["decimals"].as_u64(),
            feedback["feedback"][0]["index"].as_u64()
        ),
        (Some(2), Some(1))
    );
    // The registry's getSummary over the clients a reader names: one entry, -2.50.
    let client = wallet(1).address();
    let target = format!("/api/v1/agents/2/reputation?clients={client}&tag1=speed");
    let (answer, summary) = call(&mut api, "GET", &target, key);
    assert_eq!(answer.status, 200, "{summary}");
    assert_eq!(
        (
            summary["count"].as_u64(),
            summary["value"].as_str(),
            summary["decimals"].as_u64()
        ),
        (Some(1), Some("-250"), Some(2))
    );
    let other_tag = format!("/api/v1/agents/2/reputation?clients={client}&tag1=accuracy");
    assert_eq!(call(&mut api, "GET", &other_tag, key).1["count"], 0);
    let (answer, body) = call(&mut api, "GET", "/api/v1/agents/2/reputation", key);
    assert_eq!(
        (answer.status, body["error"]["code"].as_str()),
        (400, Some("clients_required"))
    );
    let (answer, body) = call(&mut api, "GET", "/api/v1/agents/2/reputation?clients=0x12", key);
    assert_eq!(
        (answer.status, body["error"]["code"].as_str()),
        (400, Some("bad_client"))
    );
    // Feedback a page at a time: two clients, one entry each.
    let (_, first) = call(&mut api, "GET", "/api/v1/agents/2/feedback?limit=1", key);
    assert_eq!(first["feedback"].as_array().unwrap().len(), 1, "{first}");
    let cursor = first["next_cursor"].as_str().expect("a second page").to_owned();
    let (_, second) = call(
        &mut api,
        "GET",
        &format!("/api/v1/agents/2/feedback?limit=1&cursor={cursor}"),
        key,
    );
    assert_eq!(second["feedback"].as_array().unwrap().len(), 1, "{second}");
    assert_ne!(first["feedback"][0]["client"], second["feedback"][0]["client"]);
    assert!(second["next_cursor"].is_null(), "{second}");
    let (answer, body) = call(&mut api, "GET", "/api/v1/agents/2/feedback?cursor=nope", key);
    assert_eq!(
        (answer.status, body["error"]["code"].as_str()),
        (400, Some("bad_cursor"))
    );
    let (_, validations) = call(&mut api, "GET", "/api/v1/agents/2/validations", key);
    assert_eq!(validations["validations"].as_array().unwrap().len(), 0);
}

#[test]
fn every_error_is_json_naming_the_problem() {
    let (mut api, key) = api();
    let key = Some(key.as_str());
    let code = |api: &mut ApiService<Shared>, method: &str, target: &str, key: Option<&str>| {
        let (answer, body) = call(api, method, target, key);
        (
            answer.status,
            body["error"]["code"].as_str().unwrap_or_default().to_owned(),
        )
    };
    let (health, body) = call(&mut api, "GET", "/health", None);
    assert_eq!(
        (health.status, body["status"].as_str()),
        (200, Some("ok")),
        "no key needed"
    );
    assert_eq!(
        code(&mut api, "GET", "/api/v1/agents/", None),
        (401, "missing_api_key".into())
    );
    assert_eq!(code(&mut api, "GET", "/api/v2/agents/", key), (404, "not_found".into()));
    assert_eq!(
        code(&mut api, "GET", "/api/v1/agents/2/reviews", key),
        (404, "not_found".into())
    );
    assert_eq!(
        code(&mut api, "GET", "/api/v1/agents/9", key),
        (404, "agent_not_found".into())
    );
    assert_eq!(
        code(&mut api, "GET", "/api/v1/agents/abc", key),
        (400, "bad_agent_id".into())
    );
    assert_eq!(
        code(&mut api, "GET", "/api/v1/agents/02", key),
        (400, "bad_agent_id".into())
    );
    assert_eq!(
        code(&mut api, "GET", "/api/v1/agents/?limit=0", key),
        (400, "bad_limit".into())
    );
    assert_eq!(
        code(&mut api, "GET", "/api/v1/agents/?limit=101", key),
        (400, "bad_limit".into())
    );
    assert_eq!(
        code(&mut api, "GET", "/api/v1/agents/?cursor=x", key),
        (400, "bad_cursor".into())
    );
    assert_eq!(
        code(&mut api, "GET", "/api/v1/agents/?owner=0xabc", key),
        (400, "bad_owner".into())
    );
    assert_eq!(
        code(&mut api, "GET", "/api/v1/agents/?sort=name", key),
        (400, "unknown_parameter".into()),
        "a parameter not served is refused, not ignored"
    );
    assert_eq!(
        code(&mut api, "GET", "/api/v1/agents/2?x=1", key),
        (400, "unknown_parameter".into())
    );
    assert_eq!(
        code(&mut api, "GET", "/api/v1/agents/?limit=%zz", key),
        (400, "bad_query".into())
    );
    let (answer, body) = call(&mut api, "DELETE", "/api/v1/agents/2", key);
    assert_eq!(
        (answer.status, header(&answer, "allow")),
        (405, Some("GET, HEAD")),
        "{body}"
    );
    assert_eq!(
        header(&answer, "x-ratelimit-limit"),
        Some("1000"),
        "every /api/v1 answer carries the limits"
    );
    // The key comes first under /api/v1, whatever the route.
    assert_eq!(
        code(&mut api, "GET", "/api/v1/nothing", None),
        (401, "missing_api_key".into())
    );
    assert_eq!(
        code(&mut api, "GET", "/api/v1/agents//2", key),
        (404, "not_found".into())
    );
    // An empty cursor is not agent 0, and hex is not an id.
    assert_eq!(
        code(&mut api, "GET", "/api/v1/agents/?cursor=", key),
        (400, "bad_cursor".into())
    );
    assert_eq!(
        code(&mut api, "GET", "/api/v1/agents/?cursor=0x1", key),
        (400, "bad_cursor".into())
    );
}

fn counters(api: &ApiService<Shared>) -> erc8004_api::cache::CacheCounters {
    api.cache().counters()
}

#[test]
fn no_read_after_a_committed_change_returns_the_answer_from_before_it() {
    let chain = chain();
    let (mut api, key) = api_with(&chain, ApiConfig::default());
    let key = Some(key.as_str());
    assert_eq!(call(&mut api, "GET", "/api/v1/agents/2", key).1["feedback"], 2);
    let (_, first_page) = call(&mut api, "GET", "/api/v1/agents/?limit=2", key);
    let (_, last_page) = call(&mut api, "GET", "/api/v1/agents/?limit=2&cursor=3", key);
    assert_eq!((counters(&api).hits, counters(&api).misses), (0, 3));
    assert_eq!(call(&mut api, "GET", "/api/v1/agents/2", key).1["feedback"], 2);
    assert_eq!(counters(&api).hits, 1, "read again, unchanged: from the cache");

    // A third client's feedback to agent 2, committed: the next read shows it. A page listing
    // agent 2 shows only its identity record, which feedback leaves as it was: still cached.
    let (_, page) = call(&mut api, "GET", "/api/v1/agents/?limit=3", key);
    send(&chain, &wallet(4), REPUTATION_REGISTRY, feedback(2, 100, "speed"));
    let (_, agent) = call(&mut api, "GET", "/api/v1/agents/2", key);
    assert_eq!(
        (agent["feedback"].as_u64(), agent["clients"].as_u64()),
        (Some(3), Some(3))
    );
    let hits = counters(&api).hits;
    assert_eq!(call(&mut api, "GET", "/api/v1/agents/?limit=3", key).1, page);
    assert_eq!(counters(&api).hits, hits + 1, "the page was not invalidated");
    assert_eq!(counters(&api).invalidations, 1);
    let (_, entries) = call(&mut api, "GET", "/api/v1/agents/2/feedback", key);
    assert_eq!(entries["feedback"].as_array().unwrap().len(), 3);

    // A new agent: the last page of the list grows; a page before it is still served from the
    // cache (the change touched neither of its agents).
    send(&chain, &wallet(5), IDENTITY_REGISTRY, I::register_0Call {});
    let hits = counters(&api).hits;
    assert_eq!(call(&mut api, "GET", "/api/v1/agents/?limit=2", key).1, first_page);
    assert_eq!(counters(&api).hits, hits + 1);
    let (_, page) = call(&mut api, "GET", "/api/v1/agents/?limit=2&cursor=3", key);
    assert_ne!(page, last_page);
    assert_eq!(page["agents"][1]["id"], "5", "{page}");
    assert_eq!(counters(&api).stale_served, 0);
}

#[test]
fn with_the_originals_invalidation_the_cache_serves_the_answer_from_before_and_counts_it() {
    use erc8004_api::cache::{CacheConfig, Invalidation};
    let chain = chain();
    let config = ApiConfig {
        cache: CacheConfig {
            invalidation: Invalidation::Never,
            ..CacheConfig::default()
        },
        ..ApiConfig::default()
    };
    let (mut api, key) = api_with(&chain, config);
    let key = Some(key.as_str());
    assert_eq!(call(&mut api, "GET", "/api/v1/agents/2", key).1["feedback"], 2);
    send(&chain, &wallet(4), REPUTATION_REGISTRY, feedback(2, 100, "speed"));
    assert_eq!(call(&mut api, "GET", "/api/v1/agents/2", key).1["feedback"], 2, "stale");
    assert_eq!(counters(&api).stale_served, 1);
}

/// `call` at `s` seconds after `NOW`.
fn call_at(api: &mut ApiService<Shared>, target: &str, key: Option<&str>, s: u64) -> (HttpResponse, String) {
    let mut request = HttpRequest::new("GET", target, "");
    if let Some(key) = key {
        request = request.with_header("authorization", format!("Bearer {key}"));
    }
    let answer = api.handle(&request, WallTime::from_unix_nanos((NOW + s) as i64 * 1_000_000_000));
    let body = String::from_utf8_lossy(&answer.body).into_owned();
    (answer, body)
}

#[test]
fn health_and_metrics_name_the_guides_alert_while_it_fires_and_not_once_it_cleared() {
    let chain = chain();
    let (mut api, key) = api_with(&chain, ApiConfig::default());
    let key = Some(key.as_str());
    api.cache_mut().set_failing(true);
    for _ in 0..30 {
        call_at(&mut api, "/api/v1/agents/2", key, 0);
    }
    // The alerts are evaluated once a second: the next request, 2 s on, sees 30 lookups, none hit.
    let (_, health) = call_at(&mut api, "/health", None, 2);
    let health: Value = serde_json::from_str(&health).unwrap();
    assert_eq!(health["status"], "alerting", "{health}");
    assert_eq!(health["alerts"][0]["alert"], "LowCacheHitRate", "{health}");
    assert_eq!(health["alerts"][0]["value"], 0.0);
    let (_, metrics) = call_at(&mut api, "/metrics", None, 2);
    assert!(
        metrics.contains("erc8004_alert_firing{alert=\"LowCacheHitRate\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("erc8004_alert_firing{alert=\"HighErrorRate\"} 0"));
    // The cache back: a minute later the window holds hits only, and the alert has cleared.
    api.cache_mut().set_failing(false);
    for _ in 0..200 {
        call_at(&mut api, "/api/v1/agents/2", key, 70);
    }
    let (_, health) = call_at(&mut api, "/health", None, 72);
    let health: Value = serde_json::from_str(&health).unwrap();
    assert_eq!(
        (health["status"].as_str(), health["alerts"].as_array().map(Vec::len)),
        (Some("ok"), Some(0)),
        "{health}"
    );
}

/// The owner filter's answer, with and without its index: the same agents, and the rows each
/// examined.
#[test]
fn the_owner_filter_answers_the_same_with_and_without_its_index_and_the_index_reads_only_what_it_returns() {
    use erc8004_api::index::{Search, SearchTally};
    let chain = chain();
    // A second owner's agent (id 5) after wallet 0's five.
    send(
        &chain,
        &wallet(6),
        IDENTITY_REGISTRY,
        I::register_1Call {
            agentURI: "ipfs://six".into(),
        },
    );
    let owner = wallet(6).address().to_checksum(None);
    let mut answers = Vec::new();
    for search in [Search::Indexed, Search::Scan] {
        let config = ApiConfig {
            search,
            ..ApiConfig::default()
        };
        let (mut api, key) = api_with(&chain, config);
        let key = Some(key.as_str());
        let (answer, page) = call(&mut api, "GET", &format!("/api/v1/agents/?owner={owner}"), key);
        assert_eq!(answer.status, 200, "{page}");
        assert_eq!(ids_of(&page).0, ["5"], "{search:?}: {page}");
        // Wallet 0's five, two a page: the cursor walks them.
        let first = wallet(0).address().to_checksum(None);
        let (_, two) = call(
            &mut api,
            "GET",
            &format!("/api/v1/agents/?owner={first}&limit=2&cursor=1"),
            key,
        );
        assert_eq!(two["agents"][0]["id"], "2", "{two}");
        assert_eq!(two["next_cursor"], "3", "{two}");
        answers.push(api.searched());
    }
    // Two searches each. The index read the agents it returned (1, then 3 for a page of 2 and
    // its look-ahead); the scan read the table: all 6 for the first owner's one agent, and 3
    // after cursor 1.
    let tally = |rows_examined| SearchTally {
        searches: 2,
        rows_examined,
    };
    assert_eq!(answers, [tally(1 + 3), tally(6 + 3)]);

    // A transfer moves the agent between owners' entries, and a cached answer does not outlive it.
    let (mut api, key) = api_with(&chain, ApiConfig::default());
    let key = Some(key.as_str());
    let target = format!("/api/v1/agents/?owner={owner}");
    assert_eq!(
        call(&mut api, "GET", &target, key).1["agents"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let transfer = I::transferFromCall {
        from: wallet(6).address(),
        to: wallet(7).address(),
        tokenId: U256::from(5),
    };
    send(&chain, &wallet(6), IDENTITY_REGISTRY, transfer);
    assert_eq!(
        call(&mut api, "GET", &target, key).1["agents"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let taker = format!("/api/v1/agents/?owner={}", wallet(7).address().to_checksum(None));
    assert_eq!(call(&mut api, "GET", &taker, key).1["agents"][0]["id"], "5");
}

#[test]
fn a_failing_cache_sends_every_read_to_the_registries_and_counts_each_failure() {
    let chain = chain();
    let (mut api, key) = api_with(&chain, ApiConfig::default());
    let key = Some(key.as_str());
    call(&mut api, "GET", "/api/v1/agents/2", key);
    api.cache_mut().set_failing(true);
    send(&chain, &wallet(4), REPUTATION_REGISTRY, feedback(2, 100, "speed"));
    for _ in 0..3 {
        assert_eq!(call(&mut api, "GET", "/api/v1/agents/2", key).1["feedback"], 3);
    }
    // Each read: a failed lookup and a failed store; one lookup each (the hit-rate alert's
    // denominator).
    let c = counters(&api);
    assert_eq!((c.errors, c.lookup_errors, c.hits), (6, 3, 0));
    let (_, health) = call(&mut api, "GET", "/health", None);
    assert_eq!(
        health["components"]["cache"]["status"],
        "failing: reads go to the registries"
    );
    api.cache_mut().set_failing(false);
    call(&mut api, "GET", "/api/v1/agents/2", key);
    call(&mut api, "GET", "/api/v1/agents/2", key);
    assert_eq!(counters(&api).hits, 1, "working again");
}

/// The guide's faulty setting (`CacheErrors::Fail`, the original's Redis errors surfacing as
/// failed requests): while the cache fails, a read is answered 500 `cache_error` and the
/// failed lookup counted; health says reads fail; once it works again reads are served.
#[test]
fn set_to_fail_on_cache_errors_a_read_fails_while_the_cache_is_down() {
    use erc8004_api::cache::{CacheConfig, CacheErrors};
    let chain = chain();
    let config = ApiConfig {
        cache: CacheConfig {
            on_error: CacheErrors::Fail,
            ..CacheConfig::default()
        },
        ..ApiConfig::default()
    };
    let (mut api, key) = api_with(&chain, config);
    let key = Some(key.as_str());
    assert_eq!(call(&mut api, "GET", "/api/v1/agents/2", key).0.status, 200);
    api.cache_mut().set_failing(true);
    let (answer, body) = call(&mut api, "GET", "/api/v1/agents/2", key);
    assert_eq!(
        (answer.status, body["error"]["code"].as_str()),
        (500, Some("cache_error")),
        "{body}"
    );
    assert_eq!(counters(&api).lookup_errors, 1);
    let (_, health) = call(&mut api, "GET", "/health", None);
    assert_eq!(health["components"]["cache"]["status"], "failing: reads fail");
    api.cache_mut().set_failing(false);
    assert_eq!(call(&mut api, "GET", "/api/v1/agents/2", key).0.status, 200);
}

#[test]
fn the_cache_holds_at_most_its_bound_and_evicts_the_least_recently_used() {
    use erc8004_api::cache::CacheConfig;
    let chain = chain();
    let config = ApiConfig {
        cache: CacheConfig {
            entries_max: 3,
            ..CacheConfig::default()
        },
        ..ApiConfig::default()
    };
    let (mut api, key) = api_with(&chain, config);
    let key = Some(key.as_str());
    for id in [0, 1, 2, 0, 3, 4] {
        call(&mut api, "GET", &format!("/api/v1/agents/{id}"), key);
    }
    // 0 was used again before 3 and 4 came: 1 and 2 went.
    assert_eq!((api.cache().len(), counters(&api).evictions), (3, 2));
    let hits = counters(&api).hits;
    call(&mut api, "GET", "/api/v1/agents/0", key);
    assert_eq!(counters(&api).hits, hits + 1);
    call(&mut api, "GET", "/api/v1/agents/1", key);
    assert_eq!(counters(&api).hits, hits + 1, "evicted");

    // A byte bound, too: a few hundred bytes hold one agent's answer at a time.
    let config = ApiConfig {
        cache: CacheConfig {
            bytes_max: 700,
            ..CacheConfig::default()
        },
        ..ApiConfig::default()
    };
    let (mut api, key) = api_with(&chain, config);
    for id in 0..5 {
        call(&mut api, "GET", &format!("/api/v1/agents/{id}"), Some(&key));
        assert!(api.cache().bytes() <= 700, "{} bytes", api.cache().bytes());
    }
    assert!(counters(&api).evictions >= 3, "{:?}", counters(&api));
}

/// Every agent's `/stats` answer.
fn all_stats(api: &mut ApiService<Shared>, key: &str, agents: u64) -> Vec<Value> {
    (0..agents)
        .map(|id| call(api, "GET", &format!("/api/v1/agents/{id}/stats"), Some(key)).1)
        .collect()
}

#[test]
fn statistics_kept_event_by_event_equal_statistics_recomputed_from_the_state() {
    use erc8004::abi::{ReputationRegistry as R, ValidationRegistry as V, VALIDATION_REGISTRY};
    use erc8004_api::view::Refresh;
    use runtime::{DetRng, Entropy};
    let chain = chain();
    let (mut kept, key) = api_with(&chain, ApiConfig::default());
    // Recomputed whole at every read: the materialized view refreshed before each query.
    let recomputed = ApiConfig {
        refresh: Refresh::Periodic(std::time::Duration::ZERO),
        ..ApiConfig::default()
    };
    let (mut oracle, _) = api_with(&chain, recomputed);
    // Both read the state once; then feedback given before that is revoked.
    assert_eq!(all_stats(&mut kept, &key, 5), all_stats(&mut oracle, &key, 5));
    let revoke = R::revokeFeedbackCall {
        agentId: U256::from(2),
        feedbackIndex: 1,
    };
    send(&chain, &wallet(1), REPUTATION_REGISTRY, revoke);
    let stats = all_stats(&mut kept, &key, 5);
    assert_eq!(stats[2]["feedback"]["revoked"], 1);
    assert_eq!(stats, all_stats(&mut oracle, &key, 5));
    let mut rng = DetRng::seed_from_u64(8004);
    let mut agents = 5u64;
    // (client wallet, agent, index, revoked) of each feedback given; (validator, hash) of requests.
    let mut given: Vec<(u64, u64, u64, bool)> = vec![(1, 2, 1, true), (3, 2, 1, false)];
    let mut requests: Vec<(u64, B256)> = Vec::new();
    for step in 0..120u64 {
        match rng.below(5) {
            0 => {
                send(&chain, &wallet(0), IDENTITY_REGISTRY, I::register_0Call {});
                agents += 1;
            }
            1 | 2 => {
                let (client, agent) = (1 + rng.below(5), rng.below(agents));
                let index = 1 + given.iter().filter(|g| g.0 == client && g.1 == agent).count() as u64;
                let value = rng.below(20_000) as i128 - 10_000;
                let mut call = feedback(agent, value, "speed");
                call.valueDecimals = rng.below(4) as u8;
                send(&chain, &wallet(client), REPUTATION_REGISTRY, call);
                given.push((client, agent, index, false));
            }
            3 => {
                let open: Vec<usize> = (0..given.len()).filter(|&i| !given[i].3).collect();
                if let Some(&i) = open.get(rng.below(open.len().max(1) as u64) as usize) {
                    let (client, agent, index, _) = given[i];
                    let revoke = R::revokeFeedbackCall {
                        agentId: U256::from(agent),
                        feedbackIndex: index,
                    };
                    send(&chain, &wallet(client), REPUTATION_REGISTRY, revoke);
                    given[i].3 = true;
                }
            }
            _ => {
                if requests.is_empty() || rng.below(2) == 0 {
                    let validator = 6 + rng.below(2);
                    let hash = keccak256(step.to_be_bytes());
                    let request = V::validationRequestCall {
                        validatorAddress: wallet(validator).address(),
                        agentId: U256::from(rng.below(agents)),
                        requestURI: "ipfs://request".into(),
                        requestHash: hash,
                    };
                    send(&chain, &wallet(0), VALIDATION_REGISTRY, request);
                    requests.push((validator, hash));
                } else {
                    // A response, or a later one replacing it.
                    let (validator, hash) = requests[rng.below(requests.len() as u64) as usize];
                    let response = V::validationResponseCall {
                        requestHash: hash,
                        response: rng.below(101) as u8,
                        responseURI: String::new(),
                        responseHash: B256::ZERO,
                        tag: String::new(),
                    };
                    send(&chain, &wallet(validator), VALIDATION_REGISTRY, response);
                }
            }
        }
        if step % 10 == 9 {
            assert_eq!(
                all_stats(&mut kept, &key, agents),
                all_stats(&mut oracle, &key, agents),
                "step {step}"
            );
        }
    }
    let stats = all_stats(&mut kept, &key, agents);
    assert!(
        stats.iter().any(|s| s["feedback"]["revoked"].as_u64() > Some(0)),
        "revocations ran"
    );
    assert!(
        stats.iter().any(|s| s["validations"]["responded"].as_u64() > Some(0)),
        "responses ran"
    );
    assert_eq!(kept.view().rebuilds(), 1, "built once, then kept event by event");
    assert_eq!(kept.view().stale_reads(), 0);
}

#[test]
fn statistics_refreshed_every_five_minutes_serve_reads_from_before_a_change_and_count_them() {
    use erc8004_api::view::Refresh;
    let chain = chain();
    let config = ApiConfig {
        refresh: Refresh::Periodic(std::time::Duration::from_secs(300)),
        ..ApiConfig::default()
    };
    let (mut api, key) = api_with(&chain, config);
    let stats = |api: &mut ApiService<Shared>, at: u64| {
        let request =
            HttpRequest::new("GET", "/api/v1/agents/2/stats", "").with_header("authorization", format!("Bearer {key}"));
        let answer = api.handle(&request, WallTime::from_unix_nanos(at as i64 * 1_000_000_000));
        serde_json::from_slice::<Value>(&answer.body).unwrap()
    };
    assert_eq!(stats(&mut api, NOW)["feedback"]["given"], 2);
    send(&chain, &wallet(4), REPUTATION_REGISTRY, feedback(2, 100, "speed"));
    assert_eq!(
        stats(&mut api, NOW + 60)["feedback"]["given"],
        2,
        "stale for up to 5 minutes"
    );
    assert_eq!(api.view().stale_reads(), 1);
    assert_eq!(
        api.view()
            .age(WallTime::from_unix_nanos((NOW as i64 + 60) * 1_000_000_000))
            .as_secs(),
        60
    );
    assert_eq!(stats(&mut api, NOW + 120)["feedback"]["given"], 2, "still stale");
    assert_eq!(
        api.view().stale_reads(),
        2,
        "each stale read counted, none from the cache"
    );
    assert_eq!(stats(&mut api, NOW + 300)["feedback"]["given"], 3, "refreshed");
    assert_eq!(api.view().stale_reads(), 2);
    assert_eq!(
        api.view()
            .age(WallTime::from_unix_nanos((NOW as i64 + 300) * 1_000_000_000))
            .as_secs(),
        0
    );
    assert_eq!(api.view().age_max().as_secs(), 120, "the oldest a read saw");
}

#[test]
fn metrics_count_requests_by_route_template_and_status_and_show_the_cache_and_view() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let chain = chain();
    let (api, key) = api_with(&chain, ApiConfig::default());
    // A clock that moves 250 µs per reading: every request takes 250 µs.
    let clock = Arc::new(AtomicU64::new(0));
    let ticks = clock.clone();
    let mut api = api.with_stopwatch(Box::new(move || ticks.fetch_add(250_000, Ordering::Relaxed)));
    let key = Some(key.as_str());
    for target in [
        "/api/v1/agents/2",
        "/api/v1/agents/2",
        "/api/v1/agents/3",
        "/api/v1/agents/99",
    ] {
        call(&mut api, "GET", target, key);
    }
    call(&mut api, "GET", "/api/v1/agents/2", None);
    call(&mut api, "GET", "/nowhere", None);
    let request = HttpRequest::new("GET", "/metrics", "");
    let answer = api.handle(&request, WallTime::from_unix_nanos(NOW as i64 * 1_000_000_000));
    assert_eq!(
        (answer.status, answer.content_type),
        (200, "text/plain; version=0.0.4; charset=utf-8")
    );
    let text = String::from_utf8(answer.body.to_vec()).unwrap();
    let series = |name: &str| -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    };
    let expect = [
        (
            "erc8004_requests_total{route=\"/api/v1/agents/{id}\",status=\"200\"}",
            3.0,
        ),
        (
            "erc8004_requests_total{route=\"/api/v1/agents/{id}\",status=\"404\"}",
            1.0,
        ),
        (
            "erc8004_requests_total{route=\"/api/v1/agents/{id}\",status=\"401\"}",
            1.0,
        ),
        ("erc8004_requests_total{route=\"unmatched\",status=\"404\"}", 1.0),
        (
            "erc8004_request_duration_seconds_count{route=\"/api/v1/agents/{id}\"}",
            5.0,
        ),
        (
            "erc8004_request_duration_seconds_sum{route=\"/api/v1/agents/{id}\"}",
            5.0 * 0.000_25,
        ),
        (
            "erc8004_request_duration_seconds_bucket{route=\"/api/v1/agents/{id}\",le=\"0.0002\"}",
            0.0,
        ),
        (
            "erc8004_request_duration_seconds_bucket{route=\"/api/v1/agents/{id}\",le=\"0.0004\"}",
            5.0,
        ),
        ("erc8004_cache_hits_total", 1.0),
        ("erc8004_cache_misses_total", 3.0),
        ("erc8004_cache_entries", 2.0),
        ("erc8004_agents", 5.0),
        ("erc8004_chain_head", 7.0),
        ("erc8004_view_head", 7.0),
        ("erc8004_view_age_seconds", 0.0),
        ("erc8004_view_stale_reads_total", 0.0),
    ];
    for (name, value) in expect {
        assert_eq!(series(name), Some(value), "{name} in:\n{text}");
    }
}

/// The simulator hashes every answer's bytes, so a run is a function of its seed only if
/// `/metrics` writes the same series in the same order every time: two APIs (each with its own
/// hash maps, seeded at random) that answered the same requests expose the same text.
#[test]
fn two_apis_that_answered_the_same_requests_expose_the_same_metrics_text() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let chain = chain();
    let expose = || {
        let (api, key) = api_with(&chain, ApiConfig::default());
        // Every request takes 250 µs: a duration series per route.
        let clock = Arc::new(AtomicU64::new(0));
        let mut api = api.with_stopwatch(Box::new(move || clock.fetch_add(250_000, Ordering::Relaxed)));
        for target in [
            "/api/v1/agents/2",
            "/api/v1/agents/99",
            "/api/v1/agents/2/feedback",
            "/api/v1/agents/2/stats",
            "/api/v1/agents/2/reputation",
            "/api/v1/agents/?limit=2",
            "/api/v1/agents/?limit=0",
            "/api/v1/agents/2/validations",
        ] {
            call(&mut api, "GET", target, Some(&key));
        }
        call(&mut api, "GET", "/api/v1/agents/2", None);
        call(&mut api, "GET", "/api/v1/agents/2", Some("hmk_not_a_key"));
        call(&mut api, "GET", "/nowhere", None);
        let request = HttpRequest::new("GET", "/metrics", "");
        let answer = api.handle(&request, WallTime::from_unix_nanos(NOW as i64 * 1_000_000_000));
        String::from_utf8(answer.body.to_vec()).unwrap()
    };
    let first = expose();
    assert!(
        first.contains("erc8004_request_duration_seconds_count{route=\"/api/v1/agents/{id}/stats\"} 1"),
        "{first}"
    );
    for _ in 0..4 {
        assert_eq!(expose(), first);
    }
}

/// A family with no series yet is left out of the exposition, not written as a `# HELP` and
/// `# TYPE` with no samples: an API without a stopwatch (the simulator's) has no durations.
#[test]
fn a_family_with_no_series_is_not_written() {
    let chain = chain();
    let (mut api, _) = api_with(&chain, ApiConfig::default());
    let request = HttpRequest::new("GET", "/metrics", "");
    let answer = api.handle(&request, WallTime::from_unix_nanos(NOW as i64 * 1_000_000_000));
    let text = String::from_utf8(answer.body.to_vec()).unwrap();
    assert!(!text.contains("erc8004_request_duration"), "{text}");
    assert!(!text.contains("erc8004_requests"), "{text}");
    assert!(text.contains("erc8004_rate_limited_total{tier=\"free\"} 0"), "{text}");
}

/// POSTs `body` to `/api/v1/transactions` with `key`.
fn post(api: &mut ApiService<Shared>, body: &str, key: &str) -> (HttpResponse, Value) {
    let request = HttpRequest::new("POST", "/api/v1/transactions", body.to_owned())
        .with_header("authorization", format!("Bearer {key}"));
    let answer = api.handle(&request, WallTime::from_unix_nanos(NOW as i64 * 1_000_000_000));
    let body = serde_json::from_slice(&answer.body).unwrap();
    (answer, body)
}

/// `from`'s call to `to`, signed at `nonce`, as the body's hex.
fn signed<C: SolCall>(from: &Wallet, nonce: u64, to: Address, call: C) -> String {
    let raw = from.sign_call(
        Envelope::Eip1559,
        ChainConfig::default().chain_id,
        nonce,
        to,
        call.abi_encode().into(),
    );
    format!("{{\"raw\": \"{raw}\"}}")
}

#[test]
fn a_transaction_posted_is_answered_once_included_and_the_next_read_shows_it() {
    let chain = chain();
    let (mut api, key) = api_with(&chain, ApiConfig::default());
    let newcomer = wallet(9);
    let (_, before) = call(&mut api, "GET", "/api/v1/agents/?cursor=3", Some(&key));
    assert_eq!(before["agents"].as_array().unwrap().len(), 1, "cached: {before}");

    let register = signed(&newcomer, 0, IDENTITY_REGISTRY, I::register_0Call {});
    let (answer, receipt) = post(&mut api, &register, &key);
    assert_eq!(answer.status, 200, "{receipt}");
    assert_eq!(
        (receipt["status"].as_str(), receipt["success"].as_bool()),
        (Some("included"), Some(true))
    );
    // The receipt lists its logs: the registration's names the new agent (topic 1, 5).
    let logs = receipt["logs"].as_array().expect("logs listed");
    let registered = logs
        .iter()
        .find(|log| {
            log["address"] == IDENTITY_REGISTRY.to_checksum(None)
                && log["topics"][0] == I::Registered::SIGNATURE_HASH.to_string()
        })
        .expect("the identity registry's Registered log");
    assert_eq!(registered["topics"][1], format!("0x{:064x}", 5), "{receipt}");
    assert!(
        header(&answer, "x-ratelimit-remaining").is_some(),
        "a write is charged as a read is"
    );
    let (_, after) = call(&mut api, "GET", "/api/v1/agents/?cursor=3", Some(&key));
    assert_eq!(after["agents"][1]["id"], "5", "read after the answer: {after}");
    // Sent again (a lost answer): the same receipt, nothing done twice.
    let (answer, again) = post(&mut api, &register, &key);
    assert_eq!((answer.status, &again["hash"]), (200, &receipt["hash"]));
    assert_eq!(
        call(&mut api, "GET", "/api/v1/agents/?cursor=4", Some(&key)).1["agents"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Feedback to its own agent: included, reverted by the registry, and said so.
    let own = signed(&newcomer, 1, REPUTATION_REGISTRY, feedback(5, 1, ""));
    let (answer, receipt) = post(&mut api, &own, &key);
    assert_eq!(
        (answer.status, receipt["success"].as_bool()),
        (200, Some(false)),
        "{receipt}"
    );
    assert!(
        receipt["revert_reason"].as_str().unwrap().contains("Self-feedback"),
        "{receipt}"
    );

    // Ahead of the sender's nonce: taken and held.
    let ahead = signed(&newcomer, 3, IDENTITY_REGISTRY, I::register_0Call {});
    let (answer, held) = post(&mut api, &ahead, &key);
    assert_eq!((answer.status, held["status"].as_str()), (202, Some("taken")), "{held}");
    let by_hash = |api: &mut ApiService<Shared>, hash: &Value| {
        let (answer, body) = call(
            api,
            "GET",
            &format!("/api/v1/transactions/{}", hash.as_str().unwrap()),
            Some(&key),
        );
        (answer.status, body)
    };
    let (status, not_yet) = by_hash(&mut api, &held["hash"]);
    assert_eq!(
        (status, not_yet["error"]["code"].as_str()),
        (404, Some("transaction_not_found")),
        "{not_yet}"
    );
    let (status, included) = by_hash(&mut api, &receipt["hash"]);
    assert_eq!(
        (status, &included),
        (200, &receipt),
        "the receipt POST answered, read again by its hash"
    );
    // Sent again (a retry): still held, the same answer; another at that nonce is refused.
    let (answer, again) = post(&mut api, &ahead, &key);
    assert_eq!((answer.status, &again["hash"]), (202, &held["hash"]), "{again}");
    let rival = signed(
        &newcomer,
        3,
        IDENTITY_REGISTRY,
        I::register_1Call { agentURI: "x".into() },
    );
    let (answer, refused) = post(&mut api, &rival, &key);
    assert_eq!(
        (answer.status, refused["error"]["code"].as_str()),
        (409, Some("nonce_held")),
        "{refused}"
    );

    let code = |api: &mut ApiService<Shared>, body: &str| {
        let (answer, body) = post(api, body, &key);
        (
            answer.status,
            body["error"]["code"].as_str().unwrap_or_default().to_owned(),
            body,
        )
    };
    let stale = signed(&newcomer, 0, REPUTATION_REGISTRY, feedback(1, 1, ""));
    assert_eq!(code(&mut api, &stale).0, 409);
    let far = signed(&newcomer, 10_000, IDENTITY_REGISTRY, I::register_0Call {});
    assert_eq!(code(&mut api, &far).1, "nonce_too_high");
    assert_eq!(code(&mut api, "{\"raw\": \"0x02f8\"}").1, "bad_transaction");
    assert_eq!(code(&mut api, "{\"raw\": \"02f8\"}").1, "bad_body");
    assert_eq!(code(&mut api, "{\"raw\": \"0xzz\"}").1, "bad_body");
    assert_eq!(code(&mut api, "{\"raw\": \"0x0x02f8\"}").1, "bad_body");
    assert_eq!(code(&mut api, "not json").1, "bad_body");
    assert_eq!(code(&mut api, "{\"raw\": \"0x00\", \"gas\": 1}").1, "bad_body");
    let (answer, _) = call(&mut api, "GET", "/api/v1/transactions", Some(&key));
    assert_eq!((answer.status, header(&answer, "allow")), (405, Some("POST")));
    for bad in ["0x12", "ab", &format!("0x{}", "g".repeat(64))] {
        let (answer, body) = call(&mut api, "GET", &format!("/api/v1/transactions/{bad}"), Some(&key));
        assert_eq!(
            (answer.status, body["error"]["code"].as_str()),
            (400, Some("bad_transaction_hash")),
            "{bad}"
        );
    }
    let (answer, _) = call(
        &mut api,
        "POST",
        &format!("/api/v1/transactions/0x{}", "ab".repeat(32)),
        Some(&key),
    );
    assert_eq!((answer.status, header(&answer, "allow")), (405, Some("GET, HEAD")));
    let (answer, _) = call(&mut api, "POST", "/api/v1/agents/1", Some(&key));
    assert_eq!((answer.status, header(&answer, "allow")), (405, Some("GET, HEAD")));
}

#[test]
fn every_kind_of_change_reaches_the_answers_cached_before_it() {
    use erc8004::abi::{ValidationRegistry as V, VALIDATION_REGISTRY};
    let chain = chain();
    let (mut api, key) = api_with(&chain, ApiConfig::default());
    let key = Some(key.as_str());
    let read = |api: &mut ApiService<Shared>, target: &str| {
        let first = call(api, "GET", target, key).1;
        assert_eq!(call(api, "GET", target, key).1, first, "cached");
        first
    };
    let owner = wallet(0);
    let agent = read(&mut api, "/api/v1/agents/1");
    read(&mut api, "/api/v1/agents/?limit=3");
    let uri = I::setAgentURICall {
        agentId: U256::from(1),
        newURI: "ipfs://moved".into(),
    };
    send(&chain, &owner, IDENTITY_REGISTRY, uri);
    assert_eq!(
        call(&mut api, "GET", "/api/v1/agents/1", key).1["uri"],
        "ipfs://moved",
        "was {agent}"
    );
    let page = call(&mut api, "GET", "/api/v1/agents/?limit=3", key).1;
    assert_eq!(
        page["agents"][1]["uri"], "ipfs://moved",
        "a page lists the new URI: {page}"
    );
    read(&mut api, "/api/v1/agents/1");
    let metadata = I::setMetadataCall {
        agentId: U256::from(1),
        metadataKey: "team".into(),
        metadataValue: vec![1].into(),
    };
    send(&chain, &owner, IDENTITY_REGISTRY, metadata);
    let keys = call(&mut api, "GET", "/api/v1/agents/1", key).1["metadata_keys"].clone();
    assert!(keys.as_array().unwrap().contains(&Value::from("team")), "{keys}");
    read(&mut api, "/api/v1/agents/1");
    let buyer = wallet(8).address();
    let transfer = I::transferFromCall {
        from: owner.address(),
        to: buyer,
        tokenId: U256::from(1),
    };
    send(&chain, &owner, IDENTITY_REGISTRY, transfer);
    assert_eq!(
        call(&mut api, "GET", "/api/v1/agents/1", key).1["owner"],
        buyer.to_checksum(None),
        "a new owner"
    );

    let page = read(&mut api, "/api/v1/agents/2/feedback");
    let revoke = R::revokeFeedbackCall {
        agentId: U256::from(2),
        feedbackIndex: 1,
    };
    send(&chain, &wallet(3), REPUTATION_REGISTRY, revoke);
    let after = call(&mut api, "GET", "/api/v1/agents/2/feedback", key).1;
    assert_ne!(after, page);
    assert!(
        after["feedback"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["revoked"] == true),
        "{after}"
    );

    read(&mut api, "/api/v1/agents/3/validations");
    let hash = B256::repeat_byte(7);
    let request = V::validationRequestCall {
        validatorAddress: wallet(6).address(),
        agentId: U256::from(3),
        requestURI: String::new(),
        requestHash: hash,
    };
    send(&chain, &owner, VALIDATION_REGISTRY, request);
    let validations = call(&mut api, "GET", "/api/v1/agents/3/validations", key).1;
    assert_eq!(validations["validations"].as_array().unwrap().len(), 1);
    read(&mut api, "/api/v1/agents/3/validations");
    let response = V::validationResponseCall {
        requestHash: hash,
        response: 77,
        responseURI: String::new(),
        responseHash: B256::ZERO,
        tag: String::new(),
    };
    send(&chain, &wallet(6), VALIDATION_REGISTRY, response);
    let validations = call(&mut api, "GET", "/api/v1/agents/3/validations", key).1;
    assert_eq!(validations["validations"][0]["response"], 77, "{validations}");
    assert_eq!(counters(&api).stale_served, 0);
}

#[test]
fn a_follower_behind_the_history_kept_reads_the_state_whole_and_serves_nothing_stale() {
    let config = ChainConfig {
        history_blocks: 2,
        ..ChainConfig::default()
    };
    let (dev, _) = DevChain::open(MemStorage::default(), config).unwrap();
    let chain: Shared = Arc::new(Mutex::new(RpcService::new(dev)));
    for _ in 0..2 {
        send(&chain, &wallet(0), IDENTITY_REGISTRY, I::register_0Call {});
    }
    let (mut api, key) = api_with(&chain, ApiConfig::default());
    let key = Some(key.as_str());
    assert_eq!(
        call(&mut api, "GET", "/api/v1/agents/0/stats", key).1["feedback"]["given"],
        0
    );
    assert_eq!(call(&mut api, "GET", "/api/v1/agents/0", key).1["feedback"], 0);
    // Five blocks while nobody reads: the follower's next block is forgotten by then.
    for client in 1..6 {
        send(&chain, &wallet(client), REPUTATION_REGISTRY, feedback(0, 10, ""));
    }
    assert_eq!(call(&mut api, "GET", "/api/v1/agents/0", key).1["feedback"], 5);
    assert_eq!(
        call(&mut api, "GET", "/api/v1/agents/0/stats", key).1["feedback"]["given"],
        5
    );
    assert_eq!(
        api.view().rebuilds(),
        2,
        "read whole at the start, and again once behind"
    );
    assert_eq!(counters(&api).invalidations, 2);
}

/// While nothing was committed since the API last read the chain, a cached answer is served
/// without the chain's lock: a commit syncing to disk holds that lock, and reads answered from
/// the cache do not wait for it. Once the commit is in, the next read sees it.
#[test]
fn a_cached_answer_is_served_while_a_commit_holds_the_chain() {
    use erc8004_api::service::Watched;
    let chain = chain();
    let head = chain.lock().unwrap().node().head_watch();
    let mut keys = ApiKeys::new();
    let (key, _) = keys.create(&[9; 36], "standard", "tests", NOW as i64).unwrap();
    let source = Watched {
        source: chain.clone(),
        head,
    };
    let mut api = ApiService::new(source, Gate::new(keys));
    let get = move |api: &mut ApiService<Watched<Shared>>| {
        let request =
            HttpRequest::new("GET", "/api/v1/agents/2", "").with_header("authorization", format!("Bearer {key}"));
        let answer = api.handle(&request, WallTime::from_unix_nanos(NOW as i64 * 1_000_000_000));
        serde_json::from_slice::<Value>(&answer.body).unwrap()["feedback"].clone()
    };
    assert_eq!(get(&mut api), 2);

    let held = chain.lock().unwrap();
    let (answered, answers) = std::sync::mpsc::channel();
    // A test of the lock: the read runs on a thread while this one holds the chain.
    #[allow(clippy::disallowed_methods)]
    let reader = std::thread::spawn(move || {
        answered.send(get(&mut api)).unwrap();
        (api, get)
    });
    let answer = answers.recv_timeout(std::time::Duration::from_secs(10));
    assert_eq!(answer, Ok(Value::from(2)), "answered from the cache, the chain held");
    drop(held);
    let (mut api, get) = reader.join().unwrap();
    send(&chain, &wallet(4), REPUTATION_REGISTRY, feedback(2, 100, "speed"));
    assert_eq!(get(&mut api), 3, "a commit published: the chain is read again");
}

#[test]
fn the_openapi_document_is_served_to_a_key() {
    let (mut api, key) = api();
    let (answer, body) = call(&mut api, "GET", "/api/v1/openapi.json", None);
    assert_eq!(
        (answer.status, body["error"]["code"].as_str()),
        (401, Some("missing_api_key"))
    );
    let (answer, document) = call(&mut api, "GET", "/api/v1/openapi.json", Some(&key));
    assert_eq!((answer.status, document["openapi"].as_str()), (200, Some("3.0.3")));
    assert!(document["paths"]["/api/v1/agents/{id}/stats"]["get"]["responses"]["429"].is_object());
    let (answer, body) = call(&mut api, "GET", "/api/v1/openapi.json?x=1", Some(&key));
    assert_eq!(
        (answer.status, body["error"]["code"].as_str()),
        (400, Some("unknown_parameter"))
    );
}

/// Agents 5 to 8 beside the five of [`chain`]: 5 and 6 with registration files in their URIs
/// (6's in the legacy `endpoints` form, inactive), 7 with one that does not read, 8 with no URI;
/// feedback: wallet 1 gives 5 90.00 tagged "speed", wallet 3 gives 6 50.00 tagged "uptime".
fn chain_with_files() -> Shared {
    let chain = chain();
    let five = r#"data:application/json,{"type":"https://eips.ethereum.org/EIPS/eip-8004#registration-v1","name":"five","services":[{"name":"MCP","endpoint":"https://mcp.five.example/","version":"2025-06-18"}],"supportedTrust":["reputation"],"active":true,"x-team":"blue"}"#;
    let six = r#"data:application/json,{"name":"six","endpoints":[{"name":"A2A","endpoint":"https://six.example/agent-card.json"}],"supportedTrust":["crypto-economic"],"active":false}"#;
    for (owner, uri) in [(5, five), (6, six), (6, r#"data:application/json,{"name": 5}"#)] {
        let register = I::register_1Call { agentURI: uri.into() };
        send(&chain, &wallet(owner), IDENTITY_REGISTRY, register);
    }
    send(&chain, &wallet(6), IDENTITY_REGISTRY, I::register_0Call {});
    send(&chain, &wallet(1), REPUTATION_REGISTRY, feedback(5, 9000, "speed"));
    send(&chain, &wallet(3), REPUTATION_REGISTRY, feedback(6, 5000, "uptime"));
    chain
}

/// The ids of a page, and its next cursor.
fn ids_of(page: &Value) -> (Vec<String>, Option<String>) {
    let ids = page["agents"]
        .as_array()
        .unwrap_or_else(|| panic!("not a page: {page}"))
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    (ids, page["next_cursor"].as_str().map(str::to_string))
}

#[test]
fn the_agent_list_filters_by_registration_file_tag_and_trusted_reputation_and_every_filter_must_hold() {
    let chain = chain_with_files();
    let (mut api, key) = api_with(&chain, ApiConfig::default());
    let key = Some(key.as_str());
    let w1 = wallet(1).address().to_checksum(None);
    let w3 = wallet(3).address().to_checksum(None);
    let w6 = wallet(6).address().to_checksum(None);
    let mut list = |query: &str| {
        let (answer, page) = call(&mut api, "GET", &format!("/api/v1/agents/?{query}"), key);
        assert_eq!(answer.status, 200, "{query}: {page}");
        ids_of(&page).0
    };
    // The ipfs:// files are not fetched, 7's does not read, 8 has none: only 5 and 6 can match.
    assert_eq!(list("active=true"), ["5"]);
    assert_eq!(list("active=false"), ["6"]);
    assert_eq!(list("trust=Reputation"), ["5"]);
    assert_eq!(list("service=a2a"), ["6"], "the legacy endpoints are services");
    assert_eq!(list("service=MCP&trust=reputation&active=true"), ["5"]);
    assert_eq!(list("service=MCP&active=false"), Vec::<String>::new());
    assert_eq!(list("tag=speed"), ["2", "5"]);
    assert_eq!(list("tag=speed&active=true"), ["5"]);
    assert_eq!(list(&format!("owner={w6}&active=false")), ["6"]);
    // Over the clients the reader trusts: wallet 1 gave 2 -2.50 and 5 90.00; wallet 3 gave 2
    // -2.50 and 6 50.00.
    assert_eq!(list(&format!("min_reputation=80&clients={w1}")), ["5"]);
    assert_eq!(list(&format!("min_reputation=-2.5&clients={w1}")), ["2", "5"]);
    assert_eq!(list(&format!("min_reputation=-2.51&clients={w3}")), ["2", "6"]);
    assert_eq!(
        list(&format!("min_reputation=50.000000000000000001&clients={w3}")),
        Vec::<String>::new()
    );
    assert_eq!(list(&format!("min_reputation=0&clients={w1},{w3}")), ["5", "6"]);
}

#[test]
fn a_filtered_list_pages_by_cursor_and_never_outlives_a_change_to_what_it_filters_on() {
    let chain = chain_with_files();
    let (mut api, key) = api_with(&chain, ApiConfig::default());
    let key = Some(key.as_str());
    let (_, page) = call(&mut api, "GET", "/api/v1/agents/?tag=speed&limit=1", key);
    assert_eq!(ids_of(&page), (vec!["2".into()], Some("2".into())));
    let (_, page) = call(&mut api, "GET", "/api/v1/agents/?tag=speed&limit=1&cursor=2", key);
    assert_eq!(ids_of(&page), (vec!["5".into()], None));

    // Both answers are cached; new feedback tagged speed, and a new URI, change them.
    call(&mut api, "GET", "/api/v1/agents/?tag=speed", key);
    call(&mut api, "GET", "/api/v1/agents/?active=true", key);
    let hits = api.cache().counters().hits;
    assert_eq!(
        ids_of(&call(&mut api, "GET", "/api/v1/agents/?tag=speed", key).1).0,
        ["2", "5"]
    );
    assert_eq!(
        api.cache().counters().hits,
        hits + 1,
        "served from the cache while nothing changed"
    );
    send(&chain, &wallet(4), REPUTATION_REGISTRY, feedback(6, 100, "speed"));
    assert_eq!(
        ids_of(&call(&mut api, "GET", "/api/v1/agents/?tag=speed", key).1).0,
        ["2", "5", "6"]
    );
    let retired = I::setAgentURICall {
        agentId: U256::from(5),
        newURI: r#"data:application/json,{"name":"five","active":false}"#.into(),
    };
    send(&chain, &wallet(5), IDENTITY_REGISTRY, retired);
    assert_eq!(
        ids_of(&call(&mut api, "GET", "/api/v1/agents/?active=true", key).1).0,
        Vec::<String>::new()
    );
    assert_eq!(
        ids_of(&call(&mut api, "GET", "/api/v1/agents/?active=false", key).1).0,
        ["5", "6"]
    );
}

#[test]
fn a_filtered_page_examines_at_most_its_bound_and_its_cursor_walks_on_from_the_last_agent_examined() {
    let chain = chain_with_files();
    let config = ApiConfig {
        filter_rows_max: 3,
        ..ApiConfig::default()
    };
    let (mut api, key) = api_with(&chain, config);
    let key = Some(key.as_str());
    // Agents 0-8; each agent read is a row, and so is each feedback entry read for the tag: [0 1
    // 2 and its 2 entries] [3 4 5 and its entry] [6 and its entry, 7] [8], the last one to the
    // end of the list (no cursor).
    let mut walked = Vec::new();
    let mut cursor = String::new();
    loop {
        let target = format!("/api/v1/agents/?tag=speed&limit=10{cursor}");
        let (answer, page) = call(&mut api, "GET", &target, key);
        assert_eq!(answer.status, 200, "{page}");
        let (ids, next) = ids_of(&page);
        walked.push(ids);
        match next {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(walked, [vec!["2"], vec!["5"], vec![], vec![]]);
    let searched = api.searched();
    assert_eq!((searched.searches, searched.rows_examined), (4, 5 + 4 + 3 + 1));

    // An offset on a filter skips matches within the same bound: skipping one match ends the
    // page there (its cursor walks on); two are past the bound, refused by name.
    let (answer, page) = call(&mut api, "GET", "/api/v1/agents/?tag=speed&offset=1", key);
    assert_eq!(
        (answer.status, ids_of(&page)),
        (200, (vec![], Some("2".to_owned()))),
        "{page}"
    );
    let (answer, refused) = call(&mut api, "GET", "/api/v1/agents/?tag=speed&offset=2", key);
    assert_eq!(
        (answer.status, refused["error"]["code"].as_str()),
        (400, Some("offset_too_deep")),
        "{refused}"
    );
    assert!(
        refused["error"]["message"].as_str().unwrap().contains("cursor"),
        "{refused}"
    );
    // Within the bound, the page after that many matches.
    let (mut api, key) = api_with(&chain, ApiConfig::default());
    let key = Some(key.as_str());
    for (query, expected) in [
        ("offset=0&limit=1", (vec!["2".to_owned()], Some("2".to_owned()))),
        ("offset=1", (vec!["5".to_owned()], None)),
        ("offset=2", (vec![], None)),
    ] {
        let (answer, page) = call(&mut api, "GET", &format!("/api/v1/agents/?tag=speed&{query}"), key);
        assert_eq!((answer.status, ids_of(&page)), (200, expected), "{query}: {page}");
    }
}

#[test]
fn an_agents_registration_file_is_answered_normalized_named_where_it_is_elsewhere_and_its_faults_named() {
    let (mut api, key) = api_with(&chain_with_files(), ApiConfig::default());
    let key = Some(key.as_str());
    let mut read = |id: u64| {
        let (answer, body) = call(&mut api, "GET", &format!("/api/v1/agents/{id}/registration"), key);
        assert_eq!(answer.status, 200, "{body}");
        body
    };
    let five = read(5);
    assert_eq!(five["location"], "inline");
    assert_eq!(five["registration"]["name"], "five");
    assert_eq!(five["registration"]["services"][0]["name"], "MCP");
    assert_eq!(five["registration"]["services"][0]["version"], "2025-06-18");
    assert_eq!(five["registration"]["supportedTrust"][0], "reputation");
    assert_eq!(
        five["registration"]["x-team"], "blue",
        "fields the spec does not name are kept"
    );
    assert_eq!(five["problem"], Value::Null);
    let six = read(6);
    assert_eq!(
        six["registration"]["services"][0]["name"], "A2A",
        "endpoints answered as services"
    );
    assert_eq!(six["registration"]["endpoints"], Value::Null);
    assert_eq!(six["registration"]["active"], false);
    let seven = read(7);
    assert_eq!(
        (seven["location"].as_str(), &seven["registration"]),
        (Some("inline"), &Value::Null)
    );
    assert!(seven["problem"].as_str().unwrap().contains("name"), "{seven}");
    let zero = read(0);
    assert_eq!(
        (zero["location"].as_str(), zero["uri"].as_str()),
        (Some("remote"), Some("ipfs://agent-0"))
    );
    assert_eq!(read(8)["location"], "none");
    let (answer, body) = call(&mut api, "GET", "/api/v1/agents/99/registration", key);
    assert_eq!(
        (answer.status, body["error"]["code"].as_str()),
        (404, Some("agent_not_found"))
    );
}

#[test]
fn bad_list_filters_are_refused_naming_the_parameter() {
    let (mut api, key) = api();
    let key = Some(key.as_str());
    let client = wallet(1).address().to_checksum(None);
    for (query, code, names) in [
        ("active=yes", "bad_filter", "active"),
        ("trust=", "bad_filter", "trust"),
        ("service=%20", "bad_filter", "service"),
        ("tag=", "bad_filter", "tag"),
        ("tag=a&tag=b", "repeated_parameter", "tag"),
        ("limit=5&limit=6", "repeated_parameter", "limit"),
        ("min_reputation=80", "clients_required", "clients"),
        (&format!("clients={client}"), "bad_filter", "min_reputation"),
        (
            &format!("min_reputation=1.0000000000000000001&clients={client}"),
            "bad_filter",
            "min_reputation",
        ),
        (
            &format!("min_reputation=1.&clients={client}"),
            "bad_filter",
            "min_reputation",
        ),
        (
            &format!("min_reputation=eighty&clients={client}"),
            "bad_filter",
            "min_reputation",
        ),
        ("min_reputation=1&clients=0x12", "bad_client", "0x12"),
        ("sort=name", "unknown_parameter", "sort"),
        ("offset=10001", "bad_offset", "offset"),
        ("offset=-1", "bad_offset", "offset"),
        ("offset=2&cursor=1", "bad_offset", "cursor"),
    ] {
        let (answer, body) = call(&mut api, "GET", &format!("/api/v1/agents/?{query}"), key);
        assert_eq!(
            (answer.status, body["error"]["code"].as_str()),
            (400, Some(code)),
            "{query}: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(names), "{query}: {message}");
    }
}

/// A cluster node's source: the chain, and what its replica says of itself.
struct Replicated {
    chain: Shared,
    health: erc8004_api::health::ConsensusHealth,
}

impl erc8004_api::service::ChainSource for Replicated {
    fn with_chain<T>(&self, read: impl FnOnce(&erc8004::chain::Chain) -> T) -> T {
        self.chain.with_chain(read)
    }

    fn consensus(&self) -> Option<erc8004_api::health::ConsensusHealth> {
        Some(self.health)
    }
}

#[test]
fn health_on_a_cluster_node_names_its_role_and_whether_its_partition_can_commit() {
    use erc8004_api::health::ConsensusHealth;
    let at = |s: u64| WallTime::from_unix_nanos((s * 1_000_000_000) as i64);
    let health = ConsensusHealth {
        validator: 2,
        validators: 4,
        epoch: 1,
        view: 40,
        leading: true,
        committed_height: 37,
        committed_at: Some(at(NOW - 1)),
        taking_part_since: Some(at(NOW - 60)),
        halted: false,
        silence_max: std::time::Duration::from_secs(8),
    };
    let read = |health: ConsensusHealth| {
        let source = Replicated { chain: chain(), health };
        let mut api = ApiService::new(source, Gate::new(ApiKeys::new()));
        let answer = api.handle(&HttpRequest::new("GET", "/health", ""), at(NOW));
        serde_json::from_slice::<Value>(&answer.body).unwrap()
    };
    let live = read(health);
    let consensus = &live["components"]["consensus"];
    assert_eq!(live["status"], "ok", "{live}");
    assert_eq!(
        (
            consensus["role"].as_str(),
            consensus["validator"].as_u64(),
            consensus["committed_height"].as_u64()
        ),
        (Some("leader"), Some(2), Some(37))
    );
    assert_eq!(consensus["partition_can_commit"], true);
    assert_eq!(consensus["last_commit_age_seconds"], 1.0);

    // Cut off from a quorum: no commit for longer than the longest view timeout.
    let cut = read(ConsensusHealth {
        leading: false,
        committed_at: Some(at(NOW - 9)),
        ..health
    });
    assert_eq!(cut["status"], "degraded", "{cut}");
    assert_eq!(cut["components"]["consensus"]["role"], "follower");
    assert_eq!(cut["components"]["consensus"]["partition_can_commit"], false);
    assert!(cut["components"]["consensus"]["status"]
        .as_str()
        .unwrap()
        .starts_with("stalled"));
    // Still starting, or taking part for 3 s: no commit yet, starting; taking part for 9 s
    // without one (a restarted validator cut off from its quorum), stalled. Degraded all along.
    for (since, status) in [
        (None, "starting"),
        (Some(NOW - 3), "starting"),
        (Some(NOW - 9), "stalled"),
    ] {
        let waiting = read(ConsensusHealth {
            committed_at: None,
            taking_part_since: since.map(at),
            ..health
        });
        assert_eq!(waiting["status"], "degraded");
        let told = waiting["components"]["consensus"]["status"].as_str().unwrap();
        assert!(told.starts_with(status), "{since:?}: {waiting}");
    }
    let halted = read(ConsensusHealth { halted: true, ..health });
    assert!(
        halted["components"]["consensus"]["status"]
            .as_str()
            .unwrap()
            .starts_with("halted"),
        "{halted}"
    );
    // The development chain has no replica: no consensus component.
    let (mut dev, _) = api();
    let answer = dev.handle(&HttpRequest::new("GET", "/health", ""), at(NOW));
    let body: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(body["components"].get("consensus"), None, "{body}");
}

/// `/metrics` counts the gate's refusals by tier and by why, and the server's queue as the
/// backend tells it; the requests the server refused (never seen by the API) count in the
/// error-rate alert.
#[test]
fn metrics_count_the_gates_refusals_and_the_servers_queue_and_the_alert_sees_what_the_server_refused() {
    use erc8004_api::metrics::ServerLoad;
    use std::sync::atomic::{AtomicU64, Ordering};
    let chain = chain();
    let mut keys = ApiKeys::new();
    let (key, _) = keys.create(&[7; 36], "free", "tests", NOW as i64).unwrap();
    let mut api = ApiService::new(chain.clone(), Gate::new(keys));
    let refused = Arc::new(AtomicU64::new(0));
    let told = refused.clone();
    api.set_server_load(Box::new(move || ServerLoad {
        waiting: 3,
        waiting_max: 256,
        refused_busy: told.load(Ordering::Relaxed),
        connections_refused: 0,
        held: 4,
    }));
    // The free tier allows 100 a minute: 120 at once, 20 refused 429; 2 without a key.
    for _ in 0..120 {
        call_at(&mut api, "/api/v1/agents/2", Some(&key), 0);
    }
    call_at(&mut api, "/api/v1/agents/2", None, 0);
    call_at(&mut api, "/api/v1/agents/2", Some("hmk_nope"), 0);
    let (_, metrics) = call_at(&mut api, "/metrics", None, 0);
    for line in [
        "erc8004_rate_limited_total{tier=\"free\"} 20\n",
        "erc8004_rate_limited_total{tier=\"enterprise\"} 0\n",
        "erc8004_unauthorized_total{reason=\"missing_api_key\"} 1\n",
        "erc8004_unauthorized_total{reason=\"malformed_api_key\"} 1\n",
        "erc8004_unauthorized_total{reason=\"revoked_api_key\"} 0\n",
        "erc8004_server_requests_waiting 3\n",
        "erc8004_server_requests_waiting_max 256\n",
        "erc8004_server_refused_busy_total 0\n",
        "erc8004_server_answers_held 4\n",
    ] {
        assert!(metrics.contains(line), "{line}{metrics}");
    }
    // The server refuses 30 the API never sees: over the 123 answers it gave, the error rate
    // is 30 in 153 (the 429s and 401s are not errors).
    refused.store(30, Ordering::Relaxed);
    let (_, health) = call_at(&mut api, "/health", None, 2);
    let health: Value = serde_json::from_str(&health).unwrap();
    let firing = health["alerts"].as_array().unwrap();
    let error_rate = firing
        .iter()
        .find(|a| a["alert"] == "HighErrorRate")
        .unwrap_or_else(|| panic!("{health}"));
    let rate = error_rate["value"].as_f64().unwrap();
    assert!((0.19..0.20).contains(&rate), "{health}");
    let (_, metrics) = call_at(&mut api, "/metrics", None, 2);
    assert!(metrics.contains("erc8004_server_refused_busy_total 30\n"), "{metrics}");
}

/// A transaction taken but not yet included (ahead of its sender's nonce) is answered `202`
/// marked pending for the configured wait; asked again once its gap is filled, the API gives
/// its receipt instead, with the first answer's rate-limit headers; at the last call, still not
/// included, the `202`. Each POST is counted once, with its final status; without a wait, none
/// is marked.
#[test]
fn a_post_held_for_inclusion_is_answered_its_receipt_once_included() {
    let chain = chain();
    let (mut api, key) = api_with(&chain, ApiConfig::default());
    let now = WallTime::from_unix_nanos(NOW as i64 * 1_000_000_000);
    let sender = wallet(9);
    let (first, held) = post(
        &mut api,
        &signed(&sender, 1, IDENTITY_REGISTRY, I::register_0Call {}),
        &key,
    );
    assert_eq!((first.status, held["status"].as_str()), (202, Some("taken")), "{held}");
    let pending = first.pending.clone().expect("marked for the backend to hold");
    assert_eq!(
        pending.until.nanos_since(now),
        erc8004_api::service::COMMIT_WAIT.as_nanos() as i64
    );
    assert!(held["message"].as_str().unwrap().contains("up to 10000 ms"), "{held}");
    assert_eq!(api.resume(&first, now, false), None, "not included yet");

    let (filled, _) = post(
        &mut api,
        &signed(&sender, 0, IDENTITY_REGISTRY, I::register_0Call {}),
        &key,
    );
    assert_eq!(filled.status, 200);
    let better = api.resume(&first, now, false).expect("included with the gap filled");
    let receipt: Value = serde_json::from_slice(&better.body).unwrap();
    assert_eq!((better.status, &receipt["hash"]), (200, &held["hash"]), "{receipt}");
    assert_eq!(receipt["success"], true, "{receipt}");
    assert_eq!(
        header(&better, "x-ratelimit-limit"),
        header(&first, "x-ratelimit-limit")
    );
    assert!(header(&better, "x-ratelimit-limit").is_some());

    let (never, _) = post(
        &mut api,
        &signed(&sender, 5, IDENTITY_REGISTRY, I::register_0Call {}),
        &key,
    );
    assert_eq!(api.resume(&never, now, false), None);
    let last = api.resume(&never, now, true).expect("the last call answers");
    assert_eq!((last.status, last.pending.as_ref()), (202, None));
    assert_eq!(last.body, never.body);

    let (_, text) = call_at(&mut api, "/metrics", None, 0);
    for (series, count) in [
        (
            "erc8004_requests_total{route=\"/api/v1/transactions\",status=\"200\"}",
            "2",
        ),
        (
            "erc8004_requests_total{route=\"/api/v1/transactions\",status=\"202\"}",
            "1",
        ),
    ] {
        assert!(
            text.lines().any(|l| l == format!("{series} {count}")),
            "{series} {count} in:\n{text}"
        );
    }

    let (mut at_once, key) = api_with(
        &chain,
        ApiConfig {
            commit_wait: std::time::Duration::ZERO,
            ..ApiConfig::default()
        },
    );
    let (answer, _) = post(
        &mut at_once,
        &signed(&sender, 7, IDENTITY_REGISTRY, I::register_0Call {}),
        &key,
    );
    assert_eq!((answer.status, answer.pending), (202, None));
}

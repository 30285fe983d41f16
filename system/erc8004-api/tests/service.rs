//! The API's routes over registries built by real calls: what a client reads, and each error.

use alloy_primitives::{Address, B256, U256};
use alloy_sol_types::SolCall;
use erc8004::abi::{IdentityRegistry as I, ReputationRegistry as R, IDENTITY_REGISTRY, REPUTATION_REGISTRY};
use erc8004::registries::Registries;
use erc8004::wallet::Wallet;
use erc8004_api::gate::Gate;
use erc8004_api::keys::ApiKeys;
use erc8004_api::service::ApiService;
use runtime::{HttpRequest, HttpResponse, HttpService, WallTime};
use serde_json::Value;

const NOW: u64 = 1_790_000_000;

fn api() -> (ApiService<Registries>, String) {
    let mut registries = Registries::new(8004);
    let owner = Wallet::development(42, 0).address();
    let client = Wallet::development(42, 1).address();
    let mut send = |from: Address, to: Address, input: Vec<u8>| {
        if let Err(revert) = registries.call(from, to, &input, U256::ZERO, NOW, true) {
            panic!("{}", revert.reason);
        }
    };
    for i in 0..5 {
        send(
            owner,
            IDENTITY_REGISTRY,
            I::register_1Call {
                agentURI: format!("ipfs://agent-{i}"),
            }
            .abi_encode(),
        );
    }
    let feedback = R::giveFeedbackCall {
        agentId: U256::from(2),
        value: -250,
        valueDecimals: 2,
        tag1: "speed".into(),
        tag2: String::new(),
        endpoint: String::new(),
        feedbackURI: String::new(),
        feedbackHash: B256::ZERO,
    };
    send(client, REPUTATION_REGISTRY, feedback.abi_encode());
    // A second client, for a second page of feedback.
    send(
        Wallet::development(42, 3).address(),
        REPUTATION_REGISTRY,
        feedback.abi_encode(),
    );
    let mut keys = ApiKeys::new();
    let (key, _) = keys.create(&[9; 36], "standard", "tests", NOW as i64).unwrap();
    (ApiService::new(registries, Gate::new(keys)), key)
}

fn call(api: &mut ApiService<Registries>, method: &str, target: &str, key: Option<&str>) -> (HttpResponse, Value) {
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
    assert_eq!(agent["owner"], Wallet::development(42, 0).address().to_checksum(None));
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
    let client = Wallet::development(42, 1).address();
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
    let code = |api: &mut ApiService<Registries>, method: &str, target: &str, key: Option<&str>| {
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
        (400, "unknown_parameter".into()),
        "a filter not built is refused, not ignored"
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

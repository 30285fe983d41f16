//! What the CA API fuzz target checks, stated once: compiled into this crate's corpus replay
//! (`tests/fuzz_corpus.rs`) and into the fuzz target (`fuzz/src/lib.rs` includes this file), so
//! the fuzzer and CI hold the API to the same property.
//!
//! The property (`runtime::HttpService`'s contract): whatever the body of `POST /ca/validate` or
//! `POST /ca/issue`, or the query of `GET /ct/proof`, the API never panics and answers a status:
//! a success, or a 4xx whose JSON body names the problem. A 5xx would be the CA failing on a
//! client's input, and counts as a failure too.

use std::time::Duration;

use runtime::{HttpRequest, HttpResponse, HttpService, MemStorage, WallTime};
use trustchain::ca::{key_from_seed, request, CaPolicy, NodeIdentity};
use trustchain_service::{pem, CaApi, CaService, ServiceSeeds};

/// The CA's wall clock for every request, Unix seconds.
pub const NOW_UNIX_S: i64 = 1_790_000_000;

/// A CA with one enrolled node, and that node's CSR and chain (PEM): the known-good inputs fuzzing
/// starts from.
pub struct Enrolled {
    /// The CA, its log holding the node's certificate.
    pub api: CaApi,
    /// The node's CSR.
    pub csr_pem: String,
    /// The chain the CA issued for it, leaf first.
    pub chain_pem: String,
}

/// Creates the CA (fixed seeds: every call builds the same CA) and enrolls `node-1.mesh` through
/// the API with a join token.
pub fn enrolled() -> Enrolled {
    let seeds = ServiceSeeds {
        root: [1; 32],
        intermediate: [2; 32],
        log: [3; 32],
        token: [4; 32],
    };
    let mut storage = MemStorage::default();
    let service = CaService::init(&mut storage, &seeds, CaPolicy::default(), NOW_UNIX_S).expect("a new CA");
    let mut api = CaApi::new(Box::new(storage), service);
    let node = NodeIdentity {
        name: "node-1.mesh".into(),
        addr: "fd00::1".parse().expect("an IPv6 address"),
    };
    let csr = request(&node, &key_from_seed(&[1; 32])).expect("a CSR");
    let csr_pem = pem::encode("CERTIFICATE REQUEST", &csr);
    let (service, storage) = api.parts();
    let token = service
        .token(storage, node, Duration::from_secs(3600), NOW_UNIX_S)
        .expect("a join token");
    let body = format!(r#"{{"csr": {csr_pem:?}, "token": {token:?}}}"#);
    let response = api.handle(&HttpRequest::new("POST", "/ca/issue", body), now());
    let answer = String::from_utf8_lossy(&response.body).into_owned();
    assert_eq!(response.status, 200, "enrollment: {answer}");
    let chain_pem = answer
        .split_once(r#""chain": ""#)
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(chain, _)| chain.replace("\\n", "\n"))
        .expect("the answer's chain");
    Enrolled {
        api,
        csr_pem,
        chain_pem,
    }
}

/// The CA fuzz inputs are put to: [`enrolled`]'s, built anew whenever a request changed its CT
/// log (a renewal issues), so that every input meets the same CA and memory stays bounded.
pub struct FuzzedCa {
    api: CaApi,
    log_size: u64,
}

impl Default for FuzzedCa {
    fn default() -> Self {
        let mut api = enrolled().api;
        let log_size = api.parts().0.log_size();
        FuzzedCa { api, log_size }
    }
}

impl FuzzedCa {
    /// Sends the request `input` encodes ([`request_of`]) and checks the answer.
    pub fn answers(&mut self, input: &[u8]) {
        let request = request_of(input);
        let response = self.api.handle(&request, now());
        check(&request, &response);
        if self.api.parts().0.log_size() != self.log_size {
            *self = FuzzedCa::default();
        }
    }
}

/// The first byte's bit that makes a POST's input start with a query.
pub const WITH_QUERY: u8 = 0x80;

/// The request `input` encodes. Its first byte's low 7 bits pick the endpoint (`% 3`): 0
/// `POST /ca/validate`, 1 `POST /ca/issue`, 2 `GET /ct/proof`. For a POST the rest is the body,
/// except that with [`WITH_QUERY`] set the rest up to its first NUL is the query and what follows
/// it the body; for `GET /ct/proof` the rest is the query. A query's invalid UTF-8 is replaced.
pub fn request_of(input: &[u8]) -> HttpRequest {
    let (choice, rest) = input.split_first().map_or((0, input), |(c, rest)| (*c, rest));
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let (method, path, query, body) = match (choice & !WITH_QUERY) % 3 {
        2 => ("GET", "/ct/proof", text(rest), &[][..]),
        endpoint => {
            let path = if endpoint == 0 { "/ca/validate" } else { "/ca/issue" };
            match rest.iter().position(|b| *b == 0) {
                Some(nul) if choice & WITH_QUERY != 0 => ("POST", path, text(&rest[..nul]), &rest[nul + 1..]),
                _ => ("POST", path, String::new(), rest),
            }
        }
    };
    HttpRequest {
        method: method.into(),
        path: path.into(),
        query,
        headers: Vec::new(),
        body: bytes::Bytes::copy_from_slice(body),
    }
}

fn now() -> WallTime {
    WallTime::from_unix_nanos(NOW_UNIX_S * 1_000_000_000)
}

fn check(request: &HttpRequest, response: &HttpResponse) {
    let asked = format!("{} {}?{}", request.method, request.path, request.query);
    assert!(
        (200..500).contains(&response.status),
        "{asked}: status {} ({})",
        response.status,
        String::from_utf8_lossy(&response.body)
    );
    if response.status >= 300 {
        let body: serde_json::Value = serde_json::from_slice(&response.body)
            .unwrap_or_else(|e| panic!("{asked}: a {} whose body is not JSON: {e}", response.status));
        assert!(
            body["error"].is_string(),
            "{asked}: a {} without an error: {body}",
            response.status
        );
    }
}

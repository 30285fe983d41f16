//! The service as its clients see it: through HTTP requests and operator operations.

use std::time::Duration;

use runtime::{HttpRequest, HttpResponse, HttpService, MemStorage, WallTime};
use serde_json::Value;
use trustchain::ca::{key_from_seed, request, Authority, CaPolicy, NodeIdentity};
use trustchain::ct::{leaf_hash, verify_consistency, verify_inclusion, Hash, SignedTreeHead};

use crate::pem;
use crate::service::{CaService, Credential, RotationPlan, ServiceError, ServiceSeeds};
use crate::state::unhex;
use crate::CaApi;

const T0: i64 = 1_790_000_000;

fn seeds() -> ServiceSeeds {
    ServiceSeeds {
        root: [1; 32],
        intermediate: [2; 32],
        log: [3; 32],
        token: [4; 32],
    }
}

fn node(i: u8) -> NodeIdentity {
    NodeIdentity {
        name: format!("node-{i}.mesh"),
        addr: format!("fd00::{i}").parse().unwrap(),
    }
}

fn csr_pem(who: &NodeIdentity, key_seed: u8) -> String {
    pem::encode(
        "CERTIFICATE REQUEST",
        &request(who, &key_from_seed(&[key_seed; 32])).unwrap(),
    )
}

/// A fresh CA serving HTTP requests.
fn api() -> CaApi {
    let mut storage = MemStorage::default();
    let service = CaService::init(&mut storage, &seeds(), CaPolicy::default(), T0).unwrap();
    CaApi::new(Box::new(storage), service)
}

fn call(api: &mut CaApi, method: &str, target: &str, body: &str, now: i64) -> (u16, Value) {
    let r: HttpResponse = api.handle(
        &HttpRequest::new(method, target, body.to_owned()),
        WallTime::from_unix_nanos(now * 1_000_000_000),
    );
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (r.status, value)
}

fn token(api: &mut CaApi, who: &NodeIdentity) -> String {
    let (service, storage) = api.parts();
    service
        .token(storage, who.clone(), Duration::from_secs(3600), T0)
        .unwrap()
}

fn issue_body(csr: &str, token: &str) -> String {
    serde_json::json!({ "csr": csr, "token": token }).to_string()
}

fn enroll(api: &mut CaApi, i: u8) -> String {
    let who = node(i);
    let t = token(api, &who);
    let (status, body) = call(api, "POST", "/ca/issue", &issue_body(&csr_pem(&who, i), &t), T0);
    assert_eq!(status, 200, "{body}");
    body["chain"].as_str().unwrap().to_owned()
}

fn verdict(api: &mut CaApi, target: &str, chain: &str, now: i64) -> Value {
    let (status, body) = call(api, "POST", target, chain, now);
    assert_eq!(status, 200, "{body}");
    body
}

#[test]
fn nobody_without_a_credential_obtains_a_certificate_and_a_token_enrolls_once() {
    let mut api = api();
    let who = node(1);
    let csr = csr_pem(&who, 1);
    let (status, body) = call(
        &mut api,
        "POST",
        "/ca/issue",
        &serde_json::json!({ "csr": csr }).to_string(),
        T0,
    );
    assert_eq!(status, 403);
    assert!(body["error"].as_str().unwrap().contains("join token"), "{body}");
    let (status, body) = call(&mut api, "POST", "/ca/issue", &issue_body(&csr, "tcj1.00.00"), T0);
    assert_eq!(status, 403, "{body}");

    let t = token(&mut api, &who);
    let (status, body) = call(&mut api, "POST", "/ca/issue", &issue_body(&csr, &t), T0);
    assert_eq!(status, 200, "{body}");
    let chain = body["chain"].as_str().unwrap();
    assert_eq!(pem::chain(chain.as_bytes()).unwrap().len(), 2);
    assert_eq!(body["name"], "node-1.mesh");
    // Its CT receipt verifies against the log's key.
    let ct = &body["ct"];
    let h = |v: &Value| -> Hash { unhex(v.as_str().unwrap()).unwrap().try_into().unwrap() };
    let sth = SignedTreeHead {
        tree_size: ct["tree_size"].as_u64().unwrap(),
        timestamp_ms: ct["timestamp_ms"].as_u64().unwrap(),
        root_hash: h(&ct["root_hash"]),
        signature: unhex(ct["signature"].as_str().unwrap()).unwrap().try_into().unwrap(),
    };
    sth.verify(&unhex(ct["log_public_key"].as_str().unwrap()).unwrap())
        .unwrap();
    let leaf = &pem::chain(chain.as_bytes()).unwrap()[0];
    let path: Vec<Hash> = ct["audit_path"].as_array().unwrap().iter().map(h).collect();
    verify_inclusion(
        &leaf_hash(leaf),
        ct["index"].as_u64().unwrap(),
        sth.tree_size,
        &path,
        &sth.root_hash,
    )
    .unwrap();

    // The same token again: the same key (a lost answer) is served, another key is not.
    let (status, _) = call(&mut api, "POST", "/ca/issue", &issue_body(&csr, &t), T0);
    assert_eq!(status, 200);
    let (status, body) = call(&mut api, "POST", "/ca/issue", &issue_body(&csr_pem(&who, 9), &t), T0);
    assert_eq!(status, 403);
    assert!(body["error"].as_str().unwrap().contains("already used"), "{body}");
    // A token for node 2 cannot buy a certificate naming node 1.
    let t2 = token(&mut api, &node(2));
    let (status, body) = call(&mut api, "POST", "/ca/issue", &issue_body(&csr_pem(&who, 2), &t2), T0);
    assert_eq!(status, 403);
    assert!(body["error"].as_str().unwrap().contains("grants only"), "{body}");
    // Renewal: the current chain for the same key; not for another key.
    let renew = |csr: &str| serde_json::json!({ "csr": csr, "chain": chain }).to_string();
    assert_eq!(call(&mut api, "POST", "/ca/issue", &renew(&csr), T0 + 60_000).0, 200);
    let (status, body) = call(&mut api, "POST", "/ca/issue", &renew(&csr_pem(&who, 7)), T0 + 60_000);
    assert_eq!(status, 403);
    assert!(body["error"].as_str().unwrap().contains("another key"), "{body}");
}

#[test]
fn malformed_requests_get_4xx_with_a_reason_and_nothing_changes() {
    let mut api = api();
    let before = call(&mut api, "GET", "/ct/sth", "", T0).1["tree_size"].clone();
    let cases: &[(&str, &str, &str, u16, &str)] = &[
        ("POST", "/ca/validate", "not pem", 400, "BEGIN CERTIFICATE"),
        ("POST", "/ca/validate?name=a&addr=fd00::1", "", 400, "at most one"),
        ("POST", "/ca/validate?addr=10.0.0.300", "", 400, "not an IP address"),
        ("POST", "/ca/validate?bogus=1", "", 400, "unknown query parameter"),
        ("POST", "/ca/issue", "{", 400, "request body"),
        (
            "POST",
            "/ca/issue",
            r#"{"csr": "x", "token": "t"}"#,
            400,
            "certificate signing request",
        ),
        ("POST", "/ca/issue", r#"{"csr": 1}"#, 400, "request body"),
        ("GET", "/ca/issue", "", 405, "takes POST"),
        ("DELETE", "/ca/bundle", "", 405, "takes GET"),
        ("GET", "/ca/bundle?format=der", "", 400, "use pem, json or tc"),
        ("GET", "/nope", "", 404, "/ca/validate"),
        ("GET", "/ct/proof?index=0&size=5", "", 400, "beyond the log"),
        ("GET", "/ct/proof?index=x&size=5", "", 400, "non-negative integer"),
        ("GET", "/ct/proof?first=2&second=1", "", 400, "beyond the log"),
        ("GET", "/ct/proof", "", 400, "inclusion proof"),
        ("GET", "/ct/proof?hash=zz&size=1", "", 400, "64 hex digits"),
        ("GET", "/ca/crl?x=%zz", "", 400, "percent-encoded"),
    ];
    for (method, target, body, status, needle) in cases {
        let (got, answer) = call(&mut api, method, target, body, T0);
        assert_eq!(got, *status, "{method} {target}: {answer}");
        let message = answer["error"].as_str().unwrap_or_default();
        assert!(message.contains(needle), "{method} {target}: {message}");
    }
    let big = "A".repeat(crate::REQUEST_BODY_BYTES_MAX + 1);
    assert_eq!(call(&mut api, "POST", "/ca/validate", &big, T0).0, 413);
    // A CSR whose signature was tampered with.
    let mut csr = request(&node(1), &key_from_seed(&[1; 32])).unwrap();
    let last = csr.len() - 1;
    csr[last] ^= 1;
    let t = token(&mut api, &node(1));
    let (status, body) = call(
        &mut api,
        "POST",
        "/ca/issue",
        &issue_body(&pem::encode("CERTIFICATE REQUEST", &csr), &t),
        T0,
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(call(&mut api, "GET", "/ct/sth", "", T0).1["tree_size"], before);
    // The token was not spent by the refused request.
    assert_eq!(
        call(
            &mut api,
            "POST",
            "/ca/issue",
            &issue_body(&csr_pem(&node(1), 1), &t),
            T0
        )
        .0,
        200
    );
}

#[test]
fn validation_classifies_failures_and_can_require_the_ct_log() {
    let mut api = api();
    let chain = enroll(&mut api, 1);
    let ok = verdict(
        &mut api,
        "/ca/validate?name=node-1.mesh&require_logged=true",
        &chain,
        T0 + 60,
    );
    assert_eq!(ok["valid"], true, "{ok}");
    assert_eq!(ok["addr"], "fd00::1");
    assert_eq!(ok["ct_index"], 0);

    let expired = verdict(&mut api, "/ca/validate", &chain, T0 + 2 * 86_400);
    assert_eq!(expired["class"], "expired", "{expired}");
    let early = verdict(&mut api, "/ca/validate", &chain, T0 - 3600);
    assert_eq!(early["class"], "not_yet_valid");
    assert!(early["reason"].as_str().unwrap().contains("NTP"));
    let other = verdict(&mut api, "/ca/validate?addr=fd00::2", &chain, T0 + 60);
    assert_eq!(other["class"], "name_mismatch");
    let junk = verdict(&mut api, "/ca/validate", &pem::encode("CERTIFICATE", b"junk"), T0);
    assert_eq!(junk["class"], "malformed");

    // Another CA's chain: unknown issuer.
    let mut outsider = Authority::create(&[7; 32], &[8; 32], T0, CaPolicy::default()).unwrap();
    let leaf = outsider.issue(&node(1), &key_from_seed(&[1; 32]), T0).unwrap();
    let foreign = pem::certificates([leaf.as_ref(), outsider.intermediate().as_ref()]);
    assert_eq!(
        verdict(&mut api, "/ca/validate", &foreign, T0 + 60)["class"],
        "unknown_issuer"
    );

    // The same keys issuing outside the log: valid by signature, refused when logging is required.
    let mut twin = Authority::create(&[1; 32], &[2; 32], T0, CaPolicy::default()).unwrap();
    twin.skip_serials(1000);
    let unlogged = twin.issue(&node(3), &key_from_seed(&[3; 32]), T0).unwrap();
    let unlogged = pem::certificates([unlogged.as_ref(), twin.intermediate().as_ref()]);
    assert_eq!(verdict(&mut api, "/ca/validate", &unlogged, T0 + 60)["valid"], true);
    let v = verdict(&mut api, "/ca/validate?require_logged", &unlogged, T0 + 60);
    assert_eq!(v["class"], "not_logged", "{v}");

    // Revocation by serial reaches validation and the published list.
    let serial = ok["serial"].as_str().unwrap().to_owned();
    {
        let (service, storage) = api.parts();
        assert!(service.revoke(storage, &serial, T0 + 100).unwrap());
        assert!(!service.revoke(storage, &serial.to_uppercase(), T0 + 100).unwrap());
        assert!(matches!(
            service.revoke(storage, "xyz", T0),
            Err(ServiceError::BadSerial(_))
        ));
    }
    assert_eq!(verdict(&mut api, "/ca/validate", &chain, T0 + 200)["class"], "revoked");
    let (status, crl) = call(&mut api, "GET", "/ca/crl", "", T0 + 200);
    assert_eq!(status, 200);
    assert!(crl.as_str().unwrap().starts_with("-----BEGIN X509 CRL-----"));
    let renew = serde_json::json!({ "csr": csr_pem(&node(1), 1), "chain": chain }).to_string();
    let (status, body) = call(&mut api, "POST", "/ca/issue", &renew, T0 + 300);
    assert_eq!(status, 403);
    assert!(body["error"].as_str().unwrap().contains("revoked"), "{body}");
}

#[test]
fn rotation_keeps_old_leaves_valid_through_the_overlap_and_publishes_its_plan() {
    let mut api = api();
    let old_chain = enroll(&mut api, 1);
    let plan = RotationPlan::default();
    let at = T0 + 3600;
    {
        let (service, storage) = api.parts();
        let bad = RotationPlan {
            waves: 20,
            ..plan.clone()
        };
        assert!(matches!(
            service.rotate(storage, &[5; 32], &bad, at),
            Err(ServiceError::BadPlan(_))
        ));
        let report = service.rotate(storage, &[5; 32], &plan, at).unwrap();
        assert_eq!(report.rotation.as_ref().unwrap().overlap_end, at + 3600);
        assert!(matches!(
            service.rotate(storage, &[6; 32], &plan, at + 60),
            Err(ServiceError::RotationInProgress { until }) if until == at + 3600
        ));
    }
    let (_, bundle) = call(&mut api, "GET", "/ca/bundle?format=json", "", at + 60);
    assert_eq!(bundle["issuers"].as_array().unwrap().len(), 2, "{bundle}");
    assert_eq!(bundle["rotation"]["waves"], 6);
    assert_eq!(bundle["rotation"]["verify_before_switch"], true);
    let (_, pem_bundle) = call(&mut api, "GET", "/ca/bundle", "", at + 60);
    assert_eq!(pem::chain(pem_bundle.as_str().unwrap().as_bytes()).unwrap().len(), 3);

    // During the overlap the old leaf is valid; after it, refused as from a retired issuer.
    assert_eq!(verdict(&mut api, "/ca/validate", &old_chain, at + 3599)["valid"], true);
    let after = verdict(&mut api, "/ca/validate", &old_chain, at + 3601);
    assert_eq!(after["class"], "unknown_issuer");
    assert!(after["reason"].as_str().unwrap().contains("retired"), "{after}");
    let (_, bundle) = call(&mut api, "GET", "/ca/bundle?format=json", "", at + 3601);
    assert_eq!(bundle["issuers"].as_array().unwrap().len(), 1);
    assert_eq!(bundle["rotation"], Value::Null);

    // Its holder, away through the overlap, still renews with it, from the new issuer.
    let renew = serde_json::json!({ "csr": csr_pem(&node(1), 1), "chain": old_chain }).to_string();
    let (status, body) = call(&mut api, "POST", "/ca/issue", &renew, at + 3700);
    assert_eq!(status, 200, "{body}");
    let fresh = body["chain"].as_str().unwrap();
    assert_eq!(verdict(&mut api, "/ca/validate", fresh, at + 3701)["valid"], true);
}

#[test]
fn a_restarted_ca_keeps_its_keys_log_and_spent_tokens_even_after_a_crash() {
    let mut storage = MemStorage::default();
    let mut service = CaService::init(&mut storage, &seeds(), CaPolicy::default(), T0).unwrap();
    assert!(matches!(
        CaService::init(&mut storage, &seeds(), CaPolicy::default(), T0),
        Err(ServiceError::AlreadyInitialised)
    ));
    let root = service.root();
    let who = node(1);
    let t = service
        .token(&mut storage, who.clone(), Duration::from_secs(3600), T0)
        .unwrap();
    let csr = pem::csr(csr_pem(&who, 1).as_bytes()).unwrap();
    let first = service
        .issue(&mut storage, &csr, &Credential::Token(t.clone()), T0)
        .unwrap();
    let sth = service.tree_head(T0).unwrap();
    storage.crash_keeping(0);

    let mut again = CaService::open(&mut storage).unwrap();
    assert_eq!(again.root(), root);
    assert_eq!(again.log_size(), 1);
    let other_key = pem::csr(csr_pem(&who, 2).as_bytes()).unwrap();
    assert!(again
        .issue(&mut storage, &other_key, &Credential::Token(t), T0)
        .is_err());
    let node2 = pem::csr(csr_pem(&node(2), 2).as_bytes()).unwrap();
    let second = again
        .issue(&mut storage, &node2, &Credential::Operator(node(2)), T0)
        .unwrap();
    assert_ne!(first.serial, second.serial);
    // The log only grew: the old head is consistent with the new one.
    let new = again.tree_head(T0 + 1).unwrap();
    let proof = again.consistency_proof(sth.tree_size, new.tree_size).unwrap();
    verify_consistency(sth.tree_size, new.tree_size, &sth.root_hash, &new.root_hash, &proof).unwrap();

    assert!(matches!(
        CaService::open(&mut MemStorage::default()),
        Err(ServiceError::NotInitialised)
    ));
}

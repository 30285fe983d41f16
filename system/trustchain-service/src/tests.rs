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
        let revoked = service.revoke(storage, &serial, T0 + 100).unwrap();
        assert!(revoked.newly_revoked);
        assert_eq!(revoked.identity, Some(node(1)), "the CA knows whose serial it was");
        assert!(revoked.key_revoked);
        assert!(
            !service
                .revoke(storage, &serial.to_uppercase(), T0 + 100)
                .unwrap()
                .newly_revoked
        );
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

fn renew_body(csr: &str, chain: &str) -> String {
    serde_json::json!({ "csr": csr, "chain": chain }).to_string()
}

fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_default()
}

/// Issue 13, item 5: a spent token presented again with the same key, and a chain renewed before
/// the revocation, both used to get a revoked node a fresh certificate.
#[test]
fn a_revoked_node_gets_nothing_by_replaying_its_token_or_renewing() {
    let mut api = api();
    let who = node(1);
    let t = token(&mut api, &who);
    let csr = csr_pem(&who, 1);
    let (status, body) = call(&mut api, "POST", "/ca/issue", &issue_body(&csr, &t), T0);
    assert_eq!(status, 200, "{body}");
    let first = body["chain"].as_str().unwrap().to_owned();
    let serial = body["serial"].as_str().unwrap().to_owned();
    // The key's holder (the node, or a thief of its key) renews before the operator acts.
    let (status, body) = call(&mut api, "POST", "/ca/issue", &renew_body(&csr, &first), T0 + 60);
    assert_eq!(status, 200, "{body}");
    let second = body["chain"].as_str().unwrap().to_owned();
    {
        let (service, storage) = api.parts();
        service.revoke(storage, &serial, T0 + 120).unwrap();
    }
    // The token replayed with the same key (the lost-answer retry path): refused, naming why.
    let (status, body) = call(&mut api, "POST", "/ca/issue", &issue_body(&csr, &t), T0 + 180);
    assert_eq!(status, 403, "{body}");
    assert!(error_of(&body).contains("revoked"), "{body}");
    assert_eq!(body["refusal"], "revoked", "{body}");
    // Renewal with the chain renewed before the revocation: same key, same identity, refused.
    let (status, body) = call(&mut api, "POST", "/ca/issue", &renew_body(&csr, &second), T0 + 180);
    assert_eq!(status, 403, "{body}");
    assert!(error_of(&body).contains("revoked"), "{body}");
    // And that renewed leaf is on the revocation list too.
    assert_eq!(verdict(&mut api, "/ca/validate", &second, T0 + 200)["class"], "revoked");
    // The revoked key is refused even with a token issued later for the same identity; a new key
    // with that token re-admits the node (the operator's deliberate choice).
    let later = {
        let (service, storage) = api.parts();
        service
            .token(storage, who.clone(), Duration::from_secs(3600), T0 + 300)
            .unwrap()
    };
    let (status, body) = call(&mut api, "POST", "/ca/issue", &issue_body(&csr, &later), T0 + 300);
    assert_eq!(status, 403, "{body}");
    assert!(error_of(&body).contains("key"), "{body}");
    let (status, body) = call(
        &mut api,
        "POST",
        "/ca/issue",
        &issue_body(&csr_pem(&who, 2), &later),
        T0 + 300,
    );
    assert_eq!(status, 200, "{body}");
    let readmitted = body["chain"].as_str().unwrap().to_owned();
    let (status, body) = call(
        &mut api,
        "POST",
        "/ca/issue",
        &renew_body(&csr_pem(&who, 2), &readmitted),
        T0 + 360,
    );
    assert_eq!(status, 200, "the re-admitted node renews: {body}");
}

#[test]
fn revocation_by_identity_and_key_survives_a_restart() {
    let mut storage = MemStorage::default();
    let mut service = CaService::init(&mut storage, &seeds(), CaPolicy::default(), T0).unwrap();
    let who = node(1);
    let t = service
        .token(&mut storage, who.clone(), Duration::from_secs(3600), T0)
        .unwrap();
    let csr = pem::csr(csr_pem(&who, 1).as_bytes()).unwrap();
    let issued = service
        .issue(&mut storage, &csr, &Credential::Token(t.clone()), T0)
        .unwrap();
    service
        .revoke(&mut storage, &crate::state::hex(&issued.serial), T0 + 10)
        .unwrap();
    let mut again = CaService::open(&mut storage).unwrap();
    let replay = again
        .issue(&mut storage, &csr, &Credential::Token(t), T0 + 20)
        .unwrap_err();
    assert!(replay.to_string().contains("revoked"), "{replay}");
    let renewal = again
        .issue(&mut storage, &csr, &Credential::Renewal(issued.chain.clone()), T0 + 20)
        .unwrap_err();
    assert!(renewal.to_string().contains("revoked"), "{renewal}");
}

/// Issue 13, item 5: renewal was unlimited.
#[test]
fn renewals_are_limited_per_identity_and_window() {
    let mut api = api();
    let first = enroll(&mut api, 1);
    let other = enroll(&mut api, 2);
    let csr = csr_pem(&node(1), 1);
    let mut chain = first;
    let mut refused = None;
    for i in 0..50 {
        let (status, body) = call(&mut api, "POST", "/ca/issue", &renew_body(&csr, &chain), T0 + 10 + i);
        if status != 200 {
            refused = Some((i, status, body));
            break;
        }
        chain = body["chain"].as_str().unwrap().to_owned();
    }
    let (after, status, body) = refused.expect("50 renewals in a minute were all served");
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["refusal"], "rate_limited", "{body}");
    assert!(error_of(&body).contains("renewals"), "{body}");
    assert!(
        after >= 2,
        "a node renewing a few times is not limited: refused after {after}"
    );
    let window = i64::try_from(crate::ServiceLimits::default().renewal_window.as_secs()).unwrap();
    assert!(
        error_of(&body).contains(&format!("retry after {}", T0 + 10 + window)),
        "{body}"
    );
    // Another identity is not limited by node 1's renewals.
    let (status, body) = call(
        &mut api,
        "POST",
        "/ca/issue",
        &renew_body(&csr_pem(&node(2), 2), &other),
        T0 + 100,
    );
    assert_eq!(status, 200, "{body}");
    // Once its first renewal (at T0 + 10) leaves the window, node 1 renews again, and the 429
    // said when that would be.
    let window = i64::try_from(crate::ServiceLimits::default().renewal_window.as_secs()).unwrap();
    let (status, body) = call(
        &mut api,
        "POST",
        "/ca/issue",
        &renew_body(&csr, &chain),
        T0 + 10 + window,
    );
    assert_eq!(status, 200, "{body}");
}

/// Issue 13, item 8: wildcards and the CA's own name were grantable, long names truncated.
#[test]
fn tokens_and_approvals_refuse_wildcards_overlong_names_and_the_cas_reserved_name() {
    let mut api = api();
    let (service, storage) = api.parts();
    let long = format!("{}.mesh", vec!["a".repeat(60); 5].join("."));
    for name in [
        "*.mesh",
        "trustchain.mesh",
        "TrustChain.Mesh",
        long.as_str(),
        "a..mesh",
        "-a.mesh",
        "node 1.mesh",
        "fd00::1",
        "",
    ] {
        let who = NodeIdentity {
            name: name.to_owned(),
            addr: "fd00::1".parse().unwrap(),
        };
        let refused = service
            .token(storage, who.clone(), Duration::from_secs(60), T0)
            .expect_err(name);
        let message = refused.to_string();
        assert!(!message.contains("Ia5String"), "{message}");
        let csr = request(
            &NodeIdentity {
                name: "x.mesh".into(),
                ..who.clone()
            },
            &key_from_seed(&[1; 32]),
        )
        .unwrap();
        assert!(
            service.issue(storage, &csr, &Credential::Operator(who), T0).is_err(),
            "{name:?} approved"
        );
    }
    // A grant refusal says what was asked for in words, not in Rust's debug form.
    let t2 = token(&mut api, &node(2));
    let (status, body) = call(
        &mut api,
        "POST",
        "/ca/issue",
        &issue_body(&csr_pem(&node(1), 2), &t2),
        T0,
    );
    assert_eq!(status, 403, "{body}");
    let message = error_of(&body);
    assert!(message.contains("DNS name node-1.mesh"), "{message}");
    assert!(!message.contains("DnsName("), "{message}");
}

/// A storage that panics on writes while `panics` is set: a bug (or an assertion) striking in
/// the middle of an update.
struct PanickingStorage {
    inner: MemStorage,
    panics: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl runtime::Storage for PanickingStorage {
    fn read_at(&mut self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>, runtime::StorageError> {
        self.inner.read_at(name, offset, len)
    }
    fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> Result<(), runtime::StorageError> {
        assert!(
            !self.panics.load(std::sync::atomic::Ordering::SeqCst),
            "the test's injected panic"
        );
        self.inner.write_at(name, offset, data)
    }
    fn size(&mut self, name: &str) -> Result<u64, runtime::StorageError> {
        self.inner.size(name)
    }
    fn truncate(&mut self, name: &str, len: u64) -> Result<(), runtime::StorageError> {
        self.inner.truncate(name, len)
    }
    fn sync(&mut self, name: &str) -> Result<(), runtime::StorageError> {
        self.inner.sync(name)
    }
    fn remove(&mut self, name: &str) -> Result<(), runtime::StorageError> {
        self.inner.remove(name)
    }
    fn list(&mut self) -> Result<Vec<String>, runtime::StorageError> {
        self.inner.list()
    }
}

/// Issue 13, item 9: a panic in a handler poisoned the server's lock, and every later request got
/// a 503. The API catches it, reloads what is durable, and answers the next request.
#[test]
fn a_panic_inside_a_request_is_answered_and_the_next_request_is_served() {
    let panics = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut storage = PanickingStorage {
        inner: MemStorage::default(),
        panics: panics.clone(),
    };
    let service = CaService::init(&mut storage, &seeds(), CaPolicy::default(), T0).unwrap();
    let mut api = CaApi::new(Box::new(storage), service);
    let who = node(1);
    let t = token(&mut api, &who);
    let csr = csr_pem(&who, 1);
    panics.store(true, std::sync::atomic::Ordering::SeqCst);
    let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        call(&mut api, "POST", "/ca/issue", &issue_body(&csr, &t), T0)
    }));
    let (status, body) = answer.expect("the API answers instead of unwinding into its caller");
    assert_eq!(status, 500, "{body}");
    assert!(error_of(&body).contains("retry"), "{body}");
    panics.store(false, std::sync::atomic::Ordering::SeqCst);
    // Nothing half-done survived: the token was not spent, and it enrolls now.
    let (status, body) = call(&mut api, "POST", "/ca/issue", &issue_body(&csr, &t), T0 + 1);
    assert_eq!(status, 200, "{body}");
    assert_eq!(call(&mut api, "GET", "/ct/sth", "", T0 + 2).0, 200);
}

/// The state file as the previous version wrote it (no server name, leaf ledger or revoked
/// identities and keys) opens with everything it held.
#[test]
fn a_state_file_from_the_previous_version_opens_with_everything_it_held() {
    let mut storage = MemStorage::default();
    let mut service = CaService::init(&mut storage, &seeds(), CaPolicy::default(), T0).unwrap();
    let who = node(1);
    let t = service
        .token(&mut storage, who.clone(), Duration::from_secs(3600), T0)
        .unwrap();
    let csr = pem::csr(csr_pem(&who, 1).as_bytes()).unwrap();
    service
        .issue(&mut storage, &csr, &Credential::Token(t.clone()), T0)
        .unwrap();
    let (seq, bytes) = trustchain::durable::load(&mut storage, crate::STATE_FILE)
        .unwrap()
        .unwrap();
    let mut old: Value = serde_json::from_slice(&bytes).unwrap();
    for new_field in ["server_name", "issued", "revoked_keys", "revoked_identities"] {
        assert!(old.as_object_mut().unwrap().remove(new_field).is_some(), "{new_field}");
    }
    trustchain::durable::save(
        &mut storage,
        crate::STATE_FILE,
        seq + 1,
        &serde_json::to_vec(&old).unwrap(),
    )
    .unwrap();

    let mut again = CaService::open(&mut storage).unwrap();
    assert_eq!(again.server_name(), crate::SERVER_NAME_DEFAULT);
    assert_eq!(again.log_size(), 1);
    let other_key = pem::csr(csr_pem(&who, 2).as_bytes()).unwrap();
    let reused = again
        .issue(&mut storage, &other_key, &Credential::Token(t), T0 + 1)
        .unwrap_err();
    assert!(reused.to_string().contains("already used"), "{reused}");
}

/// Issue 13, item 9: every private key, the root's included, sat in the state file the server
/// reads. With the root kept offline the state holds no root key, the CA still issues, and only
/// a rotation given the right root key certifies a new intermediate.
#[test]
fn a_ca_with_its_root_key_offline_issues_without_it_and_rotates_only_with_it() {
    let mut storage = MemStorage::default();
    let mut service = CaService::init(&mut storage, &seeds(), CaPolicy::default(), T0).unwrap();
    service.keep_root_offline(&mut storage).unwrap();
    let root_seed_hex = crate::state::hex(&seeds().root);
    // Both slots of the state file, not only the one a load picks.
    let state_holds_root = |storage: &mut MemStorage| {
        use runtime::Storage;
        let files = storage.list().unwrap();
        assert!(files.len() >= 2, "{files:?}");
        files.iter().any(|f| {
            let bytes = storage.read_all(f).unwrap();
            String::from_utf8_lossy(&bytes).contains(&root_seed_hex)
        })
    };
    assert!(!state_holds_root(&mut storage));
    let mut service = CaService::open(&mut storage).unwrap();
    assert!(service.root_offline());
    let csr = pem::csr(csr_pem(&node(1), 1).as_bytes()).unwrap();
    service
        .issue(&mut storage, &csr, &Credential::Operator(node(1)), T0)
        .unwrap();
    let plan = RotationPlan::default();
    assert!(matches!(
        service.rotate(&mut storage, &[5; 32], &plan, T0 + 60),
        Err(ServiceError::RootKeyOffline)
    ));
    assert!(service.attach_root(&[9; 32]).is_err(), "another root key was accepted");
    service.attach_root(&seeds().root).unwrap();
    service.rotate(&mut storage, &[5; 32], &plan, T0 + 60).unwrap();
    assert!(
        !state_holds_root(&mut storage),
        "the rotation wrote the root key into the state"
    );
    let mut again = CaService::open(&mut storage).unwrap();
    assert_eq!(again.bundle().issuers_at(T0 + 61).len(), 2);
    assert_eq!(again.root(), service.root());
}

//! Replays the CA API's fuzz corpus (`fuzz/corpus/ca_api/`) as a plain test, so CI holds the
//! API to the fuzz target's property on stable, without a fuzzer. A missing or empty corpus
//! fails: the replay cannot pass by checking nothing.

use std::path::{Path, PathBuf};

#[path = "fuzz_corpus/property.rs"]
mod property;

#[path = "../../../fuzz/shared/corpus.rs"]
mod corpus;

/// The repository root, where `fuzz/corpus/` is.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn ca_api_corpus_is_always_answered() {
    let mut ca = property::FuzzedCa::default();
    corpus::replay(&root(), "ca_api", |input| ca.answers(input));
}

#[test]
fn the_inputs_fuzzing_starts_from_are_served() {
    let property::Enrolled {
        mut api,
        csr_pem,
        chain_pem,
    } = property::enrolled();
    let mut ask = |input: Vec<u8>| {
        let request = property::request_of(&input);
        let response = runtime::HttpService::handle(
            &mut api,
            &request,
            runtime::WallTime::from_unix_nanos(property::NOW_UNIX_S * 1_000_000_000),
        );
        (response.status, String::from_utf8_lossy(&response.body).into_owned())
    };
    let validate = [
        &[property::WITH_QUERY][..],
        b"require_logged=true\0",
        chain_pem.as_bytes(),
    ]
    .concat();
    let (status, body) = ask(validate);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""valid": true"#), "{body}");
    let renew = format!(r#"{{"csr": {csr_pem:?}, "chain": {chain_pem:?}}}"#);
    let (status, body) = ask([&[1][..], renew.as_bytes()].concat());
    assert_eq!(status, 200, "{body}");
    let (status, body) = ask([&[2][..], b"index=0&size=1"].concat());
    assert_eq!(status, 200, "{body}");
}

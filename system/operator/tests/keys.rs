//! `hypermesh keys`: keys created, listed and revoked in a state directory, only hashes stored.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{fresh_dir, run_hypermesh, text};
use erc8004_api::keys::{ApiKeys, AuthError};

#[test]
fn a_key_is_shown_once_stored_as_a_hash_listed_and_revoked() {
    let dir = fresh_dir("keys-lifecycle");
    let state = dir.join("node");
    let state_arg = state.to_str().unwrap();

    let created = run_hypermesh(&[
        "keys",
        "create",
        "--state",
        state_arg,
        "--tier",
        "standard",
        "--label",
        "dashboard",
    ]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    let out = text(&created.stdout);
    let key = out.lines().last().unwrap().to_owned();
    assert!(
        key.starts_with("hmk_") && key.len() == 77,
        "the last line is the key: {out}"
    );
    assert!(out.contains("1000 requests per 60 s"), "{out}");
    let id = key[4..12].to_owned();

    let file = state.join("api-keys.json");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let stored = std::fs::read(&file).unwrap();
    assert!(!text(&stored).contains(&key[13..]), "the secret is not stored");
    let keys = ApiKeys::from_json(&stored).unwrap();
    let bearer = format!("Bearer {key}");
    assert_eq!(keys.authenticate(Some(bearer.as_bytes())).unwrap().id, id);

    let listed = run_hypermesh(&["keys", "list", "--state", state_arg]);
    let listing = text(&listed.stdout);
    assert!(
        listing.contains(&id) && listing.contains("dashboard") && !listing.contains(&key[13..]),
        "{listing}"
    );

    // Revoked by pasting the key itself, as an operator with a leaked key would.
    let revoked = run_hypermesh(&["keys", "revoke", "--state", state_arg, &key]);
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    assert!(!text(&revoked.stdout).contains(&key[13..]), "the secret is not echoed");
    let keys = ApiKeys::from_json(&std::fs::read(&file).unwrap()).unwrap();
    assert!(matches!(
        keys.authenticate(Some(bearer.as_bytes())),
        Err(AuthError::Revoked { .. })
    ));
    let json = text(&run_hypermesh(&["keys", "list", "--state", state_arg, "--json"]).stdout);
    let record: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert!(record["revoked_at"].is_i64(), "{record}");

    let again = run_hypermesh(&["keys", "revoke", "--state", state_arg, &id]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("was revoked"), "{}", text(&again.stderr));
}

#[test]
fn a_bad_tier_or_a_damaged_store_changes_nothing_and_says_why() {
    let dir = fresh_dir("keys-refusals");
    let state = dir.join("node");
    let state_arg = state.to_str().unwrap();
    let refused = run_hypermesh(&["keys", "create", "--state", state_arg, "--tier", "gold"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        text(&refused.stderr).contains("no tier \"gold\""),
        "{}",
        text(&refused.stderr)
    );
    assert!(!state.join("api-keys.json").exists(), "nothing was created");

    assert!(run_hypermesh(&["keys", "create", "--state", state_arg])
        .status
        .success());
    let file = state.join("api-keys.json");
    let damaged = text(&std::fs::read(&file).unwrap()).replace("\"standard\"", "\"gold\"");
    std::fs::write(&file, &damaged).unwrap();
    let refused = run_hypermesh(&["keys", "create", "--state", state_arg]);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("api-keys.json") && stderr.contains("nothing was changed"),
        "{stderr}"
    );
    assert_eq!(
        text(&std::fs::read(&file).unwrap()),
        damaged,
        "the store is left as it was"
    );

    // A mistyped directory is an error, not an empty list, and nothing is created there.
    let missing = dir.join("nodee");
    let listed = run_hypermesh(&["keys", "list", "--state", missing.to_str().unwrap()]);
    assert_eq!(listed.status.code(), Some(2));
    assert!(
        text(&listed.stderr).contains("no such directory"),
        "{}",
        text(&listed.stderr)
    );
    assert!(!missing.exists());
    // An unknown id that is really a secret pasted by mistake is not echoed whole.
    std::fs::remove_file(&file).unwrap();
    let secretish = "0123456789abcdef0123456789abcdef";
    let unknown = run_hypermesh(&["keys", "revoke", "--state", state_arg, secretish]);
    assert_eq!(unknown.status.code(), Some(2));
    let stderr = text(&unknown.stderr);
    assert!(
        stderr.contains("no key has id") && !stderr.contains(secretish),
        "{stderr}"
    );
}

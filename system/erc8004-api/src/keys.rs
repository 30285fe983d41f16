//! API keys: who may call `/api/v1/`, and at which tier.
//!
//! A key is `hmk_<id>_<secret>`: `id`, 8 hex digits, names it in lists and revocations and is
//! not secret; `secret`, 64 hex digits, is 32 random bytes. Only the SHA-256 of the secret is
//! stored (the secret is random, so a fast hash suffices: there is no password to guess), and the
//! key itself is shown once, when it is created. A caller presents it as
//! `Authorization: Bearer hmk_…`.
//!
//! Whitespace, which the guide's users tripped on ("check for trailing whitespace in header"):
//! spaces and tabs around the credential are not part of it (HTTP's optional whitespace around a
//! field value, RFC 9110 §5.5) and are ignored, as are extra spaces between `Bearer` and the key.
//! Whitespace inside the key, a key cut short or anything else is refused as malformed, saying
//! which, rather than looked up and reported unknown. [`Whitespace::Literal`] is the guide's
//! pitfall as a setting: the header read byte for byte, so that a good key with whitespace
//! around it is refused as unknown ("Invalid API key") without a word on why.
//!
//! The store is one JSON file ([`ApiKeys::to_json`]) the operator's command rewrites whole
//! (atomically), so that a serving node can read it again when it changes and keys are created
//! and revoked without a restart; that reading side is not built yet.
//!
//! The hash is SHA-256 of the secret's 64 hex digits as text.

use std::collections::BTreeMap;

use alloy_primitives::hex;
use serde::{Deserialize, Serialize};

/// What every key starts with.
pub const KEY_PREFIX: &str = "hmk_";
/// Hex digits of a key's id.
pub const ID_DIGITS: usize = 8;
/// Hex digits of a key's secret (32 bytes).
pub const SECRET_DIGITS: usize = 64;
/// Keys a store holds, revoked ones included (they stay, so a revoked key is told apart from an
/// unknown one).
pub const KEYS_MAX: usize = 10_000;
/// Bytes of a key's label.
pub const LABEL_BYTES_MAX: usize = 200;
/// The version of the key file's format.
pub const FILE_VERSION: u32 = 1;

/// How the `Authorization` header's whitespace is read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Whitespace {
    /// As the module's documentation says: around the credential and after `Bearer`, ignored;
    /// inside the key, refused as malformed.
    #[default]
    Ignored,
    /// The original's reading, the guide's pitfall: the header must be `Bearer ` and the key,
    /// byte for byte; anything else is looked up as it is, found by nobody, and refused as an
    /// unknown key.
    Literal,
}

impl crate::setting::Named for Whitespace {
    const NAMED: &'static [(Whitespace, &'static str)] =
        &[(Whitespace::Ignored, "ignored"), (Whitespace::Literal, "literal")];
}

/// A tier: how many requests its keys may make per window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tier {
    /// Its name, as `--tier` takes it.
    pub name: &'static str,
    /// Requests allowed per window (`X-RateLimit-Limit`).
    pub requests: u32,
    /// The window, seconds.
    pub window_s: u32,
}

/// The tiers, smallest first. The guide's example shows a limit of 1000: `standard`.
pub const TIERS: [Tier; 3] = [
    Tier {
        name: "free",
        requests: 100,
        window_s: 60,
    },
    Tier {
        name: "standard",
        requests: 1_000,
        window_s: 60,
    },
    Tier {
        name: "enterprise",
        requests: 1_000_000,
        window_s: 60,
    },
];

/// The tier named `name`.
pub fn tier(name: &str) -> Option<&'static Tier> {
    TierName::parse(name).map(TierName::tier)
}

/// The name of a tier, as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TierName {
    /// [`TIERS`]`[0]`.
    Free,
    /// [`TIERS`]`[1]`.
    Standard,
    /// [`TIERS`]`[2]`.
    Enterprise,
}

impl TierName {
    /// The tier named `name`, as `--tier` takes it.
    pub fn parse(name: &str) -> Option<TierName> {
        match name {
            "free" => Some(TierName::Free),
            "standard" => Some(TierName::Standard),
            "enterprise" => Some(TierName::Enterprise),
            _ => None,
        }
    }

    /// Its limits.
    pub fn tier(self) -> &'static Tier {
        &TIERS[self as usize]
    }
}

/// One key as stored: never the key itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    /// Its id (8 hex digits).
    pub id: String,
    /// SHA-256 of its secret, hex.
    pub secret_sha256: String,
    /// Its tier.
    pub tier: TierName,
    /// What the operator called it.
    pub label: String,
    /// When it was created, Unix seconds.
    pub created_at: i64,
    /// When it was revoked, Unix seconds.
    pub revoked_at: Option<i64>,
}

impl KeyRecord {
    /// Its tier's limits.
    pub fn tier(&self) -> &'static Tier {
        self.tier.tier()
    }
}

/// The key file.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    version: u32,
    keys: Vec<KeyRecord>,
}

/// Why a key file was not read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyFileError {
    /// Not the JSON this module writes.
    #[error("not a key file: {0}")]
    Format(String),
    /// A format this build does not know.
    #[error("key file version {0}, this build reads version {FILE_VERSION}")]
    Version(u32),
    /// A record that cannot be right.
    #[error("key {index} ({id:?}): {problem}")]
    Record {
        /// Its place in the file.
        index: usize,
        /// Its id as written.
        id: String,
        /// What is wrong.
        problem: String,
    },
    /// More keys than [`KEYS_MAX`].
    #[error("{0} keys, more than the {KEYS_MAX} a store holds")]
    TooMany(usize),
}

/// Why a key was not created or revoked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// No such tier.
    #[error(
        "no tier {0:?}: the tiers are free (100 a minute), standard (1000 a minute) and enterprise (1000000 a minute)"
    )]
    UnknownTier(String),
    /// The label is too long or has control characters.
    #[error("the label is {0}: give at most {LABEL_BYTES_MAX} bytes of printable text")]
    BadLabel(&'static str),
    /// The store is full.
    #[error("the store holds {KEYS_MAX} keys, revoked ones included")]
    Full,
    /// The random id drawn is taken (one chance in millions): draw again.
    #[error("key id {0} is taken")]
    IdTaken(String),
    /// No key has this id.
    #[error("no key has id {0:?} (`hypermesh keys list` shows the ids)")]
    UnknownId(String),
    /// The key was revoked before.
    #[error("key {id} was revoked at {at} (Unix s)")]
    AlreadyRevoked {
        /// Its id.
        id: String,
        /// When.
        at: i64,
    },
}

/// Why a request's credential was refused: each a 401 saying which.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("no API key: send Authorization: Bearer hmk_…")]
    Missing,
    /// A credential that is not a key of this API.
    #[error("malformed API key: {0}")]
    Malformed(&'static str),
    /// A well-formed key nobody issued (or whose secret does not match).
    #[error("unknown API key")]
    Unknown,
    /// A key that was revoked.
    #[error("API key {id} was revoked at {at} (Unix s)")]
    Revoked {
        /// Its id.
        id: String,
        /// When.
        at: i64,
    },
}

impl AuthError {
    /// Every code [`AuthError::code`] gives, in that order.
    pub const CODES: [&'static str; 4] = [
        "missing_api_key",
        "malformed_api_key",
        "unknown_api_key",
        "revoked_api_key",
    ];

    /// A stable word for the refusal (the JSON error's `code`).
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing_api_key",
            AuthError::Malformed(_) => "malformed_api_key",
            AuthError::Unknown => "unknown_api_key",
            AuthError::Revoked { .. } => "revoked_api_key",
        }
    }
}

/// The keys of one node, by id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiKeys {
    by_id: BTreeMap<String, KeyRecord>,
}

impl ApiKeys {
    /// No keys.
    pub fn new() -> Self {
        ApiKeys::default()
    }

    /// Reads a key file, checking every record.
    pub fn from_json(bytes: &[u8]) -> Result<Self, KeyFileError> {
        // The version first: a newer file is reported as newer, not as a format error.
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        let versioned: Versioned = serde_json::from_slice(bytes).map_err(|e| KeyFileError::Format(e.to_string()))?;
        if versioned.version != FILE_VERSION {
            return Err(KeyFileError::Version(versioned.version));
        }
        let file: KeyFile = serde_json::from_slice(bytes).map_err(|e| KeyFileError::Format(e.to_string()))?;
        if file.keys.len() > KEYS_MAX {
            return Err(KeyFileError::TooMany(file.keys.len()));
        }
        let mut keys = ApiKeys::new();
        for (index, record) in file.keys.into_iter().enumerate() {
            let bad = |problem: &str| KeyFileError::Record {
                index,
                id: record.id.clone(),
                problem: problem.into(),
            };
            if !is_hex(&record.id, ID_DIGITS) {
                return Err(bad("the id is not 8 lowercase hex digits"));
            }
            if !is_hex(&record.secret_sha256, 64) {
                return Err(bad("the secret's hash is not 64 lowercase hex digits"));
            }
            if let Err(problem) = check_label(&record.label) {
                return Err(bad(&format!("the label is {problem}")));
            }
            if keys.by_id.contains_key(&record.id) {
                return Err(bad("a second key with this id"));
            }
            keys.by_id.insert(record.id.clone(), record);
        }
        Ok(keys)
    }

    /// The key file: every record, by id.
    pub fn to_json(&self) -> Vec<u8> {
        let file = KeyFile {
            version: FILE_VERSION,
            keys: self.by_id.values().cloned().collect(),
        };
        let mut bytes = serde_json::to_vec_pretty(&file).expect("records serialize");
        bytes.push(b'\n');
        bytes
    }

    /// Creates a key of `tier` labelled `label` from 36 random bytes (4 for its id, 32 for its
    /// secret); returns the key, to be shown once, and its record.
    pub fn create(
        &mut self,
        random: &[u8; 36],
        tier_name: &str,
        label: &str,
        now: i64,
    ) -> Result<(String, &KeyRecord), KeyError> {
        let tier = TierName::parse(tier_name).ok_or_else(|| KeyError::UnknownTier(tier_name.into()))?;
        check_label(label).map_err(KeyError::BadLabel)?;
        if self.by_id.len() >= KEYS_MAX {
            return Err(KeyError::Full);
        }
        let id = hex::encode(&random[..4]);
        if self.by_id.contains_key(&id) {
            return Err(KeyError::IdTaken(id));
        }
        let secret = hex::encode(&random[4..]);
        let key = format!("{KEY_PREFIX}{id}_{secret}");
        let record = KeyRecord {
            id: id.clone(),
            secret_sha256: sha256_hex(secret.as_bytes()),
            tier,
            label: label.into(),
            created_at: now,
            revoked_at: None,
        };
        let record = self.by_id.entry(id).or_insert(record);
        Ok((key, record))
    }

    /// Revokes the key with id `id`: from now on it is refused as revoked.
    pub fn revoke(&mut self, id: &str, now: i64) -> Result<&KeyRecord, KeyError> {
        let record = self.by_id.get_mut(id).ok_or_else(|| KeyError::UnknownId(id.into()))?;
        if let Some(at) = record.revoked_at {
            return Err(KeyError::AlreadyRevoked { id: id.into(), at });
        }
        record.revoked_at = Some(now);
        Ok(record)
    }

    /// Every key, by id.
    pub fn list(&self) -> impl Iterator<Item = &KeyRecord> + '_ {
        self.by_id.values()
    }

    /// The key an `Authorization` header's value presents (`None`: no header), if it is live.
    pub fn authenticate(&self, authorization: Option<&[u8]>) -> Result<&KeyRecord, AuthError> {
        self.authenticate_reading(authorization, Whitespace::Ignored)
    }

    /// [`ApiKeys::authenticate`], the header's whitespace read as `whitespace` says.
    pub fn authenticate_reading(
        &self,
        authorization: Option<&[u8]>,
        whitespace: Whitespace,
    ) -> Result<&KeyRecord, AuthError> {
        let value = authorization.ok_or(AuthError::Missing)?;
        let (id, secret) = match whitespace {
            Whitespace::Ignored => parse_bearer(value)?,
            Whitespace::Literal => std::str::from_utf8(value)
                .ok()
                .and_then(|text| text.strip_prefix("Bearer "))
                .and_then(split_key)
                .ok_or(AuthError::Unknown)?,
        };
        let record = self.by_id.get(id).ok_or(AuthError::Unknown)?;
        if !same(
            sha256_hex(secret.as_bytes()).as_bytes(),
            record.secret_sha256.as_bytes(),
        ) {
            return Err(AuthError::Unknown);
        }
        if let Some(at) = record.revoked_at {
            return Err(AuthError::Revoked {
                id: record.id.clone(),
                at,
            });
        }
        Ok(record)
    }
}

/// The id a full key `hmk_<id>_<secret>` names, if it is one (so an operator may revoke by
/// pasting the key).
pub fn id_of_key(key: &str) -> Option<&str> {
    split_key(key.trim()).map(|(id, _)| id)
}

/// The id and secret of a well-formed key `hmk_<id>_<secret>`.
fn split_key(key: &str) -> Option<(&str, &str)> {
    let (id, secret) = key.strip_prefix(KEY_PREFIX)?.split_once('_')?;
    (is_hex(id, ID_DIGITS) && is_hex(secret, SECRET_DIGITS)).then_some((id, secret))
}

/// The id and secret of `Bearer hmk_<id>_<secret>`, with the whitespace rules of the module's
/// documentation.
fn parse_bearer(value: &[u8]) -> Result<(&str, &str), AuthError> {
    let text = std::str::from_utf8(value).map_err(|_| AuthError::Malformed("the header is not text"))?;
    let text = text.trim_matches([' ', '\t']);
    if text.is_empty() {
        return Err(AuthError::Missing);
    }
    if text.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Malformed("no key after Bearer"));
    }
    let (scheme, rest) = text.split_once([' ', '\t']).ok_or(AuthError::Malformed(
        "not a Bearer credential: send Authorization: Bearer hmk_…",
    ))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Malformed(
            "not a Bearer credential: send Authorization: Bearer hmk_…",
        ));
    }
    let key = rest.trim_start_matches([' ', '\t']);
    if key.contains(',') {
        return Err(AuthError::Malformed("more than one credential: send one key"));
    }
    if key.contains(|c: char| c.is_whitespace()) {
        return Err(AuthError::Malformed("whitespace inside the key"));
    }
    if !key.starts_with(KEY_PREFIX) {
        return Err(AuthError::Malformed("not a key of this API: keys start with hmk_"));
    }
    let (id, secret) = split_key(key).ok_or(AuthError::Malformed(
        "a key is hmk_, 8 hex digits, _, 64 hex digits: this one is cut short, too long or not lowercase hex",
    ))?;
    Ok((id, secret))
}

fn check_label(label: &str) -> Result<(), &'static str> {
    if label.len() > LABEL_BYTES_MAX {
        return Err("too long");
    }
    if label.chars().any(char::is_control) {
        return Err("holding control characters");
    }
    Ok(())
}

fn is_hex(text: &str, digits: usize) -> bool {
    text.len() == digits && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// Equal, in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(seed: u8) -> [u8; 36] {
        std::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
    }

    fn bearer(key: &str) -> Vec<u8> {
        format!("Bearer {key}").into_bytes()
    }

    #[test]
    fn every_refusal_code_is_listed_once() {
        let all = [
            AuthError::Missing,
            AuthError::Malformed("x"),
            AuthError::Unknown,
            AuthError::Revoked { id: "i".into(), at: 0 },
        ];
        let codes: Vec<&str> = all.iter().map(AuthError::code).collect();
        assert_eq!(codes, AuthError::CODES);
    }

    #[test]
    fn a_created_key_authenticates_at_its_tier_until_it_is_revoked() {
        let mut keys = ApiKeys::new();
        let (key, record) = keys.create(&random(1), "standard", "dashboard", 100).unwrap();
        let id = record.id.clone();
        assert!(key.starts_with("hmk_") && key.len() == 4 + 8 + 1 + 64, "{key}");
        assert!(
            !String::from_utf8(keys.to_json()).unwrap().contains(&key[13..]),
            "the secret is not stored"
        );
        let found = keys.authenticate(Some(&bearer(&key))).unwrap();
        assert_eq!((found.id.as_str(), found.tier().requests), (id.as_str(), 1000));

        let reread = ApiKeys::from_json(&keys.to_json()).unwrap();
        assert_eq!(reread, keys, "the file round-trips");
        keys.revoke(&id, 200).unwrap();
        assert_eq!(
            keys.authenticate(Some(&bearer(&key))),
            Err(AuthError::Revoked {
                id: id.clone(),
                at: 200
            })
        );
        assert_eq!(keys.revoke(&id, 300), Err(KeyError::AlreadyRevoked { id, at: 200 }));
        assert_eq!(
            keys.revoke("00000000", 300),
            Err(KeyError::UnknownId("00000000".into()))
        );
    }

    #[test]
    fn each_refusal_says_what_was_wrong() {
        let mut keys = ApiKeys::new();
        let (key, _) = keys.create(&random(2), "free", "", 1).unwrap();
        let auth = |value: &str| keys.authenticate(Some(value.as_bytes())).map(|r| r.id.clone());
        assert_eq!(keys.authenticate(None), Err(AuthError::Missing));
        assert_eq!(auth("   "), Err(AuthError::Missing));
        // Whitespace around the credential and between its words is not part of it.
        assert!(auth(&format!("Bearer {key} ")).is_ok(), "a trailing space");
        assert!(auth(&format!("\tbearer   {key}\t")).is_ok(), "tabs and spaces");
        // Inside the key it is an error that says so, not an unknown key.
        let (head, tail) = key.split_at(20);
        assert_eq!(
            auth(&format!("Bearer {head} {tail}")),
            Err(AuthError::Malformed("whitespace inside the key"))
        );
        assert!(matches!(auth(&key), Err(AuthError::Malformed(m)) if m.contains("Bearer")));
        assert!(matches!(auth(&format!("Basic {key}")), Err(AuthError::Malformed(m)) if m.contains("Bearer")));
        assert!(matches!(auth("Bearer sk-abc"), Err(AuthError::Malformed(m)) if m.contains("hmk_")));
        assert!(
            matches!(auth(&format!("Bearer {}", &key[..key.len() - 1])), Err(AuthError::Malformed(m)) if m.contains("cut short"))
        );
        assert!(matches!(
            auth(&format!("Bearer {}", key.to_uppercase().replace("HMK_", "hmk_"))),
            Err(AuthError::Malformed(_))
        ));
        // Well formed but never issued, or with another secret.
        let mut other = key.clone();
        other.replace_range(key.len() - 1.., if key.ends_with('0') { "1" } else { "0" });
        assert_eq!(auth(&format!("Bearer {other}")), Err(AuthError::Unknown));
        assert_eq!(
            auth(&format!("Bearer hmk_ffffffff_{}", "0".repeat(64))),
            Err(AuthError::Unknown)
        );
        assert_eq!(
            keys.authenticate(Some(&[0xff, 0xfe])),
            Err(AuthError::Malformed("the header is not text"))
        );
        // An unset variable: `Bearer $API_KEY` with nothing after it.
        assert_eq!(auth("Bearer "), Err(AuthError::Malformed("no key after Bearer")));
        assert_eq!(
            auth(&format!("Bearer {key}, Bearer {key}")),
            Err(AuthError::Malformed("more than one credential: send one key"))
        );
        assert_eq!(id_of_key(&key), Some(&key[4..12]));
        assert_eq!(id_of_key("hmk_1234"), None);
    }

    /// The guide's pitfall as a setting: read literally, the good key with whitespace around it
    /// (or two spaces after `Bearer`) is an unknown key, and so is every malformed credential;
    /// only `Bearer ` and the key byte for byte pass.
    #[test]
    fn read_literally_a_good_key_with_whitespace_around_it_is_refused_as_unknown() {
        let mut keys = ApiKeys::new();
        let (key, record) = keys.create(&random(3), "free", "", 1).unwrap();
        let id = record.id.clone();
        let literal = |value: &str| {
            keys.authenticate_reading(Some(value.as_bytes()), Whitespace::Literal)
                .map(|r| r.id.clone())
        };
        assert_eq!(literal(&format!("Bearer {key}")), Ok(id));
        for pitfall in [
            format!("Bearer {key} "),
            format!("Bearer  {key}"),
            format!(" Bearer {key}"),
            format!("bearer {key}"),
            format!("Basic {key}"),
            "Bearer sk-abc".to_owned(),
        ] {
            assert_eq!(literal(&pitfall), Err(AuthError::Unknown), "{pitfall:?}");
        }
        assert_eq!(
            keys.authenticate_reading(None, Whitespace::Literal),
            Err(AuthError::Missing)
        );
    }

    #[test]
    fn bad_requests_and_bad_files_are_named() {
        let mut keys = ApiKeys::new();
        assert_eq!(
            keys.create(&random(3), "gold", "", 1).unwrap_err(),
            KeyError::UnknownTier("gold".into())
        );
        assert_eq!(
            keys.create(&random(3), "free", "a\nb", 1).unwrap_err(),
            KeyError::BadLabel("holding control characters")
        );
        keys.create(&random(3), "free", "", 1).unwrap();
        assert!(matches!(
            keys.create(&random(3), "free", "", 1),
            Err(KeyError::IdTaken(_))
        ));

        assert!(matches!(ApiKeys::from_json(b"{"), Err(KeyFileError::Format(_))));
        assert_eq!(
            ApiKeys::from_json(br#"{"version":2,"keys":[]}"#),
            Err(KeyFileError::Version(2))
        );
        let file = String::from_utf8(keys.to_json()).unwrap();
        let bad_tier = file.replace("\"free\"", "\"gold\"");
        assert!(matches!(ApiKeys::from_json(bad_tier.as_bytes()), Err(KeyFileError::Format(e)) if e.contains("gold")));
        // A newer file is named newer, even with fields this build does not know.
        let newer = file.replace("\"version\": 1", "\"version\": 2, \"quotas\": {}");
        assert_eq!(ApiKeys::from_json(newer.as_bytes()), Err(KeyFileError::Version(2)));
        // A record field this build does not know is refused, not dropped on the next write.
        let extra = file.replace("\"label\"", "\"owner\": \"x\", \"label\"");
        assert!(matches!(ApiKeys::from_json(extra.as_bytes()), Err(KeyFileError::Format(e)) if e.contains("owner")));
        let bad_hash = file.replace("\"secret_sha256\": \"", "\"secret_sha256\": \"X");
        assert!(
            matches!(ApiKeys::from_json(bad_hash.as_bytes()), Err(KeyFileError::Record { problem, .. }) if problem.contains("hash"))
        );
    }
}

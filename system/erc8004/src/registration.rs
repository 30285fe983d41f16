//! The agent registration file an agent's URI points at (ERC-8004, "Agent URI and Agent
//! Registration File"): `type`, `name`, `description`, `image`, `services[]`, `x402Support`,
//! `active`, `registrations[]`, `supportedTrust`. The registries never read it; indexers and the
//! REST API do, and they must read what is out there, not only what the current spec shows:
//!
//! - `endpoints[]`, the array's name before the spec renamed it `services` (January 2026), is
//!   taken as `services`;
//! - a registration's `agentId` may be a number or a string (decimal, or hex with `0x`);
//! - fields the spec marks SHOULD may be missing, and fields it does not name are kept aside
//!   (`extra`), not refused;
//! - the file may sit on-chain in a `data:` URI, base64 or percent-encoded.
//!
//! Fetching `https://` or `ipfs://` URIs is I/O, the caller's ([`locate`] says where to look);
//! this module parses bytes, and names what is wrong and where.

use std::collections::BTreeMap;

use alloy_primitives::U256;
use base64::Engine;
use serde::Deserialize;
use serde_json::Value;

/// Largest registration file parsed (on-chain ones are small; a fetched one is bounded too).
pub const REGISTRATION_BYTES_MAX: usize = 256 * 1024;

/// An agent registration file, as read.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Registration {
    /// `type`: the schema's URI (`https://eips.ethereum.org/EIPS/eip-8004#registration-v1`).
    pub kind: Option<String>,
    /// `name`.
    pub name: Option<String>,
    /// `description`.
    pub description: Option<String>,
    /// `image`.
    pub image: Option<String>,
    /// `services` (or the legacy `endpoints`).
    pub services: Vec<Service>,
    /// `x402Support`.
    pub x402_support: bool,
    /// `active` (true when absent: an agent listed without it is taken as active).
    pub active: bool,
    /// `registrations`: where the agent is registered.
    pub registrations: Vec<RegistrationRef>,
    /// `supportedTrust` (empty: discovery only).
    pub supported_trust: Vec<String>,
    /// Top-level fields the spec does not name, kept as found.
    pub extra: BTreeMap<String, Value>,
}

/// One service an agent offers (`{"name": "MCP", "endpoint": "...", "version": "..."}`).
#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    /// `name` (web, A2A, MCP, OASF, ENS, DID, email, or anything).
    pub name: String,
    /// `endpoint`.
    pub endpoint: String,
    /// `version`, if given.
    pub version: Option<String>,
    /// Other fields (`skills`, `domains`, `capabilities`, ...), kept as found.
    pub extra: BTreeMap<String, Value>,
}

/// A registration of the agent (`{"agentId": 22, "agentRegistry": "eip155:1:0x8004…"}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistrationRef {
    /// The agent's id in that registry.
    pub agent_id: U256,
    /// `{namespace}:{chainId}:{identityRegistry}`.
    pub agent_registry: String,
}

/// Where a registration file is, from an agent's URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// In the URI itself (`data:`): its bytes.
    Inline(Vec<u8>),
    /// Elsewhere (`https://`, `ipfs://`, ...): the caller fetches it.
    Remote(String),
}

/// Why a registration file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    /// An empty URI.
    #[error("the agent URI is empty")]
    EmptyUri,
    /// A `data:` URI that is not JSON or does not decode.
    #[error("the data: URI {0}")]
    DataUri(String),
    /// More than [`REGISTRATION_BYTES_MAX`].
    #[error("the registration file is {0} bytes, more than the {REGISTRATION_BYTES_MAX} read")]
    TooLarge(usize),
    /// Not JSON, or not an object.
    #[error("the registration file is not a JSON object: {0}")]
    NotJson(String),
    /// A field of the wrong shape.
    #[error("the registration file's {field}: {why}")]
    Field {
        /// Where (`services[2].endpoint`, `registrations[0].agentId`).
        field: String,
        /// What is wrong.
        why: String,
    },
}

/// Where the file of the agent URI `uri` is: inline for a `data:` URI (decoded), else remote.
pub fn locate(uri: &str) -> Result<Location, RegistrationError> {
    let uri = uri.trim();
    if uri.is_empty() {
        return Err(RegistrationError::EmptyUri);
    }
    let Some(rest) = uri.strip_prefix("data:") else {
        return Ok(Location::Remote(uri.to_owned()));
    };
    let (header, payload) = rest
        .split_once(',')
        .ok_or_else(|| RegistrationError::DataUri("has no ',' before its data".into()))?;
    let mut parts = header.split(';');
    let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let base64 = header.split(';').any(|p| p.trim().eq_ignore_ascii_case("base64"));
    if !media.is_empty() && media != "application/json" && media != "text/plain" {
        return Err(RegistrationError::DataUri(format!(
            "is of type {media:?}, not application/json"
        )));
    }
    let bytes = if base64 {
        base64::engine::general_purpose::STANDARD
            .decode(payload.trim())
            .map_err(|e| RegistrationError::DataUri(format!("is not valid base64: {e}")))?
    } else {
        percent_decode(payload).map_err(RegistrationError::DataUri)?
    };
    Ok(Location::Inline(bytes))
}

/// `%XX` escapes decoded (RFC 2397's data is URL-encoded; `+` stays `+`).
fn percent_decode(text: &str) -> Result<Vec<u8>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("has a bad %-escape at byte {i}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Reads the file of the agent URI `uri` if it is inline; `Ok(None)` if it must be fetched.
pub fn from_uri(uri: &str) -> Result<Option<Registration>, RegistrationError> {
    match locate(uri)? {
        Location::Inline(bytes) => parse(&bytes).map(Some),
        Location::Remote(_) => Ok(None),
    }
}

/// Parses a registration file's bytes, leniently (see the module documentation).
pub fn parse(bytes: &[u8]) -> Result<Registration, RegistrationError> {
    if bytes.len() > REGISTRATION_BYTES_MAX {
        return Err(RegistrationError::TooLarge(bytes.len()));
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| RegistrationError::NotJson(e.to_string()))?;
    let Value::Object(mut object) = value else {
        return Err(RegistrationError::NotJson("its top level is not an object".into()));
    };
    let field = |field: &str, why: String| RegistrationError::Field {
        field: field.to_owned(),
        why,
    };
    let text = |object: &mut serde_json::Map<String, Value>, key: &str| -> Result<Option<String>, RegistrationError> {
        match object.remove(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(field(key, format!("a string was expected, found {other}"))),
        }
    };
    let flag =
        |object: &mut serde_json::Map<String, Value>, key: &str, absent: bool| -> Result<bool, RegistrationError> {
            match object.remove(key) {
                None | Some(Value::Null) => Ok(absent),
                Some(Value::Bool(b)) => Ok(b),
                // "true" / "false" as strings, as some files have them.
                Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
                Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
                Some(other) => Err(field(key, format!("true or false was expected, found {other}"))),
            }
        };
    let kind = text(&mut object, "type")?;
    let name = text(&mut object, "name")?;
    let description = text(&mut object, "description")?;
    let image = text(&mut object, "image")?;
    let x402_support = flag(&mut object, "x402Support", false)?;
    let active = flag(&mut object, "active", true)?;
    // `services`, or the legacy `endpoints` (both: `services` wins, `endpoints` is kept aside).
    let (services_key, services) = match object.remove("services") {
        Some(s) => ("services", Some(s)),
        None => ("endpoints", object.remove("endpoints")),
    };
    let services = match services {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| service(item).map_err(|why| field(&format!("{services_key}[{i}]"), why)))
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(field(services_key, format!("an array was expected, found {other}"))),
    };
    let registrations = match object.remove("registrations") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                registration_ref(item).map_err(|(key, why)| field(&format!("registrations[{i}].{key}"), why))
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(field("registrations", format!("an array was expected, found {other}"))),
    };
    let supported_trust = match object.remove("supportedTrust") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::String(s) => Ok(s),
                other => Err(field(
                    &format!("supportedTrust[{i}]"),
                    format!("a string was expected, found {other}"),
                )),
            })
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(field("supportedTrust", format!("an array was expected, found {other}"))),
    };
    Ok(Registration {
        kind,
        name,
        description,
        image,
        services,
        x402_support,
        active,
        registrations,
        supported_trust,
        extra: object.into_iter().collect(),
    })
}

fn service(item: Value) -> Result<Service, String> {
    let Value::Object(mut object) = item else {
        return Err(format!("an object was expected, found {item}"));
    };
    let mut text = |key: &str| match object.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("{key}: a string was expected, found {other}")),
    };
    let name = text("name")?.ok_or("name: missing")?;
    let endpoint = text("endpoint")?.ok_or("endpoint: missing")?;
    let version = text("version")?;
    Ok(Service {
        name,
        endpoint,
        version,
        extra: object.into_iter().collect(),
    })
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Id {
    Number(u64),
    Text(String),
}

fn registration_ref(item: Value) -> Result<RegistrationRef, (&'static str, String)> {
    let Value::Object(mut object) = item else {
        return Err(("", format!("an object was expected, found {item}")));
    };
    let agent_id = match object.remove("agentId") {
        None | Some(Value::Null) => return Err(("agentId", "missing".into())),
        Some(value) => match serde_json::from_value::<Id>(value.clone()) {
            Ok(Id::Number(n)) => U256::from(n),
            Ok(Id::Text(s)) => {
                let s = s.trim();
                let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                    Some(hex) => U256::from_str_radix(hex, 16),
                    None => U256::from_str_radix(s, 10),
                };
                parsed.map_err(|e| ("agentId", format!("{s:?} is not a number: {e}")))?
            }
            Err(_) => return Err(("agentId", format!("a number or a string was expected, found {value}"))),
        },
    };
    let agent_registry = match object.remove("agentRegistry") {
        Some(Value::String(s)) => s,
        None | Some(Value::Null) => return Err(("agentRegistry", "missing".into())),
        Some(other) => return Err(("agentRegistry", format!("a string was expected, found {other}"))),
    };
    Ok(RegistrationRef {
        agent_id,
        agent_registry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spec's own example.
    const SPEC_EXAMPLE: &str = r#"{
      "type": "https://eips.ethereum.org/EIPS/eip-8004#registration-v1",
      "name": "myAgentName",
      "description": "A natural language description of the Agent",
      "image": "https://example.com/agentimage.png",
      "services": [
        { "name": "web", "endpoint": "https://web.agentxyz.com/" },
        { "name": "A2A", "endpoint": "https://agent.example/.well-known/agent-card.json", "version": "0.3.0" },
        { "name": "MCP", "endpoint": "https://mcp.agent.eth/", "version": "2025-06-18" },
        { "name": "OASF", "endpoint": "ipfs://{cid}", "version": "0.8", "skills": [], "domains": [] },
        { "name": "email", "endpoint": "mail@myagent.com" }
      ],
      "x402Support": false,
      "active": true,
      "registrations": [
        { "agentId": 22, "agentRegistry": "eip155:1:0x8004A169FB4a3325136EB29fA0ceB6D2e539a432" }
      ],
      "supportedTrust": ["reputation", "crypto-economic", "tee-attestation"]
    }"#;

    #[test]
    fn the_specs_example_reads_whole() {
        let r = parse(SPEC_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(r.name.as_deref(), Some("myAgentName"));
        assert_eq!(r.services.len(), 5);
        assert_eq!(r.services[2].version.as_deref(), Some("2025-06-18"));
        assert!(r.services[3].extra.contains_key("skills"));
        assert_eq!(r.registrations[0].agent_id, U256::from(22));
        assert_eq!(
            r.registrations[0].agent_registry,
            "eip155:1:0x8004A169FB4a3325136EB29fA0ceB6D2e539a432"
        );
        assert_eq!(
            r.supported_trust,
            vec!["reputation", "crypto-economic", "tee-attestation"]
        );
        assert!(r.active && !r.x402_support);
        assert!(r.extra.is_empty());
    }

    #[test]
    fn what_real_files_carry_is_read_leniently() {
        // The legacy array name, an id as a string (and in hex), flags as strings, no
        // `active` (taken as active), an unnamed field kept aside.
        let legacy = r#"{"name": "old", "endpoints": [{"name": "MCP", "endpoint": "https://m/", "capabilities": []}],
            "registrations": [{"agentId": "7", "agentRegistry": "eip155:8453:0x8004"},
                              {"agentId": "0x10", "agentRegistry": "eip155:1:0x8004"}],
            "x402Support": "true", "owner": "someone"}"#;
        let r = parse(legacy.as_bytes()).unwrap();
        assert_eq!(r.services[0].endpoint, "https://m/");
        assert!(r.services[0].extra.contains_key("capabilities"));
        assert_eq!(r.registrations[0].agent_id, U256::from(7));
        assert_eq!(r.registrations[1].agent_id, U256::from(16));
        assert!(r.x402_support && r.active);
        assert_eq!(r.extra["owner"], "someone");
        assert_eq!(
            parse(b"{}").unwrap(),
            Registration {
                active: true,
                ..Registration::default()
            }
        );
    }

    #[test]
    fn data_uris_are_decoded_and_other_uris_left_to_fetch() {
        let b64 = base64::engine::general_purpose::STANDARD.encode(SPEC_EXAMPLE);
        let r = from_uri(&format!("data:application/json;base64,{b64}"))
            .unwrap()
            .unwrap();
        assert_eq!(r.name.as_deref(), Some("myAgentName"));
        let plain = from_uri("data:application/json;charset=utf-8,%7B%22name%22%3A%22a+b%22%7D")
            .unwrap()
            .unwrap();
        assert_eq!(plain.name.as_deref(), Some("a+b"), "+ is not a space in a data: URI");
        assert_eq!(from_uri("ipfs://bafy").unwrap(), None);
        assert_eq!(
            locate("https://a/x.json").unwrap(),
            Location::Remote("https://a/x.json".into())
        );
    }

    #[test]
    fn what_cannot_be_read_is_refused_saying_where() {
        let err = |text: &str| parse(text.as_bytes()).unwrap_err().to_string();
        assert!(err("[1]").contains("not an object"));
        assert!(err("{\"name\": 5}").contains("the registration file's name: a string was expected"));
        assert!(err(r#"{"services": [{"name": "a"}]}"#).contains("services[0]: endpoint: missing"));
        assert!(err(r#"{"registrations": [{"agentId": "x1", "agentRegistry": "r"}]}"#)
            .contains("registrations[0].agentId: \"x1\" is not a number"));
        assert!(err(r#"{"active": 3}"#).contains("true or false was expected"));
        assert!(err("{nope").contains("not a JSON object"));
        let uri = |u: &str| from_uri(u).unwrap_err().to_string();
        assert!(uri("data:image/png;base64,AAAA").contains("not application/json"));
        assert!(uri("data:application/json;base64,@@@").contains("not valid base64"));
        assert!(uri("data:application/json,%7").contains("bad %-escape at byte 0"));
        assert!(uri("data:application/json").contains("no ','"));
        assert!(uri("  ").contains("empty"));
        assert_eq!(
            parse(&vec![b' '; REGISTRATION_BYTES_MAX + 1]),
            Err(RegistrationError::TooLarge(REGISTRATION_BYTES_MAX + 1))
        );
    }

    proptest::proptest! {
        /// Files from anyone: never a panic.
        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = parse(&bytes);
            let _ = from_uri(&String::from_utf8_lossy(&bytes));
        }
    }
}

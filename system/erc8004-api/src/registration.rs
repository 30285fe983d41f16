//! `GET /api/v1/agents/{id}/registration`: the agent's registration file as the node holds it.
//! A file in the agent's `data:` URI is read (leniently, as `erc8004::registration` reads what
//! is out there: the legacy `endpoints`, ids as strings) and answered normalized, in the spec's
//! field names, fields it does not name kept as found. A file elsewhere (`https://`, `ipfs://`)
//! is named, not fetched: the API does no I/O of its own, and a reader fetches it from there. A
//! file that does not read is answered with the reason, naming the field, since the fault is the
//! registrant's, not the reader's request.

use alloy_primitives::U256;
use erc8004::registration::{self, Location, Registration};
use serde_json::{json, Map, Value};

/// Where the answer found the file: `inline`, `remote` or `none`, the file (normalized) if it
/// read, and why not if it did not.
pub fn answer(id: U256, uri: &str) -> Value {
    let (location, file, problem) = match registration::locate(uri) {
        Err(registration::RegistrationError::EmptyUri) => ("none", None, None),
        Err(e) => ("inline", None, Some(e.to_string())),
        Ok(Location::Remote(_)) => ("remote", None, None),
        Ok(Location::Inline(bytes)) => match registration::parse(&bytes) {
            Ok(file) => ("inline", Some(normalized(&file)), None),
            Err(e) => ("inline", None, Some(e.to_string())),
        },
    };
    json!({
        "agent_id": id.to_string(),
        "uri": uri,
        "location": location,
        "registration": file,
        "problem": problem,
    })
}

/// The file in the spec's field names (`services`, never the legacy `endpoints`; ids as
/// decimal strings), with the fields the spec does not name as they were.
fn normalized(file: &Registration) -> Value {
    let mut object: Map<String, Value> = file.extra.clone().into_iter().collect();
    let services: Vec<Value> = file
        .services
        .iter()
        .map(|s| {
            let mut service: Map<String, Value> = s.extra.clone().into_iter().collect();
            service.insert("name".into(), s.name.clone().into());
            service.insert("endpoint".into(), s.endpoint.clone().into());
            if let Some(version) = &s.version {
                service.insert("version".into(), version.clone().into());
            }
            Value::Object(service)
        })
        .collect();
    let registrations: Vec<Value> = file
        .registrations
        .iter()
        .map(|r| json!({ "agentId": r.agent_id.to_string(), "agentRegistry": r.agent_registry }))
        .collect();
    for (key, value) in [
        ("type", json!(file.kind)),
        ("name", json!(file.name)),
        ("description", json!(file.description)),
        ("image", json!(file.image)),
        ("services", Value::Array(services)),
        ("x402Support", file.x402_support.into()),
        ("active", file.active.into()),
        ("registrations", Value::Array(registrations)),
        ("supportedTrust", json!(file.supported_trust)),
    ] {
        object.insert(key.into(), value);
    }
    Value::Object(object)
}

//! `GET /api/v1/openapi.json`: the OpenAPI 3.0 document of every route the API serves, with
//! their parameters, answers and errors. Its paths are the route templates the service counts
//! requests under (`service::TEMPLATES`), and a test holds the two together.

use serde_json::{json, Value};

use crate::list::{FILTER_ROWS_MAX, OFFSET_MAX};
use crate::metrics::CONTENT_TYPE as METRICS_CONTENT_TYPE;
use crate::service::{PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX, REPUTATION_CLIENTS_MAX};

/// The document.
pub fn document() -> Value {
    let id = json!({
        "name": "id", "in": "path", "required": true,
        "description": "The agent's id (its ERC-721 token id), a decimal number without leading zeros that fits 256 bits.",
        "schema": { "type": "string", "pattern": "^(0|[1-9][0-9]*)$", "maxLength": 78 }
    });
    let limit = json!({
        "name": "limit", "in": "query", "required": false,
        "description": format!("Entries per page, 1 to {PAGE_LIMIT_MAX}."),
        "schema": { "type": "integer", "minimum": 1, "maximum": PAGE_LIMIT_MAX, "default": PAGE_LIMIT_DEFAULT }
    });
    let cursor = |what: &str, pattern: &str| {
        json!({
            "name": "cursor", "in": "query", "required": false,
            "description": format!("The previous page's next_cursor ({what}); the first page without it."),
            "schema": { "type": "string", "pattern": pattern }
        })
    };
    let decimal_cursor = "^(0|[1-9][0-9]*)$";
    let query = |name: &str, what: &str, schema: Value| json!({ "name": name, "in": "query", "required": false, "description": what, "schema": schema });
    let rate_headers = json!({
        "X-RateLimit-Limit": { "$ref": "#/components/headers/X-RateLimit-Limit" },
        "X-RateLimit-Remaining": { "$ref": "#/components/headers/X-RateLimit-Remaining" },
        "X-RateLimit-Reset": { "$ref": "#/components/headers/X-RateLimit-Reset" }
    });
    // An error of a route behind the key: it carries the key's rate-limit headers.
    let error = |what: &str| {
        json!({
            "description": what,
            "headers": rate_headers,
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
        })
    };
    // An error of a route without a key.
    let open_error = |what: &str| json!({ "description": what, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } });
    let limited = |what: &str, schema: Value| {
        json!({
            "description": what,
            "headers": rate_headers,
            "content": { "application/json": { "schema": schema } }
        })
    };
    let schema = |name: &str| json!({ "$ref": format!("#/components/schemas/{name}") });
    // What every route under /api/v1 may answer besides its own.
    let gated = |mut responses: Value| {
        let common = json!({
            "400": error("A parameter, the query or the body does not read; the error's code and message name it (bad_query, unknown_parameter, bad_limit, bad_cursor, bad_owner, bad_offset, offset_too_deep, bad_filter, repeated_parameter, bad_agent_id, bad_transaction_hash, bad_client, clients_required, too_many_clients, bad_body, bad_transaction, bad_request_body)."),
            "500": error("The server failed on this request (internal_error); retry."),
            "401": {
                "description": "The key is missing, malformed, unknown or revoked (the error's code says which).",
                "headers": { "WWW-Authenticate": { "schema": { "type": "string" } } },
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
            },
            "405": {
                "description": "A method the route does not take (method_not_allowed).",
                "headers": {
                    "Allow": { "schema": { "type": "string" } },
                    "X-RateLimit-Limit": { "$ref": "#/components/headers/X-RateLimit-Limit" },
                    "X-RateLimit-Remaining": { "$ref": "#/components/headers/X-RateLimit-Remaining" },
                    "X-RateLimit-Reset": { "$ref": "#/components/headers/X-RateLimit-Reset" }
                },
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
            },
            "429": {
                "description": "Rate limit exceeded: retry after Retry-After seconds.",
                "headers": {
                    "Retry-After": { "schema": { "type": "integer" } },
                    "X-RateLimit-Limit": { "$ref": "#/components/headers/X-RateLimit-Limit" },
                    "X-RateLimit-Remaining": { "$ref": "#/components/headers/X-RateLimit-Remaining" },
                    "X-RateLimit-Reset": { "$ref": "#/components/headers/X-RateLimit-Reset" }
                },
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
            }
        });
        for (status, answer) in common.as_object().expect("an object") {
            responses[status] = answer.clone();
        }
        responses
    };
    let agent_read = |summary: &str, description: &str, params: Value, ok: Value| {
        json!({ "get": {
            "summary": summary,
            "description": description,
            "security": [{ "bearer": [] }],
            "parameters": params,
            "responses": gated(json!({
                "200": ok,
                "404": error("No agent has this id (agent_not_found)."),
            }))
        }})
    };
    let open = |summary: &str, content_type: &str, body: Value| {
        json!({ "get": {
            "summary": summary,
            "responses": {
                "200": { "description": "Served.", "content": { content_type: { "schema": body } } },
                "400": open_error("The query does not read (bad_query)."),
                "405": {
                    "description": "A method other than GET or HEAD (method_not_allowed).",
                    "headers": { "Allow": { "schema": { "type": "string" } } },
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
                },
                "500": open_error("The server failed on this request (internal_error); retry.")
            }
        }})
    };
    let mut document = json!({
        "openapi": "3.0.3",
        "info": {
            "title": "HyperMesh ERC-8004 registry API",
            "version": "1",
            "description": "The ERC-8004 identity, reputation and validation registries of a HyperMesh chain, read (cached, never stale: an answer a committed block changed is not served) and written (signed transactions). Every /api/v1 path needs a key: Authorization: Bearer hmk_…, made with `hypermesh keys create`; without one, 401 whatever the path. A path under /api/v1 not listed here is 404 (not_found). Every GET is also served as HEAD."
        },
        "paths": {
            "/health": open("Whether the API and its components serve (no key).", "application/json", schema("Health")),
            "/metrics": open(
                "The API's figures in the Prometheus text format 0.0.4 (no key).",
                METRICS_CONTENT_TYPE,
                json!({ "type": "string" }),
            ),
            "/api/v1/openapi.json": { "get": {
                "summary": "This document.",
                "security": [{ "bearer": [] }],
                "responses": gated(json!({ "200": limited("The OpenAPI document.", json!({ "type": "object" })) }))
            }},
            "/api/v1/agents/": { "get": {
                "summary": "Agents in id order, a page at a time (each one's identity record), optionally filtered (every filter given must hold).",
                "description": format!("A filtered page examines at most filter_rows_max rows ({FILTER_ROWS_MAX} by default; an agent read is one, and so is each feedback entry read for tag or min_reputation): one that reached that bound ends there, shorter than limit, its next_cursor the last agent examined; walk on with it. Registration filters (active, trust, service) read the agent's registration file when its URI holds it (data:); an agent whose file is elsewhere (https://, ipfs://: not fetched) or does not read matches none of them. Each parameter at most once (repeated_parameter)."),
                "security": [{ "bearer": [] }],
                "parameters": [limit, cursor("the last id of the previous page, or of the last agent examined", decimal_cursor),
                    query("offset", &format!("The page after this many agents, or matches if filtered (0 to {OFFSET_MAX}; not with cursor: bad_offset; a filtered offset past the bound on rows one page examines: offset_too_deep)."),
                        json!({ "type": "integer", "minimum": 0, "maximum": OFFSET_MAX })),
                    query("owner", "Only the agents this address owns now (from the owner index kept as blocks commit).",
                        json!({ "type": "string", "pattern": "^0x[0-9a-fA-F]{40}$" })),
                    query("active", "Only agents whose registration file says active is this (absent in the file: true).",
                        json!({ "type": "boolean" })),
                    query("trust", "Only agents whose registration file's supportedTrust names this (e.g. reputation, crypto-economic, tee-attestation; case ignored).",
                        json!({ "type": "string", "minLength": 1 })),
                    query("service", "Only agents whose registration file offers a service of this name (e.g. MCP, A2A, web; case ignored).",
                        json!({ "type": "string", "minLength": 1 })),
                    query("tag", "Only agents with feedback, not revoked, carrying this tag (tag1 or tag2).",
                        json!({ "type": "string", "minLength": 1 })),
                    query("min_reputation", "Only agents whose getSummary over clients counts at least one entry and whose value (the mean as the registry returns it, truncated toward zero at the most common decimals) is at least this (a decimal, at most 18 decimals). Needs clients.",
                        json!({ "type": "string", "pattern": "^-?[0-9]{1,39}(\\.[0-9]{1,18})?$" })),
                    query("clients", &format!("Comma-separated client addresses min_reputation is over, at most {REPUTATION_CLIENTS_MAX}; only with min_reputation."),
                        json!({ "type": "string" }))],
                "responses": gated(json!({ "200": limited("A page.", schema("AgentPage")) }))
            }},
            "/api/v1/agents/{id}": agent_read(
                "One agent: its identity record and how much the other registries hold about it.",
                "Counts include revoked feedback.",
                json!([id]),
                limited("The agent.", schema("Agent")),
            ),
            "/api/v1/agents/{id}/feedback": agent_read(
                "The agent's feedback, by client then index, a page at a time.",
                "Revoked entries are listed, marked.",
                json!([id, limit, cursor("CLIENT-INDEX of the last entry", "^(0x)?[0-9a-fA-F]{40}-(0|[1-9][0-9]*)$")]),
                limited("A page of feedback.", schema("FeedbackPage")),
            ),
            "/api/v1/agents/{id}/validations": agent_read(
                "The validation requests about the agent, in the order made, a page at a time.",
                "Each with its latest response.",
                json!([id, limit, cursor("the position of the next request", decimal_cursor)]),
                limited("A page of validations.", schema("ValidationPage")),
            ),
            "/api/v1/agents/{id}/reputation": agent_read(
                "The registry's getSummary over the clients you trust.",
                "Count and mean of the named clients' feedback that is not revoked and matches the tags given.",
                json!([
                    id,
                    { "name": "clients", "in": "query", "required": true,
                      "description": format!("Comma-separated client addresses, at most {REPUTATION_CLIENTS_MAX}."),
                      "schema": { "type": "string" } },
                    { "name": "tag1", "in": "query", "required": false, "schema": { "type": "string" } },
                    { "name": "tag2", "in": "query", "required": false, "schema": { "type": "string" } }
                ]),
                limited("The summary.", schema("Reputation")),
            ),
            "/api/v1/agents/{id}/stats": agent_read(
                "The agent's statistics (the guide's materialized views), kept as blocks commit.",
                "The mean is over every client's feedback not revoked; for a summary over clients you trust, see /reputation.",
                json!([id]),
                limited("The statistics.", schema("Stats")),
            ),
            "/api/v1/agents/{id}/registration": agent_read(
                "The agent's registration file as the node holds it: read from a data: URI and normalized (services, never the legacy endpoints; ids as decimal strings; fields the spec does not name kept), or named where it is elsewhere (not fetched).",
                "location: inline (registration, or problem naming what does not read), remote (fetch it from uri), none (no URI set).",
                json!([id]),
                limited("The registration file.", schema("Registration")),
            ),
            "/api/v1/transactions/{hash}": { "get": {
                "summary": "A transaction's receipt, once the chain included it.",
                "security": [{ "bearer": [] }],
                "parameters": [{ "name": "hash", "in": "path", "required": true,
                    "description": "The transaction's hash, as POST /api/v1/transactions answered it.",
                    "schema": { "type": "string", "pattern": "^0x[0-9a-fA-F]{64}$" } }],
                "responses": gated(json!({
                    "200": limited("Included: its receipt.", schema("Receipt")),
                    "404": error("Not included (yet): transaction_not_found.")
                }))
            }},
            "/api/v1/transactions": { "post": {
                "summary": "Hands a signed Ethereum transaction to the chain (as eth_sendRawTransaction takes it).",
                "security": [{ "bearer": [] }],
                "requestBody": { "required": true, "content": { "application/json": { "schema": schema("TransactionRequest") } } },
                "responses": gated(json!({
                    "200": limited("Included: its receipt (success false and the revert reason if the registry reverted it). On a cluster node the answer waits for consensus to commit it, up to the API's commit wait (10 s by default).", schema("Receipt")),
                    "202": limited("Taken, not included within the commit wait: held for an earlier nonce of its sender, or (on a cluster node) consensus has not committed it; GET /api/v1/transactions/{hash} answers its receipt once it is.", schema("Taken")),
                    "408": open_error("The body did not arrive in time (request_timeout): nothing was done."),
                    "409": error("Its nonce was used, is too far ahead, or another transaction holds it (nonce_too_low, nonce_too_high, nonce_held)."),
                    "413": open_error("The body is larger than the server reads (body_too_large): nothing was done."),
                    "500": error("The server failed on this request (internal_error), or the node failed while taking the transaction (outcome_unknown): send the same signed transaction again once it is back."),
                    "503": {
                        "description": "Not accepted (not_accepted, server_busy), nothing of it was done: send it again after Retry-After.",
                        "headers": { "Retry-After": { "schema": { "type": "integer" } } },
                        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
                    }
                }))
            }}
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer", "description": "An API key, hmk_<8 hex>_<64 hex>." } },
            "headers": {
                "X-RateLimit-Limit": { "description": "Requests the key may make per window.", "schema": integer() },
                "X-RateLimit-Remaining": { "description": "Requests left now.", "schema": integer() },
                "X-RateLimit-Reset": { "description": "When the allowance is whole again, Unix seconds.", "schema": integer() }
            },
            "schemas": {
                "Error": object(&[("error", json!({ "type": "object", "required": ["code", "message"], "properties": {
                    "code": { "type": "string" }, "message": { "type": "string" } } }))]),
                "Health": json!({ "type": "object", "required": ["status", "alerts", "components"], "properties": {
                    "status": { "type": "string", "enum": ["ok", "alerting", "degraded"],
                        "description": "alerting: one of the guide's alerts fires (the API serves either way); degraded: on a cluster node, its partition cannot commit or its replica halted (reads serve, writes wait)" },
                    "alerts": { "type": "array", "items": { "$ref": "#/components/schemas/Alert" } },
                    "components": { "type": "object", "description": "registries, stats_view, cache; on a cluster node consensus (Consensus)",
                        "properties": { "consensus": schema("Consensus") } } } }),
                "Consensus": object(&[("status", json!({ "type": "string",
                        "description": "ok; starting (no commit seen since the node started); stalled (none for longer than silence_max_seconds, or none at all since it took part that long ago); halted" })),
                    ("validator", integer()), ("validators", integer()), ("epoch", integer()),
                    ("view", integer()), ("role", json!({ "type": "string", "enum": ["leader", "follower"] })),
                    ("committed_height", integer()),
                    ("last_commit_age_seconds", json!({ "type": "number", "format": "double", "nullable": true })),
                    ("partition_can_commit", json!({ "type": "boolean",
                        "description": "a block committed within silence_max_seconds (twice the longest view timeout), and the replica has not halted" })),
                    ("silence_max_seconds", json!({ "type": "number", "format": "double" }))]),
                "Alert": object(&[
                    ("alert", json!({ "type": "string", "enum": ["HighErrorRate", "SlowResponses", "LowCacheHitRate"] })),
                    ("value", json!({ "type": "number", "format": "double", "description": "the rate, or seconds for SlowResponses" })),
                    ("threshold", json!({ "type": "number", "format": "double" })),
                    ("since_unix_s", integer())]),
                "AgentIdentity": object(&[("id", decimal()), ("owner", address()), ("uri", string()),
                    ("metadata_keys", json!({ "type": "array", "items": { "type": "string" } }))]),
                "Agent": object(&[("id", decimal()), ("owner", address()), ("uri", string()),
                    ("metadata_keys", json!({ "type": "array", "items": { "type": "string" } })),
                    ("clients", integer()), ("feedback", integer()), ("validations", integer())]),
                "AgentPage": object(&[("agents", array("AgentIdentity")), ("next_cursor", nullable_string())]),
                "Feedback": object(&[("client", address()), ("index", integer()), ("value", decimal()),
                    ("decimals", decimals()), ("tag1", string()), ("tag2", string()), ("revoked", json!({ "type": "boolean" }))]),
                "FeedbackPage": object(&[("agent_id", decimal()), ("feedback", array("Feedback")), ("next_cursor", nullable_string())]),
                "Validation": object(&[("request_hash", string()), ("validator", address()),
                    ("response", json!({ "type": "integer", "minimum": 0, "maximum": 100 })),
                    ("has_response", json!({ "type": "boolean" })), ("tag", string()), ("last_update", integer())]),
                "ValidationPage": object(&[("agent_id", decimal()), ("validations", array("Validation")), ("next_cursor", nullable_string())]),
                "Reputation": object(&[("agent_id", decimal()), ("clients", json!({ "type": "array", "items": address() })),
                    ("tag1", string()), ("tag2", string()), ("count", integer()), ("value", decimal()), ("decimals", decimals())]),
                "Stats": object(&[("agent_id", decimal()),
                    ("feedback", object(&[("given", integer()), ("revoked", integer()), ("clients", integer()),
                        ("mean", object(&[("count", integer()), ("value", decimal()), ("decimals", decimals())]))])),
                    ("validations", object(&[("requested", integer()), ("responded", integer()),
                        ("response_mean", json!({ "type": "number", "format": "double", "nullable": true, "minimum": 0, "maximum": 100 }))]))]),
                "TransactionRequest": {
                    "type": "object", "required": ["raw"], "additionalProperties": false,
                    "properties": { "raw": { "type": "string", "pattern": "^0x([0-9a-fA-F]{2})+$",
                        "description": "The signed transaction (EIP-2718 envelope), 0x-prefixed hex." } }
                },
                "Receipt": object(&[("hash", string()), ("status", string()), ("block_number", integer()),
                    ("success", json!({ "type": "boolean" })), ("revert_reason", nullable_string()), ("logs", array("Log"))]),
                "Log": object(&[("address", string()),
                    ("topics", json!({ "type": "array", "maxItems": 4, "items": { "type": "string", "pattern": "^0x[0-9a-f]{64}$" } })),
                    ("data", json!({ "type": "string", "pattern": "^0x([0-9a-f]{2})*$" }))]),
                "Taken": object(&[("hash", string()), ("status", string()), ("message", string())]),
                "Registration": object(&[("agent_id", decimal()), ("uri", string()),
                    ("location", json!({ "type": "string", "enum": ["inline", "remote", "none"] })),
                    ("registration", json!({ "type": "object", "nullable": true,
                        "description": "The ERC-8004 registration file: type, name, description, image, services, x402Support, active, registrations, supportedTrust, and any other field as found." })),
                    ("problem", nullable_string())])
            }
        }
    });
    // Every GET is served as HEAD too: the same answers without their bodies.
    let paths = document["paths"].as_object_mut().expect("an object");
    for item in paths.values_mut() {
        if let Some(get) = item.get("get").cloned() {
            let mut head = get;
            head["summary"] = json!(format!(
                "The headers of GET: {}",
                head["summary"].as_str().unwrap_or_default()
            ));
            if let Some(responses) = head["responses"].as_object_mut() {
                for answer in responses.values_mut() {
                    if let Some(answer) = answer.as_object_mut() {
                        answer.remove("content");
                    }
                }
            }
            item["head"] = head;
        }
    }
    document
}

/// An object schema whose every property is required.
fn object(properties: &[(&str, Value)]) -> Value {
    let names: Vec<&str> = properties.iter().map(|(n, _)| *n).collect();
    let map: serde_json::Map<String, Value> = properties.iter().map(|(n, v)| ((*n).to_owned(), v.clone())).collect();
    json!({ "type": "object", "required": names, "properties": map })
}

fn string() -> Value {
    json!({ "type": "string" })
}

fn nullable_string() -> Value {
    json!({ "type": "string", "nullable": true })
}

fn integer() -> Value {
    json!({ "type": "integer", "format": "int64", "minimum": 0 })
}

fn decimals() -> Value {
    json!({ "type": "integer", "minimum": 0, "maximum": 18 })
}

/// A number written in decimal as a string (256-bit ids, 128-bit values).
fn decimal() -> Value {
    json!({ "type": "string", "pattern": "^-?(0|[1-9][0-9]*)$" })
}

fn address() -> Value {
    json!({ "type": "string", "pattern": "^0x[0-9a-fA-F]{40}$" })
}

fn array(item: &str) -> Value {
    json!({ "type": "array", "items": { "$ref": format!("#/components/schemas/{item}") } })
}

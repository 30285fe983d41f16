//! The API as an [`HttpService`]: routes, parameters and errors, over the registries' state.
//!
//! Built so far: `GET /health` (no key), and behind the [`Gate`] `GET /api/v1/agents/` (a page
//! in id order: `limit` 1 to [`PAGE_LIMIT_MAX`], default [`PAGE_LIMIT_DEFAULT`], and `cursor`, the
//! last id of the previous page), `GET /api/v1/agents/{id}`, `/{id}/feedback` and
//! `/{id}/validations` (pages the same way, their cursors opaque strings), and `/{id}/reputation` (the summary the registry's `getSummary` gives,
//! over `clients`, optionally one or both tags). The guide's filters, registration, reputation summaries, statistics,
//! transactions, metrics and the OpenAPI document are not built yet: a filter parameter is
//! refused with 400 naming it, never ignored.
//!
//! Every answer is JSON. Everything under `/api/v1` needs a key first (the gate's 401 or 429),
//! then an unknown route is 404, a method other than GET or HEAD 405 with `Allow`, a bad
//! parameter 400 naming it; every `/api/v1` answer let through the gate carries the key's
//! rate-limit headers. `/health` reports only that the service answers. Ids are decimal strings (they are 256-bit), addresses checksummed hex, feedback
//! values decimal strings (128-bit).

use alloy_primitives::{Address, U256};
use erc8004::read::{Agent, FeedbackEntry, ValidationEntry};
use erc8004::registries::Registries;
use erc8004::reputation::summarize;
use runtime::{HttpRequest, HttpResponse, HttpService, WallTime};
use serde_json::{json, Value};

use crate::gate::{error, Gate, JSON};

/// Agents per page at most.
pub const PAGE_LIMIT_MAX: usize = 100;
/// Agents per page when `limit` is not given.
pub const PAGE_LIMIT_DEFAULT: usize = 20;

/// Where the API reads the registries from: a chain a node holds, or the registries themselves
/// in tests.
pub trait RegistrySource: Send {
    /// Runs `read` on the registries as they are now.
    fn with_registries<T>(&self, read: impl FnOnce(&Registries) -> T) -> T;
}

impl RegistrySource for Registries {
    fn with_registries<T>(&self, read: impl FnOnce(&Registries) -> T) -> T {
        read(self)
    }
}

/// The REST API of one node.
pub struct ApiService<S> {
    source: S,
    gate: Gate,
}

/// A route: what the path names.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Health,
    Agents,
    Agent(U256),
    Feedback(U256),
    Validations(U256),
    Reputation(U256),
}

impl<S: RegistrySource> ApiService<S> {
    /// The API over `source`, letting through what `gate` admits.
    pub fn new(source: S, gate: Gate) -> Self {
        ApiService { source, gate }
    }

    /// The gate, to give it new keys.
    pub fn gate_mut(&mut self) -> &mut Gate {
        &mut self.gate
    }

    fn answer(&mut self, route: Route, request: &HttpRequest) -> HttpResponse {
        let params = match request.query_pairs() {
            Ok(p) => p,
            Err(e) => return error(400, "bad_query", &e),
        };
        match route {
            Route::Health => ok(json!({ "status": "ok", "components": { "registries": "ok" } })),
            Route::Agents => {
                let (limit, cursor) = match page_params(&params, decimal_id) {
                    Ok(page) => page,
                    Err(answer) => return answer,
                };
                let (agents, more) = paged(
                    self.source.with_registries(|r| r.agents_after(cursor, limit + 1)),
                    limit,
                );
                let next = more.then(|| agents.last().map(|a| a.id.to_string())).flatten();
                ok(json!({
                    "agents": agents.iter().map(agent_json).collect::<Vec<_>>(),
                    "next_cursor": next,
                }))
            }
            Route::Reputation(id) => {
                let filter = match reputation_filter(&params) {
                    Ok(filter) => filter,
                    Err(answer) => return answer,
                };
                let summary = self.source.with_registries(|r| {
                    r.is_agent(id).then(|| {
                        let counted = r.feedback_entries(id).into_iter().filter(|e| filter.counts(e));
                        summarize(counted.map(|e| (e.feedback.value, e.feedback.decimals)))
                    })
                });
                match summary {
                    Some(summary) => ok(json!({
                        "agent_id": id.to_string(),
                        "clients": filter.clients.iter().map(|c| c.to_checksum(None)).collect::<Vec<_>>(),
                        "tag1": filter.tag1,
                        "tag2": filter.tag2,
                        "count": summary.count,
                        "value": summary.value.to_string(),
                        "decimals": summary.decimals,
                    })),
                    None => not_an_agent(id),
                }
            }
            Route::Agent(id) => {
                if let Some(name) = params.first().map(|(k, _)| k) {
                    return error(
                        400,
                        "unknown_parameter",
                        &format!("this route takes no parameter {name:?}"),
                    );
                }
                match self.source.with_registries(|r| r.agent(id)) {
                    Some(agent) => ok(agent_json(&agent)),
                    None => not_an_agent(id),
                }
            }
            Route::Feedback(id) => {
                let (limit, cursor) = match page_params(&params, feedback_cursor) {
                    Ok(page) => page,
                    Err(answer) => return answer,
                };
                let page = self
                    .source
                    .with_registries(|r| r.is_agent(id).then(|| r.feedback_page(id, cursor, limit + 1)));
                let Some(entries) = page else {
                    return not_an_agent(id);
                };
                let (entries, more) = paged(entries, limit);
                let next = more
                    .then(|| entries.last().map(|e| format!("{}-{}", e.client, e.index)))
                    .flatten();
                ok(json!({
                    "agent_id": id.to_string(),
                    "feedback": entries.iter().map(feedback_json).collect::<Vec<_>>(),
                    "next_cursor": next,
                }))
            }
            Route::Validations(id) => {
                let (limit, start) = match page_params(&params, decimal_u64) {
                    Ok(page) => page,
                    Err(answer) => return answer,
                };
                let start = start.unwrap_or(0);
                let page = self
                    .source
                    .with_registries(|r| r.is_agent(id).then(|| r.validation_page(id, start, limit + 1)));
                let Some(entries) = page else {
                    return not_an_agent(id);
                };
                let (entries, more) = paged(entries, limit);
                let next = more.then(|| (start + limit as u64).to_string());
                ok(json!({
                    "agent_id": id.to_string(),
                    "validations": entries.iter().map(validation_json).collect::<Vec<_>>(),
                    "next_cursor": next,
                }))
            }
        }
    }
}

impl<S: RegistrySource> HttpService for ApiService<S> {
    fn handle(&mut self, request: &HttpRequest, now: WallTime) -> HttpResponse {
        // Everything under /api/v1 needs a key and carries its rate-limit headers, whatever the
        // route or method; /health needs neither.
        let gated = request.path == "/api/v1" || request.path.starts_with("/api/v1/");
        let admitted = if gated {
            match self.gate.admit(request, now) {
                Ok(admitted) => Some(admitted),
                Err(refused) => return refused,
            }
        } else {
            None
        };
        let mut answer = match route_of(&request.path) {
            Err(answer) => answer,
            // HEAD is GET without the body, which the server leaves out.
            Ok(_) if request.method != "GET" && request.method != "HEAD" => error(
                405,
                "method_not_allowed",
                &format!(
                    "{} {} is not served: this route takes GET and HEAD",
                    request.method, request.path
                ),
            )
            .with_header("Allow", "GET, HEAD"),
            Ok(route) => self.answer(route, request),
        };
        if let Some(admitted) = admitted {
            answer.headers.extend(admitted.headers);
        }
        answer
    }
}

/// A decimal number as ids are written: digits only, no leading zero, no sign, no separators
/// (the number parser alone would take "" as 0, hex and underscores).
fn decimal_id(text: &str) -> Option<U256> {
    let canonical =
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse::<U256>().ok()).flatten()
}

/// The route `path` names, or the 404 (or 400 for an id that is not one).
fn route_of(path: &str) -> Result<Route, HttpResponse> {
    let not_found = || error(404, "not_found", &format!("no route {path}: the API is under /api/v1/"));
    if path == "/health" {
        return Ok(Route::Health);
    }
    let rest = path
        .strip_prefix("/api/v1/agents")
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        .ok_or_else(not_found)?;
    // One URL per resource: a trailing slash is allowed, an empty segment inside is not.
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let parts: Vec<&str> = rest.split('/').skip(1).collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(not_found());
    }
    let id = |text: &str| -> Result<U256, HttpResponse> {
        decimal_id(text).ok_or_else(|| {
            error(
                400,
                "bad_agent_id",
                &format!("{text:?} is not an agent id: give a decimal number, e.g. /api/v1/agents/0"),
            )
        })
    };
    match parts.as_slice() {
        [] => Ok(Route::Agents),
        [agent] => Ok(Route::Agent(id(agent)?)),
        [agent, "feedback"] => Ok(Route::Feedback(id(agent)?)),
        [agent, "validations"] => Ok(Route::Validations(id(agent)?)),
        [agent, "reputation"] => Ok(Route::Reputation(id(agent)?)),
        _ => Err(not_found()),
    }
}

/// Clients a reputation summary names at most.
pub const REPUTATION_CLIENTS_MAX: usize = 100;

/// Which feedback a reputation summary counts: the reference's `getSummary` (the named clients'
/// entries, not revoked, matching each tag that is given).
struct ReputationFilter {
    clients: Vec<Address>,
    tag1: String,
    tag2: String,
}

impl ReputationFilter {
    fn counts(&self, entry: &FeedbackEntry) -> bool {
        let f = &entry.feedback;
        !f.revoked
            && self.clients.contains(&entry.client)
            && (self.tag1.is_empty() || f.tag1 == self.tag1)
            && (self.tag2.is_empty() || f.tag2 == self.tag2)
    }
}

/// `clients` (required, comma-separated addresses: as the reference, a summary is over the
/// clients a reader trusts, never over whoever wrote), `tag1`, `tag2`.
fn reputation_filter(params: &[(String, String)]) -> Result<ReputationFilter, HttpResponse> {
    let mut filter = ReputationFilter {
        clients: Vec::new(),
        tag1: String::new(),
        tag2: String::new(),
    };
    for (name, value) in params {
        match name.as_str() {
            "clients" => {
                for text in value.split(',').filter(|t| !t.is_empty()) {
                    let client = text.parse::<Address>().map_err(|_| {
                        error(
                            400,
                            "bad_client",
                            &format!("client {text:?} is not an address (0x and 40 hex digits)"),
                        )
                    })?;
                    if !filter.clients.contains(&client) {
                        filter.clients.push(client);
                    }
                }
            }
            "tag1" => filter.tag1 = value.clone(),
            "tag2" => filter.tag2 = value.clone(),
            other => {
                return Err(error(
                    400,
                    "unknown_parameter",
                    &format!("parameter {other:?} is not served: this route takes clients, tag1 and tag2"),
                ))
            }
        }
    }
    if filter.clients.is_empty() {
        return Err(error(
            400,
            "clients_required",
            "give clients=ADDRESS[,ADDRESS…]: a summary is over the clients you trust, as the registry's getSummary",
        ));
    }
    if filter.clients.len() > REPUTATION_CLIENTS_MAX {
        return Err(error(
            400,
            "too_many_clients",
            &format!("{} clients: at most {REPUTATION_CLIENTS_MAX}", filter.clients.len()),
        ));
    }
    Ok(filter)
}

fn not_an_agent(id: U256) -> HttpResponse {
    error(404, "agent_not_found", &format!("no agent has id {id}"))
}

/// A feedback cursor: `ADDRESS-INDEX`, the client and index of the last entry of a page.
fn feedback_cursor(text: &str) -> Option<(Address, u64)> {
    let (client, index) = text.split_once('-')?;
    Some((client.parse().ok()?, decimal_u64(index)?))
}

/// [`decimal_id`] for a number that fits 64 bits.
fn decimal_u64(text: &str) -> Option<u64> {
    decimal_id(text).and_then(|n| u64::try_from(n).ok())
}

/// A page of at most `limit` from `items`, fetched one longer, and whether more follow it: a
/// full last page is told apart from one with more after it.
fn paged<T>(mut items: Vec<T>, limit: usize) -> (Vec<T>, bool) {
    let more = items.len() > limit;
    items.truncate(limit);
    (items, more)
}

/// `limit` (1 to [`PAGE_LIMIT_MAX`], default [`PAGE_LIMIT_DEFAULT`]) and `cursor` (read by
/// `cursor_of`), and nothing else.
fn page_params<C>(
    params: &[(String, String)],
    cursor_of: impl Fn(&str) -> Option<C>,
) -> Result<(usize, Option<C>), HttpResponse> {
    let mut limit = PAGE_LIMIT_DEFAULT;
    let mut cursor = None;
    for (name, value) in params {
        match name.as_str() {
            "limit" => {
                limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|l| (1..=PAGE_LIMIT_MAX).contains(l))
                    .ok_or_else(|| {
                        error(
                            400,
                            "bad_limit",
                            &format!("limit {value:?}: give a number from 1 to {PAGE_LIMIT_MAX}"),
                        )
                    })?;
            }
            "cursor" => {
                cursor = Some(cursor_of(value).ok_or_else(|| {
                    error(
                        400,
                        "bad_cursor",
                        &format!("cursor {value:?}: give the next_cursor of the previous page"),
                    )
                })?);
            }
            other => {
                return Err(error(
                    400,
                    "unknown_parameter",
                    &format!("parameter {other:?} is not served (yet): this route takes limit and cursor"),
                ))
            }
        }
    }
    Ok((limit, cursor))
}

fn ok(body: Value) -> HttpResponse {
    HttpResponse::new(200, JSON, format!("{body}\n"))
}

fn agent_json(agent: &Agent) -> Value {
    json!({
        "id": agent.id.to_string(),
        "owner": agent.owner.to_checksum(None),
        "uri": agent.uri,
        "metadata_keys": agent.metadata_keys,
        "clients": agent.clients,
        "feedback": agent.feedback,
        "validations": agent.validations,
    })
}

fn feedback_json(entry: &FeedbackEntry) -> Value {
    let f = &entry.feedback;
    json!({
        "client": entry.client.to_checksum(None),
        "index": entry.index,
        "value": f.value.to_string(),
        "decimals": f.decimals,
        "tag1": f.tag1,
        "tag2": f.tag2,
        "revoked": f.revoked,
    })
}

fn validation_json(entry: &ValidationEntry) -> Value {
    let v = &entry.validation;
    json!({
        "request_hash": entry.request_hash.to_string(),
        "validator": v.validator.to_checksum(None),
        "response": v.response,
        "has_response": v.has_response,
        "tag": v.tag,
        "last_update": v.last_update,
    })
}

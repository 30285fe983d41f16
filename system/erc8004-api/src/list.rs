//! The agent list, `GET /api/v1/agents/`: agents in id order, a page at a time (`limit`, and
//! `cursor`, the last id of the previous page), optionally filtered:
//!
//! - `owner=0x…`: the agents that address owns now (from the owner index, or the table scanned
//!   as the guide's missing index: [`Search`]);
//! - `active=true|false`, `trust=NAME` (in `supportedTrust`), `service=NAME` (a service of that
//!   name): what the agent's registration file says, when the node holds it (a `data:` URI);
//!   an agent whose file is elsewhere (`https://`, `ipfs://`: the API fetches nothing) or does
//!   not read matches none of them. Names compare without regard to case;
//! - `tag=TAG`: agents with feedback, not revoked, tagged `TAG` (either tag);
//! - `min_reputation=VALUE&clients=0x…[,0x…]`: agents whose `getSummary` over those clients (the
//!   ones the reader trusts, as the reputation route) counts at least one entry and whose value
//!   is at least `VALUE` (a decimal number, up to 18 decimals). The value is the one the
//!   registry's `getSummary` returns, the mean truncated toward zero at the entries' most common
//!   decimals (entries 1 and 2 summarize to 1, not 1.5), so the filter agrees with what a reader
//!   of the registry or of `/reputation` sees.
//!
//! The list also takes `offset` (0 to [`OFFSET_MAX`], not with `cursor`): the page after that
//! many agents (that many matches, if filtered), its `next_cursor` continuing from it. A
//! filtered offset is skipped within the page's bound on rows examined: one the bound does not
//! reach is refused (`offset_too_deep`), and the reader pages by cursor instead.
//!
//! Filters combine (all must hold). A filtered page examines at most `filter_rows_max` rows
//! ([`FILTER_ROWS_MAX`] by default): each agent read is one, and so is each feedback entry read
//! for a `tag` or `min_reputation` filter. One that reached the bound before filling its page
//! ends there, shorter than `limit`, its `next_cursor` the last agent examined, so a reader walks
//! on; a request's work is the bound plus at most one agent's feedback. Every filtered request
//! counts as a search, with the rows it examined ([`SearchTally`]).

use alloy_primitives::{Address, I256, U256};
use erc8004::read::Agent;
use erc8004::registries::Registries;
use erc8004::reputation::{summarize, DECIMALS_MAX};
use runtime::HttpResponse;
use serde_json::json;

use crate::gate::error;
use crate::index::{Facts, Search, SearchTally};
use crate::service::{
    add_clients, bad_cursor, decimal_id, identity_json, is_address, ok, page_limit, paged, PAGE_LIMIT_DEFAULT,
    REPUTATION_CLIENTS_MAX,
};
use crate::view::{Depends, StatsView};

/// The largest `offset` taken: an offset costs a walk of the agents before it, so deeper pages
/// are reached by cursor.
pub const OFFSET_MAX: u64 = 10_000;

/// Agents a filtered page examines at most by default (`ApiConfig::filter_rows_max`: its bound
/// on work per request).
pub const FILTER_ROWS_MAX: u64 = 10_000;

/// The parameters the list takes.
const PARAMETERS: &str = "limit, cursor, offset, owner, active, trust, service, tag, min_reputation and clients";

/// A list request, read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Agents a page holds at most.
    pub limit: usize,
    /// The last id of the previous page.
    pub cursor: Option<U256>,
    /// Agents to skip from the first (the unfiltered list only).
    pub offset: Option<u64>,
    /// Only this owner's agents.
    pub owner: Option<Address>,
    /// Only agents whose file says `active` is this.
    pub active: Option<bool>,
    /// Only agents whose file names this trust model (lowercased).
    pub trust: Option<String>,
    /// Only agents whose file names a service of this name (lowercased).
    pub service: Option<String>,
    /// Only agents with feedback tagged this.
    pub tag: Option<String>,
    /// Only agents whose summary over `clients` is at least this, at 18 decimals.
    pub min_reputation: Option<I256>,
    /// The clients `min_reputation` is over.
    pub clients: Vec<Address>,
}

impl ListQuery {
    fn filtered(&self) -> bool {
        self.owner.is_some() || self.reads_registration() || self.reads_feedback()
    }

    fn reads_registration(&self) -> bool {
        self.active.is_some() || self.trust.is_some() || self.service.is_some()
    }

    fn reads_feedback(&self) -> bool {
        self.tag.is_some() || self.min_reputation.is_some()
    }

    /// Whether agent `id` passes every filter but the owner's, and the feedback entries read to
    /// tell.
    fn admits(&self, id: U256, view: &StatsView, registries: &Registries) -> (bool, u64) {
        if self.reads_registration() {
            let Some(Facts::Read {
                active,
                trust,
                services,
            }) = view.registrations().facts(id)
            else {
                return (false, 0);
            };
            if self.active.is_some_and(|want| want != *active)
                || self.trust.as_ref().is_some_and(|want| !trust.contains(want))
                || self.service.as_ref().is_some_and(|want| !services.contains(want))
            {
                return (false, 0);
            }
        }
        if !self.reads_feedback() {
            return (true, 0);
        }
        let entries = registries.feedback_entries(id);
        let read = entries.len() as u64;
        if let Some(tag) = &self.tag {
            let tagged = |e: &&erc8004::read::FeedbackEntry| {
                !e.feedback.revoked && (e.feedback.tag1 == *tag || e.feedback.tag2 == *tag)
            };
            if !entries.iter().any(|e| tagged(&e)) {
                return (false, read);
            }
        }
        if let Some(min) = self.min_reputation {
            let trusted = entries
                .iter()
                .filter(|e| !e.feedback.revoked && self.clients.contains(&e.client))
                .map(|e| (e.feedback.value, e.feedback.decimals));
            let summary = summarize(trusted);
            if summary.count == 0 {
                return (false, read);
            }
            let scaled = I256::try_from(summary.value).expect("an i128 fits 256 bits")
                * I256::exp10(usize::from(DECIMALS_MAX - summary.decimals));
            if scaled < min {
                return (false, read);
            }
        }
        (true, read)
    }
}

/// Reads the list's parameters; a bad one, one given twice, or one not served is a 400 naming it.
pub fn parse(params: &[(String, String)]) -> Result<ListQuery, HttpResponse> {
    let mut query = ListQuery {
        limit: PAGE_LIMIT_DEFAULT,
        ..ListQuery::default()
    };
    let mut seen: Vec<&str> = Vec::new();
    let mut min_reputation_text = None;
    for (name, value) in params {
        if seen.contains(&name.as_str()) {
            return Err(error(
                400,
                "repeated_parameter",
                &format!("parameter {name:?} is given twice: give it once"),
            ));
        }
        seen.push(name);
        let named = |value: &str| {
            let value = value.trim();
            (!value.is_empty())
                .then(|| value.to_lowercase())
                .ok_or_else(|| error(400, "bad_filter", &format!("{name} is empty: give a name")))
        };
        match name.as_str() {
            "limit" => query.limit = page_limit(value)?,
            "cursor" => query.cursor = Some(decimal_id(value).ok_or_else(|| bad_cursor(value))?),
            "offset" => {
                let offset = decimal_id(value)
                    .and_then(|n| u64::try_from(n).ok())
                    .filter(|n| *n <= OFFSET_MAX)
                    .ok_or_else(|| {
                        error(
                            400,
                            "bad_offset",
                            &format!("offset {value:?}: give a number from 0 to {OFFSET_MAX}; deeper, page by cursor"),
                        )
                    })?;
                query.offset = Some(offset);
            }
            "owner" => {
                query.owner = Some(
                    value
                        .parse::<Address>()
                        .ok()
                        .filter(|_| is_address(value))
                        .ok_or_else(|| {
                            error(
                                400,
                                "bad_owner",
                                &format!("owner {value:?}: give an address, 0x and 40 hex digits"),
                            )
                        })?,
                );
            }
            "active" => {
                query.active = Some(match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(error(
                            400,
                            "bad_filter",
                            &format!("active {value:?}: give true or false"),
                        ))
                    }
                });
            }
            "trust" => query.trust = Some(named(value)?),
            "service" => query.service = Some(named(value)?),
            "tag" => {
                if value.is_empty() {
                    return Err(error(400, "bad_filter", "tag is empty: give a tag"));
                }
                query.tag = Some(value.clone());
            }
            "min_reputation" => {
                query.min_reputation = Some(decimal_18(value).ok_or_else(|| {
                    error(
                        400,
                        "bad_filter",
                        &format!(
                            "min_reputation {value:?}: give a decimal number (e.g. 80 or -1.5, at most 18 decimals)"
                        ),
                    )
                })?);
                min_reputation_text = Some(value);
            }
            "clients" => add_clients(value, &mut query.clients)?,
            other => {
                return Err(error(
                    400,
                    "unknown_parameter",
                    &format!("parameter {other:?} is not served: the agent list takes {PARAMETERS}"),
                ))
            }
        }
    }
    if query.offset.is_some() && query.cursor.is_some() {
        return Err(error(
            400,
            "bad_offset",
            "offset and cursor both given: give one (a page's next_cursor continues from it)",
        ));
    }
    match (min_reputation_text, query.clients.len()) {
        (Some(_), 0) => Err(error(
            400,
            "clients_required",
            "min_reputation needs clients=ADDRESS[,ADDRESS…]: a reputation is over the clients you trust, as the registry's getSummary",
        )),
        (None, n) if n > 0 || seen.contains(&"clients") => Err(error(
            400,
            "bad_filter",
            "clients is for min_reputation: give both, or neither",
        )),
        (_, n) if n > REPUTATION_CLIENTS_MAX => Err(error(
            400,
            "too_many_clients",
            &format!("{n} clients: at most {REPUTATION_CLIENTS_MAX}"),
        )),
        _ => Ok(query),
    }
}

/// `text` as a decimal number at 18 decimals: an optional `-`, digits, and at most 18 after a
/// point; its magnitude below 10^39 (feedback values are at most 10^38).
fn decimal_18(text: &str) -> Option<I256> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let decimal = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || whole.len() > 39
        || !decimal(whole)
        || !decimal(fraction)
        || fraction.len() > usize::from(DECIMALS_MAX)
        || (digits.contains('.') && fraction.is_empty())
    {
        return None;
    }
    let padding = "0".repeat(usize::from(DECIMALS_MAX) - fraction.len());
    let magnitude = I256::from_dec_str(&format!("{whole}{fraction}{padding}")).ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

/// The page `query` asks for, and what it shows: the owner found by `search`, at most
/// `rows_max` rows examined if filtered (at least one agent is, whatever `rows_max` says).
pub fn answer(
    query: &ListQuery,
    (search, rows_max): (Search, u64),
    view: &StatsView,
    registries: &Registries,
    searched: &mut SearchTally,
) -> (HttpResponse, Depends) {
    let limit = query.limit;
    if !query.filtered() {
        // An offset is the cursor of the agent before it: walked to, at most OFFSET_MAX.
        let cursor = match query.offset {
            None | Some(0) => query.cursor,
            Some(offset) => match registries.owners_after(None).nth((offset - 1) as usize) {
                Some((id, _)) => Some(id),
                None => {
                    let depends = Depends {
                        list_end: true,
                        ..Depends::default()
                    };
                    return (page(&[], None), depends);
                }
            },
        };
        let (agents, more) = paged(registries.agents_after(cursor, limit + 1), limit);
        let next = more.then(|| agents.last().map(|a| a.id.to_string())).flatten();
        let depends = Depends {
            identities: agents.iter().map(|a| a.id).collect(),
            list_end: !more,
            ..Depends::default()
        };
        return (page(&agents, next), depends);
    }
    // The candidates in id order, each with whether it is the owner's: the owner's from its
    // index, or every agent after the cursor (each one read is a row examined).
    let candidates: Box<dyn Iterator<Item = (U256, bool)> + '_> = match (query.owner, search) {
        (Some(owner), Search::Indexed) => Box::new(view.owners().owned(owner, query.cursor).map(|id| (id, true))),
        (Some(owner), Search::Scan) => Box::new(
            registries
                .owners_after(query.cursor)
                .map(move |(id, held_by)| (id, held_by == owner)),
        ),
        (None, _) => Box::new(registries.owners_after(query.cursor).map(|(id, _)| (id, true))),
    };
    let rows_max = rows_max.max(1);
    let mut rows = 0u64;
    let mut found = Vec::new();
    let mut last_examined = None;
    let mut bounded = false;
    // Matches still to skip for the offset.
    let mut skip = query.offset.unwrap_or(0);
    for (id, owned) in candidates {
        if rows >= rows_max {
            bounded = true;
            break;
        }
        rows += 1;
        last_examined = Some(id);
        if !owned {
            continue;
        }
        let (admitted, feedback_read) = query.admits(id, view, registries);
        rows += feedback_read;
        if admitted && skip > 0 {
            skip -= 1;
        } else if admitted {
            found.push(id);
            // One past the page tells a full last page from one with more after it.
            if found.len() > limit {
                break;
            }
        }
    }
    searched.searches += 1;
    searched.rows_examined += rows;
    if bounded && skip > 0 {
        let offset = query.offset.unwrap_or(0);
        return (
            error(
                400,
                "offset_too_deep",
                &format!(
                    "offset {offset} on this filter examines more than {rows_max} rows, the bound on one page's work \
                     ({} matches skipped): page by cursor instead",
                    offset - skip
                ),
            ),
            Depends::default(),
        );
    }
    let (found, more) = paged(found, limit);
    let next = if more {
        found.last().map(U256::to_string)
    } else if bounded {
        last_examined.map(|id| id.to_string())
    } else {
        None
    };
    let agents: Vec<Agent> = found.iter().filter_map(|id| registries.agent(*id)).collect();
    let depends = Depends {
        identities: found,
        // A registration or a new URI anywhere may add an agent to the list or take one off.
        any_identity: true,
        any_feedback: query.reads_feedback(),
        ..Depends::default()
    };
    (page(&agents, next), depends)
}

fn page(agents: &[Agent], next: Option<String>) -> HttpResponse {
    ok(json!({
        "agents": agents.iter().map(identity_json).collect::<Vec<_>>(),
        "next_cursor": next,
    }))
}

//! `[api]`: the settings of the `registry-api` workload (seed 004's REST API in the simulator):
//! which clients run, the API's cache, statistics and bounds, and the model of its store's time.
//! Each of the guide's faulty settings is one key here, so a scenario's `[[variant]]` sets it.

use std::time::Duration;

use erc8004_api::setting::Named;
use serde::Deserialize;
use toml::Spanned;

use super::{Ctx, ScenarioError};

/// `[api]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    pub writers: Option<Spanned<u32>>,
    pub readers: Option<Spanned<u32>>,
    pub paced: Option<Spanned<u32>>,
    pub eager: Option<Spanned<u32>>,
    pub auth: Option<Spanned<u32>>,
    pub registrars: Option<Spanned<u32>>,
    pub searchers: Option<Spanned<u32>>,
    pub agents_per_writer: Option<Spanned<u32>>,
    pub registrations: Option<Spanned<u32>>,
    pub reader_limit_max: Option<Spanned<u32>>,
    pub interval: Option<Spanned<String>>,
    pub request_timeout: Option<Spanned<String>>,
    pub client_stop: Option<Spanned<String>>,
    pub tier: Option<Spanned<String>>,
    pub backoff: Option<bool>,
    pub cache_invalidation: Option<Spanned<String>>,
    pub cache_errors: Option<Spanned<String>>,
    pub whitespace: Option<Spanned<String>>,
    pub cache_bounded: Option<bool>,
    pub cache_entries_max: Option<Spanned<u64>>,
    pub cache_bytes_max: Option<Spanned<u64>>,
    pub refresh: Option<Spanned<String>>,
    pub cache_down_at: Option<Spanned<String>>,
    pub cache_down_for: Option<Spanned<String>>,
    pub pool: Option<Spanned<u32>>,
    pub queue_bounded: Option<bool>,
    pub queue_max: Option<Spanned<u32>>,
    pub read_time: Option<Spanned<String>>,
    pub miss_time: Option<Spanned<String>>,
    pub write_time: Option<Spanned<String>>,
    pub search: Option<Spanned<String>>,
    pub row_time: Option<Spanned<String>>,
    pub registrations_refused_midway: Option<Spanned<u32>>,
    pub on_revert: Option<Spanned<String>>,
    pub agent_ids: Option<Spanned<String>>,
}

/// What each client node does, in node order after the API node (node 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientRole {
    /// Registers its agents, then reads them and gives them feedback, judging every read
    /// against the writes it was told were included (the only writer to its agents).
    Writer,
    /// Reads agents, pages and feedback pages of many shapes (the cache's working set).
    Reader,
    /// Reads at its interval but paces itself by `X-RateLimit-Remaining`/`-Reset` and, told 429,
    /// backs off exponentially with jitter, at least `Retry-After` (`api.backoff = false`: it
    /// does neither).
    Paced,
    /// Reads at its interval whatever it is told.
    Eager,
    /// Presents the guide's failing credentials in turn (missing, malformed, unknown, revoked,
    /// surrounding whitespace) beside a good key, and checks each answer names the problem.
    Auth,
    /// Registers agents, all registrars at the same instants.
    Registrar,
    /// Searches the agent list by owner (any client's owner wallet, at random), checking
    /// every agent answered is the owner's.
    Searcher,
}

/// Where a registering client takes its new agent's id from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AgentIds {
    /// Its receipt's `Registered` log: the id the registry assigned, in its serial apply (the
    /// fix).
    #[default]
    Receipt,
    /// The count of agents read just before registering (`erc8004_agents` at `/metrics`), taken
    /// as the next id: the original's `SELECT MAX(id) + 1` outside the transaction that inserts,
    /// so two registrations that read at once take the same id (the guide's faulty setting).
    Counted,
}

impl Named for AgentIds {
    const NAMED: &'static [(Self, &'static str)] = &[(AgentIds::Receipt, "receipt"), (AgentIds::Counted, "counted")];
}

/// The workload's settings, parsed.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiPlan {
    /// The role of node `i + 1`.
    pub roles: Vec<ClientRole>,
    /// Agents each writer registers first.
    pub agents_per_writer: u32,
    /// Agents each registrar registers.
    pub registrations: u32,
    /// The largest page a reader asks for: fewer shapes, a smaller working set.
    pub reader_limit_max: u32,
    /// Time between a client's requests (one outstanding at a time).
    pub interval: Duration,
    /// How long a client waits for an answer before sending the same request again.
    pub request_timeout: Duration,
    /// When the clients stop (from the run's start); the API node checks the chain once their
    /// last sends settled ([`ApiPlan::check_at`]).
    pub client_stop: Duration,
    /// The tier of the clients' keys.
    pub tier: String,
    /// Whether paced clients pace and back off.
    pub backoff: bool,
    /// The cache's settings (`cache_bounded = false`: no bounds, the guide's growing cache).
    pub cache: erc8004_api::cache::CacheConfig,
    /// How the statistics are kept.
    pub refresh: erc8004_api::view::Refresh,
    /// When the cache is down, if it is: (from, for).
    pub cache_down: Option<(Duration, Duration)>,
    /// Requests served at once (the store's connections).
    pub pool: u32,
    /// Requests waiting for the pool at most (`None`: unbounded, the guide's exhaustion).
    pub queue_max: Option<u32>,
    /// Time a request holds a connection: every request.
    pub read_time: Duration,
    /// Added when the answer was not in the cache (the store was read).
    pub miss_time: Duration,
    /// Added for a transaction (its block written and synced).
    pub write_time: Duration,
    /// How the owner filter finds agents (`scan`: without its index, the guide's slow query).
    pub search: erc8004_api::index::Search,
    /// Added per row the owner filter examined.
    pub row_time: Duration,
    /// How the gate reads whitespace around a key (`literal`: the guide's pitfall).
    pub whitespace: erc8004_api::keys::Whitespace,
    /// Registrations each writer sends that the registry refuses after minting (a metadata
    /// entry under the reserved key), one before each of its first that many registrations.
    pub registrations_refused_midway: u32,
    /// What the API node's chain does with a reverted transaction's writes (`keep`: the
    /// guide's partial writes).
    pub on_revert: erc8004::registries::OnRevert,
    /// Where registrars take their agents' ids from (`counted`: the original's id race).
    pub agent_ids: AgentIds,
}

impl ApiPlan {
    /// When the API node reads the chain's truth for the judges: after the clients stopped and
    /// the last send of each has answered or timed out ([`ApiPlan::settle`] after the stop).
    pub fn check_at(&self) -> Duration {
        self.client_stop + Self::settle(self.request_timeout)
    }

    /// From the clients' stop to the check: their request timeout (at least 1 s), and 1 s more
    /// for a write answered at the last moment to be seen.
    fn settle(request_timeout: Duration) -> Duration {
        request_timeout.max(Duration::from_secs(1)) + Duration::from_secs(1)
    }
}

impl Ctx<'_> {
    /// `[api]` of a scenario of `count` nodes (node 0 the API node, every other a client).
    pub(super) fn api(
        &self,
        t: Option<&Spanned<RawApi>>,
        count: &Spanned<u32>,
        duration: Duration,
    ) -> Result<ApiPlan, ScenarioError> {
        let default_raw = RawApi::default();
        let raw = t.map_or(&default_raw, |t| t.get_ref());
        let span = t.map_or(count.span(), Spanned::span);
        let n = |v: &Option<Spanned<u32>>| v.as_ref().map_or(0, |v| *v.get_ref());
        let fields = [
            &raw.writers,
            &raw.readers,
            &raw.paced,
            &raw.eager,
            &raw.auth,
            &raw.registrars,
            &raw.searchers,
        ];
        // Summed before any role is listed: a count far past the nodes is refused, not built.
        let named: u64 = fields.iter().map(|f| u64::from(n(f))).sum();
        let clients = *count.get_ref() as usize - 1;
        if named != clients as u64 {
            return Err(self.err(
                span,
                format!(
                    "the registry-api workload runs the API on node 0 and one client on each other node: \
                     api.writers + readers + paced + eager + auth + registrars + searchers must be nodes.count - 1 = {clients}, \
                     not {named}"
                ),
            ));
        }
        let mut roles = Vec::new();
        for (role, field) in [
            (ClientRole::Writer, &raw.writers),
            (ClientRole::Reader, &raw.readers),
            (ClientRole::Paced, &raw.paced),
            (ClientRole::Eager, &raw.eager),
            (ClientRole::Auth, &raw.auth),
            (ClientRole::Registrar, &raw.registrars),
            (ClientRole::Searcher, &raw.searchers),
        ] {
            roles.extend(std::iter::repeat_n(role, n(field) as usize));
        }
        let positive =
            |v: &Option<Spanned<String>>, what: &str, default: Duration| -> Result<Duration, ScenarioError> {
                match self.opt_duration(v, what)? {
                    Some(d) if d.is_zero() => Err(self.err(
                        v.as_ref().expect("set").span(),
                        format!("{what} must be greater than zero"),
                    )),
                    Some(d) => Ok(d),
                    None => Ok(default),
                }
            };
        let interval = positive(&raw.interval, "api.interval", Duration::from_millis(100))?;
        let request_timeout = positive(&raw.request_timeout, "api.request_timeout", Duration::from_secs(2))?;
        let client_stop = match self.opt_duration(&raw.client_stop, "api.client_stop")? {
            Some(stop) => stop,
            None => duration.saturating_sub(ApiPlan::settle(request_timeout) + Duration::from_secs(1)),
        };
        if client_stop <= Duration::from_secs(1) {
            let at = raw.client_stop.as_ref().map_or(span.clone(), Spanned::span);
            return Err(self.err(
                at,
                format!(
                    "api.client_stop is {} s: the clients send their first request at 0.5 s, and stop at \
                     api.client_stop (by default the run's duration less api.request_timeout, at least 1 s, \
                     and 2 s); give a longer run or a later stop",
                    client_stop.as_secs_f64()
                ),
            ));
        }
        let settle = ApiPlan::settle(request_timeout);
        if client_stop + settle + Duration::from_secs(1) > duration {
            let at = raw.client_stop.as_ref().map_or(span.clone(), Spanned::span);
            return Err(self.err(
                at,
                format!(
                    "api.client_stop must leave {} s before the run ends ({} s): the API node reads the chain \
                     for the judges {} s after the clients stop (api.request_timeout, at least 1 s, and 1 s)",
                    (settle + Duration::from_secs(1)).as_secs_f64(),
                    duration.as_secs_f64(),
                    settle.as_secs_f64()
                ),
            ));
        }
        let tier = raw
            .tier
            .as_ref()
            .map_or("enterprise".to_string(), |t| t.get_ref().clone());
        if erc8004_api::keys::tier(&tier).is_none() {
            let at = raw.tier.as_ref().expect("a named tier").span();
            let names: Vec<&str> = erc8004_api::keys::TIERS.iter().map(|t| t.name).collect();
            return Err(self.err(
                at,
                format!("api.tier {tier:?} is not a tier: one of {}", names.join(", ")),
            ));
        }
        let mut cache = erc8004_api::cache::CacheConfig::default();
        if let Some(i) = self.named(&raw.cache_invalidation, "cache_invalidation", "never")? {
            cache.invalidation = i;
        }
        if let Some(e) = self.named(&raw.cache_errors, "cache_errors", "fail")? {
            cache.on_error = e;
        }
        let bound = |v: &Option<Spanned<u64>>, what: &str| -> Result<Option<usize>, ScenarioError> {
            match v {
                Some(b) if *b.get_ref() == 0 => Err(self.err(b.span(), format!("{what} must be at least 1"))),
                Some(b) => Ok(Some(usize::try_from(*b.get_ref()).unwrap_or(usize::MAX))),
                None => Ok(None),
            }
        };
        if let Some(e) = bound(&raw.cache_entries_max, "api.cache_entries_max")? {
            cache.entries_max = e;
        }
        if let Some(b) = bound(&raw.cache_bytes_max, "api.cache_bytes_max")? {
            cache.bytes_max = b;
        }
        // `false` lifts the bounds whatever else the file gives: a variant sets it over a base
        // that sets bounds.
        if raw.cache_bounded == Some(false) {
            cache.entries_max = usize::MAX;
            cache.bytes_max = usize::MAX;
        }
        let refresh = match &raw.refresh {
            None => erc8004_api::view::Refresh::Incremental,
            Some(r) if r.get_ref() == "incremental" => erc8004_api::view::Refresh::Incremental,
            Some(r) => {
                let every = self.duration(r, "api.refresh (\"incremental\" or a period)")?;
                if every.is_zero() {
                    return Err(self.err(r.span(), "api.refresh's period must be greater than zero"));
                }
                erc8004_api::view::Refresh::Periodic(every)
            }
        };
        let cache_down = match (
            self.opt_duration(&raw.cache_down_at, "api.cache_down_at")?,
            self.opt_duration(&raw.cache_down_for, "api.cache_down_for")?,
        ) {
            (None, None) => None,
            (Some(at), Some(length)) if !length.is_zero() && at + length <= client_stop => Some((at, length)),
            _ => return Err(self.err(
                span,
                "api.cache_down_at and api.cache_down_for go together, and the cache is back before api.client_stop",
            )),
        };
        let pool = match &raw.pool {
            Some(p) if *p.get_ref() == 0 => return Err(self.err(p.span(), "api.pool must be at least 1")),
            Some(p) => *p.get_ref(),
            None => 16,
        };
        let queue_max = match (raw.queue_bounded, &raw.queue_max) {
            // As for the cache: `false` lifts the bound a base file gives.
            (Some(false), _) => None,
            (_, Some(q)) => Some(*q.get_ref()),
            (_, None) => Some(64),
        };
        let search = self.named(&raw.search, "search", "scan")?.unwrap_or_default();
        let whitespace = self
            .named(&raw.whitespace, "whitespace", "literal")?
            .unwrap_or_default();
        let on_revert = self.named(&raw.on_revert, "on_revert", "keep")?.unwrap_or_default();
        let agent_ids = self.named(&raw.agent_ids, "agent_ids", "counted")?.unwrap_or_default();
        if agent_ids == AgentIds::Counted && !roles.contains(&ClientRole::Registrar) {
            let at = raw.agent_ids.as_ref().expect("counted is named").span();
            return Err(self.err(
                at,
                "api.agent_ids is how registrars take their ids: give api.registrars",
            ));
        }
        let time = |v: &Option<Spanned<String>>, what: &str| -> Result<Duration, ScenarioError> {
            Ok(self.opt_duration(v, what)?.unwrap_or(Duration::ZERO))
        };
        let agents_per_writer = match &raw.agents_per_writer {
            Some(v) if *v.get_ref() == 0 => {
                return Err(self.err(
                    v.span(),
                    "api.agents_per_writer must be at least 1 (a writer reads its own agents)",
                ))
            }
            Some(v) => *v.get_ref(),
            None => 4,
        };
        let registrations_refused_midway = match &raw.registrations_refused_midway {
            Some(v) if *v.get_ref() > agents_per_writer => {
                return Err(self.err(
                    v.span(),
                    format!(
                        "api.registrations_refused_midway is one before each of a writer's first that many \
                         registrations: at most api.agents_per_writer ({agents_per_writer}), not {}",
                        v.get_ref()
                    ),
                ))
            }
            Some(v) if *v.get_ref() > 0 && !roles.contains(&ClientRole::Writer) => {
                return Err(self.err(
                    v.span(),
                    "api.registrations_refused_midway is sent by writers: give api.writers",
                ))
            }
            Some(v) => *v.get_ref(),
            None => 0,
        };
        Ok(ApiPlan {
            roles,
            agents_per_writer,
            registrations: raw.registrations.as_ref().map_or(10, |v| *v.get_ref()),
            reader_limit_max: match &raw.reader_limit_max {
                Some(v) if !(1..=100).contains(v.get_ref()) => {
                    return Err(self.err(v.span(), "api.reader_limit_max is 1 to 100 (a page's limit)"))
                }
                Some(v) => *v.get_ref(),
                None => 20,
            },
            interval,
            request_timeout,
            client_stop,
            tier,
            backoff: raw.backoff.unwrap_or(true),
            cache,
            refresh,
            cache_down,
            pool,
            queue_max,
            read_time: time(&raw.read_time, "api.read_time")?,
            miss_time: time(&raw.miss_time, "api.miss_time")?,
            write_time: time(&raw.write_time, "api.write_time")?,
            search,
            row_time: time(&raw.row_time, "api.row_time")?,
            whitespace,
            registrations_refused_midway,
            on_revert,
            agent_ids,
        })
    }

    /// The setting `api.{key}` names, if given; `faulty` is the name of the guide's faulty one.
    fn named<T: Named>(
        &self,
        value: &Option<Spanned<String>>,
        key: &str,
        faulty: &str,
    ) -> Result<Option<T>, ScenarioError> {
        let Some(value) = value else {
            return Ok(None);
        };
        T::from_name(value.get_ref()).map(Some).ok_or_else(|| {
            self.err(
                value.span(),
                format!(
                    "api.{key} is {} ({faulty:?}: the guide's faulty setting), not {:?}",
                    T::names(),
                    value.get_ref()
                ),
            )
        })
    }
}

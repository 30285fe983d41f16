//! `GET /metrics`: the API's figures in the Prometheus text format (0.0.4), written by
//! `prometheus-client`.
//!
//! Requests are counted by route template and status as they are answered; their durations
//! (measured by the backend's clock, [`Stopwatch`]) go into a histogram per route template. The
//! cache, the statistics view and the chain are read at the scrape: the values the cache and
//! view keep are the only copy, so the exposition cannot drift from them.
//!
//! Labelled series are written in label order ([`Ordered`]), not in `prometheus-client`'s
//! `Family` order, which is a hash map's and changes from one process to the next: the same
//! figures are the same text, which the simulator's trace hash (over every answer's bytes) and
//! anyone diffing two scrapes rely on.

use std::collections::BTreeMap;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Registry, Unit};

use crate::cache::ResponseCache;
use crate::view::StatsView;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// A monotonic clock in nanoseconds, the backend's (a service reads no clock of its own).
pub type Stopwatch = Box<dyn Fn() -> u64 + Send>;

/// A request's labels: the route template (never the raw path, so that the series stay few)
/// and the status.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    status: String,
}

/// A duration's label: the route template.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct RouteLabel {
    route: &'static str,
}

/// The request figures, kept as requests are answered.
#[derive(Default)]
pub struct ApiMetrics {
    requests: BTreeMap<RequestLabels, u64>,
    durations: BTreeMap<RouteLabel, Histogram>,
}

/// A labelled family of series, written in the order of its labels.
#[derive(Debug)]
struct Ordered<S, M>(BTreeMap<S, M>);

impl<S: EncodeLabelSet, M: EncodeMetric + TypedMetric> EncodeMetric for Ordered<S, M> {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (labels, metric) in &self.0 {
            metric.encode(encoder.encode_family(labels)?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        M::TYPE
    }

    /// A family with no series is not written at all (no `# HELP` without samples), as
    /// `prometheus-client`'s own families are not.
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<S: Ord, M> FromIterator<(S, M)> for Ordered<S, M> {
    fn from_iter<I: IntoIterator<Item = (S, M)>>(series: I) -> Self {
        Ordered(series.into_iter().collect())
    }
}

/// Duration buckets: 50 µs to about 1.6 s, doubling (the guide's P95 bound, 500 ms, inside).
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// What a scrape reads besides the request figures.
pub struct Scrape<'a> {
    /// The cache.
    pub cache: &'a ResponseCache,
    /// The statistics view.
    pub view: &'a StatsView,
    /// Its age now, seconds.
    pub view_age_seconds: f64,
    /// The chain's head block.
    pub chain_head: u64,
    /// Agents registered.
    pub agents: usize,
    /// The alerts firing.
    pub alerts: &'a [crate::alerts::Firing],
    /// The filtered lists' searches and the rows they examined.
    pub searched: crate::index::SearchTally,
    /// The gate: its refusals.
    pub gate: &'a crate::gate::Gate,
    /// The server's queue in front of the service, if the backend tells it.
    pub server: Option<ServerLoad>,
}

/// The server's queue in front of the service, as the backend counts it (requests the service
/// never sees: refused while the queue was full).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerLoad {
    /// Requests read whole and waiting for the service, or being answered, now.
    pub waiting: u64,
    /// Requests that may wait at most.
    pub waiting_max: u64,
    /// Requests refused 503 (`server_busy`) because that many already waited, so far.
    pub refused_busy: u64,
    /// Connections refused at the connection limit, so far.
    pub connections_refused: u64,
    /// Answers held back for a commit ([`runtime::Pending`]), now.
    pub held: u64,
}

/// How the backend tells the server's load (a closure over its counters).
pub type LoadGauge = Box<dyn Fn() -> ServerLoad + Send>;

/// A refusal's label.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct TierLabel {
    tier: &'static str,
}

/// A 401's label.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// An alert's label.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
struct AlertLabel {
    alert: &'static str,
}

impl ApiMetrics {
    /// Counts one answer on `route` with `status`, which took `seconds` if measured.
    pub fn observe(&mut self, route: &'static str, status: u16, seconds: Option<f64>) {
        *self
            .requests
            .entry(RequestLabels {
                route,
                status: status.to_string(),
            })
            .or_default() += 1;
        if let Some(seconds) = seconds {
            self.durations
                .entry(RouteLabel { route })
                .or_insert_with(duration_histogram)
                .observe(seconds);
        }
    }

    /// Requests answered on `route` with `status` so far.
    pub fn requests(&self, route: &'static str, status: u16) -> u64 {
        self.requests
            .get(&RequestLabels {
                route,
                status: status.to_string(),
            })
            .copied()
            .unwrap_or(0)
    }

    /// The exposition: every series, as the text format writes it.
    pub fn exposition(&self, scrape: &Scrape<'_>) -> String {
        let mut registry = Registry::with_prefix("erc8004");
        registry.register(
            "requests",
            "Requests answered, by route template and status",
            self.requests
                .iter()
                .map(|(labels, n)| (labels.clone(), ConstCounter::new(*n)))
                .collect::<Ordered<_, _>>(),
        );
        registry.register_with_unit(
            "request_duration",
            "Time to answer a request inside the service (queueing in the server excluded; for a posted transaction, the wait for its commit included), by route template",
            Unit::Seconds,
            // A clone shares the histogram's counts: read at the scrape, not copied.
            self.durations.clone().into_iter().collect::<Ordered<_, _>>(),
        );
        let c = scrape.cache.counters();
        let counters = [
            ("cache_hits", "Cache lookups answered from an entry", c.hits),
            ("cache_misses", "Cache lookups that found no current entry", c.misses),
            (
                "cache_evictions",
                "Entries deleted to stay within the cache's bounds",
                c.evictions,
            ),
            (
                "cache_invalidations",
                "Entries found changed by a committed block and deleted",
                c.invalidations,
            ),
            (
                "cache_stale_served",
                "Entries served though a committed block changed them (only with invalidation off)",
                c.stale_served,
            ),
            (
                "cache_errors",
                "Cache lookups and stores that failed; each read went to the registries",
                c.errors,
            ),
            (
                "view_stale_reads",
                "Statistics served from before a committed change (only with a periodic refresh)",
                scrape.view.stale_reads(),
            ),
            (
                "view_rebuilds",
                "Statistics recomputed whole from the state",
                scrape.view.rebuilds(),
            ),
            (
                "searches",
                "Filtered agent lists searched (answers from the cache search nothing)",
                scrape.searched.searches,
            ),
            (
                "search_rows_examined",
                "Rows the filtered agent lists examined (agents read, from the owner index or the registry, and feedback entries read for tag and reputation filters)",
                scrape.searched.rows_examined,
            ),
        ];
        for (name, help, value) in counters {
            registry.register(name, help, ConstCounter::new(value));
        }
        let config = scrape.cache.config();
        let gauges = [
            ("cache_entries", "Entries the cache holds", scrape.cache.len() as u64),
            ("cache_bytes", "Bytes the cache holds", scrape.cache.bytes() as u64),
            (
                "cache_entries_max",
                "Entries the cache holds at most",
                config.entries_max as u64,
            ),
            (
                "cache_bytes_max",
                "Bytes the cache holds at most",
                config.bytes_max as u64,
            ),
            ("chain_head", "The chain's head block", scrape.chain_head),
            ("view_head", "The block the statistics view matches", scrape.view.head()),
            ("agents", "Agents registered", scrape.agents as u64),
        ];
        for (name, help, value) in gauges {
            registry.register(name, help, ConstGauge::new(value));
        }
        registry.register_with_unit(
            "view_age",
            "Time since the statistics view was last known to match the chain's head",
            Unit::Seconds,
            ConstGauge::new(scrape.view_age_seconds),
        );
        registry.register_with_unit(
            "view_age_max",
            "The largest age of the statistics view a read saw",
            Unit::Seconds,
            ConstGauge::new(scrape.view.age_max().as_secs_f64()),
        );
        let firing: Ordered<_, _> = crate::alerts::Alert::ALL
            .into_iter()
            .map(|alert| {
                let on = scrape.alerts.iter().any(|f| f.alert == alert);
                (AlertLabel { alert: alert.name() }, ConstGauge::new(i64::from(on)))
            })
            .collect();
        // Every tier, refused or not: a series that appears only once something is refused
        // cannot be rated over a window that began before it.
        let limited: Ordered<_, _> = crate::keys::TIERS
            .iter()
            .map(|tier| {
                let count = scrape.gate.limited().get(tier.name).copied().unwrap_or(0);
                (TierLabel { tier: tier.name }, ConstCounter::new(count))
            })
            .collect();
        registry.register(
            "rate_limited",
            "Requests refused 429 (rate limit exceeded), by the key's tier",
            limited,
        );
        let unauthorized: Ordered<_, _> = crate::keys::AuthError::CODES
            .iter()
            .map(|reason| {
                let count = scrape.gate.unauthorized().get(reason).copied().unwrap_or(0);
                (ReasonLabel { reason }, ConstCounter::new(count))
            })
            .collect();
        registry.register(
            "unauthorized",
            "Requests refused 401, by why (missing, malformed, unknown or revoked key)",
            unauthorized,
        );
        if let Some(load) = scrape.server {
            registry.register(
                "server_requests_waiting",
                "Requests read whole and waiting for the service, or being answered",
                ConstGauge::new(load.waiting),
            );
            registry.register(
                "server_requests_waiting_max",
                "Requests that may wait for the service at most (one more is refused 503)",
                ConstGauge::new(load.waiting_max),
            );
            registry.register(
                "server_refused_busy",
                "Requests refused 503 server_busy because the queue was full: never processed",
                ConstCounter::new(load.refused_busy),
            );
            registry.register(
                "server_connections_refused",
                "Connections refused at the connection limit",
                ConstCounter::new(load.connections_refused),
            );
            registry.register(
                "server_answers_held",
                "Answers to posted transactions held open until committed (or the commit wait ends)",
                ConstGauge::new(load.held),
            );
        }
        registry.register(
            "alert_firing",
            "1 while the guide's alert fires (error rate, P95 latency, cache hit rate)",
            firing,
        );
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)
            .expect("writing to a String does not fail");
        text
    }
}

//! The `registry-api` workload: seed 004's REST API over the ERC-8004 registries, in the
//! simulator. Node 0 is the API node ([`server::ApiNode`]: the development chain on its
//! simulated disk and the API over it, as `hypermesh dev --api` runs them, behind a model of the
//! original's database pool); every other node is a client ([`client::ApiClient`]) of a role
//! the `[api]` table gives (`crate::scenario::ApiPlan`). Requests and answers cross the
//! simulated network as one datagram each ([`wire`]).
//!
//! Each of the guide's entries is a scenario (`scenarios/registry-*.toml`) that sets one of the
//! `[api]` keys to the guide's faulty setting in a `[[variant]]`: the cache that never
//! invalidates, the statistics refreshed every five minutes, the unbounded cache, the unbounded
//! queue, the client without back-off, the owner search without its index, the literal reading
//! of the key, the cache errors as failed requests, the reverted transaction whose writes stand,
//! the registrar that takes its id from a count. Judged by the clients' own checks (stale reads,
//! their 429s, each refusal's code) and, once the clients stopped and their last sends settled,
//! against the chain's truth as the API node reads it: every acknowledged write is in the chain
//! (`lost_writes`), none is there twice (`duplicated_writes`), every acknowledged agent id is
//! one agent (`agent_id_collisions`), every agent was made by a registration that succeeded
//! (`partial_agents`).

mod client;
mod server;
mod wire;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use alloy_primitives::Address;
use erc8004::chain::ChainConfig;
use erc8004::wallet::Wallet;
use erc8004_api::alerts::AlertRules;
use erc8004_api::keys::ApiKeys;
use erc8004_api::service::ApiConfig;
use hypermesh::testing::percentile;
use reports::{Plot, Series};
use runtime::{Actor, DetRng, Entropy};
use simulator::ActorFactory;

use super::{FinishedRun, Workload};
use crate::analysis::Analysis;
use crate::build::{node_addrs, stream};
use crate::scenario::{AgentIds, ApiPlan, ClientRole, Scenario};
use client::{ApiClient, AuthKeys, ClientConfig};
use server::{ApiNode, ServerConfig};

/// The workload's figures: (name, meaning).
pub const METRICS: &[(&str, &str)] = &[
    ("api_answers", "answers the API node sent (any status)"),
    ("api_answers_5xx", "of them, 5xx answers (a 503 refusal included)"),
    (
        "api_refused_busy",
        "503 answers of a full queue or a chain not open: not processed",
    ),
    ("api_answers_429", "429 answers (rate limit exceeded)"),
    (
        "api_answers_401",
        "401 answers (a key missing, malformed, unknown or revoked)",
    ),
    (
        "reads_judged",
        "writers' reads of their own agents judged against the writes acknowledged to them",
    ),
    (
        "stale_reads",
        "of them, reads that missed a write acknowledged before they were sent: must be 0",
    ),
    (
        "phantom_reads",
        "reads that counted more writes than were ever sent: must be 0",
    ),
    ("judged_reads_failed", "writers' judged reads answered other than 200"),
    ("writes_acked", "feedback transactions acknowledged as included"),
    (
        "writes_failed",
        "transactions reverted (but the registrations sent to be refused after their mint, when refused for that), or refused (a refused registration is sent again, counted once)",
    ),
    (
        "writes_unknown",
        "feedback transactions still unanswered when their client stopped",
    ),
    (
        "lost_writes",
        "acknowledged feedback the chain does not hold at the check: must be 0",
    ),
    (
        "duplicated_writes",
        "feedback the chain holds beyond what was acknowledged or unknown: must be 0",
    ),
    (
        "agents_acked",
        "agent ids acknowledged to the clients that registered them",
    ),
    (
        "agent_id_collisions",
        "agent ids acknowledged to more than one registration: must be 0",
    ),
    (
        "agents_lost",
        "acknowledged agent ids the chain does not hold at the check: must be 0",
    ),
    ("agents_in_chain", "agents the chain holds at the check"),
    (
        "partial_agents",
        "agents the chain holds that no successful registration made (a reverted one's writes kept): must be 0",
    ),
    (
        "registrations_reverted_midway",
        "writers' registrations refused after their mint, answered as reverted",
    ),
    (
        "revert_missing",
        "of the registrations that should have been refused after their mint, those included as succeeded: must be 0",
    ),
    (
        "agent_ids_counted_wrong",
        "registrations whose id, counted before sending, is not the one their receipt names",
    ),
    (
        "agent_counts_failed",
        "counts of agents registrars could not read at /metrics (each read again at their next instant)",
    ),
    (
        "truth_checked",
        "1 if the API node read the chain's truth at the check (0: its chain was not open)",
    ),
    ("cache_hits", "answers served from the cache"),
    ("cache_misses", "lookups that found no entry, or a stale one"),
    ("cache_hit_rate", "hits / (hits + misses)"),
    ("cache_evictions", "entries evicted to stay within the bounds"),
    ("cache_invalidations", "stale entries deleted when found"),
    (
        "cache_stale_served",
        "stale entries served (the guide's original invalidation)",
    ),
    (
        "cache_errors",
        "lookups and stores that failed with the cache down (each read went to the store)",
    ),
    ("cache_entries_max", "the most entries the cache held at a sample"),
    ("cache_bytes_max", "the most bytes the cache held at a sample"),
    ("cache_entries_last", "entries held at the last sample"),
    (
        "view_age_max_s",
        "the statistics view's largest age at a sample, seconds",
    ),
    (
        "view_stale_reads",
        "statistics read while the view lagged a change to them",
    ),
    ("queue_longest", "the most requests waiting for the pool at once"),
    ("client_timeouts", "sends the clients gave up waiting on and sent again"),
    (
        "client_refused_busy",
        "503s the clients were told, each asked again after Retry-After",
    ),
    ("rate_limited_paced", "429s told to paced clients"),
    ("rate_limited_eager", "429s told to eager clients"),
    ("reads_paced", "answers to paced clients"),
    (
        "auth_as_documented",
        "the auth client's answers with the status and code documented for its credential",
    ),
    ("auth_wrong", "the auth client's answers that were not: must be 0"),
    (
        "alert_error_rate_s",
        "seconds the guide's error-rate alert (5xx over 1 % in the last minute) fired",
    ),
    (
        "alert_latency_s",
        "seconds the guide's latency alert (P95 over 500 ms in the last minute) fired",
    ),
    (
        "alert_hit_rate_s",
        "seconds the guide's cache alert (hit rate under 80 % in the last minute) fired",
    ),
    ("alerts_firing_at_end", "alerts firing at the last sample"),
    (
        "searches_run",
        "owner searches the API ran (answers from the cache run none)",
    ),
    (
        "search_rows_mean",
        "rows an owner search examined, on average (the index: those it returned)",
    ),
    (
        "search_rows_last",
        "rows an owner search examined, on average over the clients' last 10 s",
    ),
    ("searches_answered", "owner searches answered 200"),
    (
        "search_wrong",
        "owner searches that answered an agent of another owner: must be 0",
    ),
    (
        "search_p95_ms",
        "the searchers' P95 latency of a search, from its first send to its answer, ms",
    ),
    (
        "search_p95_last_ms",
        "the same over the searches answered in the clients' last 10 s, ms",
    ),
];

/// The workload (see the module documentation).
pub struct RegistryApi;

/// The plan of `scenario`, which the parser gives every `registry-api` scenario.
fn plan(scenario: &Scenario) -> &ApiPlan {
    scenario
        .api
        .as_ref()
        .expect("the parser gives a registry-api scenario its [api] plan")
}

impl RegistryApi {
    /// The owner searches: what they cost the API (rows examined per search run) and the
    /// searchers (latency), over the run and over the clients' last 10 s.
    fn analyse_searches(&self, run: &FinishedRun<'_>, analysis: &mut Analysis) {
        let last_from = plan(run.scenario).client_stop.saturating_sub(LAST_WINDOW).as_nanos() as u64;
        let server = |name: &'static str, last: bool| {
            run.probes
                .iter()
                .filter(move |r| r.node == 0 && r.probe.name == name && (!last || r.at.as_nanos() >= last_from))
                .map(|r| r.probe.value)
                .sum::<i64>() as f64
        };
        let per_search = |last: bool| {
            let searches = server("searches", last);
            (searches > 0.0).then(|| server("search_rows", last) / searches)
        };
        let latencies = |last: bool| -> Vec<f64> {
            run.probes
                .iter()
                .filter(|r| {
                    r.node != 0
                        && r.probe.name == "search_latency_ms"
                        && r.probe.subject == 200
                        && (!last || r.at.as_nanos() >= last_from)
                })
                .map(|r| r.probe.value as f64)
                .collect()
        };
        let answered = latencies(false).len() as f64;
        let wrong = run.probes.iter().filter(|r| r.probe.name == "search_wrong").count() as f64;
        for (name, value) in [
            ("searches_run", Some(server("searches", false))),
            ("search_rows_mean", per_search(false)),
            ("search_rows_last", per_search(true)),
            ("searches_answered", Some(answered)),
            ("search_wrong", Some(wrong)),
            ("search_p95_ms", percentile(&mut latencies(false), 95.0)),
            ("search_p95_last_ms", percentile(&mut latencies(true), 95.0)),
        ] {
            analysis.metrics.insert(name.into(), value);
        }
    }
}

/// The window "last" figures are taken over: before the clients stop.
const LAST_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

/// The Unix second the keys are made at (their records keep it; nothing checks it).
const KEYS_MADE_AT: i64 = 1_700_000_000;

impl Workload for RegistryApi {
    fn kind(&self) -> &'static str {
        "registry-api"
    }

    fn metrics(&self) -> Vec<(&'static str, &'static str)> {
        METRICS.to_vec()
    }

    fn factory(&self, scenario: &Scenario, root: &DetRng) -> Box<dyn ActorFactory> {
        let plan = plan(scenario).clone();
        let family = scenario.nodes[0].family;
        let server = node_addrs(0, family)[0];
        // Keys from the seed: each client's, one revoked, one nobody issued.
        let mut draw = root.fork(stream::API_KEYS);
        let mut random = || {
            let mut bytes = [0u8; 36];
            for chunk in bytes.chunks_mut(8) {
                let word = draw.next_u64().to_be_bytes();
                chunk.copy_from_slice(&word[..chunk.len()]);
            }
            bytes
        };
        let mut keys = ApiKeys::new();
        let client_keys: Vec<String> = (0..plan.roles.len())
            .map(|i| {
                let (key, _) = keys
                    .create(&random(), &plan.tier, &format!("client {}", i + 1), KEYS_MADE_AT)
                    .expect("a tier the parser checked, few keys");
                key
            })
            .collect();
        let (revoked, record) = keys
            .create(&random(), &plan.tier, "revoked", KEYS_MADE_AT)
            .expect("few keys");
        let id = record.id.clone();
        keys.revoke(&id, KEYS_MADE_AT).expect("just made");
        let (unknown, _) = ApiKeys::new()
            .create(&random(), &plan.tier, "never issued", KEYS_MADE_AT)
            .expect("one key");
        let server_config = Arc::new(ServerConfig {
            keys: keys.to_json(),
            api: ApiConfig {
                cache: plan.cache,
                refresh: plan.refresh,
                alerts: AlertRules::default(),
                search: plan.search,
                whitespace: plan.whitespace,
                // The simulated server answers at once: it holds no answer back for a commit
                // (its chain commits each transaction as it takes it).
                commit_wait: std::time::Duration::ZERO,
                ..ApiConfig::default()
            },
            pool: plan.pool as usize,
            queue_max: plan.queue_max.map(|q| q as usize),
            read_time: plan.read_time,
            miss_time: plan.miss_time,
            write_time: plan.write_time,
            row_time: plan.row_time,
            cache_down: plan.cache_down,
            check_at: plan.check_at(),
            chain: ChainConfig {
                on_revert: plan.on_revert,
                ..ChainConfig::default()
            },
        });
        let wallet_seed = root.fork(stream::WALLETS).next_u64();
        let writers = plan.roles.iter().filter(|r| **r == ClientRole::Writer).count() as u64;
        let registrars = plan.roles.iter().filter(|r| **r == ClientRole::Registrar).count() as u64;
        let agents_known = writers * u64::from(plan.agents_per_writer) + registrars * u64::from(plan.registrations);
        // Each client's owner wallet is `Wallet::development(wallet_seed, 2 * (i + 1))`; only
        // writers and registrars own agents.
        let owners: Vec<Address> = (0..plan.roles.len() as u64)
            .map(|i| Wallet::development(wallet_seed, 2 * (i + 1)).address())
            .collect();
        let clients: Vec<ClientConfig> = plan
            .roles
            .iter()
            .enumerate()
            .map(|(i, role)| ClientConfig {
                role: *role,
                server,
                key: client_keys[i].clone(),
                auth: AuthKeys {
                    unknown: unknown.clone(),
                    revoked: revoked.clone(),
                },
                wallet_seed,
                wallet_first: 2 * (i as u64 + 1),
                agents: match role {
                    ClientRole::Writer => plan.agents_per_writer,
                    ClientRole::Registrar => plan.registrations,
                    _ => 0,
                },
                agents_known,
                reader_limit_max: plan.reader_limit_max,
                owners: owners.clone(),
                interval: plan.interval,
                request_timeout: plan.request_timeout,
                stop: plan.client_stop,
                backoff: plan.backoff,
                refused_midway: match role {
                    ClientRole::Writer => plan.registrations_refused_midway,
                    _ => 0,
                },
                agent_ids: match role {
                    ClientRole::Registrar => plan.agent_ids,
                    _ => AgentIds::Receipt,
                },
            })
            .collect();
        Box::new(move |node: u32| -> Box<dyn Actor> {
            match node {
                0 => Box::new(ApiNode::new(server_config.clone())),
                n => Box::new(ApiClient::new(clients[n as usize - 1].clone())),
            }
        })
    }

    fn analyse(&self, run: &FinishedRun<'_>) -> Analysis {
        let mut analysis = Analysis::default();
        let probes = |node_is_server: bool, name: &'static str| {
            run.probes
                .iter()
                .filter(move |r| (r.node == 0) == node_is_server && r.probe.name == name)
        };
        let sum = |server: bool, name: &'static str| probes(server, name).map(|r| r.probe.value).sum::<i64>() as f64;
        let max = |name: &'static str| probes(true, name).map(|r| r.probe.value).max().unwrap_or(0) as f64;
        let answers_with = |keep: &dyn Fn(u64) -> bool| {
            probes(true, "answers")
                .filter(|r| keep(r.probe.subject))
                .map(|r| r.probe.value)
                .sum::<i64>() as f64
        };
        let rate_limited = |role: u64| {
            probes(false, "rate_limited")
                .filter(|r| r.probe.subject == role)
                .count() as f64
        };

        // Writes against the chain's truth.
        let mut acked: BTreeMap<u64, i64> = BTreeMap::new();
        for r in probes(false, "write_acked") {
            *acked.entry(r.probe.subject).or_default() += 1;
        }
        let mut unknown: BTreeMap<u64, i64> = BTreeMap::new();
        for r in probes(false, "write_unknown") {
            *unknown.entry(r.probe.subject).or_default() += 1;
        }
        let truth: BTreeMap<u64, i64> = probes(true, "truth_feedback")
            .map(|r| (r.probe.subject, r.probe.value))
            .collect();
        let truth_agents = probes(true, "truth_agents").map(|r| r.probe.value).next_back();
        let checked = truth_agents.is_some();
        let (mut lost, mut duplicated) = (0i64, 0i64);
        if checked {
            let agents: BTreeSet<u64> = acked.keys().chain(truth.keys()).copied().collect();
            for agent in agents {
                let held = truth.get(&agent).copied().unwrap_or(0);
                let told = acked.get(&agent).copied().unwrap_or(0);
                let maybe = unknown.get(&agent).copied().unwrap_or(0);
                lost += (told - held).max(0);
                duplicated += (held - told - maybe).max(0);
                if told > held {
                    analysis.evidence.push(format!(
                        "agent {agent}: {told} feedback acknowledged, {held} in the chain"
                    ));
                }
            }
        }
        let mut agents: BTreeMap<u64, u64> = BTreeMap::new();
        for r in probes(false, "agent_acked") {
            *agents.entry(r.probe.subject).or_default() += 1;
        }
        let agents_lost = truth_agents.map_or(0, |n| agents.keys().filter(|id| **id >= n as u64).count());
        let hits = sum(true, "cache_hits");
        let misses = sum(true, "cache_misses");
        for r in probes(false, "stale_read").take(5) {
            analysis.evidence.push(format!(
                "at {:.3} s node {} read agent {} {} write(s) behind what it was told",
                r.at.as_secs_f64(),
                r.node,
                r.probe.subject,
                r.probe.value
            ));
        }
        for r in probes(false, "auth_wrong").take(5) {
            analysis
                .evidence
                .push(format!("auth case {} answered {}", r.probe.subject, r.probe.value));
        }
        for (name, value) in [
            ("api_answers", answers_with(&|_| true)),
            ("api_answers_5xx", answers_with(&|s| s >= 500)),
            ("api_answers_429", answers_with(&|s| s == 429)),
            ("api_answers_401", answers_with(&|s| s == 401)),
            ("api_refused_busy", answers_with(&|s| s == 503)),
            ("reads_judged", probes(false, "read_judged").count() as f64),
            ("stale_reads", probes(false, "stale_read").count() as f64),
            ("phantom_reads", probes(false, "phantom_read").count() as f64),
            ("judged_reads_failed", probes(false, "read_failed").count() as f64),
            ("writes_acked", acked.values().sum::<i64>() as f64),
            ("writes_failed", probes(false, "write_failed").count() as f64),
            ("writes_unknown", unknown.values().sum::<i64>() as f64),
            ("lost_writes", lost as f64),
            ("duplicated_writes", duplicated as f64),
            ("agents_acked", agents.len() as f64),
            (
                "agent_id_collisions",
                agents.values().filter(|n| **n > 1).count() as f64,
            ),
            ("agents_lost", agents_lost as f64),
            ("truth_checked", f64::from(u8::from(checked))),
            ("agents_in_chain", truth_agents.unwrap_or(0) as f64),
            (
                "registrations_reverted_midway",
                probes(false, "reverted_midway").count() as f64,
            ),
            ("revert_missing", probes(false, "revert_missing").count() as f64),
            (
                "agent_ids_counted_wrong",
                probes(false, "id_counted_wrong").count() as f64,
            ),
            ("agent_counts_failed", probes(false, "count_failed").count() as f64),
            ("cache_hits", hits),
            ("cache_misses", misses),
            ("cache_evictions", sum(true, "cache_evictions")),
            ("cache_invalidations", sum(true, "cache_invalidations")),
            ("cache_stale_served", sum(true, "cache_stale_served")),
            ("cache_errors", sum(true, "cache_errors")),
            ("cache_entries_max", max("cache_entries")),
            ("cache_bytes_max", max("cache_bytes")),
            (
                "cache_entries_last",
                probes(true, "cache_entries")
                    .next_back()
                    .map_or(0.0, |r| r.probe.value as f64),
            ),
            ("view_age_max_s", max("view_age_ms") / 1000.0),
            ("view_stale_reads", sum(true, "view_stale_reads")),
            ("queue_longest", max("queue_longest")),
            ("client_timeouts", probes(false, "timeout").count() as f64),
            ("client_refused_busy", probes(false, "refused_busy").count() as f64),
            ("rate_limited_paced", rate_limited(1)),
            ("rate_limited_eager", rate_limited(2)),
            (
                "reads_paced",
                probes(false, "answer")
                    .filter(|r| plan(run.scenario).roles.get(r.node as usize - 1) == Some(&ClientRole::Paced))
                    .count() as f64,
            ),
            ("auth_as_documented", probes(false, "auth_as_documented").count() as f64),
            ("auth_wrong", probes(false, "auth_wrong").count() as f64),
        ] {
            analysis.metrics.insert(name.to_string(), Some(value));
        }
        // Each alert's samples (one a second): how many fired, and which fire at the last one.
        let alert_samples = |alert: u64| probes(true, "alert_firing").filter(move |r| r.probe.subject == alert);
        let last_at = probes(true, "alert_firing").map(|r| r.at).max();
        for (i, name) in ["alert_error_rate_s", "alert_latency_s", "alert_hit_rate_s"]
            .into_iter()
            .enumerate()
        {
            let fired = alert_samples(i as u64).filter(|r| r.probe.value == 1).count();
            analysis.metrics.insert(name.into(), Some(fired as f64));
        }
        let at_end = probes(true, "alert_firing")
            .filter(|r| Some(r.at) == last_at && r.probe.value == 1)
            .count();
        analysis
            .metrics
            .insert("alerts_firing_at_end".into(), Some(at_end as f64));
        // Absent unless the API node could count registrations over the whole chain.
        let partial = probes(true, "truth_partial_agents").map(|r| r.probe.value).next_back();
        analysis
            .metrics
            .insert("partial_agents".into(), partial.map(|n| n as f64));
        for r in probes(false, "id_counted_wrong").take(5) {
            analysis.evidence.push(format!(
                "at {:.3} s node {} took agent id {} from the count; its receipt named another",
                r.at.as_secs_f64(),
                r.node,
                r.probe.subject
            ));
        }
        let rate = (hits + misses > 0.0).then(|| hits / (hits + misses));
        analysis.metrics.insert("cache_hit_rate".into(), rate);
        self.analyse_searches(run, &mut analysis);
        analysis
    }

    fn plots(&self, run: &FinishedRun<'_>) -> Vec<Plot> {
        let series = |name: &'static str, label: &str, scale: f64| Series {
            name: label.into(),
            points: run
                .probes
                .iter()
                .filter(|r| r.node == 0 && r.probe.name == name)
                .map(|r| (r.at.as_secs_f64(), r.probe.value as f64 * scale))
                .collect(),
        };
        // Answers a second by status class, from the API node's samples.
        let mut by_class: BTreeMap<&str, BTreeMap<u64, f64>> = BTreeMap::new();
        for r in run.probes.iter().filter(|r| r.node == 0 && r.probe.name == "answers") {
            let class = match r.probe.subject {
                200..=299 => "2xx",
                429 => "429",
                400..=499 => "4xx",
                _ => "5xx",
            };
            *by_class.entry(class).or_default().entry(r.at.as_nanos()).or_default() += r.probe.value as f64;
        }
        vec![
            Plot {
                title: "The API's cache".into(),
                y_label: "entries, or per second".into(),
                series: vec![
                    series("cache_entries", "entries", 1.0),
                    series("cache_hits", "hits", 1.0),
                    series("cache_misses", "misses", 1.0),
                    series("cache_evictions", "evictions", 1.0),
                    series("cache_stale_served", "stale served", 1.0),
                    series("cache_errors", "errors (down)", 1.0),
                ],
            },
            Plot {
                title: "Answers by status".into(),
                y_label: "per second".into(),
                series: by_class
                    .into_iter()
                    .map(|(class, points)| Series {
                        name: class.into(),
                        points: points.into_iter().map(|(at, n)| (at as f64 / 1e9, n)).collect(),
                    })
                    .collect(),
            },
            Plot {
                title: "The guide's alerts (1 while firing)".into(),
                y_label: "firing".into(),
                series: ["error rate > 1 %", "P95 > 500 ms", "hit rate < 80 %"]
                    .iter()
                    .enumerate()
                    .map(|(i, label)| Series {
                        name: (*label).into(),
                        points: run
                            .probes
                            .iter()
                            .filter(|r| r.node == 0 && r.probe.name == "alert_firing" && r.probe.subject == i as u64)
                            .map(|r| (r.at.as_secs_f64(), r.probe.value as f64))
                            .collect(),
                    })
                    .collect(),
            },
            Plot {
                title: "Owner searches".into(),
                y_label: "rows per search, or ms".into(),
                series: vec![
                    Series {
                        name: "rows examined per search".into(),
                        points: rows_per_search(run),
                    },
                    Series {
                        name: "search latency (ms)".into(),
                        points: run
                            .probes
                            .iter()
                            .filter(|r| r.node != 0 && r.probe.name == "search_latency_ms")
                            .map(|r| (r.at.as_secs_f64(), r.probe.value as f64))
                            .collect(),
                    },
                ],
            },
            Plot {
                title: "Statistics view and queue".into(),
                y_label: "seconds, or requests".into(),
                series: vec![
                    series("view_age_ms", "view age (s)", 1e-3),
                    series("queue_longest", "longest queue", 1.0),
                ],
            },
        ]
    }
}

/// Rows examined per search run, at each of the API node's samples with a search.
fn rows_per_search(run: &FinishedRun<'_>) -> Vec<(f64, f64)> {
    let at_sample = |name: &'static str| -> BTreeMap<u64, i64> {
        run.probes
            .iter()
            .filter(|r| r.node == 0 && r.probe.name == name)
            .map(|r| (r.at.as_nanos(), r.probe.value))
            .collect()
    };
    let rows = at_sample("search_rows");
    at_sample("searches")
        .into_iter()
        .filter(|(_, searches)| *searches > 0)
        .map(|(at, searches)| {
            let examined = rows.get(&at).copied().unwrap_or(0);
            (at as f64 / 1e9, examined as f64 / searches as f64)
        })
        .collect()
}

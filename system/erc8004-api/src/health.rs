//! `GET /health`: whether the API and each component serve, the guide's alerts firing, and on a
//! cluster node the consensus replica's part: its seat, the view it is in and whether it leads
//! it, the height it last committed and how long ago, and so whether the partition it is in can
//! commit (a write posted there is included only once it can).
//!
//! The overall status is `ok`, `alerting` (one of the guide's alerts fires; reads and writes
//! serve) or `degraded` (the replica's partition cannot commit, or the replica halted: reads
//! serve from the state held, writes are taken and wait).

use std::time::Duration;

use erc8004::chain::Chain;
use runtime::{HttpResponse, WallTime};
use serde_json::{json, Value};

use crate::alerts::Firing;
use crate::cache::ResponseCache;
use crate::service::ok;
use crate::view::{since, StatsView};

/// What a cluster node's consensus replica tells the API about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConsensusHealth {
    /// Its validator index.
    pub validator: u64,
    /// Validators in its set.
    pub validators: u64,
    /// The set's epoch.
    pub epoch: u64,
    /// The view it is in.
    pub view: u64,
    /// Whether it proposed in that view (it leads it).
    pub leading: bool,
    /// The height it last committed (0: none since it started).
    pub committed_height: u64,
    /// When, if it has since it started.
    pub committed_at: Option<WallTime>,
    /// When it finished reading its own state back and took part (`None`: still starting).
    pub taking_part_since: Option<WallTime>,
    /// Whether it halted (a storage failure it will not build on).
    pub halted: bool,
    /// Without a commit for longer than this, the partition is taken as unable to commit (an
    /// idle leader proposes an empty block every quarter view timeout, so a live partition
    /// commits steadily even without writes).
    pub silence_max: Duration,
}

impl ConsensusHealth {
    /// How long since its last commit, at `now`.
    fn silence(&self, now: WallTime) -> Option<Duration> {
        self.committed_at.map(|at| since(at, now))
    }

    /// Whether its partition committed within [`ConsensusHealth::silence_max`] and it has not
    /// halted.
    pub fn can_commit(&self, now: WallTime) -> bool {
        !self.halted && self.silence(now).is_some_and(|s| s <= self.silence_max)
    }

    fn json(&self, now: WallTime) -> Value {
        // Taking part for longer than the bound and no commit seen yet: as stalled as a
        // replica whose last commit is that old (a restarted one cut off from its quorum).
        let waited_out = self.taking_part_since.is_some_and(|t| since(t, now) > self.silence_max);
        let status = match (self.halted, self.committed_at, self.can_commit(now)) {
            (true, _, _) => "halted: a storage failure; restart the node once its disk is mended",
            (false, None, _) if !waited_out => "starting: no commit seen since the node started",
            (false, _, true) => "ok",
            (false, _, false) => "stalled: no commit for longer than silence_max_seconds; its partition cannot commit",
        };
        json!({
            "status": status,
            "validator": self.validator,
            "validators": self.validators,
            "epoch": self.epoch,
            "view": self.view,
            "role": if self.leading { "leader" } else { "follower" },
            "committed_height": self.committed_height,
            "last_commit_age_seconds": self.silence(now).map(|s| s.as_secs_f64()),
            "partition_can_commit": self.can_commit(now),
            "silence_max_seconds": self.silence_max.as_secs_f64(),
        })
    }
}

/// The health answer.
pub(crate) fn answer(
    chain: &Chain,
    view: &StatsView,
    cache: &ResponseCache,
    alerts: &[Firing],
    consensus: Option<ConsensusHealth>,
    now: WallTime,
) -> HttpResponse {
    let failing = cache.is_failing();
    let firing: Vec<Value> = alerts
        .iter()
        .map(|f| {
            json!({
                "alert": f.alert.name(),
                "value": f.value,
                "threshold": f.threshold,
                "since_unix_s": f.since.as_unix_nanos().div_euclid(1_000_000_000),
            })
        })
        .collect();
    let mut components = json!({
        "registries": { "status": "ok", "head": chain.head() },
        "stats_view": { "status": "ok", "head": view.head(), "age_seconds": view.age(now).as_secs_f64() },
        "cache": {
            "status": match (failing, cache.config().on_error) {
                (false, _) => "ok",
                (true, crate::cache::CacheErrors::FallBack) => "failing: reads go to the registries",
                (true, crate::cache::CacheErrors::Fail) => "failing: reads fail",
            },
            "entries": cache.len(),
        },
    });
    if let Some(consensus) = &consensus {
        components["consensus"] = consensus.json(now);
    }
    // Serving either way; "degraded": writes wait; "alerting": one of the guide's alerts fires.
    let status = if consensus.is_some_and(|c| !c.can_commit(now)) {
        "degraded"
    } else if !firing.is_empty() {
        "alerting"
    } else {
        "ok"
    };
    ok(json!({
        "status": status,
        "alerts": firing,
        "components": components,
    }))
}

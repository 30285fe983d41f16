//! The guide's three alerts ("Monitoring Alerts"), as rules over the API's own figures,
//! evaluated much as Prometheus evaluates an alerting rule over `rate(...[window])`: the increase
//! of each counter since the newest sample taken at or before the window's start. Samples are
//! taken once a second while requests arrive, so that is the window's start; after a pause in
//! traffic it is the last sample before the pause, and the window reaches back to it (where
//! Prometheus, sampling on its own clock, would not).
//!
//! - **High error rate**: answers with a 5xx status (a refusal for a full queue included) over
//!   all answers, above [`AlertRules::error_rate_max`] (the guide's 1 %).
//! - **Slow responses**: the 95th percentile of answer latency above
//!   [`AlertRules::latency_p95_max`] (the guide's 500 ms), estimated from latency buckets by
//!   linear interpolation inside the bucket, as `histogram_quantile` does.
//! - **Low cache hit rate**: hits over lookups (a lookup that failed with the cache down
//!   counted once as a lookup not answered, not again for the store that follows it) below [`AlertRules::hit_rate_min`] (the guide's 80 %).
//!
//! A rule is judged only over at least [`AlertRules::requests_min`] answers (or lookups) in the
//! window: one error in two requests is not an error rate. `/health` names the firing alerts and
//! `/metrics` exports `erc8004_alert_firing{alert}`.

use std::collections::VecDeque;
use std::time::Duration;

use runtime::WallTime;

/// Latency buckets' upper bounds, seconds: 50 µs doubling to about 1.6 s (those of
/// `erc8004_request_duration_seconds`), then everything above.
pub const LATENCY_BOUNDS_S: [f64; 16] = {
    let mut bounds = [0.0; 16];
    let mut i = 0;
    let mut bound = 0.000_05;
    while i < 16 {
        bounds[i] = bound;
        bound *= 2.0;
        i += 1;
    }
    bounds
};

/// The rules' thresholds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AlertRules {
    /// What each rule looks back over.
    pub window: Duration,
    /// Error rate above which the error alert fires.
    pub error_rate_max: f64,
    /// 95th percentile above which the latency alert fires.
    pub latency_p95_max: Duration,
    /// Hit rate below which the cache alert fires.
    pub hit_rate_min: f64,
    /// Answers (or lookups) in the window below which a rule is not judged.
    pub requests_min: u64,
}

impl Default for AlertRules {
    /// The guide's thresholds over one minute, judged from 20 requests.
    fn default() -> Self {
        AlertRules {
            window: Duration::from_secs(60),
            error_rate_max: 0.01,
            latency_p95_max: Duration::from_millis(500),
            hit_rate_min: 0.80,
            requests_min: 20,
        }
    }
}

/// One of the guide's alerts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Alert {
    /// Error rate over its bound.
    HighErrorRate,
    /// P95 latency over its bound.
    SlowResponses,
    /// Cache hit rate under its bound.
    LowCacheHitRate,
}

impl Alert {
    /// Every alert, in a fixed order.
    pub const ALL: [Alert; 3] = [Alert::HighErrorRate, Alert::SlowResponses, Alert::LowCacheHitRate];

    /// Its name, as `/health` and the `alert` label write it.
    pub fn name(self) -> &'static str {
        match self {
            Alert::HighErrorRate => "HighErrorRate",
            Alert::SlowResponses => "SlowResponses",
            Alert::LowCacheHitRate => "LowCacheHitRate",
        }
    }
}

/// Counters the rules read, each only ever growing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tallies {
    /// Answers given.
    pub answers: u64,
    /// Of them, 5xx.
    pub errors: u64,
    /// Cache lookups answered from an entry.
    pub hits: u64,
    /// Cache lookups (hits, misses, and those that failed).
    pub lookups: u64,
    /// Answers by latency bucket ([`LATENCY_BOUNDS_S`], then one for everything above).
    pub latency: [u64; 17],
}

impl Tallies {
    /// Counts one answer's latency.
    pub fn observe_latency(&mut self, seconds: f64) {
        let bucket = LATENCY_BOUNDS_S
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(LATENCY_BOUNDS_S.len());
        self.latency[bucket] += 1;
    }
}

/// One alert firing: since when, and the value that fired it at the last evaluation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Firing {
    /// The alert.
    pub alert: Alert,
    /// When it started firing.
    pub since: WallTime,
    /// The measured value (a rate, or seconds).
    pub value: f64,
    /// The bound it crossed.
    pub threshold: f64,
}

/// The rules and what they have seen.
#[derive(Clone, Debug)]
pub struct AlertState {
    rules: AlertRules,
    samples: VecDeque<(WallTime, Tallies)>,
    firing: Vec<Firing>,
}

impl AlertState {
    /// Nothing seen yet.
    pub fn new(rules: AlertRules) -> Self {
        AlertState {
            rules,
            samples: VecDeque::new(),
            firing: Vec::new(),
        }
    }

    /// The rules.
    pub fn rules(&self) -> AlertRules {
        self.rules
    }

    /// The alerts firing at the last evaluation, in [`Alert::ALL`]'s order.
    pub fn firing(&self) -> &[Firing] {
        &self.firing
    }

    /// Evaluates the rules at `now` over `tallies` (the counters as they are now) and the
    /// samples within the window before it.
    pub fn evaluate(&mut self, now: WallTime, tallies: Tallies) {
        self.samples.push_back((now, tallies));
        let window_ns = i64::try_from(self.rules.window.as_nanos()).unwrap_or(i64::MAX);
        // Keep the newest sample at or before the window's start as the base.
        while self.samples.len() > 1 && now.nanos_since(self.samples[1].0) >= window_ns {
            self.samples.pop_front();
        }
        let base = self.samples.front().map(|(_, t)| *t).unwrap_or_default();
        let r = self.rules;
        let answers = tallies.answers.saturating_sub(base.answers);
        let lookups = tallies.lookups.saturating_sub(base.lookups);
        let mut measured: Vec<(Alert, f64, f64, bool)> = Vec::new();
        if answers >= r.requests_min && answers > 0 {
            let rate = tallies.errors.saturating_sub(base.errors) as f64 / answers as f64;
            measured.push((Alert::HighErrorRate, rate, r.error_rate_max, rate > r.error_rate_max));
        }
        let mut buckets = [0u64; 17];
        for (i, b) in buckets.iter_mut().enumerate() {
            *b = tallies.latency[i].saturating_sub(base.latency[i]);
        }
        if buckets.iter().sum::<u64>() >= r.requests_min {
            if let Some(p95) = quantile(&buckets, 0.95) {
                let bound = r.latency_p95_max.as_secs_f64();
                measured.push((Alert::SlowResponses, p95, bound, p95 > bound));
            }
        }
        if lookups >= r.requests_min && lookups > 0 {
            let rate = tallies.hits.saturating_sub(base.hits) as f64 / lookups as f64;
            measured.push((Alert::LowCacheHitRate, rate, r.hit_rate_min, rate < r.hit_rate_min));
        }
        let was = std::mem::take(&mut self.firing);
        for (alert, value, threshold, fires) in measured {
            if fires {
                let since = was.iter().find(|f| f.alert == alert).map_or(now, |f| f.since);
                self.firing.push(Firing {
                    alert,
                    since,
                    value,
                    threshold,
                });
            }
        }
    }
}

/// The `q` quantile of answers counted by bucket, interpolated linearly inside its bucket (the
/// first bucket from 0; one past the last bound is that bound, as nothing bounds it).
fn quantile(buckets: &[u64; 17], q: f64) -> Option<f64> {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut below = 0u64;
    for (i, count) in buckets.iter().enumerate() {
        if *count > 0 && (below + count) as f64 >= rank {
            let Some(upper) = LATENCY_BOUNDS_S.get(i).copied() else {
                return Some(LATENCY_BOUNDS_S[LATENCY_BOUNDS_S.len() - 1]);
            };
            let lower = if i == 0 { 0.0 } else { LATENCY_BOUNDS_S[i - 1] };
            let within = (rank - below as f64) / *count as f64;
            return Some(lower + (upper - lower) * within.clamp(0.0, 1.0));
        }
        below += count;
    }
    Some(LATENCY_BOUNDS_S[LATENCY_BOUNDS_S.len() - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> WallTime {
        WallTime::from_unix_nanos(1_700_000_000_000_000_000 + s * 1_000_000_000)
    }

    fn tallies(answers: u64, errors: u64, hits: u64, lookups: u64) -> Tallies {
        Tallies {
            answers,
            errors,
            hits,
            lookups,
            latency: [0; 17],
        }
    }

    fn names(state: &AlertState) -> Vec<&'static str> {
        state.firing().iter().map(|f| f.alert.name()).collect()
    }

    #[test]
    fn an_error_rate_over_one_percent_in_the_window_fires_and_clears_once_it_leaves_the_window() {
        let mut state = AlertState::new(AlertRules::default());
        state.evaluate(at(0), tallies(0, 0, 0, 0));
        state.evaluate(at(10), tallies(1000, 5, 0, 0));
        assert!(names(&state).is_empty(), "0.5 %");
        state.evaluate(at(20), tallies(2000, 30, 0, 0));
        assert_eq!(names(&state), ["HighErrorRate"], "1.5 % since 0 s");
        let since = state.firing()[0].since;
        state.evaluate(at(30), tallies(3000, 31, 0, 0));
        assert_eq!(state.firing()[0].since, since, "still firing since it started");
        // 70 s: the window looks back to the sample at 10 s: 26 errors in 2500 answers, 1.04 %.
        state.evaluate(at(70), tallies(3500, 31, 0, 0));
        assert_eq!(names(&state), ["HighErrorRate"]);
        // 150 s: the window (90..150) saw no new errors.
        state.evaluate(at(90), tallies(5000, 31, 0, 0));
        state.evaluate(at(150), tallies(9000, 31, 0, 0));
        assert!(names(&state).is_empty(), "{:?}", state.firing());
    }

    #[test]
    fn too_few_requests_are_not_judged() {
        let mut state = AlertState::new(AlertRules::default());
        state.evaluate(at(0), tallies(0, 0, 0, 0));
        state.evaluate(at(5), tallies(10, 10, 0, 10));
        assert!(names(&state).is_empty());
    }

    #[test]
    fn a_low_hit_rate_fires() {
        let mut state = AlertState::new(AlertRules::default());
        state.evaluate(at(0), tallies(0, 0, 0, 0));
        state.evaluate(at(5), tallies(100, 0, 70, 100));
        assert_eq!(names(&state), ["LowCacheHitRate"]);
        assert!((state.firing()[0].value - 0.7).abs() < 1e-9);
        state.evaluate(at(70), tallies(1000, 0, 970, 1000));
        assert!(names(&state).is_empty(), "90 % over the last minute");
    }

    #[test]
    fn the_95th_percentile_is_read_from_the_buckets() {
        let mut state = AlertState::new(AlertRules::default());
        state.evaluate(at(0), Tallies::default());
        let mut t = Tallies::default();
        for _ in 0..90 {
            t.observe_latency(0.001);
        }
        for _ in 0..10 {
            t.observe_latency(1.0);
        }
        t.answers = 100;
        state.evaluate(at(5), t);
        let slow = state
            .firing()
            .iter()
            .find(|f| f.alert == Alert::SlowResponses)
            .expect("fires");
        // The 95th of 100 is the 5th of the 10 in the bucket (0.82, 1.64]: halfway.
        assert!((slow.value - (0.8192 + 0.8192 / 2.0)).abs() < 1e-6, "{}", slow.value);
        let mut fast = t;
        for _ in 0..900 {
            fast.observe_latency(0.001);
        }
        fast.answers += 900;
        state.evaluate(at(6), fast);
        assert!(!names(&state).contains(&"SlowResponses"), "1 % slow: the P95 is fast");
    }
}

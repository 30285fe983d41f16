//! Byzantine detection: what a replica concludes about other validators.
//!
//! Two kinds of knowledge, kept apart as the guide's settings ask:
//!
//! - **Proof** (two conflicting signed messages, [`super::Evidence`]) marks a validator at once.
//! - **First-hand proof**: a vote, timeout, report or proposal whose signature does not verify,
//!   arriving over a channel that authenticates its sender ([`Detector::witness`]). No honest
//!   validator sends one (they are never relayed with a bad signature, and an authenticated
//!   channel does not corrupt what it carries), so the receiver marks the sender at once. It
//!   convinces nobody else, though: the message is not signed by its sender, so anyone could
//!   have made it up. The receiver reports the sender like a suspicion, and a removal still
//!   needs the reports of enough validators.
//! - **Suspicion**: what an honest validator on a bad network might also seem to do (a message
//!   from its address that does not verify, a block stamped beyond `clock_skew_max`, votes later
//!   than `latency_tolerance` allows) is reported, signed, to every validator. A validator is
//!   marked once `max(confirmation_required, f + 1)` distinct validators reported it within
//!   `window`: `f + 1` so that Byzantine reporters alone can never mark an honest one. A replica
//!   reports a validator as slow only once it was late at [`SLOW_MOMENTS_MIN`] moments and in
//!   at least half of its last [`TIMELINESS_SAMPLES`] messages judged.
//!
//! Tolerances are judged generously, so that the guide's fix marks no honest node: a block's
//! stamp may be `clock_skew_max` off the reporter's clock plus `latency_tolerance` in flight; a
//! vote is slow only beyond two one-way tolerances after the first vote of its view (it
//! crossed two links: proposal out, vote back); a proposal is slow beyond three one-way
//! tolerances and the batch delay after this replica's vote in the view before (its vote out,
//! the quorum's slowest vote, the proposal back).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use runtime::Instant;

use super::messages::{Reason, Report};
use super::validators::ValidatorIndex;

/// The guide's detection settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DetectionConfig {
    /// One-way delay an honest validator may show (the guide's `latency_tolerance: 500ms`).
    pub latency_tolerance: Duration,
    /// How far apart honest clocks may be (the guide's `clock_skew_max: 30s`).
    pub clock_skew_max: Duration,
    /// Distinct reporters needed to mark a validator (the guide's `confirmation_required: 3`),
    /// raised to `f + 1` where that is higher.
    pub confirmation_required: usize,
    /// Reports older than this no longer count.
    pub window: Duration,
    /// A replica reports one validator for one reason at most this often.
    pub report_interval: Duration,
    /// Views whose first vote time is remembered (for slow votes).
    pub views_remembered: usize,
    /// Whether the address a message came from proves which validator sent it when the
    /// transport names nobody: true in the simulator, whose network delivers a node's messages
    /// only from its own addresses and whose adversaries change what they send, never where
    /// from; false over bare UDP, where a source address is easily forged. Over STOQ with mutual
    /// TLS the transport names the sender's certificate whatever this says. Needed for
    /// first-hand proof ([`Detector::witness`]).
    pub source_addresses_authentic: bool,
}

impl DetectionConfig {
    /// Distinct reporters a removal by reports needs with `f` tolerated Byzantine validators:
    /// `confirmation_required`, and never fewer than `f + 1` (so at least one is honest).
    pub fn threshold(&self, f: usize) -> usize {
        self.confirmation_required.max(f + 1)
    }
}

impl Default for DetectionConfig {
    fn default() -> Self {
        DetectionConfig {
            latency_tolerance: Duration::from_millis(500),
            clock_skew_max: Duration::from_secs(30),
            confirmation_required: 3,
            window: Duration::from_secs(60),
            report_interval: Duration::from_secs(5),
            views_remembered: 1024,
            source_addresses_authentic: false,
        }
    }
}

/// Why a validator was marked: the probe `marked`'s value.
pub const MARKED_BY_EVIDENCE: i64 = 4;
/// The probe `marked`'s value for a validator marked on first-hand proof ([`Detector::witness`]).
pub const MARKED_FIRST_HAND: i64 = 5;

/// One replica's detector.
#[derive(Debug)]
pub struct Detector {
    config: DetectionConfig,
    /// Reports by accused, then reporter: the latest report and when it came.
    reports: BTreeMap<ValidatorIndex, BTreeMap<ValidatorIndex, (Report, Instant)>>,
    marked: BTreeMap<ValidatorIndex, Instant>,
    /// Validators against whom a proof others accept is held: evidence, or the reports of
    /// enough validators. A validator marked on first-hand proof alone is not in it (still
    /// reported, its reports still tallied).
    proven: BTreeSet<ValidatorIndex>,
    last_reported: BTreeMap<(ValidatorIndex, Reason), Instant>,
    first_vote: BTreeMap<u64, Instant>,
    /// When this replica voted, by view.
    voted: BTreeMap<u64, Instant>,
    /// Distinct moments each validator was seen slow (at least a tolerance apart).
    slow_moments: BTreeMap<ValidatorIndex, Vec<Instant>>,
    /// Each validator's last [`TIMELINESS_SAMPLES`] votes and proposals judged: late or not.
    timeliness: BTreeMap<ValidatorIndex, VecDeque<bool>>,
}

/// Moments, at least one `latency_tolerance` apart, a validator must be seen slow within
/// `window` before this replica reports it: a validator that paused (a long GC, a frozen VM)
/// delivers everything it held at once, one moment, while one that delays on purpose is late
/// again and again.
pub const SLOW_MOMENTS_MIN: usize = 3;

/// Messages judged per validator for [`Detector::slow_again`]: a validator late on purpose is
/// late nearly every time, while an honest one is late only when a message of its view was lost
/// and fetched again, or it was catching up, now and then. With 1 % loss, an honest validator
/// collected three such moments within a minute and was marked (swarm-consensus seed 2714).
pub const TIMELINESS_SAMPLES: usize = 16;

impl Detector {
    /// A detector with `config`.
    pub fn new(config: DetectionConfig) -> Self {
        Detector {
            config,
            reports: BTreeMap::new(),
            marked: BTreeMap::new(),
            proven: BTreeSet::new(),
            last_reported: BTreeMap::new(),
            first_vote: BTreeMap::new(),
            voted: BTreeMap::new(),
            slow_moments: BTreeMap::new(),
            timeliness: BTreeMap::new(),
        }
    }

    /// Its settings.
    pub fn config(&self) -> &DetectionConfig {
        &self.config
    }

    /// Validators marked, with when.
    pub fn marked(&self) -> &BTreeMap<ValidatorIndex, Instant> {
        &self.marked
    }

    /// Distinct reporters needed with `f` tolerated Byzantine validators.
    pub fn threshold(&self, f: usize) -> usize {
        self.config.threshold(f)
    }

    /// Whether this replica should report `accused` for `reason` now (at most once per
    /// `report_interval` for each pair); records that it does.
    pub fn should_report(&mut self, now: Instant, accused: ValidatorIndex, reason: Reason) -> bool {
        if self.proven.contains(&accused) {
            return false;
        }
        match self.last_reported.get(&(accused, reason)) {
            Some(at) if now.saturating_since(*at) < self.config.report_interval => false,
            _ => {
                self.last_reported.insert((accused, reason), now);
                true
            }
        }
    }

    /// Counts a verified report; once enough validators reported the accused, marks it (if not
    /// marked first-hand already) and returns the reports that did, one per reporter: the proof
    /// a removal carries. Returns them once.
    pub fn tally(&mut self, now: Instant, report: &Report, f: usize) -> Option<Vec<Report>> {
        if self.proven.contains(&report.accused) {
            return None;
        }
        let window = self.config.window;
        let by_reporter = self.reports.entry(report.accused).or_default();
        by_reporter.insert(report.reporter, (report.clone(), now));
        by_reporter.retain(|_, (_, at)| now.saturating_since(*at) <= window);
        let count = by_reporter.len();
        if count >= self.config.confirmation_required.max(f + 1) {
            self.proven.insert(report.accused);
            self.marked.entry(report.accused).or_insert(now);
            let reports = self.reports.remove(&report.accused).unwrap_or_default();
            return Some(reports.into_values().map(|(r, _)| r).collect());
        }
        None
    }

    /// Forgets the reports counted so far: reports are signed in an epoch, and a removal's
    /// reports must all be of one, checked against that epoch's set. (Marks stay.)
    pub fn new_epoch(&mut self) {
        self.reports.clear();
    }

    /// Marks `offender` on proof; true if it was not marked before.
    pub fn convict(&mut self, now: Instant, offender: ValidatorIndex) -> bool {
        self.reports.remove(&offender);
        self.proven.insert(offender);
        self.marked.insert(offender, now).is_none()
    }

    /// Marks `sender` on first-hand proof: a signed message that does not verify, from a
    /// channel that authenticated `sender`. True if it was not marked before. Its reports are
    /// still tallied, since this proof convinces no other replica.
    pub fn witness(&mut self, now: Instant, sender: ValidatorIndex) -> bool {
        match self.marked.entry(sender) {
            std::collections::btree_map::Entry::Occupied(_) => false,
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(now);
                true
            }
        }
    }

    /// Whether a block stamped `stamp_ms` (Unix milliseconds) is further from the local wall
    /// clock `local_ms` than an honest proposer's could be.
    pub fn skewed(&self, stamp_ms: u64, local_ms: i64) -> bool {
        let allowed = (self.config.clock_skew_max + self.config.latency_tolerance).as_millis() as i64;
        (stamp_ms as i64).saturating_sub(local_ms).abs() > allowed
    }

    /// Notes a vote of `view` arriving `now`: whether it is later than an honest voter's could
    /// be (beyond two one-way tolerances after the view's first vote), or `None` for the first
    /// vote of its view, which has nothing to be judged against (a delaying validator's vote is
    /// the first of a view nobody else voted in, its own proposal's).
    pub fn vote_is_slow(&mut self, view: u64, now: Instant) -> Option<bool> {
        if let Some(oldest) = self.first_vote.keys().next().copied() {
            if view < oldest && self.first_vote.len() >= self.config.views_remembered {
                // Older than anything remembered: so late it can only be slow.
                return Some(true);
            }
        }
        let Some(first) = self.first_vote.get(&view).copied() else {
            self.first_vote.insert(view, now);
            while self.first_vote.len() > self.config.views_remembered {
                self.first_vote.pop_first();
            }
            return None;
        };
        Some(now.saturating_since(first) > self.config.latency_tolerance * 2)
    }
}

impl Detector {
    /// Notes that a message of `validator` was judged on time.
    pub fn on_time(&mut self, validator: ValidatorIndex) {
        self.judged(validator, false);
    }

    fn judged(&mut self, validator: ValidatorIndex, late: bool) {
        let samples = self.timeliness.entry(validator).or_default();
        if samples.len() == TIMELINESS_SAMPLES {
            samples.pop_front();
        }
        samples.push_back(late);
    }

    /// Notes that `validator` was seen slow at `now`; true once it has been slow at
    /// [`SLOW_MOMENTS_MIN`] moments a tolerance apart within the window, and in at least half
    /// of its last messages judged (then worth a report).
    pub fn slow_again(&mut self, now: Instant, validator: ValidatorIndex) -> bool {
        self.judged(validator, true);
        let samples = &self.timeliness[&validator];
        let late = samples.iter().filter(|late| **late).count();
        let mostly_late = 2 * late >= samples.len();
        let tolerance = self.config.latency_tolerance;
        let window = self.config.window;
        let moments = self.slow_moments.entry(validator).or_default();
        moments.retain(|at| now.saturating_since(*at) <= window);
        if moments
            .last()
            .is_none_or(|last| now.saturating_since(*last) >= tolerance)
        {
            moments.push(now);
        }
        moments.len() >= SLOW_MOMENTS_MIN && mostly_late
    }

    /// Notes that this replica voted in `view` at `now`.
    pub fn voted(&mut self, view: u64, now: Instant) {
        self.voted.insert(view, now);
        while self.voted.len() > self.config.views_remembered {
            self.voted.pop_first();
        }
    }

    /// Whether a proposal entering its view with a certificate of `justify_view` (the view
    /// right before) arrives later than an honest leader's could after this replica's vote in
    /// that view: the vote's way to the leader, the last vote of the quorum's, the proposal's
    /// way back (three one-way tolerances), and the leader's batching.
    pub fn proposal_is_slow(&self, justify_view: u64, now: Instant, batch_delay: Duration) -> bool {
        self.voted
            .get(&justify_view)
            .is_some_and(|at| now.saturating_since(*at) > self.config.latency_tolerance * 3 + batch_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::Signature;

    fn report(accused: ValidatorIndex, reporter: ValidatorIndex) -> Report {
        Report {
            accused,
            reason: Reason::Slow,
            view: 1,
            reporter,
            signature: Signature([0; 64]),
        }
    }

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    #[test]
    fn a_validator_is_marked_by_enough_distinct_reporters_within_the_window() {
        let mut d = Detector::new(DetectionConfig::default());
        assert_eq!(d.threshold(2), 3);
        assert_eq!(d.threshold(5), 6, "never fewer than f + 1");
        assert_eq!(d.tally(at(0), &report(4, 1), 2), None);
        assert_eq!(d.tally(at(1), &report(4, 1), 2), None, "one reporter counts once");
        assert_eq!(d.tally(at(2), &report(4, 2), 2), None);
        let proof = d.tally(at(3), &report(4, 3), 2).expect("marked");
        assert_eq!(proof.iter().map(|r| r.reporter).collect::<Vec<_>>(), [1, 2, 3]);
        assert!(d.marked().contains_key(&4));
        assert_eq!(d.tally(at(4), &report(4, 5), 2), None, "marked once");
    }

    #[test]
    fn a_validator_witnessed_is_marked_at_once_and_its_reports_still_make_a_removals_proof() {
        let mut d = Detector::new(DetectionConfig::default());
        assert!(d.witness(at(0), 4));
        assert!(!d.witness(at(1), 4), "marked once");
        assert_eq!(d.marked().get(&4), Some(&at(0)));
        // Others need the reports: this replica still sends its own, and tallies theirs.
        assert!(d.should_report(at(0), 4, Reason::BadMessage));
        assert_eq!(d.tally(at(2), &report(4, 1), 2), None);
        assert_eq!(d.tally(at(3), &report(4, 2), 2), None);
        let proof = d.tally(at(4), &report(4, 3), 2).expect("the removal's proof");
        assert_eq!(proof.len(), 3);
        assert_eq!(d.marked().get(&4), Some(&at(0)), "marked when first witnessed");
        assert_eq!(d.tally(at(5), &report(4, 5), 2), None, "the proof is given once");
        assert!(
            !d.should_report(at(10_000), 4, Reason::BadMessage),
            "proven: nothing more to report"
        );
    }

    #[test]
    fn old_reports_expire() {
        let mut d = Detector::new(DetectionConfig::default());
        d.tally(at(0), &report(4, 1), 2);
        d.tally(at(1), &report(4, 2), 2);
        assert_eq!(d.tally(at(61_000), &report(4, 3), 2), None);
    }

    #[test]
    fn a_validator_late_now_and_then_is_not_reported_and_one_late_every_time_is() {
        let mut d = Detector::new(DetectionConfig::default());
        // Late after a pause, then at two lost-and-fetched messages a minute later, on time
        // for every other of its votes.
        let mut reported = false;
        for (i, ms) in [15_900u64, 53_250, 55_056].into_iter().enumerate() {
            for _ in 0..(10 * i + 5) {
                d.on_time(2);
            }
            reported |= d.slow_again(at(ms), 2);
        }
        assert!(!reported, "an honest validator late three times among 33 votes");
        // A validator that holds every message: late whenever judged.
        let reports: Vec<bool> = (0..4).map(|i| d.slow_again(at(1_000 * i), 3)).collect();
        assert_eq!(reports, [false, false, true, true]);
    }

    #[test]
    fn reports_are_rate_limited_per_validator_and_reason() {
        let mut d = Detector::new(DetectionConfig::default());
        assert!(d.should_report(at(0), 4, Reason::Slow));
        assert!(!d.should_report(at(1000), 4, Reason::Slow));
        assert!(d.should_report(at(1000), 4, Reason::ClockSkew));
        assert!(d.should_report(at(5000), 4, Reason::Slow));
    }

    #[test]
    fn tolerances_allow_the_guides_skew_and_delay() {
        let mut d = Detector::new(DetectionConfig::default());
        let now = 1_000_000_000i64;
        assert!(!d.skewed((now + 30_400) as u64, now));
        assert!(d.skewed((now + 30_600) as u64, now));
        assert!(!d.skewed((now - 30_400) as u64, now));
        assert_eq!(d.vote_is_slow(7, at(100)), None, "the first vote of its view");
        assert_eq!(d.vote_is_slow(7, at(1100)), Some(false), "two tolerances exactly");
        assert_eq!(d.vote_is_slow(7, at(1101)), Some(true));
        d.voted(9, at(0));
        let batch = Duration::from_millis(5);
        assert!(
            !d.proposal_is_slow(9, at(1505), batch),
            "three tolerances and the batch delay"
        );
        assert!(d.proposal_is_slow(9, at(1506), batch));
        assert!(
            !d.proposal_is_slow(8, at(9999), batch),
            "no vote in that view: nothing to judge"
        );
    }
}

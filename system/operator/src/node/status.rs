//! What the node's consensus replica says of itself, gathered from its probes as they arrive
//! (`view`, `proposal`, `commit`, `halted`, `epoch`), for the registry API's `/health`
//! (`hypermesh node --api`): the view it is in and whether it proposed there (leads it), the
//! height it last committed and when, and whether it halted. Commits the replica replays from
//! its own log while starting (before its `recovered` probe) say nothing of what its partition
//! can do now, and are not taken as commits seen.

use std::sync::{Arc, Mutex};

use std::time::Duration;

use erc8004_api::health::ConsensusHealth;
use runtime::WallTime;
use runtime_tokio::ProbeRecord;

use super::consensus::Seat;

/// The replica's state as its probes tell it.
#[derive(Clone, Copy, Debug)]
struct Told {
    seat: Seat,
    /// When the replica finished reading its own state back (its `recovered` probe).
    started: Option<WallTime>,
    view: u64,
    proposed_in: Option<u64>,
    committed_height: u64,
    committed_at: Option<WallTime>,
    halted: bool,
    silence_max: Duration,
}

/// The replica's status, shared by the loop that reads its probes and the API that answers
/// `/health` (a lock held for a field's update or a copy).
#[derive(Clone)]
pub(crate) struct ReplicaStatus(Arc<Mutex<Told>>);

impl ReplicaStatus {
    /// Nothing told yet by the replica of `seat`, whose partition is taken as unable to commit
    /// after `silence_max` without a commit.
    pub(crate) fn new(seat: Seat, silence_max: Duration) -> ReplicaStatus {
        ReplicaStatus(Arc::new(Mutex::new(Told {
            seat,
            started: None,
            view: 0,
            proposed_in: None,
            committed_height: 0,
            committed_at: None,
            halted: false,
            silence_max,
        })))
    }

    fn told(&self) -> std::sync::MutexGuard<'_, Told> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes in `record` (any protocol's; only the replica's count), which arrived at `now`.
    pub(crate) fn observe(&self, record: &ProbeRecord, now: WallTime) {
        let p = &record.probe;
        if p.protocol != hypermesh::consensus::MOUNT.name {
            return;
        }
        let mut told = self.told();
        match p.name {
            "view" => told.view = told.view.max(p.subject),
            "proposal" => told.proposed_in = Some(p.subject),
            "recovered" => told.started = Some(now),
            // A commit replayed from its own log while starting is not one seen now.
            "commit" if told.started.is_some() => {
                told.committed_height = told.committed_height.max(p.subject);
                told.committed_at = Some(now);
            }
            "halted" => told.halted = true,
            "epoch" => {
                told.seat.epoch = p.subject;
                told.seat.validators = usize::try_from(p.value).unwrap_or(told.seat.validators);
            }
            _ => {}
        }
    }

    /// What `/health` shows of it.
    pub(crate) fn health(&self) -> ConsensusHealth {
        let told = *self.told();
        ConsensusHealth {
            validator: told.seat.index as u64,
            validators: told.seat.validators as u64,
            epoch: told.seat.epoch,
            view: told.view,
            leading: told.proposed_in == Some(told.view),
            committed_height: told.committed_height,
            committed_at: told.committed_at,
            taking_part_since: told.started,
            halted: told.halted,
            silence_max: told.silence_max,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runtime::{Instant, Probe};

    fn record(name: &'static str, subject: u64, value: i64) -> ProbeRecord {
        let mut probe = Probe::new(name, subject, value);
        probe.protocol = hypermesh::consensus::MOUNT.name;
        ProbeRecord {
            node: 0,
            at: Instant::from_nanos(0),
            probe,
        }
    }

    #[test]
    fn the_status_follows_the_replicas_probes() {
        let status = ReplicaStatus::new(
            Seat {
                index: 1,
                validators: 4,
                epoch: 1,
            },
            Duration::from_secs(16),
        );
        let at = WallTime::from_unix_nanos(5_000_000_000);
        // Replayed from its log while starting: not a commit seen.
        status.observe(&record("commit", 3, 0), at);
        assert_eq!(status.health().committed_at, None);
        status.observe(&record("recovered", 3, 0), at);
        assert_eq!(status.health().taking_part_since, Some(at));
        status.observe(&record("view", 7, 1), at);
        status.observe(&record("proposal", 7, 3), at);
        status.observe(&record("commit", 5, 0), at);
        let h = status.health();
        assert_eq!(
            (h.view, h.leading, h.committed_height, h.committed_at),
            (7, true, 5, Some(at))
        );
        assert!(h.can_commit(at));
        status.observe(&record("view", 8, 2), at);
        status.observe(&record("epoch", 2, 3), at);
        let h = status.health();
        assert_eq!((h.leading, h.epoch, h.validators), (false, 2, 3));
        status.observe(&record("halted", 5, 1), at);
        assert!(!status.health().can_commit(at));
        // Another protocol's probe of the same name counts for nothing.
        let mut other = record("commit", 99, 0);
        other.probe.protocol = "membership";
        status.observe(&other, at);
        assert_eq!(status.health().committed_height, 5);
    }
}

//! An endpoint's connections, and which of them have work to do.
//!
//! A QUIC connection's output (packets to send, events, its next timeout) changes only when it
//! is handed a datagram or a timeout, or when the application writes to it or closes it. So
//! after each call the endpoint need only drive the connections touched since the last drive,
//! and on a timer only those whose timeout is due. Driving every connection on every datagram,
//! as the endpoint did, cost a node with 999 peers most of a core in polls that found nothing
//! to do, its send queues grew while it caught up, and with them its memory.
//!
//! Changing a connection goes through [`Conns::get_mut`] (or [`Conns::insert`]), which marks it
//! *dirty* ([`Conns::read_mut`] is for the reads quinn-proto's API takes mutably, and marks
//! nothing); [`Conns::take_dirty`] hands the marked ones to the drive, which reads each one's
//! next timeout afterwards ([`Conns::set_timeout`]) into an index ordered by time, so the earliest
//! timeout and the due connections are found without visiting the rest.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant as QuicInstant;

use quinn_proto::ConnectionHandle;

/// A connection and its timeout as last read.
struct Entry<C> {
    /// Boxed: quinn-proto's state is kilobytes, and inline in the map's nodes, which are half
    /// empty on average, it cost twice its size (9 MB of a node's heap at 999 connections).
    conn: Box<C>,
    timeout: Option<QuicInstant>,
}

/// The connections of one endpoint, by handle (iterated in handle order, so a simulated run
/// repeats).
pub(crate) struct Conns<C> {
    entries: BTreeMap<ConnectionHandle, Entry<C>>,
    /// Changed since they were last driven.
    dirty: BTreeSet<ConnectionHandle>,
    /// Every connection with a timeout, by the timeout last read.
    timeouts: BTreeSet<(QuicInstant, ConnectionHandle)>,
}

impl<C> Conns<C> {
    /// No connections.
    pub(crate) fn new() -> Self {
        Conns {
            entries: BTreeMap::new(),
            dirty: BTreeSet::new(),
            timeouts: BTreeSet::new(),
        }
    }

    /// How many there are.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Connection `ch`, to read.
    pub(crate) fn get(&self, ch: &ConnectionHandle) -> Option<&C> {
        self.entries.get(ch).map(|e| &*e.conn)
    }

    /// Connection `ch`, to change: it is marked to be driven.
    pub(crate) fn get_mut(&mut self, ch: &ConnectionHandle) -> Option<&mut C> {
        let entry = self.entries.get_mut(ch)?;
        self.dirty.insert(*ch);
        Some(&mut *entry.conn)
    }

    /// Connection `ch`, for a read that quinn-proto's API takes mutably (`poll_timeout`), not
    /// marked: never use it to change the connection.
    pub(crate) fn read_mut(&mut self, ch: &ConnectionHandle) -> Option<&mut C> {
        self.entries.get_mut(ch).map(|e| &mut *e.conn)
    }

    /// Adds a connection, marked to be driven.
    pub(crate) fn insert(&mut self, ch: ConnectionHandle, conn: C) {
        self.remove(&ch);
        self.entries.insert(
            ch,
            Entry {
                conn: Box::new(conn),
                timeout: None,
            },
        );
        self.dirty.insert(ch);
    }

    /// Removes connection `ch`.
    pub(crate) fn remove(&mut self, ch: &ConnectionHandle) -> Option<Box<C>> {
        let entry = self.entries.remove(ch)?;
        self.dirty.remove(ch);
        if let Some(t) = entry.timeout {
            self.timeouts.remove(&(t, *ch));
        }
        Some(entry.conn)
    }

    /// Every connection, in handle order, to read.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&ConnectionHandle, &C)> + '_ {
        self.entries.iter().map(|(ch, e)| (ch, &*e.conn))
    }

    /// The connections changed since they were last driven, in handle order; none is marked
    /// afterwards.
    pub(crate) fn take_dirty(&mut self) -> BTreeSet<ConnectionHandle> {
        std::mem::take(&mut self.dirty)
    }

    /// Marks `ch` driven: what the drive itself changed in it is done.
    pub(crate) fn driven(&mut self, ch: &ConnectionHandle) {
        self.dirty.remove(ch);
    }

    /// Whether anything is marked to be driven.
    pub(crate) fn any_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Records `ch`'s next timeout, as read after driving it.
    pub(crate) fn set_timeout(&mut self, ch: &ConnectionHandle, timeout: Option<QuicInstant>) {
        let Some(entry) = self.entries.get_mut(ch) else { return };
        if entry.timeout == timeout {
            return;
        }
        if let Some(old) = entry.timeout {
            self.timeouts.remove(&(old, *ch));
        }
        if let Some(new) = timeout {
            self.timeouts.insert((new, *ch));
        }
        entry.timeout = timeout;
    }

    /// The connections whose recorded timeout is at or before `now`, and those changed since
    /// their timeout was read (whose recorded timeout may be stale), in handle order: the ones
    /// a timer at `now` may concern.
    pub(crate) fn maybe_due(&self, now: QuicInstant) -> BTreeSet<ConnectionHandle> {
        let mut due: BTreeSet<ConnectionHandle> = self
            .timeouts
            .iter()
            .take_while(|(t, _)| *t <= now)
            .map(|(_, ch)| *ch)
            .collect();
        due.extend(self.dirty.iter().copied());
        due
    }

    /// The earliest recorded timeout.
    pub(crate) fn earliest_timeout(&self) -> Option<QuicInstant> {
        self.timeouts.first().map(|(t, _)| *t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::QuicClock;

    fn handles(set: &BTreeSet<ConnectionHandle>) -> Vec<usize> {
        set.iter().map(|ch| ch.0).collect()
    }

    #[test]
    fn only_connections_changed_are_driven_and_timeouts_are_found_by_time() {
        let mut conns: Conns<u32> = Conns::new();
        for i in 0..4 {
            conns.insert(ConnectionHandle(i), 0);
        }
        assert_eq!(handles(&conns.take_dirty()), [0, 1, 2, 3], "new connections are driven");
        assert!(!conns.any_dirty());
        let _ = conns.get(&ConnectionHandle(1));
        assert!(!conns.any_dirty(), "reading marks nothing");
        *conns.get_mut(&ConnectionHandle(2)).unwrap() += 1;
        *conns.get_mut(&ConnectionHandle(0)).unwrap() += 1;
        assert_eq!(handles(&conns.take_dirty()), [0, 2]);

        let clock = QuicClock::new();
        let at = |ms: u64| clock.to_quic(runtime::Instant::from_nanos(ms * 1_000_000));
        conns.set_timeout(&ConnectionHandle(3), Some(at(30)));
        conns.set_timeout(&ConnectionHandle(1), Some(at(10)));
        conns.set_timeout(&ConnectionHandle(2), Some(at(20)));
        assert_eq!(conns.earliest_timeout(), Some(at(10)));
        assert_eq!(handles(&conns.maybe_due(at(20))), [1, 2]);
        conns.set_timeout(&ConnectionHandle(1), Some(at(40)));
        assert_eq!(
            handles(&conns.maybe_due(at(20))),
            [2],
            "a moved timeout is found at its new time"
        );
        conns.get_mut(&ConnectionHandle(0));
        assert_eq!(
            handles(&conns.maybe_due(at(20))),
            [0, 2],
            "a changed connection may be due"
        );
        conns.driven(&ConnectionHandle(0));
        conns.remove(&ConnectionHandle(2));
        assert_eq!(
            conns.earliest_timeout(),
            Some(at(30)),
            "a removed connection's timeout goes"
        );
        conns.set_timeout(&ConnectionHandle(3), None);
        assert_eq!(conns.earliest_timeout(), Some(at(40)));
        assert_eq!(conns.len(), 3);
        assert!(conns.get_mut(&ConnectionHandle(2)).is_none());
        assert!(!conns.any_dirty(), "a missing connection is not marked");
    }
}

//! The host's timer table: backend tokens mapped to who set them.

use std::collections::BTreeMap;

use crate::{Env, Instant, TimerToken};

/// Timers one host may have pending at once. Each protocol bounds its own (a few per peer at
/// most); passing this means one of them leaks timers, which is a bug to stop on.
pub const TIMERS_PENDING_MAX: usize = 1 << 20;

/// Who a backend token belongs to.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Owner {
    /// The transport, with the token it chose in its own namespace.
    Transport(TimerToken),
    /// The protocol in this slot (which keeps the typed value itself).
    Protocol(usize),
}

/// Backend tokens are a counter: never reused within a node's life, so a fired token names
/// exactly one timer.
#[derive(Debug)]
pub(crate) struct TimerTable {
    next: TimerToken,
    owners: BTreeMap<TimerToken, Owner>,
}

impl Default for TimerTable {
    fn default() -> Self {
        TimerTable {
            next: 1,
            owners: BTreeMap::new(),
        }
    }
}

impl TimerTable {
    /// Sets a backend timer at `at` for `owner`, and returns its token.
    pub(crate) fn set(&mut self, env: &mut dyn Env, at: Instant, owner: Owner) -> TimerToken {
        assert!(
            self.owners.len() < TIMERS_PENDING_MAX,
            "{TIMERS_PENDING_MAX} timers pending on one node: a protocol leaks timers"
        );
        let token = self.next;
        self.next += 1;
        self.owners.insert(token, owner);
        env.set_timer(at, token);
        token
    }

    /// The owner of a fired token, which is then forgotten.
    pub(crate) fn take(&mut self, token: TimerToken) -> Option<Owner> {
        self.owners.remove(&token)
    }

    /// Timers set and not yet fired.
    pub(crate) fn pending(&self) -> usize {
        self.owners.len()
    }
}

//! Rate limits per key: the generic cell rate algorithm (GCRA), as the guide's headers describe.
//!
//! A tier allows `requests` per `window_s`. Each key has one number, its *theoretical arrival
//! time* (TAT): requests are spaced `window / requests` apart in theory, and a request is allowed
//! while it is no more than a whole window ahead of that schedule. So a fresh key may spend its
//! whole allowance at once (the guide's `X-RateLimit-Limit: 1000`), and then gets one more
//! every `window / requests`: over a long run `requests` per window, and in any one window at most
//! `2 × requests − 1` (a whole allowance, then what came back during the window). A limit that
//! no window may exceed would need a timestamp per request; this is one integer per key, so the
//! memory is bounded by the number of keys.
//!
//! Every answer carries the three headers: `X-RateLimit-Limit` (the tier's allowance),
//! `X-RateLimit-Remaining` (requests that would be allowed now, this one counted) and
//! `X-RateLimit-Reset` (the Unix second by which the whole allowance is back). A refused request
//! also gets `Retry-After`: the seconds until one request is allowed again (rounded up, at least
//! 1), and does not count against the key.
//!
//! Time is passed in (Unix nanoseconds of the node's wall clock), so the limiter runs unchanged
//! in the simulator.

use std::collections::BTreeMap;

use crate::keys::Tier;

/// Keys whose state is kept at once; past it, keys whose allowance is whole again are dropped
/// (they lose nothing: a missing key is a key with its whole allowance).
pub const TRACKED_KEYS_MAX: usize = crate::keys::KEYS_MAX;

const NANOS_PER_S: u64 = 1_000_000_000;

/// What the limiter decided for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may go on.
    pub allowed: bool,
    /// `X-RateLimit-Limit`.
    pub limit: u32,
    /// `X-RateLimit-Remaining`.
    pub remaining: u32,
    /// `X-RateLimit-Reset`, Unix seconds.
    pub reset_unix_s: u64,
    /// `Retry-After` seconds, for a refused request.
    pub retry_after_s: Option<u64>,
}

/// The limiter of one API node.
#[derive(Debug, Default)]
pub struct RateLimiter {
    /// Key id → theoretical arrival time, Unix nanoseconds.
    tat: BTreeMap<String, u64>,
}

impl RateLimiter {
    /// No key has spent anything.
    pub fn new() -> Self {
        RateLimiter::default()
    }

    /// Decides a request by key `id` of `tier` at `now` (Unix nanoseconds), and counts it if it
    /// is allowed.
    pub fn check(&mut self, id: &str, tier: &Tier, now: u64) -> Decision {
        let limit = tier.requests.max(1);
        let window = u64::from(tier.window_s.max(1)) * NANOS_PER_S;
        // Spacing between requests in theory, rounded up so that `limit` of them never fit in
        // less than a window.
        let interval = window.div_ceil(u64::from(limit));
        // How far ahead of its schedule a key may run: a whole allowance at once.
        let tolerance = interval * u64::from(limit - 1);
        let tat = self.tat.get(id).copied().unwrap_or(now).max(now);
        let allowed = tat - now <= tolerance;
        let new_tat = if allowed { tat + interval } else { tat };
        if allowed {
            if self.tat.len() >= TRACKED_KEYS_MAX && !self.tat.contains_key(id) {
                self.tat.retain(|_, t| *t > now);
            }
            self.tat.insert(id.to_owned(), new_tat);
        }
        // Requests allowed right now after this one: each needs `interval` of room below the
        // tolerance.
        let ahead = new_tat - now;
        let remaining = (tolerance + interval).saturating_sub(ahead) / interval;
        let retry_after_s = (!allowed).then(|| (tat - now - tolerance).div_ceil(NANOS_PER_S).max(1));
        Decision {
            allowed,
            limit,
            remaining: u32::try_from(remaining).unwrap_or(u32::MAX).min(limit),
            reset_unix_s: new_tat.div_ceil(NANOS_PER_S),
            retry_after_s,
        }
    }

    /// Keys whose state is kept.
    pub fn tracked(&self) -> usize {
        self.tat.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = NANOS_PER_S;
    const T0: u64 = 1_700_000_000 * S;

    fn tier(requests: u32, window_s: u32) -> Tier {
        Tier {
            name: "test",
            requests,
            window_s,
        }
    }

    #[test]
    fn a_fresh_key_spends_its_allowance_at_once_and_then_waits() {
        let mut limiter = RateLimiter::new();
        let t = tier(5, 60);
        for i in 0..5u32 {
            let d = limiter.check("a", &t, T0);
            assert!(d.allowed, "request {i}");
            assert_eq!((d.limit, d.remaining), (5, 4 - i));
        }
        let refused = limiter.check("a", &t, T0);
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        // One request every 12 s comes back; the next is 12 s away.
        assert_eq!(refused.retry_after_s, Some(12));
        assert_eq!(
            refused.reset_unix_s,
            T0 / S + 60,
            "the whole allowance is back in a window"
        );
        assert!(!limiter.check("a", &t, T0 + 11 * S).allowed);
        let back = limiter.check("a", &t, T0 + 12 * S);
        assert!(back.allowed);
        assert_eq!(back.remaining, 0);
        // Another key is not touched.
        assert_eq!(limiter.check("b", &t, T0 + 12 * S).remaining, 4);
    }

    #[test]
    fn a_client_asking_nonstop_gets_the_rate_and_one_burst_no_more() {
        // A client that asks every 10 ms for 5 minutes at 100 a minute: a burst of 100, then one
        // every 0.6 s. Any 60 s holds at most 2 × 100 − 1 allowed requests; any 60 s after the
        // first holds at most 100 (plus the one at its edge).
        let mut limiter = RateLimiter::new();
        let t = tier(100, 60);
        let mut allowed = Vec::new();
        for i in 0..30_000u64 {
            let now = T0 + i * 10_000_000;
            if limiter.check("k", &t, now).allowed {
                allowed.push(now);
            }
        }
        for (i, start) in allowed.iter().enumerate() {
            let in_window = allowed[i..].iter().take_while(|t| **t < start + 60 * S).count();
            assert!(in_window <= 199, "{in_window} allowed in the 60 s from request {i}");
            if *start >= T0 + 60 * S {
                assert!(
                    in_window <= 101,
                    "{in_window} allowed in the 60 s from request {i}, after the burst"
                );
            }
        }
        assert!((590..=600).contains(&allowed.len()), "{}", allowed.len());
    }

    #[test]
    fn idle_keys_are_dropped_only_when_the_table_is_full_and_lose_nothing() {
        let mut limiter = RateLimiter::new();
        let t = tier(10, 1);
        for i in 0..TRACKED_KEYS_MAX {
            limiter.check(&format!("k{i}"), &t, T0);
        }
        assert_eq!(limiter.tracked(), TRACKED_KEYS_MAX);
        // A second later every allowance is whole: the table makes room for a new key.
        let d = limiter.check("new", &t, T0 + 2 * S);
        assert!(d.allowed);
        assert_eq!(limiter.tracked(), 1);
        assert_eq!(
            limiter.check("k0", &t, T0 + 2 * S).remaining,
            9,
            "a dropped key has its whole allowance"
        );
    }
}

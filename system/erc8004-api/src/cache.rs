//! The read-through cache of answers: bounded in entries and bytes, least recently used out
//! first, and never serving an answer from before a committed change it depends on.
//!
//! An entry keeps what its answer shows ([`Depends`]) and the follower's generation when it was
//! made; a lookup finds it current only if the [`Follower`] saw no change to those since. A
//! stale entry is deleted when found (counted as an invalidation) and the answer made again
//! from the registries.
//!
//! Two settings reproduce the guide's faults. [`Invalidation::Never`] is the original's
//! invalidation, which deleted nothing: a stale entry is served, and counted as a stale read.
//! [`ResponseCache::set_failing`] makes every lookup and store fail, as a Redis that is down:
//! reads fall back to the registries, never to an entry, and each failure is counted.

use std::collections::{BTreeMap, HashMap};

use runtime::HttpResponse;

use crate::view::{Depends, Follower};

/// How entries are kept from going stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Invalidation {
    /// An entry changed since it was made is deleted when found (the default).
    OnCommit,
    /// Nothing is ever deleted (the guide's original, whose invalidation deleted nothing).
    Never,
}

impl crate::setting::Named for Invalidation {
    const NAMED: &'static [(Invalidation, &'static str)] =
        &[(Invalidation::OnCommit, "on-commit"), (Invalidation::Never, "never")];
}

/// What a read does when the cache fails (a lookup or a store errs: Redis down).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CacheErrors {
    /// It reads the registries instead, and the error is counted (the default).
    #[default]
    FallBack,
    /// It fails: `500 cache_error` (the original's Redis errors surfacing as failed requests,
    /// the guide's "Redis connection errors").
    Fail,
}

impl crate::setting::Named for CacheErrors {
    const NAMED: &'static [(CacheErrors, &'static str)] =
        &[(CacheErrors::FallBack, "fall-back"), (CacheErrors::Fail, "fail")];
}

/// The cache's limits and setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// Entries held at most (`usize::MAX`: unbounded, the guide's growing cache).
    pub entries_max: usize,
    /// Bytes held at most, counted as [`entry_bytes`] counts them.
    pub bytes_max: usize,
    /// How entries are kept current.
    pub invalidation: Invalidation,
    /// What a read does when the cache fails.
    pub on_error: CacheErrors,
}

impl Default for CacheConfig {
    /// 100,000 entries, 64 MiB, invalidated on commit, falling back to the registries when it
    /// fails.
    fn default() -> Self {
        CacheConfig {
            entries_max: 100_000,
            bytes_max: 64 << 20,
            invalidation: Invalidation::OnCommit,
            on_error: CacheErrors::FallBack,
        }
    }
}

/// What the cache counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheCounters {
    /// Lookups answered from an entry.
    pub hits: u64,
    /// Lookups that found none, or a stale one.
    pub misses: u64,
    /// Entries deleted to stay within the bounds.
    pub evictions: u64,
    /// Stale entries deleted when found.
    pub invalidations: u64,
    /// Stale entries served ([`Invalidation::Never`] only).
    pub stale_served: u64,
    /// Lookups and stores that failed (the cache down): each read went to the registries.
    pub errors: u64,
    /// Of those, lookups (a read during an outage fails a lookup and then a store: one lookup).
    pub lookup_errors: u64,
}

/// One cached answer.
struct Entry {
    response: HttpResponse,
    depends: Depends,
    /// The follower's generation when it was made.
    made: u64,
    bytes: usize,
    /// Its place in the recency order.
    used: u64,
}

/// The bytes an entry is counted as: its key, body, headers and dependencies, plus a fixed
/// 160 bytes for the entry and its two index slots.
pub fn entry_bytes(key: &str, response: &HttpResponse, depends: &Depends) -> usize {
    let headers: usize = response.headers.iter().map(|(n, v)| n.len() + v.len()).sum();
    160 + 2 * key.len() + response.body.len() + headers + 32 * (depends.agents.len() + depends.identities.len())
}

/// The cache.
pub struct ResponseCache {
    config: CacheConfig,
    entries: HashMap<String, Entry>,
    /// Keys by last use, oldest first.
    recency: BTreeMap<u64, String>,
    /// The use counter.
    clock: u64,
    bytes: usize,
    failing: bool,
    counters: CacheCounters,
}

impl ResponseCache {
    /// An empty cache with `config`'s limits.
    pub fn new(config: CacheConfig) -> Self {
        assert!(
            config.entries_max > 0 && config.bytes_max > 0,
            "a cache holds something"
        );
        ResponseCache {
            config,
            entries: HashMap::new(),
            recency: BTreeMap::new(),
            clock: 0,
            bytes: 0,
            failing: false,
            counters: CacheCounters::default(),
        }
    }

    /// The answer cached for `key`, if one is and `follower` saw nothing it shows change since.
    pub fn get(&mut self, key: &str, follower: &Follower) -> Option<HttpResponse> {
        if self.failing {
            self.counters.errors += 1;
            self.counters.lookup_errors += 1;
            return None;
        }
        let Some(entry) = self.entries.get(key) else {
            self.counters.misses += 1;
            return None;
        };
        if follower.changed_since(&entry.depends, entry.made) {
            match self.config.invalidation {
                Invalidation::OnCommit => {
                    self.remove(key);
                    self.counters.invalidations += 1;
                    self.counters.misses += 1;
                    return None;
                }
                Invalidation::Never => self.counters.stale_served += 1,
            }
        }
        let entry = self.entries.get_mut(key).expect("found above");
        self.clock += 1;
        self.recency.remove(&entry.used);
        entry.used = self.clock;
        self.recency.insert(self.clock, key.to_owned());
        self.counters.hits += 1;
        Some(entry.response.clone())
    }

    /// Keeps `response` for `key`, made at the follower's generation `made` from what `depends`
    /// names; older entries go first if the bounds need room. An answer larger than the whole
    /// byte bound is not kept.
    pub fn put(&mut self, key: String, response: HttpResponse, depends: Depends, made: u64) {
        if self.failing {
            self.counters.errors += 1;
            return;
        }
        let bytes = entry_bytes(&key, &response, &depends);
        if bytes > self.config.bytes_max {
            return;
        }
        self.remove(&key);
        while self.entries.len() >= self.config.entries_max || self.bytes + bytes > self.config.bytes_max {
            let (_, oldest) = self
                .recency
                .pop_first()
                .expect("a cache over its bounds holds an entry");
            let entry = self
                .entries
                .remove(&oldest)
                .expect("every key in the order has an entry");
            self.bytes -= entry.bytes;
            self.counters.evictions += 1;
        }
        self.clock += 1;
        self.recency.insert(self.clock, key.clone());
        self.bytes += bytes;
        self.entries.insert(
            key,
            Entry {
                response,
                depends,
                made,
                bytes,
                used: self.clock,
            },
        );
        debug_assert_eq!(
            self.entries.len(),
            self.recency.len(),
            "one place in the order per entry"
        );
    }

    fn remove(&mut self, key: &str) {
        if let Some(entry) = self.entries.remove(key) {
            self.recency.remove(&entry.used);
            self.bytes -= entry.bytes;
        }
    }

    /// Makes every lookup and store fail (`true`), as a cache server that is down, or work again.
    /// What it held before is dropped: a cache that comes back has lost its entries.
    pub fn set_failing(&mut self, failing: bool) {
        if failing && !self.failing {
            self.entries.clear();
            self.recency.clear();
            self.bytes = 0;
        }
        self.failing = failing;
    }

    /// Whether it is failing ([`ResponseCache::set_failing`]).
    pub fn is_failing(&self) -> bool {
        self.failing
    }

    /// What it counted.
    pub fn counters(&self) -> CacheCounters {
        self.counters
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes held, as [`entry_bytes`] counts them.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Its limits and setting.
    pub fn config(&self) -> CacheConfig {
        self.config
    }
}

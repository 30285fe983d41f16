//! The registry API as a node serves it (`hypermesh dev --api`): `erc8004_api::service` over the
//! node's chain, with the keys of its state directory read again when they change.
//!
//! `hypermesh keys` replaces `STATE/api-keys.json` whole (a rename), so a change shows as a new
//! file: the served API looks at most every [`KEYS_CHECK_INTERVAL`] and reads the file again when
//! its identity, size or time changed. A key created or revoked takes effect within that
//! interval, without a restart. A file that no longer reads (damaged by hand) is reported and
//! the keys read before are kept; no file means no keys (every `/api/v1/` request is refused).

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use erc8004_api::gate::Gate;
use erc8004_api::keys::ApiKeys;
use erc8004_api::service::{ApiConfig, ApiService, ChainSource};
use runtime::{HttpRequest, HttpResponse, HttpService, WallTime};
use runtime_tokio::ServerLoad;

use crate::keys::KEYS_FILE;

/// How often the served API looks for a changed key file.
pub const KEYS_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// What identifies one version of the key file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

/// The API with its keys kept current.
pub(crate) struct ServedApi<S> {
    api: ApiService<S>,
    keys_file: PathBuf,
    /// The key file as last read (`None`: there was none).
    seen: Option<Stamp>,
    /// When the file was last looked at.
    checked: Option<WallTime>,
}

impl<S: ChainSource> ServedApi<S> {
    /// The API over `source`, its keys in `state`'s key file, its requests timed by this
    /// process's monotonic clock.
    pub(crate) fn new(source: S, state: &std::path::Path, config: ApiConfig) -> Self {
        // A backend: the service reads no clock, the process hands it one.
        #[allow(clippy::disallowed_methods)]
        let started = std::time::Instant::now();
        let stopwatch = Box::new(move || u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX));
        ServedApi {
            api: ApiService::with_config(source, Gate::new(ApiKeys::new()), config).with_stopwatch(stopwatch),
            keys_file: state.join(KEYS_FILE),
            seen: None,
            checked: None,
        }
    }

    /// Exports the server's queue in front of the API (`server`'s counters) in `/metrics`, and
    /// counts what it refused in the error-rate alert: the API never sees those requests.
    pub(crate) fn watch_server(&mut self, server: Arc<ServerLoad>) {
        self.api.set_server_load(Box::new(move || {
            let f = server.figures();
            erc8004_api::metrics::ServerLoad {
                waiting: f.waiting,
                waiting_max: f.waiting_max,
                refused_busy: f.refused_busy,
                connections_refused: f.connections_refused,
                held: f.held,
            }
        }));
    }

    /// Reads the key file again if it changed and the interval passed.
    fn refresh(&mut self, now: WallTime) {
        let interval = KEYS_CHECK_INTERVAL.as_nanos() as i64;
        if self
            .checked
            .is_some_and(|at| (0..interval).contains(&(now.as_unix_nanos() - at.as_unix_nanos())))
        {
            return;
        }
        self.checked = Some(now);
        let stamp = std::fs::metadata(&self.keys_file).ok().map(|m| Stamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        });
        if stamp == self.seen {
            return;
        }
        let keys = match std::fs::read(&self.keys_file) {
            Ok(bytes) => {
                // A file that was read is not read again until it changes, parsed or not: a
                // damaged one is reported once.
                self.seen = stamp;
                match ApiKeys::from_json(&bytes) {
                    Ok(keys) => keys,
                    Err(e) => {
                        tracing::warn!(file = %self.keys_file.display(), error = %e, "the API key file does not read: the keys read before are kept");
                        return;
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.seen = None;
                ApiKeys::new()
            }
            // Not recorded as seen: a file that could not be opened (its permissions, say) is
            // tried again at the next check.
            Err(e) => {
                tracing::warn!(file = %self.keys_file.display(), error = %e, "the API key file cannot be read: the keys read before are kept");
                return;
            }
        };
        self.api.gate_mut().replace_keys(keys);
    }
}

impl<S: ChainSource + Send> HttpService for ServedApi<S> {
    fn handle(&mut self, request: &HttpRequest, now: WallTime) -> HttpResponse {
        self.refresh(now);
        self.api.handle(request, now)
    }

    fn resume(&mut self, first: &HttpResponse, now: WallTime, last: bool) -> Option<HttpResponse> {
        self.api.resume(first, now, last)
    }
}

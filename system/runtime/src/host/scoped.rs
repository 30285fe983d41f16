//! Namespaces on the node's environment: file names under a prefix, probes tagged with a name,
//! and the transport's own view of the node (its timers in the host's table).

use std::net::SocketAddr;

use bytes::Bytes;

use super::timers::{Owner, TimerTable};
use crate::{
    validate_file_name, Clock, Datagrams, Entropy, Env, Instant, Probe, Probes, SendError, Storage, StorageError,
    TimerToken, Timers, WallTime,
};

/// `name` inside namespace `scope`: `scope.name`, checked as a whole against the file-name rules.
pub(crate) fn scoped_file(scope: &str, name: &str) -> Result<String, StorageError> {
    validate_file_name(name)?;
    let full = format!("{scope}.{name}");
    validate_file_name(&full)?;
    Ok(full)
}

/// The files of namespace `scope` among `all`, with the prefix taken off.
pub(crate) fn scoped_list(scope: &str, all: Vec<String>) -> Vec<String> {
    all.into_iter()
        .filter_map(|f| {
            f.strip_prefix(scope)
                .and_then(|r| r.strip_prefix('.'))
                .map(str::to_string)
        })
        .collect()
}

/// Storage calls of namespace `scope` on `storage`.
pub(crate) struct ScopedStorage<'a> {
    pub(crate) storage: &'a mut dyn Storage,
    pub(crate) scope: &'static str,
}

impl Storage for ScopedStorage<'_> {
    fn read_at(&mut self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>, StorageError> {
        let file = scoped_file(self.scope, name)?;
        self.storage.read_at(&file, offset, len)
    }
    fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        let file = scoped_file(self.scope, name)?;
        self.storage.write_at(&file, offset, data)
    }
    fn size(&mut self, name: &str) -> Result<u64, StorageError> {
        let file = scoped_file(self.scope, name)?;
        self.storage.size(&file)
    }
    fn truncate(&mut self, name: &str, len: u64) -> Result<(), StorageError> {
        let file = scoped_file(self.scope, name)?;
        self.storage.truncate(&file, len)
    }
    fn sync(&mut self, name: &str) -> Result<(), StorageError> {
        let file = scoped_file(self.scope, name)?;
        self.storage.sync(&file)
    }
    fn remove(&mut self, name: &str) -> Result<(), StorageError> {
        let file = scoped_file(self.scope, name)?;
        self.storage.remove(&file)
    }
    fn list(&mut self) -> Result<Vec<String>, StorageError> {
        Ok(scoped_list(self.scope, self.storage.list()?))
    }
}

/// The environment a transport is called with: the node's, except that its timers go through
/// the host's table and its files and probes are in its namespace.
pub struct TransportEnv<'a> {
    env: &'a mut dyn Env,
    timers: &'a mut TimerTable,
    name: &'static str,
}

impl<'a> TransportEnv<'a> {
    pub(crate) fn new(env: &'a mut dyn Env, timers: &'a mut TimerTable, name: &'static str) -> Self {
        TransportEnv { env, timers, name }
    }

    fn files(&mut self) -> ScopedStorage<'_> {
        ScopedStorage {
            storage: self.env,
            scope: self.name,
        }
    }
}

impl Clock for TransportEnv<'_> {
    fn now(&self) -> Instant {
        self.env.now()
    }
    fn wall_now(&self) -> WallTime {
        self.env.wall_now()
    }
}

impl Timers for TransportEnv<'_> {
    fn set_timer(&mut self, at: Instant, token: TimerToken) {
        self.timers.set(self.env, at, Owner::Transport(token));
    }
}

impl Datagrams for TransportEnv<'_> {
    fn local_addrs(&self) -> &[SocketAddr] {
        self.env.local_addrs()
    }
    fn send_to(&mut self, to: SocketAddr, payload: Bytes) -> Result<(), SendError> {
        self.env.send_to(to, payload)
    }
    fn more_datagrams_follow(&self) -> bool {
        self.env.more_datagrams_follow()
    }
    fn max_segments(&self) -> usize {
        self.env.max_segments()
    }
    fn send_segments(&mut self, to: SocketAddr, payload: Bytes, segment_size: usize) -> Result<(), SendError> {
        self.env.send_segments(to, payload, segment_size)
    }
}

impl Entropy for TransportEnv<'_> {
    fn next_u64(&mut self) -> u64 {
        self.env.next_u64()
    }
}

crate::delegate_storage!([] TransportEnv<'_>, |this| this.files());

impl Probes for TransportEnv<'_> {
    fn probe(&mut self, probe: Probe) {
        self.env.probe(probe.scoped(self.name));
    }
}

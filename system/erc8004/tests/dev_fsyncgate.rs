//! The development chain on a disk that fails a sync as Linux's does since the 2018 "fsyncgate"
//! findings: the writes the sync was to make durable are dropped from writeback. Reads still see
//! them (the page cache) until the machine goes down, and no later sync writes them. Found by
//! the `registry-tx-rollback` scenario: a chain reopened after such a failure replayed the
//! dropped block as committed, built on it, and after the next power cut could not open
//! ("lost committed heights").

use std::collections::BTreeMap;

use alloy_sol_types::SolCall;
use bytes::Bytes;
use erc8004::abi::{IdentityRegistry as I, IDENTITY_REGISTRY};
use erc8004::chain::ChainConfig;
use erc8004::dev::{DevError, DevLedger};
use erc8004::wallet::{Envelope, Wallet};
use runtime::{Storage, StorageError, WallTime};

/// One change to a file not yet synced.
enum Op {
    Write { offset: usize, data: Vec<u8> },
    Truncate { len: usize },
}

impl Op {
    fn apply(&self, file: &mut Vec<u8>) {
        match self {
            Op::Write { offset, data } => {
                if file.len() < offset + data.len() {
                    file.resize(offset + data.len(), 0);
                }
                file[*offset..offset + data.len()].copy_from_slice(data);
            }
            Op::Truncate { len } => file.resize(*len, 0),
        }
    }
}

/// A disk with a page cache: what reads see, what is durable, what waits for a sync.
#[derive(Default)]
struct Disk {
    seen: BTreeMap<String, Vec<u8>>,
    durable: BTreeMap<String, Vec<u8>>,
    unsynced: BTreeMap<String, Vec<Op>>,
    /// The next sync fails, dropping what it was to write.
    fail_next_sync: bool,
    /// The next sync of a file whose name starts with this fails, likewise.
    fail_sync_of: Option<&'static str>,
}

impl Disk {
    /// A power cut: only what was made durable is left.
    fn crash(&mut self) {
        self.seen = self.durable.clone();
        self.unsynced.clear();
    }

    fn record(&mut self, name: &str, op: Op) {
        op.apply(self.seen.entry(name.to_string()).or_default());
        self.unsynced.entry(name.to_string()).or_default().push(op);
    }
}

impl Storage for Disk {
    fn read_at(&mut self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>, StorageError> {
        let data = self.seen.get(name).map(Vec::as_slice).unwrap_or(&[]);
        let start = (offset as usize).min(data.len());
        Ok(data[start..(start + len).min(data.len())].to_vec())
    }

    fn write_at(&mut self, name: &str, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        self.record(
            name,
            Op::Write {
                offset: offset as usize,
                data: data.to_vec(),
            },
        );
        Ok(())
    }

    fn size(&mut self, name: &str) -> Result<u64, StorageError> {
        Ok(self.seen.get(name).map_or(0, |d| d.len() as u64))
    }

    fn truncate(&mut self, name: &str, len: u64) -> Result<(), StorageError> {
        self.record(name, Op::Truncate { len: len as usize });
        Ok(())
    }

    fn sync(&mut self, name: &str) -> Result<(), StorageError> {
        let ops = self.unsynced.remove(name).unwrap_or_default();
        let of = self.fail_sync_of.is_some_and(|prefix| name.starts_with(prefix));
        if of {
            self.fail_sync_of = None;
        }
        if std::mem::take(&mut self.fail_next_sync) || of {
            // Dropped from writeback: still read, never made durable.
            return Err(StorageError::Io {
                name: name.to_string(),
                reason: "injected: the sync failed".into(),
            });
        }
        let image = self.durable.entry(name.to_string()).or_default();
        for op in &ops {
            op.apply(image);
        }
        Ok(())
    }

    fn remove(&mut self, name: &str) -> Result<(), StorageError> {
        self.seen.remove(name);
        self.durable.remove(name);
        self.unsynced.remove(name);
        Ok(())
    }

    fn list(&mut self) -> Result<Vec<String>, StorageError> {
        Ok(self.seen.keys().cloned().collect())
    }
}

fn now() -> WallTime {
    WallTime::from_unix_nanos(1_790_000_000_000_000_000)
}

fn registration(wallet: &Wallet, nonce: u64) -> Bytes {
    let raw = wallet.sign_call(
        Envelope::Eip1559,
        ChainConfig::default().chain_id,
        nonce,
        IDENTITY_REGISTRY,
        I::register_0Call {}.abi_encode().into(),
    );
    Bytes::copy_from_slice(&raw)
}

#[test]
fn a_block_whose_sync_failed_is_not_replayed_as_committed_and_the_chain_survives_the_next_power_cut() {
    let owner = Wallet::development(7, 0);
    let mut disk = Disk::default();
    let (mut ledger, _) = DevLedger::open(&mut disk, ChainConfig::default()).unwrap();
    ledger.commit(&mut disk, registration(&owner, 0), now()).unwrap();

    // The second block is written, and its sync fails: its outcome is unknown.
    disk.fail_next_sync = true;
    let unsure = ledger.commit(&mut disk, registration(&owner, 1), now());
    assert!(matches!(unsure, Err(DevError::Unsure(_))), "{unsure:?}");

    // Reopened (a restart of the process: the page cache still shows the dropped block), the
    // chain goes on; the registration whose outcome was unknown is sent again.
    let (mut ledger, _) = DevLedger::open(&mut disk, ChainConfig::default()).unwrap();
    let next = ledger.chain().nonce(owner.address());
    ledger.commit(&mut disk, registration(&owner, next), now()).unwrap();
    let committed = ledger.chain().nonce(owner.address());

    // A power cut: everything acknowledged is still there, and the chain opens.
    disk.crash();
    let (ledger, _) = DevLedger::open(&mut disk, ChainConfig::default())
        .expect("a chain whose every block was acknowledged durable opens after a power cut");
    assert_eq!(ledger.chain().nonce(owner.address()), committed);
}

/// The same for the small files a chain is made with: its chain id and what its reverts leave.
/// A save whose sync failed reads back whole from the page cache, so the chain opens at the
/// next attempt; kept only there, it would be gone at the next power cut, below blocks
/// committed since, and the chain could not open (or would open under another setting).
#[test]
fn a_setting_whose_sync_failed_is_kept_durable_before_blocks_are_built_on_it() {
    let keeping = ChainConfig {
        on_revert: erc8004::registries::OnRevert::Keep,
        ..ChainConfig::default()
    };
    for file in ["dev-chain-id", "dev-on-revert"] {
        let owner = Wallet::development(7, 0);
        let mut disk = Disk {
            fail_sync_of: Some(file),
            ..Disk::default()
        };
        assert!(
            DevLedger::open(&mut disk, keeping.clone()).is_err(),
            "{file}: its sync failed"
        );
        let (mut ledger, _) = DevLedger::open(&mut disk, keeping.clone()).unwrap();
        ledger.commit(&mut disk, registration(&owner, 0), now()).unwrap();
        disk.crash();
        let opened = DevLedger::open(&mut disk, keeping.clone());
        let (ledger, _) = opened.unwrap_or_else(|e| panic!("{file}: after a power cut: {e}"));
        assert_eq!(ledger.chain().nonce(owner.address()), 1, "{file}");
    }
}

//! The development chain (`hypermesh dev`): the registries' [`Chain`] on one node's durable
//! log, each submitted transaction committed at once as its own block, as a single validator
//! would commit it, but without running the consensus protocol (with one validator it decides
//! nothing: every proposal is its own quorum). What it shares with a cluster is everything a
//! developer's tooling sees: the state machine, the transactions, the JSON-RPC endpoint.
//!
//! The log is HyperMesh's [`BlockLog`] on the state directory, one consensus [`Block`] per
//! height (parent digests chained; block `h` is the log's record `h - 1`, the log counting
//! from 0); opening it replays every committed block, so a restarted chain is
//! the chain it was. A committed block is synced before its transaction is answered; a block
//! written whose commit was not confirmed is written again and committed at the next open,
//! before it is replayed (its sync may have failed, and the kernel dropped its pages).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use hypermesh::consensus::{Block, Digest, GENESIS};
use hypermesh::replication::{BlockInfo, BlockLog, LogError, Outcome, StateMachine};
use runtime::{durable, Storage, WallTime};

use crate::chain::{Chain, ChainConfig};
use crate::registries::OnRevert;
use crate::rpc::{RpcNode, SendError};
use crate::tx::SignedCall;

/// The log's file names' base in the state directory.
pub const LOG: &str = "dev-log";

/// The file keeping the chain id the chain was made with, in three copies
/// ([`durable::Mirror`]; one, in a directory made before).
pub const CHAIN_ID_FILE: &str = "dev-chain-id";

/// The file keeping what the chain's reverts leave ([`ChainConfig::on_revert`]), in three
/// copies ([`durable::Mirror`]), saved before the chain id when a chain is made. A directory
/// with a chain id and no copy of it was made before the setting existed, with the default.
pub const ON_REVERT_FILE: &str = "dev-on-revert";

/// How [`ON_REVERT_FILE`] writes each setting: fixed bytes, whatever the setting's name says.
const ON_REVERT_STORED: [(OnRevert, &[u8]); 2] = [(OnRevert::Rollback, b"rollback"), (OnRevert::Keep, b"keep")];

/// Why the development chain cannot open or go on.
#[derive(Debug, thiserror::Error)]
pub enum DevError {
    /// The log cannot be read or written.
    #[error("the chain's log: {0}")]
    Log(#[from] LogError),
    /// Committed blocks are damaged or missing, and no peer holds them.
    #[error("the chain's log lost committed heights {from}..{to}: with no other validator to fetch them from, the chain cannot go on; restore the state directory from a backup, or start a new one")]
    Lost {
        /// First height lost.
        from: u64,
        /// Past the last height lost.
        to: u64,
    },
    /// The state directory holds a chain of another id.
    #[error("the chain kept here has chain id {stored}, not {asked}: start it with its own id, or use another state directory")]
    ChainId {
        /// The id it was made with.
        stored: u64,
        /// The id asked for.
        asked: u64,
    },
    /// The state directory holds a chain whose reverts leave something else: its log would
    /// replay to another state than the one it was written with.
    #[error("the chain kept here was made with on_revert {stored}, not {asked}: its log replays to the state it was written with only under the same setting; open it with that one (in a simulated scenario, api.on_revert), or use another state directory")]
    OnRevert {
        /// The setting it was made with.
        stored: OnRevert,
        /// The setting asked for.
        asked: OnRevert,
    },
    /// A setting the chain was made with cannot be read.
    #[error("{file} in the state directory {why}: the chain's setting is not known, so its log cannot be replayed; restore the state directory from a backup, or start a new one")]
    Setting {
        /// The file.
        file: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// A block was kept but its commit was not confirmed: until a restart replays the log, it
    /// is unknown whether it committed.
    #[error("the chain's log failed while committing a block ({0}): whether that transaction committed is known only after a restart (its receipt then says); restart `hypermesh dev`")]
    Unsure(String),
    /// A record is not a block of this chain.
    #[error("height {height} of the chain's log is not a block that follows the one before: {why}")]
    Broken {
        /// Its height.
        height: u64,
        /// What is wrong.
        why: String,
    },
}

/// The development chain over `S` (the state directory's storage): a [`DevLedger`] with the
/// storage it keeps its log in.
pub struct DevChain<S> {
    storage: S,
    ledger: DevLedger,
}

/// The development chain without its storage: each call that reads or writes the log is handed
/// the storage, so an actor whose storage is the backend's (lent for each call, as in the
/// simulator) holds the chain between calls ([`LedgerOn`]).
pub struct DevLedger {
    log: BlockLog,
    chain: Chain,
    /// The last block's digest (genesis before the first).
    parent: Digest,
    /// Set once a commit failed after its block was written: the log may or may not hold the
    /// block, so nothing more is committed until a restart replays what it holds.
    unsure: Option<String>,
    /// The chain's head block, published once each commit is applied ([`DevChain::head_watch`]).
    head: Arc<AtomicU64>,
    /// Called after each commit is applied and published ([`DevLedger::on_commit`]).
    on_commit: Option<Box<dyn Fn() + Send>>,
    /// Whether the chain's settings ([`CHAIN_ID_FILE`], [`ON_REVERT_FILE`]) were saved, in
    /// every copy, by this process: until they are, no block is built on them.
    settings_kept: bool,
    /// The copies of the chain id, and of the setting if the chain keeps one (a chain made
    /// before it existed has none: no file is its default, and cannot rot), as loaded or last
    /// saved: a save tried again after a failure writes the copies the failure left first.
    chain_id_copies: durable::Mirror,
    on_revert_copies: Option<durable::Mirror>,
}

/// What opening found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened {
    /// Blocks replayed from the log.
    pub replayed: u64,
    /// Bytes of a torn last write cut off (a crash while committing a block never answered).
    pub truncated_bytes: u64,
}

impl<S: Storage + Send> DevChain<S> {
    /// Opens the chain kept in `storage` (an empty one starts a new chain), replaying its log.
    pub fn open(mut storage: S, config: ChainConfig) -> Result<(DevChain<S>, Opened), DevError> {
        let (ledger, opened) = DevLedger::open(&mut storage, config)?;
        Ok((DevChain { storage, ledger }, opened))
    }

    /// The chain's head block as last committed, readable without the lock the chain is under:
    /// a reader that finds it unchanged knows no block was applied since it last looked.
    pub fn head_watch(&self) -> Arc<AtomicU64> {
        self.ledger.head_watch()
    }

    /// Calls `hook` after each block is committed and applied ([`DevLedger::on_commit`]).
    pub fn on_commit(&mut self, hook: Box<dyn Fn() + Send>) {
        self.ledger.on_commit(hook);
    }

    /// The chain.
    pub fn chain(&self) -> &Chain {
        self.ledger.chain()
    }

    /// The storage, still serving the chain (a test's disk that fails and comes back).
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.storage
    }

    /// The storage, giving the chain up (to reopen it, or crash it in a test).
    pub fn into_storage(self) -> S {
        self.storage
    }

    /// Commits `transaction` as the next block at `now` ([`DevLedger::commit`]).
    pub fn commit(&mut self, transaction: Bytes, now: WallTime) -> Result<Outcome, DevError> {
        self.ledger.commit(&mut self.storage, transaction, now)
    }
}

impl DevLedger {
    /// Opens the chain kept in `storage` (an empty one starts a new chain), replaying its log.
    pub fn open(storage: &mut dyn Storage, config: ChainConfig) -> Result<(DevLedger, Opened), DevError> {
        let (mut kept, stored) = chain_id_kept(storage)?;
        let made = stored.is_none();
        // Opened first: a chain without a chain id is new only if its log holds no block.
        let (mut log, recovery) = BlockLog::open(storage, LOG)?;
        let on_revert_copies = match stored {
            Some(stored) if stored != config.chain_id => {
                return Err(DevError::ChainId {
                    stored,
                    asked: config.chain_id,
                })
            }
            Some(_) => {
                let (copies, stored) = stored_on_revert(storage)?;
                if stored != config.on_revert {
                    return Err(DevError::OnRevert {
                        stored,
                        asked: config.on_revert,
                    });
                }
                copies
            }
            None => {
                // A new chain, unless its log holds or claims blocks: then its chain id was
                // lost, and a guess would replay them under another chain's rules.
                if log.next() > 0 || recovery.lost.is_some() || recovery.marker_lost {
                    return Err(DevError::Setting {
                        file: CHAIN_ID_FILE,
                        why: format!(
                            "holds no chain id ({} of its copies damaged), but the log holds or claims blocks ({} held)",
                            kept.damaged(),
                            log.next()
                        ),
                    });
                }
                // Its setting is kept before its chain id, which marks it made: a crash between
                // the two leaves a chain made again at the next open, over whatever setting the
                // first attempt kept.
                let (mut mirror, _) =
                    durable::Mirror::load(storage, ON_REVERT_FILE).map_err(|e| DevError::Log(e.into()))?;
                mirror
                    .save(storage, ON_REVERT_FILE, stored_bytes(config.on_revert))
                    .map_err(|e| DevError::Log(e.into()))?;
                kept.save(storage, CHAIN_ID_FILE, &config.chain_id.to_be_bytes())
                    .map_err(|e| DevError::Log(e.into()))?;
                Some(mirror)
            }
        };
        if let Some(lost) = recovery.lost.clone() {
            return Err(DevError::Lost {
                from: lost.start,
                to: lost.end,
            });
        }
        if recovery.holes > 0 || recovery.first > 0 {
            return Err(DevError::Lost {
                from: 1,
                to: recovery.next + 1,
            });
        }
        if log.next() > log.committed() {
            // Blocks written whose commit was never confirmed: a crash came first, or their sync
            // failed, and then the kernel may have dropped their pages from writeback while reads
            // still see them ("fsyncgate"). Replayed and built on as they are, they would be lost
            // at the next power cut below blocks acknowledged durable: written again and
            // committed first, they are replayed durable.
            log.rewrite_uncommitted(storage)?;
            log.commit(storage)?;
        }
        let mut chain = Chain::new(config);
        let mut parent = GENESIS;
        for height in 1..=log.next() {
            let broken = |why: String| DevError::Broken { height, why };
            let record = log.get(storage, height - 1)?.ok_or_else(|| broken("damaged".into()))?;
            let block = Block::decode(&record).map_err(|e| broken(e.to_string()))?;
            if block.height != height || block.parent != parent {
                return Err(broken(format!(
                    "it claims height {} after {}",
                    block.height,
                    hex(&block.parent)
                )));
            }
            let info = BlockInfo {
                height,
                timestamp_ms: block.timestamp_ms,
            };
            chain.apply(info, &block.transactions, &vec![false; block.transactions.len()]);
            parent = block.digest();
        }
        let opened = Opened {
            replayed: log.next(),
            truncated_bytes: recovery.truncated_bytes,
        };
        let head = Arc::new(AtomicU64::new(chain.head()));
        Ok((
            DevLedger {
                log,
                chain,
                parent,
                unsure: None,
                head,
                on_commit: None,
                settings_kept: made,
                chain_id_copies: kept,
                on_revert_copies,
            },
            opened,
        ))
    }

    /// Why the chain stopped committing, if a commit failed after its block was written: only
    /// reopening the log (a restart) tells whether that block committed.
    pub fn unsure(&self) -> Option<&str> {
        self.unsure.as_deref()
    }

    /// The chain's head block as last committed ([`DevChain::head_watch`]).
    pub fn head_watch(&self) -> Arc<AtomicU64> {
        self.head.clone()
    }

    /// Calls `hook` after each block is committed, applied and its head published, before the
    /// commit returns (so under whatever lock the chain is held by): a backend wakes what waits
    /// for a commit (answers held until a transaction is included). `hook` must not block.
    pub fn on_commit(&mut self, hook: Box<dyn Fn() + Send>) {
        self.on_commit = Some(hook);
    }

    /// The chain.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// Commits `transaction` as the next block at `now`, durably in `storage`, then applies it:
    /// its outcome. A block that cannot be written is not applied, and the log is cut back for
    /// the next. A block written whose commit then fails may be in the log or not: the chain
    /// commits nothing more until restarted ([`DevError::Unsure`]), and the restart replays what
    /// the log holds.
    pub fn commit(
        &mut self,
        storage: &mut dyn Storage,
        transaction: Bytes,
        now: WallTime,
    ) -> Result<Outcome, DevError> {
        if let Some(why) = &self.unsure {
            return Err(DevError::Unsure(why.clone()));
        }
        if !self.settings_kept {
            // Read back at open, the settings may sit only in the page cache, dropped from
            // writeback by a sync that failed before it ("fsyncgate", as the log's records
            // past its marker): saved again, in every copy, before a block is built on them
            // (a copy found damaged is rewritten too). Not at open, so that a disk that
            // refuses writes still serves reads. If it fails, this transaction was not taken.
            self.keep_settings(storage)?;
        }
        let height = self.log.next() + 1;
        let block = Block {
            height,
            view: height,
            parent: self.parent,
            proposer: 0,
            timestamp_ms: u64::try_from(now.as_unix_millis()).unwrap_or(0),
            transactions: vec![transaction],
        };
        if let Err(e) = self.log.append(storage, height - 1, &block.encode()) {
            // Not synced, so not kept: cut back for the next block. If that fails too, the
            // record may still be there for a restart to replay: the outcome is unknown.
            if let Err(again) = self.log.recover(storage) {
                let why = format!("{e}; cutting the log back failed too: {again}");
                self.unsure = Some(why.clone());
                return Err(DevError::Unsure(why));
            }
            return Err(e.into());
        }
        if let Err(e) = self.log.commit(storage) {
            self.unsure = Some(e.to_string());
            return Err(DevError::Unsure(e.to_string()));
        }
        self.parent = block.digest();
        let info = BlockInfo {
            height,
            timestamp_ms: block.timestamp_ms,
        };
        let mut outcomes = self.chain.apply(info, &block.transactions, &[true]);
        // Published before this commit returns, so before the lock the chain is under is
        // released and before anyone is told the transaction is in: a reader who was told, and
        // then finds the head unchanged from what it last read, cannot be missing the change.
        self.head.store(self.chain.head(), Ordering::Release);
        if let Some(hook) = &self.on_commit {
            hook();
        }
        Ok(outcomes.pop().expect("one outcome per transaction"))
    }

    /// Saves the chain's settings again, in every copy ([`DevLedger::commit`] says why).
    fn keep_settings(&mut self, storage: &mut dyn Storage) -> Result<(), DevError> {
        let config = self.chain.config();
        self.chain_id_copies
            .save(storage, CHAIN_ID_FILE, &config.chain_id.to_be_bytes())
            .map_err(|e| DevError::Log(e.into()))?;
        if let Some(copies) = &mut self.on_revert_copies {
            copies
                .save(storage, ON_REVERT_FILE, stored_bytes(config.on_revert))
                .map_err(|e| DevError::Log(e.into()))?;
        }
        self.settings_kept = true;
        Ok(())
    }

    /// Hands `call` to the chain as [`RpcNode::submit`] does, committing it in `storage`.
    fn submit(&mut self, storage: &mut dyn Storage, call: &SignedCall, now: WallTime) -> Result<(), SendError> {
        if let Some(why) = &self.unsure {
            // Stopped by an earlier failed commit: this one was not tried.
            return Err(SendError::NotTaken(DevError::Unsure(why.clone()).to_string()));
        }
        let raw = Bytes::copy_from_slice(&call.raw);
        match self.commit(storage, raw, now) {
            Ok(Outcome::Applied(_)) => Ok(()),
            Ok(Outcome::Refused(why)) => Err(SendError::NotTaken(why)),
            Err(e @ DevError::Unsure(_)) => Err(SendError::Unsure(e.to_string())),
            Err(e) => Err(SendError::NotTaken(e.to_string())),
        }
    }
}

/// A [`DevLedger`] with the storage lent to it for one call: the node the JSON-RPC checks
/// ([`crate::rpc::RpcService`]) and the REST API hand transactions to, in an actor whose storage
/// is the backend's.
pub struct LedgerOn<'a> {
    /// The chain.
    pub ledger: &'a mut DevLedger,
    /// Its storage, for this call.
    pub storage: &'a mut dyn Storage,
}

/// The chain id the chain in `storage` was made with, if one was.
pub fn stored_chain_id(storage: &mut dyn Storage) -> Result<Option<u64>, DevError> {
    chain_id_kept(storage).map(|(_, id)| id)
}

/// The chain id kept in `storage` ([`CHAIN_ID_FILE`], three copies; a directory made when it was
/// kept in one still reads), and the copies to save it in again. Every copy damaged is refused
/// by name, not taken for a new chain; one damaged and the others empty is a first save cut
/// short, and the chain was never made.
fn chain_id_kept(storage: &mut dyn Storage) -> Result<(durable::Mirror, Option<u64>), DevError> {
    let (mirror, stored) = durable::Mirror::load(storage, CHAIN_ID_FILE).map_err(|e| DevError::Log(e.into()))?;
    if stored.is_none() && mirror.lost() {
        return Err(DevError::Setting {
            file: CHAIN_ID_FILE,
            why: format!("is damaged in {} of its copies and whole in none", mirror.damaged()),
        });
    }
    let id = stored
        .map(|bytes| {
            <[u8; 8]>::try_from(bytes.as_slice())
                .map(u64::from_be_bytes)
                .map_err(|_| DevError::Setting {
                    file: CHAIN_ID_FILE,
                    why: format!("holds {} bytes, not a chain id", bytes.len()),
                })
        })
        .transpose()?;
    Ok((mirror, id))
}

/// How [`ON_REVERT_FILE`] stores `setting`.
fn stored_bytes(setting: OnRevert) -> &'static [u8] {
    ON_REVERT_STORED
        .iter()
        .find(|(s, _)| *s == setting)
        .map(|(_, bytes)| *bytes)
        .expect("every setting has its bytes")
}

/// What the reverts of the chain made in `storage` leave ([`ON_REVERT_FILE`]), and its copies:
/// the default, and none, if no copy holds anything (made before the setting existed). None whole with one damaged is
/// refused, not taken for the default: the file was saved in every copy before the chain was
/// made (and is saved again before the first block an open builds, [`DevLedger::commit`]).
fn stored_on_revert(storage: &mut dyn Storage) -> Result<(Option<durable::Mirror>, OnRevert), DevError> {
    let (mirror, stored) = durable::Mirror::load(storage, ON_REVERT_FILE).map_err(|e| DevError::Log(e.into()))?;
    let Some(bytes) = stored else {
        if mirror.damaged() > 0 {
            return Err(DevError::Setting {
                file: ON_REVERT_FILE,
                why: format!("is damaged in {} of its copies and whole in none", mirror.damaged()),
            });
        }
        return Ok((None, OnRevert::default()));
    };
    let setting = ON_REVERT_STORED
        .iter()
        .find(|(_, stored)| *stored == bytes.as_slice())
        .map(|(setting, _)| *setting)
        .ok_or_else(|| DevError::Setting {
            file: ON_REVERT_FILE,
            why: format!("holds {:?}, not rollback or keep", String::from_utf8_lossy(&bytes)),
        })?;
    Ok((Some(mirror), setting))
}

impl<S: Storage + Send> RpcNode for DevChain<S> {
    type Chain<'a>
        = &'a Chain
    where
        Self: 'a;

    fn chain(&self) -> &Chain {
        self.ledger.chain()
    }

    fn submit(&mut self, call: &SignedCall, now: WallTime) -> Result<(), SendError> {
        self.ledger.submit(&mut self.storage, call, now)
    }
}

impl RpcNode for LedgerOn<'_> {
    type Chain<'a>
        = &'a Chain
    where
        Self: 'a;

    fn chain(&self) -> &Chain {
        self.ledger.chain()
    }

    fn submit(&mut self, call: &SignedCall, now: WallTime) -> Result<(), SendError> {
        self.ledger.submit(self.storage, call, now)
    }
}

fn hex(digest: &Digest) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

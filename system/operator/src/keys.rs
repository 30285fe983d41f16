//! `hypermesh keys`: the API keys of a node's registry API (`erc8004_api::keys`), in its state
//! directory: `create` (the key printed once, on the last line), `list`, `revoke`.
//!
//! The keys live in `STATE/api-keys.json` (0600, in the node's 0700 directory), holding only
//! each key's hash, replaced whole and atomically (written beside, synced, renamed) under its own
//! lock (`api-keys.lock`), so two commands never interleave and a crash leaves the previous file.
//! The node holds the directory's own `lock` while it serves, and these commands do not need it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use erc8004_api::keys::{id_of_key, tier, ApiKeys, KeyError};

use crate::lock::lock_file;
use crate::node::enroll::wall_now_s;
use crate::node::identity::StateDir;
use crate::trustchain::Failure;
use crate::EXIT_BAD_INPUT;

/// The key file in a state directory.
pub const KEYS_FILE: &str = "api-keys.json";
/// Its lock.
const KEYS_LOCK: &str = "api-keys.lock";
/// Draws of a fresh id before giving up (each collides with one chance in 4 billion per key).
const ID_DRAWS_MAX: u32 = 8;

/// `hypermesh keys` commands.
#[derive(Subcommand)]
pub enum KeysCommand {
    /// Creates a key: prints its id and tier, then the key itself on the last line. The key is
    /// shown this once; only its hash is kept.
    Create {
        /// The node's state directory.
        #[arg(long)]
        state: PathBuf,
        /// free (100 requests a minute), standard (1000) or enterprise (1000000).
        #[arg(long, default_value = "standard")]
        tier: String,
        /// What the key is for, shown by `list`.
        #[arg(long, default_value = "")]
        label: String,
    },
    /// Lists the keys (id, tier, created, revoked, label); never a key itself.
    List {
        /// The node's state directory.
        #[arg(long)]
        state: PathBuf,
        /// One JSON line per key.
        #[arg(long)]
        json: bool,
    },
    /// Revokes a key by its id, or by the key itself (a leaked key pasted as it is): requests
    /// with it are refused as revoked.
    Revoke {
        /// The node's state directory.
        #[arg(long)]
        state: PathBuf,
        /// The key's id (8 hex digits, as `list` shows it) or the whole key.
        id: String,
    },
}

/// Runs a `hypermesh keys` command. Exit 0: done; 2: bad input or an unreadable store.
pub fn run(command: KeysCommand) -> ExitCode {
    match keys(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

fn keys(command: KeysCommand) -> Result<(), Failure> {
    match command {
        KeysCommand::Create {
            state,
            tier: tier_name,
            label,
        } => {
            let Some(tier) = tier(&tier_name) else {
                return Err(Failure(KeyError::UnknownTier(tier_name).to_string()));
            };
            let (dir, _lock) = locked(&state, true)?;
            let mut keys = load(&dir)?;
            let now = wall_now_s();
            let mut draws = 0;
            let (key, id) = loop {
                let mut random = [0u8; 36];
                getrandom::fill(&mut random).map_err(|e| Failure(format!("no OS randomness for a key: {e}")))?;
                match keys.create(&random, tier.name, &label, now) {
                    Ok((key, record)) => break (key, record.id.clone()),
                    Err(KeyError::IdTaken(_)) if draws < ID_DRAWS_MAX => draws += 1,
                    Err(e) => return Err(Failure(e.to_string())),
                }
            };
            dir.replace(KEYS_FILE, &keys.to_json())?;
            println!(
                "created key {id}: tier {} ({} requests per {} s){}",
                tier.name,
                tier.requests,
                tier.window_s,
                if label.is_empty() {
                    String::new()
                } else {
                    format!(", label {label:?}")
                }
            );
            println!("the key is shown once and only its hash is kept: store it now");
            println!("{key}");
        }
        KeysCommand::List { state, json } => {
            let keys = load(&existing(&state)?)?;
            for record in keys.list() {
                if json {
                    println!("{}", serde_json::to_string(record).expect("a record serializes"));
                } else {
                    let revoked = record.revoked_at.map_or("-".to_owned(), |t| t.to_string());
                    println!(
                        "{}  {:<10}  created {}  revoked {:<10}  {}",
                        record.id,
                        record.tier().name,
                        record.created_at,
                        revoked,
                        record.label
                    );
                }
            }
        }
        KeysCommand::Revoke { state, id } => {
            let (dir, _lock) = locked(&state, false)?;
            let mut keys = load(&dir)?;
            // A whole key is revoked by its id; anything else is taken as an id, and never echoed
            // whole (it may be a secret pasted by mistake).
            let id = id_of_key(&id).map_or(id.clone(), str::to_owned);
            let at = match keys.revoke(&id, wall_now_s()) {
                Ok(record) => record.revoked_at,
                Err(KeyError::UnknownId(_)) => {
                    let shown: String = id.chars().take(8).collect();
                    return Err(Failure(format!(
                        "no key has id {shown:?}{}: `hypermesh keys list --state {}` shows the ids",
                        if id.chars().count() > 8 { "…" } else { "" },
                        state.display()
                    )));
                }
                Err(e) => return Err(Failure(e.to_string())),
            };
            dir.replace(KEYS_FILE, &keys.to_json())?;
            println!("revoked key {id} at {} (Unix s)", at.unwrap_or_default());
        }
    }
    Ok(())
}

/// The state directory, with the key store's lock held; created if `create` (a first key), else
/// it must exist.
fn locked(state: &Path, create: bool) -> Result<(StateDir, std::fs::File), Failure> {
    let dir = if create {
        StateDir::open(state)?
    } else {
        existing(state)?
    };
    same_owner(state)?;
    let lock = lock_file(&dir.path().join(KEYS_LOCK), |pid| {
        format!(
            "another `hypermesh keys` (process {pid}) is changing the keys in {}: try again",
            state.display()
        )
    })?;
    Ok((dir, lock))
}

/// The state directory `state`, which must exist: a mistyped path is an error, not an empty list.
fn existing(state: &Path) -> Result<StateDir, Failure> {
    if !state.is_dir() {
        return Err(Failure(format!("--state {}: no such directory", state.display())));
    }
    StateDir::open(state)
}

/// Refuses to write the store of a directory another user owns: files made by `sudo hypermesh
/// keys` would be root's, 0600, and the node running as its own user could no longer read its keys.
fn same_owner(state: &Path) -> Result<(), Failure> {
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::metadata(state)
        .map_err(|e| Failure(format!("--state {}: {e}", state.display())))?
        .uid();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let effective = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|uid| uid.parse::<u32>().ok());
    match effective {
        Some(me) if me != owner => Err(Failure(format!(
            "--state {} belongs to user {owner} and this command runs as user {me}: run it as the node's user (e.g. sudo -u <that user> hypermesh keys ...), or the node could no longer read the keys",
            state.display()
        ))),
        _ => Ok(()),
    }
}

/// The keys stored in `dir` (none if there is no key file yet).
pub(crate) fn load(dir: &StateDir) -> Result<ApiKeys, Failure> {
    let path = dir.path().join(KEYS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => ApiKeys::from_json(&bytes).map_err(|e| {
            Failure(format!(
                "{}: {e}; nothing was changed (fix or restore the file from a backup)",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ApiKeys::new()),
        Err(e) => Err(Failure(format!("{}: {e}", path.display()))),
    }
}

//! `hypermesh key`: the Ed25519 public key of a node (or client) state directory, made if the
//! directory has none, so it can be listed in a validators file before the node enrolls.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use hypermesh::consensus::ValidatorKey;

use crate::node::consensus::certificate_key;
use crate::node::enroll::fresh_key;
use crate::node::identity::StateDir;
use crate::trustchain::Failure;
use crate::validators::key_hex;

/// `hypermesh key` arguments.
#[derive(Args)]
pub struct KeyArgs {
    /// The state directory of the node or client (as its --state): its key is made there
    /// (0600) if it has none, and enrolled as it is when the node first starts with a token.
    #[arg(long, default_value = "hypermesh-node")]
    state: PathBuf,
}

/// Prints the key as 64 hex digits, the form a validators file lists. Exit 2 if the directory
/// cannot be used or its key and certificate disagree.
pub fn run(args: KeyArgs) -> ExitCode {
    match key(&args) {
        Ok(hex) => {
            println!("{hex}");
            ExitCode::SUCCESS
        }
        Err(Failure(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn key(args: &KeyArgs) -> Result<String, Failure> {
    let state = StateDir::open(&args.state)?;
    let seed = match state.load_key()? {
        Some(seed) => seed,
        None => {
            let seed = fresh_key()?;
            state.save_key(&seed)?;
            seed
        }
    };
    let public_key = ValidatorKey::from_seed(&seed).public_key();
    if let Some(identity) = state.load()? {
        // An enrolled directory: its certificate must carry this key, or the file would list a
        // key no certificate vouches for.
        let certified = certificate_key(identity.chain[0].as_ref())?;
        if certified != public_key {
            return Err(Failure(format!(
                "{}: the key ({}) is not the key of the stored certificate ({})",
                args.state.display(),
                key_hex(&public_key),
                key_hex(&certified)
            )));
        }
    }
    Ok(key_hex(&public_key))
}

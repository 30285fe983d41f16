//! `trustchain`: operates a TrustChain certificate authority, as the guide writes it
//! (`trustchain ca init`, `trustchain rotate --overlap-period 1h --gradual-rollout
//! --verify-before-switch`, ...). Exit 0: done; 1: `validate` found the chain invalid; 2: error.

use std::process::ExitCode;

use clap::Parser;
use operator::trustchain::{run, TrustchainCommand};

/// Operates a TrustChain certificate authority: `ca init`, `ca install`, `token`, `issue`,
/// `validate`, `rotate`, `revoke`, and `serve` (its HTTPS API).
#[derive(Parser)]
#[command(name = "trustchain", version, about)]
struct Cli {
    #[command(subcommand)]
    command: TrustchainCommand,
}

fn main() -> ExitCode {
    operator::init_logging();
    run(Cli::parse().command)
}

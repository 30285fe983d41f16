//! `hypermesh`: runs HyperMesh on a real machine. `hypermesh node` enrolls with a TrustChain CA
//! over HTTPS, then runs membership over STOQ on real IPv6 sockets until SIGINT or SIGTERM.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use operator::node::{run, NodeArgs};

/// HyperMesh: the cluster.
#[derive(Parser)]
#[command(name = "hypermesh", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a production node: enrolls with a TrustChain CA over HTTPS (join token), then runs
    /// the membership protocol over STOQ (QUIC, mutual TLS) on real IPv6 sockets until SIGINT or
    /// SIGTERM. Prints `listening on ADDR ...`, then one JSON line per protocol observation.
    Node(NodeArgs),
}

fn main() -> ExitCode {
    operator::init_logging();
    match Cli::parse().command {
        Command::Node(args) => run(args),
    }
}

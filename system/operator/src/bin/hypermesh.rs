//! `hypermesh`: runs HyperMesh on a real machine. `hypermesh node` enrolls with a TrustChain CA
//! over HTTPS, then runs membership (and, with a validators file, consensus) over STOQ on real
//! IPv6 sockets until SIGINT or SIGTERM; `hypermesh key` prints a state directory's public key
//! for the validators file; `hypermesh keys` manages its registry API's keys; `hypermesh client` puts a measured load on consensus; `hypermesh
//! read` reads its state, linearizable or local; `hypermesh dev` runs the ERC-8004
//! development chain with JSON-RPC.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use operator::client::read::ReadArgs;
use operator::client::ClientArgs;
use operator::dev::DevArgs;
use operator::key::KeyArgs;
use operator::keys::KeysCommand;
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
    /// SIGTERM; with --validators FILE, HotStuff-2 consensus too. Prints `listening on ADDR ...`,
    /// then one JSON line per protocol observation.
    Node(NodeArgs),
    /// Prints the Ed25519 public key of a state directory (64 hex digits), making the key if
    /// there is none: the key its certificate will carry and its consensus votes are signed
    /// with, as a validators file lists it.
    Key(KeyArgs),
    /// The API keys of a node's registry API, in its state directory: `create` (the key printed
    /// once, on the last line), `list`, `revoke`. Only hashes are stored.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Submits transactions to a consensus cluster at a set rate from a certified client (its
    /// own join token) and prints throughput and commit latency.
    Client(ClientArgs),
    /// Runs the ERC-8004 development chain: the registries at their mainnet addresses on one
    /// node's durable log in --state (reused on restart), JSON-RPC on --rpc (plain HTTP). Prints
    /// the chain id and development accounts (address, private key), then `listening on
    /// http://ADDR`. Gas is not charged.
    Dev(DevArgs),
    /// Reads keys of a consensus cluster's state from a certified client (its own join token):
    /// linearizable (every acknowledged transaction is in it) or local (possibly stale). Prints
    /// one JSON line: the lists, the height, the validators that agreed.
    Read(ReadArgs),
}

fn main() -> ExitCode {
    operator::init_logging();
    match Cli::parse().command {
        Command::Node(args) => run(args),
        Command::Key(args) => operator::key::run(args),
        Command::Keys(command) => operator::keys::run(command),
        Command::Client(args) => operator::client::run(args),
        Command::Read(args) => operator::client::read::run(args),
        Command::Dev(args) => operator::dev::run(args),
    }
}

//! The production commands: what an operator runs on a real machine.
//!
//! - `trustchain` ([`trustchain::TrustchainCommand`]): the certificate authority: `ca init`,
//!   `ca install`, `token`, `issue`, `validate`, `rotate`, `revoke`, and `serve` (its HTTPS API;
//!   with `--validators FILE` it revokes validators on consensus's proof of their isolation,
//!   [`isolation`]).
//! - `hypermesh node` ([`node::NodeArgs`]): a node that enrolls with the CA over HTTPS and runs
//!   membership over STOQ on real IPv6 sockets, and HotStuff-2 consensus with a validators file
//!   ([`validators`]);
//! - `hypermesh key` ([`key::KeyArgs`]): a state directory's public key, for that file;
//! - `hypermesh keys` ([`keys::KeysCommand`]): the API keys of a node's registry API;
//! - `hypermesh dev` ([`dev::DevArgs`]): the ERC-8004 development chain with JSON-RPC, and with
//!   `--api` the registry REST API ([`api`]);
//! - `hypermesh client` ([`client::ClientArgs`]): a certified client loading consensus;
//!   `hypermesh read` ([`client::read::ReadArgs`]): one read of its state, linearizable or local.
//!
//! These binaries are backends of the runtime seams (real clocks, sockets, threads and OS
//! randomness); they link neither the simulator nor the harness (`cargo tree -e normal -i
//! simulator` lists only `testbed`).

// A backend: the OS clock and randomness for the operator's commands, threads for the node.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod api;
pub mod client;
pub mod dev;
pub mod isolation;
pub mod key;
pub mod keys;
mod lock;
pub mod node;
pub mod trustchain;
pub mod validators;

/// Exit code for bad input (flags, files, unreachable services).
pub const EXIT_BAD_INPUT: u8 = 2;

/// Errors and warnings on stderr, `RUST_LOG`-free: what an operator must act on. Coloured only
/// on a terminal (and without `NO_COLOR`): logs collected from a pipe carry no escape codes.
pub fn init_logging() {
    use std::io::IsTerminal;
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .with_max_level(tracing::Level::WARN)
        .init();
}

//! `hypermesh dev`: the ERC-8004 development chain (`erc8004::dev`): the registries at their
//! mainnet addresses, on one node's durable log in `--state` (created if absent, reused on
//! restart), with JSON-RPC on `--rpc` (plain HTTP, IPv6-only, as Ethereum tooling expects of a
//! local node). Each transaction is committed as its own block before it is answered.
//!
//! It prints the chain id and the development accounts (address and private key: keys from a
//! fixed seed, the same every run, never to hold anything of value), with `--api` then `api
//! listening on http://ADDR` (the registry REST API, [`crate::api`], its keys made by `hypermesh
//! keys --state` on the same directory), then `listening on http://ADDR` (JSON-RPC), and serves
//! until SIGINT or SIGTERM. Gas is not charged: any account can send.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use erc8004::chain::{ChainConfig, CHAIN_ID_DEFAULT};
use erc8004::dev::{stored_chain_id, DevChain};
use erc8004::rpc::{RpcService, BODY_BYTES_MAX};
use erc8004::wallet::Wallet;
use runtime_tokio::{DirStorage, ErrorStyle, HttpsConfig, HttpsServer};

use crate::api::ServedApi;
use crate::lock::lock_dir;
use crate::trustchain::{stop_signal, Failure};
use crate::EXIT_BAD_INPUT;
use erc8004_api::cache::Invalidation;
use erc8004_api::service::{ApiConfig, Watched};
use erc8004_api::setting::Named;

/// The seed of the development accounts (printed at start; never for value).
pub const ACCOUNTS_SEED: u64 = 8004;

/// `hypermesh dev`'s flags.
#[derive(Args)]
pub struct DevArgs {
    /// Where JSON-RPC listens: an IPv6 address and port (plain HTTP). IPv6 only: tools whose
    /// `localhost` means 127.0.0.1 need http://[::1]:8545 given explicitly.
    #[arg(long, default_value = "[::1]:8545")]
    rpc: String,
    /// The chain's state directory: created if absent, reused on restart.
    #[arg(long, default_value = "hypermesh-dev")]
    state: PathBuf,
    /// The chain id transactions are signed for (EIP-155), for a new chain (default 8004); a
    /// state directory keeps the one it was made with, and refuses another.
    #[arg(long)]
    chain_id: Option<u64>,
    /// Also serve the registry REST API here (plain HTTP, IPv6), reading the same chain; its keys
    /// are `hypermesh keys --state` of this state directory.
    #[arg(long, value_name = "ADDR")]
    api: Option<String>,
    /// How many development accounts to print.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=100))]
    accounts: u64,
    /// The API cache's invalidation: `on-commit`, or `never`, the guide's faulty setting (its
    /// original's invalidation deleted nothing): stale answers are served, and counted in
    /// `erc8004_cache_stale_served_total`. For reproducing the fault, never for use.
    #[arg(long, default_value = "on-commit", value_parser = ["on-commit", "never"], hide = true)]
    api_cache_invalidation: String,
}

/// Runs `hypermesh dev` until SIGINT or SIGTERM.
pub fn run(args: DevArgs) -> ExitCode {
    match dev(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(EXIT_BAD_INPUT)
        }
    }
}

fn dev(args: DevArgs) -> Result<(), Failure> {
    let listen: SocketAddr = args.rpc.parse().map_err(|e| {
        Failure(format!(
            "--rpc {}: not an address and port such as [::1]:8545: {e}",
            args.rpc
        ))
    })?;
    let api_listen = args
        .api
        .as_deref()
        .map(|text| {
            text.parse::<SocketAddr>()
                .map_err(|e| Failure(format!("--api {text}: not an address and port such as [::1]:8000: {e}")))
        })
        .transpose()?;
    std::fs::create_dir_all(&args.state)
        .map_err(|e| Failure(format!("--state {}: cannot create it: {e}", args.state.display())))?;
    let _lock = lock_dir(&args.state, |holder| {
        format!(
            "the chain in {} is in use by process {holder} (another `hypermesh dev`?): stop it first",
            args.state.display()
        )
    })?;
    if !listen.ip().is_loopback() {
        eprintln!(
            "warning: --rpc {listen} is not a loopback address: anyone who reaches it can send as the \
             development accounts, whose keys are public"
        );
    }
    let mut storage = DirStorage::open(&args.state)?;
    let stored =
        stored_chain_id(&mut storage).map_err(|e| Failure(format!("--state {}: {e}", args.state.display())))?;
    let chain_id = args.chain_id.or(stored).unwrap_or(CHAIN_ID_DEFAULT);
    let config = ChainConfig {
        chain_id,
        ..ChainConfig::default()
    };
    let (mut dev, opened) =
        DevChain::open(storage, config).map_err(|e| Failure(format!("--state {}: {e}", args.state.display())))?;
    println!("chain id {chain_id}");
    if opened.replayed > 0 {
        println!(
            "replayed {} blocks from {} (head: block {})",
            opened.replayed,
            args.state.display(),
            dev.chain().head()
        );
    }
    for i in 0..args.accounts {
        let wallet = Wallet::development(ACCOUNTS_SEED, i);
        println!("account {i}: {} private key {}", wallet.address(), wallet.secret());
    }
    let head = dev.head_watch();
    // Each block committed (over JSON-RPC or the API) wakes the API's answers held for one.
    let committed = Arc::new(tokio::sync::Notify::new());
    {
        let committed = committed.clone();
        dev.on_commit(Box::new(move || committed.notify_waiters()));
    }
    let service = Arc::new(Mutex::new(RpcService::new(dev)));
    let new_runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure(format!("cannot start the runtime: {e}")))
    };
    // The API on a thread and runtime of its own. Its reads are answered from memory in
    // microseconds, on the connection's task (a thread handoff per request would cost more than
    // the answer); while one waits for the chain's lock (a JSON-RPC commit syncing), it holds
    // only the API's runtime, never JSON-RPC's.
    let api = match api_listen {
        Some(listen) => {
            let api_runtime = new_runtime()?;
            let mut config = ApiConfig::default();
            if let Some(invalidation) = Invalidation::from_name(&args.api_cache_invalidation) {
                config.cache.invalidation = invalidation;
            }
            let source = Watched {
                source: service.clone(),
                head,
            };
            let served = ServedApi::new(source, &args.state, config);
            let mut api_config = HttpsConfig::new(listen);
            api_config.answer_inline = true;
            api_config.error_style = ErrorStyle::CodeAndMessage;
            let served = Arc::new(Mutex::new(served));
            let server = {
                let _inside = api_runtime.enter();
                HttpsServer::bind_plain(api_config, served.clone())
                    .map_err(|e| Failure(format!("--api: {e}")))?
                    .with_changes(committed)
            };
            served
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .watch_server(server.load());
            println!("api listening on http://{}", server.local_addr()?);
            Some((api_runtime, server))
        }
        None => None,
    };
    // Bound and started outside any runtime's `block_on`: an error on the way drops the API's
    // runtime here, where that is allowed.
    let runtime = new_runtime()?;
    let server = {
        let _inside = runtime.enter();
        let mut config = HttpsConfig::new(listen);
        config.body_bytes_max = BODY_BYTES_MAX;
        config.body_timeout = Duration::from_secs(10);
        HttpsServer::bind_plain(config, service).map_err(|e| Failure(format!("--rpc: {e}")))?
    };
    println!("listening on http://{}", server.local_addr()?);
    use std::io::Write;
    std::io::stdout().flush()?;
    let api = match api {
        Some((api_runtime, api)) => {
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name("api".into())
                .spawn(move || {
                    api_runtime.block_on(api.serve(async {
                        let _ = stopped.await;
                    }))
                })
                .map_err(|e| Failure(format!("cannot start the API's thread: {e}")))?;
            Some((stop, thread))
        }
        None => None,
    };
    runtime.block_on(server.serve(stop_signal()));
    // The API stops with JSON-RPC, an answer it is writing finished first, before the state
    // directory's lock is let go.
    if let Some((stop, thread)) = api {
        let _ = stop.send(());
        thread
            .join()
            .map_err(|_| Failure("the API's thread failed; its last requests may not have been answered".into()))?;
    }
    eprintln!("stopped");
    Ok(())
}

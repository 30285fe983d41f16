//! The load of `testbed bench consensus --machine erc8004`: wallets (development keys) send
//! signed ERC-8004 registrations through the validators' JSON-RPC endpoints, as Ethereum tooling
//! would (`eth_sendRawTransaction`, one HTTP/1.1 connection per request), at a set rate; a
//! watcher follows the chain on one validator's endpoint (`eth_blockNumber`, then each new
//! block's transaction hashes) and counts what was committed in the measured window, and each
//! transaction's time from its send to the first sight of its block (polled every
//! [`POLL`], so latencies are that much coarse).
//!
//! A backend of the benches: real sockets, threads and clocks.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use alloy_primitives::B256;
use alloy_sol_types::SolCall;
use erc8004::abi::{IdentityRegistry as I, IDENTITY_REGISTRY};
use erc8004::wallet::{Envelope, Wallet};
use serde_json::{json, Value};

/// How often the watcher asks for the head.
pub const POLL: Duration = Duration::from_millis(5);
/// Sending threads.
const SENDERS: usize = 4;
/// Wallets per sending thread: each sends its transactions in nonce order without waiting for
/// the one before to commit (the chain holds one a little ahead until the gap fills).
const WALLETS_PER_SENDER: u64 = 16;
/// How long after the window the watcher waits for the window's last transactions.
const DRAIN: Duration = Duration::from_secs(3);
/// Connecting, sending and reading one request at most (a stalled node fails the request,
/// not the bench).
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// What the load measured.
#[derive(Debug)]
pub struct Measured {
    /// Transactions sent during the window.
    pub submitted: u64,
    /// Sends refused by the endpoint during the window (a nonce too far ahead, busy, a
    /// failed request): a refused send is not made again, so the load offered falls short.
    pub refused: u64,
    /// Transactions sent during the window and never seen in a block by the end of the drain:
    /// left out of the latencies.
    pub unseen: u64,
    /// Transactions in blocks first seen during the window.
    pub committed: u64,
    /// `committed` per second of the window.
    pub tx_per_s: f64,
    /// Send to the first sight of its block, for transactions sent in the window and seen.
    pub commit_p50_ms: Option<f64>,
    /// The 99th percentile of the same.
    pub commit_p99_ms: Option<f64>,
}

/// One JSON-RPC call; `None` on any failure.
pub fn rpc(addr: SocketAddr, method: &str, params: Value) -> Option<Result<Value, Value>> {
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }).to_string();
    let mut stream = TcpStream::connect_timeout(&addr, HTTP_TIMEOUT).ok()?;
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(HTTP_TIMEOUT));
    let _ = stream.set_write_timeout(Some(HTTP_TIMEOUT));
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (_, body) = answer.split_once("\r\n\r\n")?;
    let answer: Value = serde_json::from_str(body).ok()?;
    Some(match answer.get("error") {
        Some(error) => Err(error.clone()),
        None => Ok(answer["result"].clone()),
    })
}

/// Loads the endpoints `rpcs` of chain `chain_id` at `rate` transactions a second for
/// `warmup`, then measures for `window`; `measuring` is called when the window opens.
pub fn run(
    rpcs: &[SocketAddr],
    chain_id: u64,
    rate: u32,
    warmup: Duration,
    window: Duration,
    measuring: impl FnOnce(),
) -> Measured {
    let sent: Arc<Mutex<HashMap<B256, Instant>>> = Arc::default();
    let seen: Arc<Mutex<HashMap<B256, Instant>>> = Arc::default();
    let refused = Arc::new(Mutex::new(0u64));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let (open, close) = (start + warmup, start + warmup + window);
    let per_sender = Duration::from_secs_f64(SENDERS as f64 / f64::from(rate.max(1)));
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let (sent, refused, stop) = (sent.clone(), refused.clone(), stop.clone());
            let rpcs = rpcs.to_vec();
            thread::spawn(move || {
                let wallets: Vec<Wallet> = (0..WALLETS_PER_SENDER)
                    .map(|w| Wallet::development(0xbe_4c, s as u64 * WALLETS_PER_SENDER + w))
                    .collect();
                let mut nonces = vec![0u64; wallets.len()];
                let mut next = Instant::now();
                let mut k = 0usize;
                while !stop.load(Ordering::Relaxed) && Instant::now() < close {
                    let w = k % wallets.len();
                    let input = I::register_1Call {
                        agentURI: format!("ipfs://bench-{s}-{w}-{}", nonces[w]),
                    }
                    .abi_encode();
                    let raw =
                        wallets[w].sign_call(Envelope::Eip1559, chain_id, nonces[w], IDENTITY_REGISTRY, input.into());
                    let hash = alloy_primitives::keccak256(&raw);
                    // A wallet's transactions go to every endpoint in turn, so consensus may
                    // order them otherwise than sent (the chain holds those ahead).
                    let to = rpcs[(s + w + k / wallets.len()) % rpcs.len()];
                    let at = Instant::now();
                    match rpc(to, "eth_sendRawTransaction", json!([raw])) {
                        Some(Ok(_)) => {
                            nonces[w] += 1;
                            sent.lock().unwrap().insert(hash, at);
                        }
                        _ if at >= open && at < close => *refused.lock().unwrap() += 1,
                        _ => {}
                    }
                    k += 1;
                    next += per_sender;
                    if let Some(wait) = next.checked_duration_since(Instant::now()) {
                        thread::sleep(wait);
                    }
                }
            })
        })
        .collect();
    let watcher = {
        let (seen, stop) = (seen.clone(), stop.clone());
        let at = rpcs[0];
        thread::spawn(move || {
            let mut head = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let now_head = rpc(at, "eth_blockNumber", json!([]))
                    .and_then(Result::ok)
                    .and_then(|h| u64::from_str_radix(h.as_str()?.trim_start_matches("0x"), 16).ok())
                    .unwrap_or(head);
                while head < now_head {
                    let Some(Ok(block)) = rpc(at, "eth_getBlockByNumber", json!([format!("{:#x}", head + 1), false]))
                    else {
                        break;
                    };
                    let now = Instant::now();
                    let mut seen = seen.lock().unwrap();
                    for t in block["transactions"].as_array().into_iter().flatten() {
                        if let Ok(hash) = serde_json::from_value::<B256>(t.clone()) {
                            seen.entry(hash).or_insert(now);
                        }
                    }
                    head += 1;
                }
                thread::sleep(POLL);
            }
        })
    };
    thread::sleep(open.saturating_duration_since(Instant::now()));
    measuring();
    thread::sleep(close.saturating_duration_since(Instant::now()));
    for s in senders {
        let _ = s.join();
    }
    thread::sleep(DRAIN);
    stop.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    let sent = sent.lock().unwrap();
    let seen = seen.lock().unwrap();
    let in_window = |t: &Instant| *t >= open && *t < close;
    let committed = seen.values().filter(|t| in_window(t)).count() as u64;
    let mut latencies: Vec<f64> = sent
        .iter()
        .filter(|(_, at)| in_window(at))
        .filter_map(|(hash, at)| seen.get(hash).map(|s| s.duration_since(*at).as_secs_f64() * 1e3))
        .collect();
    latencies.sort_by(f64::total_cmp);
    let quantile = |q: f64| -> Option<f64> {
        (!latencies.is_empty()).then(|| latencies[((latencies.len() - 1) as f64 * q).round() as usize])
    };
    let refused = *refused.lock().unwrap();
    let unseen = sent
        .iter()
        .filter(|(hash, at)| in_window(at) && !seen.contains_key(*hash))
        .count() as u64;
    Measured {
        unseen,
        submitted: sent.values().filter(|t| in_window(t)).count() as u64,
        refused,
        committed,
        tx_per_s: committed as f64 / window.as_secs_f64(),
        commit_p50_ms: quantile(0.5),
        commit_p99_ms: quantile(0.99),
    }
}

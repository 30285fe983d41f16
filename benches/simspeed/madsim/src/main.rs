//! The simspeed flood on madsim: N hosts; every 100 ms of simulated time each sends one 64-byte
//! UDP datagram to every other host, for D simulated seconds, over 1 ms links with no loss. Prints
//! one JSON line; exits 1 unless exactly N·(N−1)·10·D datagrams arrived.
//!
//! Build with `RUSTFLAGS="--cfg madsim"` (madsim's simulated runtime only exists under that cfg);
//! `benches/simspeed.sh` does. Usage: `simspeed-madsim N D`.
//!
//! madsim delays every send and every receive by a few microseconds, and its sleeps last at
//! least 1 ms, so one task sends or receives at most about one datagram per simulated
//! millisecond. One task per host could not keep a 100 ms schedule beyond ~100 peers; each host
//! therefore runs several sender tasks (each owning a slice of its peers) and several receivers,
//! enough that a round's sends finish within half the round and its receives keep up.
//!
//! madsim also advances its one global clock by 50–100 ns at every task poll, to model CPU time.
//! At 1000 hosts a round is about a million datagrams and several million polls, i.e. more
//! simulated time than the 100 ms round itself, so the schedule slips and the last datagrams land
//! after D seconds. The run therefore waits (in simulated time) until every datagram has arrived,
//! up to ten times D extra, and reports the simulated time that took as `sim_seconds_elapsed`;
//! the wall time includes that wait, since it is the cost of delivering the workload.

#[cfg(not(madsim))]
compile_error!("build with RUSTFLAGS=\"--cfg madsim\" (see benches/simspeed.sh)");

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use madsim::net::UdpSocket;
use madsim::runtime::Runtime;

const PORT: u16 = 9000;
const ROUND: Duration = Duration::from_millis(100);
const PAYLOAD: [u8; 64] = [0xA5; 64];
/// Peers one sender task serves per round: at ~1 ms per send, 40 ms of the 100 ms round.
const PEERS_PER_SENDER: usize = 40;
/// Receiver tasks per sender task: arrivals bunch at the start of each round.
const RECEIVERS_PER_SENDER: usize = 2;
/// Left after the last round for its datagrams to land, and the step of the wait beyond it.
const DRAIN: Duration = Duration::from_millis(200);

/// Bounds on the arguments: hosts are numbered within 10.0.0.0/16; a simulated day keeps every
/// count and `Duration` product far from overflow.
const MAX_NODES: u32 = 60_000;
const MAX_SECONDS: u64 = 86_400;

fn args() -> Result<(u32, u64), String> {
    let usage = "usage: simspeed-madsim NODES SECONDS (both positive integers)";
    let mut it = std::env::args().skip(1);
    let (Some(n), Some(d), None) = (it.next(), it.next(), it.next()) else {
        return Err(usage.into());
    };
    let n: u32 = n
        .parse()
        .map_err(|_| format!("NODES {n:?} is not a positive integer; {usage}"))?;
    let d: u64 = d
        .parse()
        .map_err(|_| format!("SECONDS {d:?} is not a positive integer; {usage}"))?;
    if !(2..=MAX_NODES).contains(&n) || !(1..=MAX_SECONDS).contains(&d) {
        return Err(format!(
            "need 2 <= NODES <= {MAX_NODES} and 1 <= SECONDS <= {MAX_SECONDS}; {usage}"
        ));
    }
    Ok((n, d))
}

fn ip_of(i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, (i >> 8) as u8, i as u8))
}

fn main() {
    let (nodes, seconds) = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let mut config = madsim::Config::default();
    config.net.packet_loss_rate = 0.0;
    // A fixed 1 ms: madsim draws from a half-open range, so it must not be empty.
    config.net.send_latency = Duration::from_millis(1)..Duration::from_millis(1) + Duration::from_nanos(1);
    let rt = Runtime::with_seed_and_config(1, config);
    let rounds = seconds * 10;
    let delivered = Arc::new(AtomicU64::new(0));
    let peers: Arc<Vec<SocketAddr>> = Arc::new((0..nodes).map(|i| SocketAddr::new(ip_of(i), PORT)).collect());
    let senders = (nodes as usize - 1).div_ceil(PEERS_PER_SENDER);
    let started = Instant::now();
    let counter = Arc::clone(&delivered);
    let n = u64::from(nodes);
    let expected = n * (n - 1) * 10 * seconds;
    let elapsed = rt.block_on(async move {
        let handle = madsim::runtime::Handle::current();
        let begin = madsim::time::Instant::now() + Duration::from_millis(10);
        for me in 0..nodes {
            let node = handle.create_node().name(format!("n{me}")).ip(ip_of(me)).build();
            let peers = Arc::clone(&peers);
            let counter = Arc::clone(&counter);
            node.spawn(async move {
                let socket = Arc::new(UdpSocket::bind(SocketAddr::new(ip_of(me), PORT)).await.expect("bind"));
                for _ in 0..senders * RECEIVERS_PER_SENDER {
                    let socket = Arc::clone(&socket);
                    let counter = Arc::clone(&counter);
                    madsim::task::spawn(async move {
                        let mut buf = [0u8; 128];
                        while socket.recv_from(&mut buf).await.is_ok() {
                            counter.fetch_add(1, Ordering::Relaxed);
                        }
                    });
                }
                let others: Vec<SocketAddr> = peers
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != me as usize)
                    .map(|(_, a)| *a)
                    .collect();
                for slice in others.chunks(PEERS_PER_SENDER) {
                    let socket = Arc::clone(&socket);
                    let slice = slice.to_vec();
                    madsim::task::spawn(async move {
                        for round in 0..rounds {
                            madsim::time::sleep_until(begin + ROUND * round as u32).await;
                            for peer in &slice {
                                socket.send_to(*peer, &PAYLOAD).await.expect("send");
                            }
                        }
                    });
                }
                // Keep the node's socket (and tasks) alive to the end.
                madsim::time::sleep(Duration::from_secs(seconds) + Duration::from_secs(3600)).await;
            });
        }
        madsim::time::sleep_until(begin + ROUND * rounds as u32 + DRAIN).await;
        let give_up = begin + Duration::from_secs(seconds * 11);
        while counter.load(Ordering::Relaxed) < expected && madsim::time::Instant::now() < give_up {
            madsim::time::sleep(DRAIN).await;
        }
        madsim::time::Instant::now() - begin
    });
    let wall = started.elapsed().as_secs_f64();
    let got = delivered.load(Ordering::Relaxed);
    println!(
        "{{\"sim\":\"madsim\",\"nodes\":{nodes},\"sim_seconds\":{seconds},\"sim_seconds_elapsed\":{},\"wall_seconds\":{wall},\"delivered\":{got},\"expected\":{expected},\"delivered_per_wall_second\":{}}}",
        elapsed.as_secs_f64(),
        got as f64 / wall.max(f64::MIN_POSITIVE)
    );
    if got != expected {
        eprintln!("error: madsim delivered {got} datagrams, expected {expected}");
        std::process::exit(1);
    }
}

//! The simspeed flood on turmoil: N hosts; every 100 ms of simulated time each sends one 64-byte
//! UDP datagram to every other host, for D simulated seconds, over 1 ms links with no loss. Prints
//! one JSON line; exits 1 unless exactly N·(N−1)·10·D datagrams arrived.
//!
//! Usage: `simspeed-turmoil N D` (run by `benches/simspeed.sh`).

use std::cell::Cell;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use turmoil::net::UdpSocket;
use turmoil::{Builder, IpVersion};

const PORT: u16 = 9000;
const ROUND: Duration = Duration::from_millis(100);
const LINK: Duration = Duration::from_millis(1);
const PAYLOAD: [u8; 64] = [0xA5; 64];
/// Left after the last round for its datagrams to land.
const DRAIN: Duration = Duration::from_millis(50);

/// Bounds on the arguments: turmoil numbers its hosts within 192.168.0.0/16 (and wraps past
/// that); a simulated day keeps every count and `Duration` product far from overflow.
const MAX_NODES: u32 = 60_000;
const MAX_SECONDS: u64 = 86_400;

fn args() -> Result<(u32, u64), String> {
    let usage = "usage: simspeed-turmoil NODES SECONDS (both positive integers)";
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

fn main() {
    let (nodes, seconds) = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let rounds = seconds * 10;
    let mut sim = Builder::new()
        // IPv4: turmoil runs this workload ~10% faster than with IPv6; it gets its best case.
        .ip_version(IpVersion::V4)
        .tick_duration(Duration::from_millis(1))
        .min_message_latency(LINK)
        .max_message_latency(LINK)
        .fail_rate(0.0)
        .repair_rate(1.0)
        // Every host receives N−1 datagrams in the same tick: the receive queue must hold them.
        .udp_capacity(nodes as usize * 4)
        .simulation_duration(Duration::from_secs(seconds) + Duration::from_secs(5))
        .rng_seed(1)
        .build();
    let names: Vec<String> = (0..nodes).map(|i| format!("n{i}")).collect();
    let peers: Rc<[IpAddr]> = names.iter().map(|n| sim.lookup(n.as_str())).collect();
    let delivered = Rc::new(Cell::new(0u64));
    for (me, name) in names.iter().enumerate() {
        let peers = Rc::clone(&peers);
        let delivered = Rc::clone(&delivered);
        sim.client(name.as_str(), async move {
            let socket = Rc::new(UdpSocket::bind((IpAddr::from(std::net::Ipv4Addr::UNSPECIFIED), PORT)).await?);
            let receiver = Rc::clone(&socket);
            let counter = Rc::clone(&delivered);
            // Receives in its own task so sending never waits behind receiving.
            tokio::task::spawn_local(async move {
                let mut buf = [0u8; 128];
                while receiver.recv_from(&mut buf).await.is_ok() {
                    counter.set(counter.get() + 1);
                }
            });
            let start = tokio::time::Instant::now();
            for round in 0..rounds {
                tokio::time::sleep_until(start + ROUND * round as u32).await;
                for (i, ip) in peers.iter().enumerate() {
                    if i != me {
                        socket.send_to(&PAYLOAD, SocketAddr::new(*ip, PORT)).await?;
                    }
                }
            }
            tokio::time::sleep_until(start + ROUND * rounds as u32 + DRAIN).await;
            Ok(())
        });
    }
    let started = Instant::now();
    let outcome = sim.run();
    let wall = started.elapsed().as_secs_f64();
    if let Err(e) = outcome {
        eprintln!("error: the simulation failed: {e}");
        std::process::exit(1);
    }
    let n = u64::from(nodes);
    let expected = n * (n - 1) * 10 * seconds;
    let got = delivered.get();
    println!(
        "{{\"sim\":\"turmoil\",\"nodes\":{nodes},\"sim_seconds\":{seconds},\"wall_seconds\":{wall},\"delivered\":{got},\"expected\":{expected},\"delivered_per_wall_second\":{}}}",
        got as f64 / wall.max(f64::MIN_POSITIVE)
    );
    if got != expected {
        eprintln!("error: turmoil delivered {got} datagrams, expected {expected}");
        std::process::exit(1);
    }
}

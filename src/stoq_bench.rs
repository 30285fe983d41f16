//! `testbed stoq bench`: bulk throughput of STOQ on loopback beside raw quinn, in one run.
//!
//! Both move the same bytes over QUIC on `[::1]` with the same configuration: the same
//! [`QuicSetup`] (rustls on ring, TLS 1.3, X25519, TrustChain mutual TLS, the same transport
//! windows), one thread per endpoint. STOQ runs its sans-IO [`Endpoint`] under the production
//! driver (`runtime_tokio::run_node`); raw quinn runs quinn's own async endpoint on a
//! current-thread tokio runtime. The clock starts when the client's connection is established
//! and stops when the server has read the stream's end, so handshakes are not counted.

use std::net::{Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use runtime::{Actor, Env};
use runtime_tokio::NodeSpec;
use stoq::{BulkId, Credentials, Endpoint, Event, PacketProtection, QuicSetup, StoqConfig, Trust};
use tokio::sync::watch;
use trustchain::ca::{key_from_seed, Authority, CaPolicy, NodeIdentity};
use trustchain::trust::TrustBundle;

/// The bytes each write hands over (sliced from one buffer, never copied).
const CHUNK_BYTES: usize = 1 << 20;
/// A transfer that has not finished after this long is reported as failed.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(600);

/// Which stack moves the bytes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Stack {
    /// STOQ's endpoint under the production driver (tokio, epoll).
    Stoq,
    /// STOQ's endpoint under the io_uring driver.
    StoqUring,
    /// quinn's async endpoint.
    Quinn,
}

/// One measured transfer.
#[derive(Clone, Debug)]
pub struct Transfer {
    /// Bytes moved, over all connections.
    pub bytes: u64,
    /// From the first connection established to the last stream fully read.
    pub elapsed: Duration,
}

impl Transfer {
    /// Throughput in MiB/s.
    pub fn mib_s(&self) -> f64 {
        self.bytes as f64 / (1024.0 * 1024.0) / self.elapsed.as_secs_f64()
    }
}

/// Certificates for a server and `clients` clients, all on `::1`, from a fresh CA.
struct Pki {
    trust: Trust,
    server: Credentials,
    clients: Vec<Credentials>,
}

fn pki(clients: usize) -> anyhow_free::Result<Pki> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| "the host clock is before 1970".to_string())?
        .as_secs() as i64;
    let mut seeds = [0u8; 64];
    getrandom::fill(&mut seeds).map_err(|e| format!("no OS randomness: {e}"))?;
    let mut ca = Authority::create(
        seeds[..32].try_into().expect("32 bytes"),
        seeds[32..].try_into().expect("32 bytes"),
        now,
        CaPolicy::default(),
    )
    .map_err(|e| e.to_string())?;
    let mut issue = |name: String| -> anyhow_free::Result<Credentials> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| format!("no OS randomness: {e}"))?;
        let key = key_from_seed(&seed);
        let who = NodeIdentity {
            name,
            addr: Ipv6Addr::LOCALHOST,
        };
        let cert = ca.issue(&who, &key, now).map_err(|e| e.to_string())?;
        Ok(Credentials {
            chain: vec![cert, ca.intermediate().clone()],
            key_pkcs8: key.serialize_der(),
        })
    };
    let server = issue("bench-server.mesh".into())?;
    let clients = (0..clients)
        .map(|i| issue(format!("bench-client-{i}.mesh")))
        .collect::<Result<Vec<_>, _>>()?;
    let bundle = TrustBundle::new(ca.root().clone(), ca.intermediate().clone());
    let crls = ca.revocation_lists(now).map_err(|e| e.to_string())?;
    Ok(Pki {
        trust: Trust { bundle, crls },
        server,
        clients,
    })
}

/// Minimal string errors for the bench (the binary reports them with context).
mod anyhow_free {
    pub type Result<T> = std::result::Result<T, String>;
}

/// Moves `bytes` in total over `connections` connections (each its own client and server
/// endpoint, each endpoint on its own thread) with `stack`, encrypted or not.
pub fn transfer(
    stack: Stack,
    bytes: u64,
    connections: usize,
    protection: PacketProtection,
) -> Result<Transfer, String> {
    let pki = pki(connections)?;
    let config = StoqConfig::default();
    let per_connection = bytes / connections as u64;
    let data = Bytes::from((0..CHUNK_BYTES).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let (report_tx, report_rx) = mpsc::channel::<Result<(Instant, Instant, u64), String>>();
    let mut stops = Vec::new();
    let mut threads = Vec::new();
    for client in &pki.clients {
        let server_setup =
            QuicSetup::new(&config, Some(&pki.server), pki.trust.clone(), protection).map_err(|e| e.to_string())?;
        let client_setup =
            QuicSetup::new(&config, Some(client), pki.trust.clone(), protection).map_err(|e| e.to_string())?;
        let (stop_tx, stop_rx) = watch::channel(false);
        stops.push(stop_tx);
        let (addr_tx, addr_rx) = mpsc::channel::<SocketAddr>();
        let (start_tx, start_rx) = mpsc::channel::<Instant>();
        let report = report_tx.clone();
        let config_s = config.clone();
        let stop = stop_rx.clone();
        threads.push(thread::spawn(move || match stack {
            Stack::Stoq | Stack::StoqUring => {
                stoq_server(stack, config_s, server_setup, addr_tx, start_rx, report, stop)
            }
            Stack::Quinn => quinn_server(server_setup, addr_tx, start_rx, report, stop),
        }));
        let server_addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| "the server endpoint did not start".to_string())?;
        let data = data.clone();
        let config_c = config.clone();
        threads.push(thread::spawn(move || match stack {
            Stack::Stoq | Stack::StoqUring => stoq_client(
                stack,
                config_c,
                client_setup,
                server_addr,
                data,
                per_connection,
                start_tx,
                stop_rx,
            ),
            Stack::Quinn => quinn_client(client_setup, server_addr, data, per_connection, start_tx, stop_rx),
        }));
    }
    drop(report_tx);
    let mut first_start: Option<Instant> = None;
    let mut last_end: Option<Instant> = None;
    let mut moved = 0;
    let mut failure = None;
    for _ in 0..connections {
        match report_rx.recv_timeout(TRANSFER_TIMEOUT) {
            Ok(Ok((start, end, n))) => {
                first_start = Some(first_start.map_or(start, |s| s.min(start)));
                last_end = Some(last_end.map_or(end, |e| e.max(end)));
                moved += n;
            }
            Ok(Err(e)) => {
                failure = Some(e);
                break;
            }
            Err(_) => {
                failure = Some(format!("transfer did not finish within {TRANSFER_TIMEOUT:?}"));
                break;
            }
        }
    }
    for stop in &stops {
        let _ = stop.send(true);
    }
    for t in threads {
        let _ = t.join();
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let (Some(start), Some(end)) = (first_start, last_end) else {
        return Err("no transfer reported".into());
    };
    if moved != per_connection * connections as u64 {
        return Err(format!(
            "moved {moved} bytes, expected {}",
            per_connection * connections as u64
        ));
    }
    Ok(Transfer {
        bytes: moved,
        elapsed: end - start,
    })
}

fn loopback_spec() -> NodeSpec {
    NodeSpec::new(
        vec![SocketAddr::from((Ipv6Addr::LOCALHOST, 0))],
        std::env::temp_dir().join("testbed-stoq-bench"),
    )
}

type Report = mpsc::Sender<Result<(Instant, Instant, u64), String>>;

/// Receives one bulk stream and reports (start, end, bytes).
struct BulkSink {
    endpoint: Option<Endpoint>,
    make: Option<(StoqConfig, QuicSetup)>,
    start: mpsc::Receiver<Instant>,
    report: Report,
    received: u64,
}

impl BulkSink {
    fn drain(&mut self) {
        let Some(ep) = self.endpoint.as_mut() else { return };
        while let Some(ev) = ep.poll_event() {
            match ev {
                Event::BulkData { data, .. } => self.received += data.len() as u64,
                Event::BulkFinished { result, .. } => {
                    let end = Instant::now();
                    let start = self.start.recv_timeout(Duration::from_secs(10)).unwrap_or(end);
                    let _ = self.report.send(result.map(|()| (start, end, self.received)));
                }
                Event::ConnectFailed { class, reason, .. } => {
                    let _ = self
                        .report
                        .send(Err(format!("server refused a connection ({class}): {reason}")));
                }
                _ => {}
            }
        }
    }
}

impl Actor for BulkSink {
    fn on_start(&mut self, env: &mut dyn Env) {
        let (config, setup) = self.make.take().expect("started once");
        match Endpoint::with_setup(env, config, setup) {
            Ok(ep) => self.endpoint = Some(ep),
            Err(e) => {
                let _ = self.report.send(Err(e.to_string()));
            }
        }
    }
    fn on_datagram(&mut self, env: &mut dyn Env, from: SocketAddr, payload: Bytes) {
        if let Some(ep) = self.endpoint.as_mut() {
            ep.handle_datagram(env, from, payload);
        }
        self.drain();
    }
    fn on_datagram_owned(&mut self, env: &mut dyn Env, from: SocketAddr, payload: BytesMut) {
        if let Some(ep) = self.endpoint.as_mut() {
            ep.handle_datagram_owned(env, from, payload);
        }
        self.drain();
    }
    fn on_timer(&mut self, env: &mut dyn Env, token: u64) {
        if let Some(ep) = self.endpoint.as_mut() {
            ep.handle_timer(env, token);
        }
        self.drain();
    }
}

/// Connects and writes one bulk stream of `remaining` bytes.
struct BulkSource {
    endpoint: Option<Endpoint>,
    make: Option<(StoqConfig, QuicSetup)>,
    server: SocketAddr,
    data: Bytes,
    remaining: u64,
    pending: [Bytes; 1],
    bulk: Option<BulkId>,
    started: mpsc::Sender<Instant>,
}

impl BulkSource {
    fn pump(&mut self, env: &mut dyn Env) {
        let (Some(ep), Some(id)) = (self.endpoint.as_mut(), self.bulk) else {
            return;
        };
        loop {
            if self.pending[0].is_empty() {
                if self.remaining == 0 {
                    let _ = ep.finish_bulk(env, id);
                    self.bulk = None;
                    return;
                }
                let n = self.remaining.min(self.data.len() as u64) as usize;
                self.pending[0] = self.data.slice(..n);
                self.remaining -= n as u64;
            }
            match ep.write_bulk(env, id, &mut self.pending) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    }

    fn drain(&mut self, env: &mut dyn Env) {
        loop {
            let Some(ev) = self.endpoint.as_mut().and_then(Endpoint::poll_event) else {
                return;
            };
            match ev {
                Event::Connected { peer, .. } if self.bulk.is_none() && self.remaining > 0 => {
                    let _ = self.started.send(Instant::now());
                    let ep = self.endpoint.as_mut().expect("events come from it");
                    if let Ok(id) = ep.open_bulk(env, peer, 1) {
                        self.bulk = Some(id);
                        self.pump(env);
                    }
                }
                Event::BulkWritable { .. } => self.pump(env),
                _ => {}
            }
        }
    }
}

impl Actor for BulkSource {
    fn on_start(&mut self, env: &mut dyn Env) {
        let (config, setup) = self.make.take().expect("started once");
        if let Ok(mut ep) = Endpoint::with_setup(env, config, setup) {
            let _ = ep.connect(env, self.server);
            self.endpoint = Some(ep);
        }
        self.drain(env);
    }
    fn on_datagram(&mut self, env: &mut dyn Env, from: SocketAddr, payload: Bytes) {
        if let Some(ep) = self.endpoint.as_mut() {
            ep.handle_datagram(env, from, payload);
        }
        self.drain(env);
    }
    fn on_datagram_owned(&mut self, env: &mut dyn Env, from: SocketAddr, payload: BytesMut) {
        if let Some(ep) = self.endpoint.as_mut() {
            ep.handle_datagram_owned(env, from, payload);
        }
        self.drain(env);
    }
    fn on_timer(&mut self, env: &mut dyn Env, token: u64) {
        if let Some(ep) = self.endpoint.as_mut() {
            ep.handle_timer(env, token);
        }
        self.drain(env);
    }
}

/// Runs a node with the driver `stack` names.
fn run_with<F>(
    stack: Stack,
    node: usize,
    factory: F,
    stop: watch::Receiver<bool>,
) -> Result<runtime_tokio::NodeStats, runtime_tokio::BackendError>
where
    F: FnOnce(&[SocketAddr]) -> Box<dyn Actor + Send>,
{
    match stack {
        Stack::StoqUring => runtime_tokio::run_node_uring(node, &loopback_spec(), factory, stop, None),
        _ => runtime_tokio::run_node(node, &loopback_spec(), factory, stop, None),
    }
}

fn stoq_server(
    stack: Stack,
    config: StoqConfig,
    setup: QuicSetup,
    addr: mpsc::Sender<SocketAddr>,
    start: mpsc::Receiver<Instant>,
    report: Report,
    stop: watch::Receiver<bool>,
) {
    let failed = report.clone();
    let result = run_with(
        stack,
        0,
        move |addrs| {
            let _ = addr.send(addrs[0]);
            Box::new(BulkSink {
                endpoint: None,
                make: Some((config, setup)),
                start,
                report,
                received: 0,
            })
        },
        stop,
    );
    if let Err(e) = result {
        let _ = failed.send(Err(format!("server node: {e}")));
    }
}

#[allow(clippy::too_many_arguments)]
fn stoq_client(
    stack: Stack,
    config: StoqConfig,
    setup: QuicSetup,
    server: SocketAddr,
    data: Bytes,
    bytes: u64,
    started: mpsc::Sender<Instant>,
    stop: watch::Receiver<bool>,
) {
    let result = run_with(
        stack,
        1,
        move |_| {
            Box::new(BulkSource {
                endpoint: None,
                make: Some((config, setup)),
                server,
                data,
                remaining: bytes,
                pending: [Bytes::new()],
                bulk: None,
                started,
            })
        },
        stop,
    );
    if let Err(e) = result {
        tracing::error!(error = %e, "bench client node failed");
    }
}

/// A UDP socket on `[::1]`, IPv6-only, with the buffers STOQ's nodes ask for
/// ([`runtime_tokio::SOCKET_BUFFER_BYTES_DEFAULT`]), so raw quinn (and the loopback ceiling)
/// run on the same socket settings as STOQ.
pub(crate) fn loopback_udp_socket() -> std::io::Result<UdpSocket> {
    let socket = socket2::Socket::new(
        socket2::Domain::IPV6,
        socket2::Type::DGRAM,
        Some(socket2::Protocol::UDP),
    )?;
    socket.set_only_v6(true)?;
    // Linux caps these at net.core.[rw]mem_max without an error, as it does for the nodes.
    let _ = socket.set_recv_buffer_size(runtime_tokio::SOCKET_BUFFER_BYTES_DEFAULT);
    let _ = socket.set_send_buffer_size(runtime_tokio::SOCKET_BUFFER_BYTES_DEFAULT);
    socket.bind(&SocketAddr::from((Ipv6Addr::LOCALHOST, 0)).into())?;
    Ok(socket.into())
}

fn current_thread() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
}

/// quinn's handshakes check certificates at the time the setup was last told (an `Endpoint`
/// tells it on every call); the transfer takes minutes at most, within any certificate's life.
fn host_time(setup: &QuicSetup) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64);
    setup.security().observe_time(runtime::WallTime::from_unix_nanos(nanos));
}

fn quinn_server(
    setup: QuicSetup,
    addr: mpsc::Sender<SocketAddr>,
    start: mpsc::Receiver<Instant>,
    report: Report,
    mut stop: watch::Receiver<bool>,
) {
    host_time(&setup);
    let run = async move {
        let socket = loopback_udp_socket().map_err(|e| e.to_string())?;
        let endpoint = quinn::Endpoint::new(
            setup.endpoint,
            Some(setup.server),
            socket,
            Arc::new(quinn::TokioRuntime),
        )
        .map_err(|e| e.to_string())?;
        let _ = addr.send(endpoint.local_addr().map_err(|e| e.to_string())?);
        let serve = async {
            let incoming = endpoint.accept().await.ok_or("endpoint closed")?;
            let conn = incoming.await.map_err(|e| e.to_string())?;
            let mut recv = conn.accept_uni().await.map_err(|e| e.to_string())?;
            let mut received = 0u64;
            while let Some(chunk) = recv.read_chunk(usize::MAX, true).await.map_err(|e| e.to_string())? {
                received += chunk.bytes.len() as u64;
            }
            let end = Instant::now();
            let start = start.recv_timeout(Duration::from_secs(10)).unwrap_or(end);
            Ok::<_, String>((start, end, received))
        };
        let outcome = serve.await;
        let _ = report.send(outcome);
        let _ = stop.wait_for(|s| *s).await;
        endpoint.close(0u32.into(), b"done");
        Ok::<_, String>(())
    };
    match current_thread() {
        Ok(rt) => {
            if let Err(e) = rt.block_on(run) {
                tracing::error!(error = %e, "quinn bench server failed");
            }
        }
        Err(e) => tracing::error!(error = %e, "no runtime"),
    }
}

fn quinn_client(
    setup: QuicSetup,
    server: SocketAddr,
    data: Bytes,
    bytes: u64,
    started: mpsc::Sender<Instant>,
    mut stop: watch::Receiver<bool>,
) {
    host_time(&setup);
    let run = async move {
        let socket = loopback_udp_socket().map_err(|e| e.to_string())?;
        let mut endpoint = quinn::Endpoint::new(setup.endpoint, None, socket, Arc::new(quinn::TokioRuntime))
            .map_err(|e| e.to_string())?;
        endpoint.set_default_client_config(setup.client);
        let conn = endpoint
            .connect(server, "::1")
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())?;
        let _ = started.send(Instant::now());
        let mut send = conn.open_uni().await.map_err(|e| e.to_string())?;
        let mut remaining = bytes;
        while remaining > 0 {
            let n = remaining.min(data.len() as u64) as usize;
            send.write_chunk(data.slice(..n)).await.map_err(|e| e.to_string())?;
            remaining -= n as u64;
        }
        send.finish().map_err(|e| e.to_string())?;
        let _ = stop.wait_for(|s| *s).await;
        Ok::<_, String>(())
    };
    match current_thread() {
        Ok(rt) => {
            if let Err(e) = rt.block_on(run) {
                tracing::error!(error = %e, "quinn bench client failed");
            }
        }
        Err(e) => tracing::error!(error = %e, "no runtime"),
    }
}

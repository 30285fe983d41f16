//! The production backend of the HTTP seam: an HTTPS server (hyper over rustls, TLS 1.3, ring)
//! speaking HTTP/1.1 and HTTP/2, listening IPv6-only, serving one [`HttpService`].
//! [`HttpsServer::bind_plain`] serves plain HTTP instead, for endpoints whose clients speak no
//! TLS: Ethereum tooling's JSON-RPC on a developer's loopback, the registry API behind a proxy.
//!
//! The protocol is chosen per connection: over TLS by ALPN (`h2`, else HTTP/1.1); in plain by
//! the first bytes, HTTP/2 with prior knowledge when they are its connection preface (RFC 9113
//! §3.3; `curl --http2-prior-knowledge`), HTTP/1.1 otherwise. There is no `Upgrade: h2c` (RFC
//! 9113 dropped it). Both protocols reach the same service through the same queue, so every
//! bound below holds whatever the client speaks.
//!
//! Limits are explicit ([`HttpsConfig`]): connections at once, the TLS handshake's, the request
//! head's (for HTTP/2 the preface's) and the request body's deadlines (a body not received in
//! time gets a 408 and, in HTTP/1.1, the connection is closed, so a stalled client cannot hold a
//! connection slot), the body size (larger bodies get a 413 before they are read in full), and
//! for HTTP/2 the streams open at once on a connection, the header list's size and a ping that
//! finds a vanished peer.
//!
//! An answer the service marks pending ([`HttpResponse::pending`]: a transaction taken, not yet
//! committed) is held back: the service is asked again ([`HttpService::resume`]) each time
//! the server's changes ([`HttpsServer::with_changes`]) are notified and every [`HttpsConfig::resume_interval`], until it
//! gives a better answer or the mark's time is up; at most [`HttpsConfig::held_max`] are held at
//! once, and for one more the service has its last word at once.
//! The service runs on tokio's blocking pool, because it may sync files (or, with
//! [`HttpsConfig::answer_inline`], on the connection's task, for a service that answers from
//! memory); requests are served one at a time, in turn, and at most
//! [`HttpsConfig::requests_waiting_max`] read whole may wait (one more gets a 503). Inline on a
//! current-thread runtime, a request being answered holds the runtime's only thread, so none
//! other is read meanwhile: requests wait in their connections instead, and the bound is not
//! reached (on a multi-thread runtime, requests on the other threads wait their turn and count). A panic in the service is
//! caught inside the lock:
//! its request gets a 500, the lock is never poisoned, and the next request is served (a service
//! whose state a panic could leave half-updated recovers it itself, as the CA's API does).

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use runtime::{AddressFamily, HttpRequest, HttpResponse, HttpService};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::clock::host_wall_now;

/// Why the server could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum HttpsError {
    /// An IPv4 (or IPv4-mapped) listen address: the stack is IPv6-only.
    #[error("cannot listen on {addr}: IPv4 is refused, this stack is IPv6-only; listen on an IPv6 address such as [::1]:8443 or [::]:8443")]
    Ipv4Refused {
        /// The address given.
        addr: SocketAddr,
    },
    /// The OS refused the socket.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address given.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The certificate or key cannot serve TLS.
    #[error("server certificate refused: {0}")]
    Certificate(String),
}

/// The server's limits.
#[derive(Clone, Debug)]
pub struct HttpsConfig {
    /// Where to listen (IPv6 only).
    pub listen: SocketAddr,
    /// Connections served at once; a connection beyond it is closed at once (the client retries).
    pub connections_max: usize,
    /// A TLS handshake not finished by then is dropped.
    pub handshake_timeout: Duration,
    /// A request head not received by then closes the connection (slow-loris); so does an
    /// HTTP/2 connection with no request open for that long, as an idle HTTP/1.1 one is.
    pub header_timeout: Duration,
    /// A request body not received in full by then (from the end of its head) gets a 408; an
    /// HTTP/1.1 connection is then closed (the rest of the body may still come), an HTTP/2
    /// stream ends alone.
    pub body_timeout: Duration,
    /// Request bodies above this get a 413.
    pub body_bytes_max: usize,
    /// Requests read whole and waiting for the service (which answers one at a time) or being
    /// answered, at most: one more gets a 503 with `Retry-After` at once and never reaches the
    /// service, so a burst cannot pile up threads and memory behind it (the guide's pool
    /// exhaustion, bounded).
    pub requests_waiting_max: usize,
    /// The `Retry-After` of that 503, seconds.
    pub busy_retry_after_s: u32,
    /// Calls the service on the connection's own task instead of a blocking thread: for a
    /// service whose answers are quick (from memory), the handoff to a thread and back costs
    /// more than the answer. A slow answer then holds the runtime's thread, and with it every
    /// connection the runtime serves, for its duration.
    pub answer_inline: bool,
    /// How the errors the server answers itself (400 unreadable body, 408, 413, 500, 503) are
    /// written: as the service writes its own, so that a client reads one shape.
    pub error_style: ErrorStyle,
    /// HTTP/2: requests (streams) open at once on one connection; the client is told this in
    /// its settings, and a stream past it is refused (`REFUSED_STREAM`, safe to retry).
    pub streams_per_connection_max: u32,
    /// HTTP/2: the most bytes of a request's header list (decoded, RFC 9113 §6.5.2); a larger
    /// one is refused. (HTTP/1.1 heads are bounded by hyper's read buffer and 100 fields.)
    pub http2_header_bytes_max: u32,
    /// HTTP/2: an idle connection is pinged this often; a ping not answered within
    /// `header_timeout` closes it, so a peer that vanished does not hold a connection slot.
    pub http2_ping_interval: Duration,
    /// Answers the service marked pending and the server holds back, at most: one more is sent
    /// at once as the service first gave it.
    pub held_max: usize,
    /// A held answer is asked about again at least this often, whether or not a change was
    /// notified (a notification is only a hint that comes sooner).
    pub resume_interval: Duration,
}

/// The JSON of an error the server answers itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorStyle {
    /// `{"error": "message"}` (the CA's API).
    Message,
    /// `{"error": {"code": "…", "message": "…"}}` (the registry API): codes `bad_request_body`,
    /// `request_timeout`, `body_too_large`, `internal_error`, `server_busy`.
    CodeAndMessage,
}

impl HttpsConfig {
    /// Defaults for `listen`: 256 connections, 10 s handshakes, heads and bodies, 64 KiB bodies,
    /// 256 requests waiting (one per HTTP/1.1 connection), a retry after 1 s; for HTTP/2, 64
    /// streams per connection, 16 KiB header lists, a ping every 30 s; 1024 answers held, asked
    /// about again every 250 ms.
    pub fn new(listen: SocketAddr) -> Self {
        HttpsConfig {
            listen,
            connections_max: 256,
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            body_bytes_max: 64 * 1024,
            requests_waiting_max: 256,
            busy_retry_after_s: 1,
            answer_inline: false,
            error_style: ErrorStyle::Message,
            streams_per_connection_max: 64,
            http2_header_bytes_max: 16 * 1024,
            http2_ping_interval: Duration::from_secs(30),
            held_max: 1024,
            resume_interval: Duration::from_millis(250),
        }
    }
}

/// The server's certificate, replaceable while it serves (renewal, CA rotation): new
/// handshakes get the new one, established connections keep theirs.
#[derive(Clone, Debug)]
pub struct CertificateSlot(Arc<RwLock<Arc<CertifiedKey>>>);

fn certified(chain: Vec<Vec<u8>>, pkcs8: Vec<u8>) -> Result<Arc<CertifiedKey>, HttpsError> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8));
    let signing = rustls::crypto::ring::default_provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| HttpsError::Certificate(e.to_string()))?;
    let chain = chain.into_iter().map(CertificateDer::from).collect();
    Ok(Arc::new(CertifiedKey::new(chain, signing)))
}

impl CertificateSlot {
    /// A slot holding `chain` (leaf first, DER) and its PKCS#8 private key.
    pub fn new(chain: Vec<Vec<u8>>, pkcs8: Vec<u8>) -> Result<Self, HttpsError> {
        Ok(CertificateSlot(Arc::new(RwLock::new(certified(chain, pkcs8)?))))
    }

    /// Serves `chain` and its key from the next handshake on.
    pub fn replace(&self, chain: Vec<Vec<u8>>, pkcs8: Vec<u8>) -> Result<(), HttpsError> {
        let new = certified(chain, pkcs8)?;
        *self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = new;
        Ok(())
    }
}

impl ResolvesServerCert for CertificateSlot {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone())
    }
}

/// A bound HTTPS server, not yet serving.
pub struct HttpsServer<S> {
    listener: TcpListener,
    /// `None`: plain HTTP.
    acceptor: Option<TlsAcceptor>,
    service: Arc<Mutex<S>>,
    config: HttpsConfig,
    load: Arc<ServerLoad>,
    changes: Arc<Notify>,
}

/// What the server holds in front of its service, counted as it serves: the service never sees
/// the requests refused here, so a service that reports on itself reads them from this.
#[derive(Debug)]
pub struct ServerLoad {
    /// A permit per request waiting or being answered.
    waiting: Arc<Semaphore>,
    waiting_max: usize,
    refused_busy: AtomicU64,
    connections_refused: AtomicU64,
    /// A permit per answer held back.
    held: Arc<Semaphore>,
    held_max: usize,
}

/// [`ServerLoad`] at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerFigures {
    /// Requests read whole and waiting for the service, or being answered.
    pub waiting: u64,
    /// Requests that may wait at most ([`HttpsConfig::requests_waiting_max`]).
    pub waiting_max: u64,
    /// Requests refused 503 because that many waited, so far.
    pub refused_busy: u64,
    /// Connections refused at [`HttpsConfig::connections_max`], so far.
    pub connections_refused: u64,
    /// Answers held back for the service to better them, now.
    pub held: u64,
}

impl ServerLoad {
    fn new(config: &HttpsConfig) -> ServerLoad {
        ServerLoad {
            waiting: Arc::new(Semaphore::new(config.requests_waiting_max)),
            waiting_max: config.requests_waiting_max,
            refused_busy: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
            held: Arc::new(Semaphore::new(config.held_max)),
            held_max: config.held_max,
        }
    }

    /// The figures now.
    pub fn figures(&self) -> ServerFigures {
        let free = self.waiting.available_permits().min(self.waiting_max);
        ServerFigures {
            waiting: (self.waiting_max - free) as u64,
            waiting_max: self.waiting_max as u64,
            refused_busy: self.refused_busy.load(Ordering::Relaxed),
            connections_refused: self.connections_refused.load(Ordering::Relaxed),
            held: (self.held_max - self.held.available_permits().min(self.held_max)) as u64,
        }
    }
}

/// A TCP listener on `addr`, IPv6 only.
fn listen(addr: SocketAddr) -> Result<TcpListener, HttpsError> {
    if AddressFamily::of(&addr) == AddressFamily::V4 {
        return Err(HttpsError::Ipv4Refused { addr });
    }
    let bind = || -> io::Result<TcpListener> {
        let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
        // The host default would make the socket dual-stack and let IPv4 in, mapped.
        socket.set_only_v6(true)?;
        socket.set_reuse_address(true)?;
        socket.set_nonblocking(true)?;
        socket.bind(&addr.into())?;
        socket.listen(1024)?;
        TcpListener::from_std(socket.into())
    };
    bind().map_err(|source| HttpsError::Bind { addr, source })
}

/// The way to the service: a bounded number of requests may wait, and they take turns.
struct Queue {
    /// The requests waiting (a permit each), and what was refused.
    load: Arc<ServerLoad>,
    /// One permit: the request being answered. Waiting for it is a task's, not a thread's.
    turn: Arc<Semaphore>,
    retry_after_s: u32,
    inline: bool,
    /// Notified when a held answer may be bettered.
    changes: Arc<Notify>,
    resume_interval: Duration,
}

/// The HTTP a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HttpVersion {
    Http1,
    Http2,
}

/// What an HTTP/2 client sends first (RFC 9113 §3.4): no HTTP/1.1 request starts so.
const HTTP2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The protocol of a plain connection, from its first bytes, read without taking them: HTTP/2
/// when they are its preface, else HTTP/1.1 (whose parser then judges them). `None`: the peer
/// closed first.
async fn plain_protocol(tcp: &tokio::net::TcpStream) -> io::Result<Option<HttpVersion>> {
    let mut first = [0u8; HTTP2_PREFACE.len()];
    let mut pause = Duration::from_millis(1);
    loop {
        let seen = tcp.peek(&mut first).await?;
        if seen == 0 {
            return Ok(None);
        }
        if first[..seen] != HTTP2_PREFACE[..seen] {
            return Ok(Some(HttpVersion::Http1));
        }
        if seen == HTTP2_PREFACE.len() {
            return Ok(Some(HttpVersion::Http2));
        }
        // A prefix of the preface: `peek` answers at once while those bytes wait, so wait a
        // little for the rest, longer each time (the caller's deadline bounds a peer that
        // stops there).
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// The requests a connection has open (from their head until the service answered; the answer
/// may still be on its way out), and since when it has had none.
struct Activity(Mutex<(u64, tokio::time::Instant)>);

impl Activity {
    fn new() -> Activity {
        Activity(Mutex::new((0, tokio::time::Instant::now())))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, (u64, tokio::time::Instant)> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// How long it has had no request open (`None`: one is open).
    fn idle_for(&self) -> Option<Duration> {
        let (open, since) = *self.state();
        (open == 0).then(|| since.elapsed())
    }
}

/// A request open on a connection, until it is answered or dropped (its client reset it).
struct Open(Arc<Activity>);

impl Open {
    fn begin(activity: &Arc<Activity>) -> Open {
        activity.state().0 += 1;
        Open(activity.clone())
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.0 -= 1;
        state.1 = tokio::time::Instant::now();
    }
}

/// Serves the requests of one connection, TLS or not, in `protocol`.
async fn serve_connection<I, S>(
    io: I,
    protocol: HttpVersion,
    service: Arc<Mutex<S>>,
    config: HttpsConfig,
    peer: SocketAddr,
    queue: Arc<Queue>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: HttpService + 'static,
{
    let limits = BodyLimits {
        bytes_max: config.body_bytes_max,
        timeout: config.body_timeout,
        style: config.error_style,
    };
    // Only HTTP/2 needs to know when a connection is idle (hyper times out idle HTTP/1.1).
    let activity = (protocol == HttpVersion::Http2).then(|| Arc::new(Activity::new()));
    let handler = {
        let activity = activity.clone();
        hyper::service::service_fn(move |request| {
            let open = activity.as_ref().map(Open::begin);
            let answer = respond(request, service.clone(), limits, queue.clone());
            async move {
                let _open = open;
                answer.await
            }
        })
    };
    let served = match protocol {
        HttpVersion::Http1 => {
            hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(config.header_timeout)
                .serve_connection(TokioIo::new(io), handler)
                .await
        }
        HttpVersion::Http2 => {
            let connection = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .max_concurrent_streams(config.streams_per_connection_max)
                .max_header_list_size(config.http2_header_bytes_max)
                .keep_alive_interval(config.http2_ping_interval)
                .keep_alive_timeout(config.header_timeout)
                .serve_connection(TokioIo::new(io), handler);
            tokio::pin!(connection);
            // hyper closes an idle HTTP/1.1 connection at its header deadline, and has no such
            // deadline for HTTP/2: without one, an idle client (or one that chose h2 by ALPN
            // and sent nothing since) would hold a connection slot.
            let activity = activity.expect("tracked for HTTP/2");
            let deadline = config.header_timeout;
            let look = deadline.clamp(Duration::from_millis(10), Duration::from_secs(1));
            let mut closing_since: Option<tokio::time::Instant> = None;
            loop {
                let next = match (closing_since, activity.idle_for()) {
                    (Some(since), _) => (since + deadline).saturating_duration_since(tokio::time::Instant::now()),
                    (None, Some(idle)) => deadline.saturating_sub(idle),
                    (None, None) => look,
                };
                tokio::select! {
                    served = connection.as_mut() => break served,
                    () = tokio::time::sleep(next.max(Duration::from_millis(10))) => match closing_since {
                        // A graceful close waits for the client (its preface, its answer to the
                        // closing ping): one that gives neither within the deadline is cut.
                        Some(since) if since.elapsed() >= deadline => {
                            tracing::debug!(%peer, "HTTP/2 connection cut: not closed within the deadline after GOAWAY");
                            break Ok(());
                        }
                        Some(_) => {}
                        None => {
                            if activity.idle_for().is_some_and(|idle| idle >= deadline) {
                                connection.as_mut().graceful_shutdown();
                                closing_since = Some(tokio::time::Instant::now());
                            }
                        }
                    },
                }
            }
        }
    };
    if let Err(e) = served {
        tracing::debug!(%peer, ?protocol, "connection ended: {e}");
    }
}

impl<S: HttpService + 'static> HttpsServer<S> {
    /// Binds `config.listen` (IPv6-only). Must be called inside a tokio runtime.
    pub fn bind(config: HttpsConfig, certificate: CertificateSlot, service: Arc<Mutex<S>>) -> Result<Self, HttpsError> {
        let listener = listen(config.listen)?;
        let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| HttpsError::Certificate(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(certificate));
        // The client's preference decides among these; a client offering neither (or no ALPN
        // at all) is served HTTP/1.1.
        tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(HttpsServer {
            listener,
            acceptor: Some(TlsAcceptor::from(Arc::new(tls))),
            service,
            load: Arc::new(ServerLoad::new(&config)),
            changes: Arc::new(Notify::new()),
            config,
        })
    }

    /// Binds `config.listen` (IPv6-only) for plain HTTP, with the same limits. Must be called
    /// inside a tokio runtime.
    pub fn bind_plain(config: HttpsConfig, service: Arc<Mutex<S>>) -> Result<Self, HttpsError> {
        Ok(HttpsServer {
            listener: listen(config.listen)?,
            acceptor: None,
            service,
            load: Arc::new(ServerLoad::new(&config)),
            changes: Arc::new(Notify::new()),
            config,
        })
    }

    /// What it holds in front of its service, and has refused, as it serves.
    pub fn load(&self) -> Arc<ServerLoad> {
        self.load.clone()
    }

    /// Asks the service again about the answers it holds back each time `changes` is notified
    /// (`notify_waiters`): when they may now be bettered, a block committed. Without it, they
    /// are asked about every [`HttpsConfig::resume_interval`].
    pub fn with_changes(mut self, changes: Arc<Notify>) -> Self {
        self.changes = changes;
        self
    }

    /// The address actually bound (port 0 picks a free one).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes; connections already accepted finish on their own.
    pub async fn serve(self, shutdown: impl std::future::Future<Output = ()>) {
        let permits = Arc::new(Semaphore::new(self.config.connections_max));
        let queue = Arc::new(Queue {
            load: self.load.clone(),
            turn: Arc::new(Semaphore::new(1)),
            retry_after_s: self.config.busy_retry_after_s,
            inline: self.config.answer_inline,
            changes: self.changes.clone(),
            resume_interval: self.config.resume_interval,
        });
        tokio::pin!(shutdown);
        loop {
            let (tcp, peer) = tokio::select! {
                () = &mut shutdown => return,
                accepted = self.listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors and the like: pause rather than spin.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                self.load.connections_refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%peer, limit = self.config.connections_max, "connection refused: at the connection limit");
                continue;
            };
            // Answers are small and final: send them without waiting to coalesce.
            let _ = tcp.set_nodelay(true);
            let acceptor = self.acceptor.clone();
            let service = self.service.clone();
            let config = self.config.clone();
            let queue = queue.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let Some(acceptor) = acceptor else {
                    // A peer that sends nothing is dropped as one that never finishes its head.
                    let protocol = match tokio::time::timeout(config.header_timeout, plain_protocol(&tcp)).await {
                        Ok(Ok(Some(protocol))) => protocol,
                        Ok(Ok(None)) => return,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, "connection failed before its first request: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "no request within the header deadline");
                            return;
                        }
                    };
                    serve_connection(tcp, protocol, service, config, peer, queue).await;
                    return;
                };
                let tls = match tokio::time::timeout(config.handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, "TLS handshake failed: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                };
                let protocol = match tls.get_ref().1.alpn_protocol() {
                    Some(b"h2") => HttpVersion::Http2,
                    _ => HttpVersion::Http1,
                };
                serve_connection(tls, protocol, service, config, peer, queue).await;
            });
        }
    }
}

/// `text` escaped for a JSON string.
fn json_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// The most of an over-limit body read (and dropped) before answering 413.
const DRAIN_BYTES_MAX: usize = 1 << 20;

/// An error the server answers itself, in `style`, `code` naming it.
fn plain(style: ErrorStyle, status: u16, code: &str, message: &str) -> HttpResponse {
    let body = match style {
        ErrorStyle::Message => format!("{{\"error\": \"{}\"}}\n", json_escape(message)),
        ErrorStyle::CodeAndMessage => format!(
            "{{\"error\": {{\"code\": \"{code}\", \"message\": \"{}\"}}}}\n",
            json_escape(message)
        ),
    };
    HttpResponse::new(status, "application/json", body)
}

/// Reads a body of at most `limit` bytes. A larger one gets a 413; it is still read (and dropped)
/// up to [`DRAIN_BYTES_MAX`] so that a client sending it whole, without `Expect: 100-continue`,
/// reads the answer instead of a reset connection. A body declared larger than that is not read.
async fn read_body(
    headers: &hyper::HeaderMap,
    mut body: Incoming,
    limit: usize,
    style: ErrorStyle,
) -> Result<Bytes, HttpResponse> {
    let too_large = || {
        plain(
            style,
            413,
            "body_too_large",
            &format!("request body over the {limit}-byte limit"),
        )
    };
    let declared = headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64 && n > DRAIN_BYTES_MAX as u64) {
        return Err(too_large());
    }
    let mut kept = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            plain(
                style,
                400,
                "bad_request_body",
                &format!("could not read the request body: {e}"),
            )
        })?;
        if let Ok(data) = frame.into_data() {
            seen = seen.saturating_add(data.len());
            if seen <= limit {
                kept.extend_from_slice(&data);
            } else if seen > DRAIN_BYTES_MAX {
                break;
            }
        }
    }
    if seen > limit {
        return Err(too_large());
    }
    Ok(Bytes::from(kept))
}

/// What a request body may be: its size and the time to receive it.
#[derive(Clone, Copy, Debug)]
struct BodyLimits {
    bytes_max: usize,
    timeout: Duration,
    /// How the server's own errors are written.
    style: ErrorStyle,
}

/// Runs `call` on the service inside its lock. A panic is caught here, inside the lock, so it
/// never poisons it; a lock poisoned anyway (by a panic elsewhere) is taken back.
fn locked<S: HttpService, T>(service: &Mutex<S>, call: impl FnOnce(&mut S) -> T) -> std::thread::Result<T> {
    let mut guard = service.lock().unwrap_or_else(|poisoned| {
        service.clear_poison();
        poisoned.into_inner()
    });
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call(&mut guard)))
}

/// Runs the service on `request`; a panic gets a 500.
fn handle<S: HttpService>(
    service: &Mutex<S>,
    request: &HttpRequest,
    now: runtime::WallTime,
    style: ErrorStyle,
) -> HttpResponse {
    locked(service, |s| s.handle(request, now)).unwrap_or_else(|_| {
        tracing::error!(method = %request.method, path = %request.path, "the service panicked on a request");
        plain(
            style,
            500,
            "internal_error",
            "internal error: the server failed on this request; retry",
        )
    })
}

/// Runs `call` on the service when its turn comes: on the connection's task, or on the
/// blocking pool. `place` (a request's place in the queue) is released once `call` returns.
/// `None`: the blocking task failed.
async fn in_turn<S, T>(
    queue: &Queue,
    service: &Arc<Mutex<S>>,
    place: Option<OwnedSemaphorePermit>,
    call: impl FnOnce(&Mutex<S>) -> T + Send + 'static,
) -> Option<T>
where
    S: HttpService + 'static,
    T: Send + 'static,
{
    let turn = queue
        .turn
        .clone()
        .acquire_owned()
        .await
        .expect("the turn semaphore is never closed");
    if queue.inline {
        let out = call(service);
        drop((turn, place));
        return Some(out);
    }
    // The permits go with the work, not with this future: a client that hangs up drops the
    // future, and the request still holds its place until the service is done with it.
    let service = service.clone();
    tokio::task::spawn_blocking(move || {
        let _held = (turn, place);
        call(&service)
    })
    .await
    .ok()
}

/// Holds back `first`, an answer the service marked pending, asking the service again at each
/// change notified and every `resume_interval` until it gives a better one or the mark's time
/// is up (then once more, the last time). Past `held_max` held at once, it is not held: the
/// service is asked the last time at once. The holding runs on a task of its own: a client that
/// hangs up does not cut short the service's last word on it (a service counts its answers
/// there).
async fn hold<S: HttpService + 'static>(
    first: HttpResponse,
    service: Arc<Mutex<S>>,
    queue: Arc<Queue>,
) -> HttpResponse {
    let Some(pending) = first.pending.clone() else {
        return first;
    };
    let held = queue.load.held.clone().try_acquire_owned().ok();
    // Measured on the monotonic clock from here: a step of the wall clock neither cuts the
    // wait short nor stretches it.
    let wait = match held {
        Some(_) => Duration::from_nanos(u64::try_from(pending.until.nanos_since(host_wall_now())).unwrap_or(0)),
        None => Duration::ZERO,
    };
    let deadline = tokio::time::Instant::now() + wait;
    let first = Arc::new(first);
    let holding = tokio::spawn({
        let first = first.clone();
        async move {
            let _held = held;
            loop {
                let changed = queue.changes.notified();
                tokio::pin!(changed);
                // Registered before the service is asked: a change while it answers still wakes.
                changed.as_mut().enable();
                let last = tokio::time::Instant::now() >= deadline;
                let asked = first.clone();
                let better = in_turn(&queue, &service, None, move |service| {
                    locked(service, |s| s.resume(&asked, host_wall_now(), last)).unwrap_or_else(|_| {
                        tracing::error!("the service panicked asking again about a held answer");
                        None
                    })
                })
                .await
                .flatten();
                if let Some(mut better) = better {
                    better.pending = None;
                    return Some(better);
                }
                if last {
                    return None;
                }
                let next = deadline.min(tokio::time::Instant::now() + queue.resume_interval);
                tokio::select! {
                    () = &mut changed => {}
                    () = tokio::time::sleep_until(next) => {}
                }
            }
        }
    });
    let better = holding.await.ok().flatten();
    better.unwrap_or_else(|| {
        let mut first = Arc::unwrap_or_clone(first);
        first.pending = None;
        first
    })
}

async fn respond<S: HttpService + 'static>(
    request: Request<Incoming>,
    service: Arc<Mutex<S>>,
    limits: BodyLimits,
    queue: Arc<Queue>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let style = limits.style;
    let read = tokio::time::timeout(limits.timeout, read_body(&parts.headers, body, limits.bytes_max, style)).await;
    let read = read.unwrap_or_else(|_| {
        let late = plain(
            style,
            408,
            "request_timeout",
            &format!(
                "request body not received within {} ms: send the whole body promptly",
                limits.timeout.as_millis()
            ),
        );
        // The rest of the body may still come: an HTTP/1.1 connection cannot carry another
        // request. (An HTTP/2 stream ends alone, and the field is illegal there.)
        Err(if parts.version < hyper::Version::HTTP_2 {
            late.with_header("connection", "close".to_owned())
        } else {
            late
        })
    });
    let answer = match read {
        Err(answer) => answer,
        Ok(body) => {
            let request = HttpRequest {
                method: parts.method.as_str().to_owned(),
                path: parts.uri.path().to_owned(),
                query: parts.uri.query().unwrap_or("").to_owned(),
                // hyper bounds the header section (its count and bytes) before this.
                headers: parts
                    .headers
                    .iter()
                    .map(|(name, value)| (name.as_str().to_owned(), Bytes::copy_from_slice(value.as_bytes())))
                    .collect(),
                body,
            };
            match queue.load.waiting.clone().try_acquire_owned() {
                Err(_) => {
                    queue.load.refused_busy.fetch_add(1, Ordering::Relaxed);
                    plain(
                        style,
                        503,
                        "server_busy",
                        &format!(
                            "server busy: {} requests are already waiting; this one was not processed (nothing it asked was done), retry after {} s",
                            queue.load.waiting_max, queue.retry_after_s
                        ),
                    )
                    .with_header("retry-after", queue.retry_after_s.to_string())
                }
                Ok(waiting) => {
                    let handled = in_turn(&queue, &service, Some(waiting), move |service| {
                        handle(service, &request, host_wall_now(), style)
                    })
                    .await;
                    let answer = handled.unwrap_or_else(|| {
                        plain(
                            style,
                            500,
                            "internal_error",
                            "internal error: the request handler failed",
                        )
                    });
                    match answer.pending {
                        Some(_) => hold(answer, service, queue).await,
                        None => answer,
                    }
                }
            }
        }
    };
    let mut response = Response::builder()
        .status(answer.status)
        .header("content-type", answer.content_type);
    for (name, value) in &answer.headers {
        response = response.header(*name, value.as_str());
    }
    Ok(response.body(Full::new(answer.body)).unwrap_or_else(|e| {
        let mut r = Response::new(Full::new(Bytes::from(format!(
            "{{\"error\": \"bad response: {}\"}}\n",
            json_escape(&e.to_string())
        ))));
        *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        r
    }))
}

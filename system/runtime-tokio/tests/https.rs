//! The HTTPS server's robustness against its clients (issue 13, item 9; issue 17, item 6): a
//! client that sends a request head and then stalls its body, a service that panics on a
//! request, and more requests than may wait for a busy service; and HTTP/2 beside HTTP/1.1
//! (issue 17, item 1), over TLS by ALPN and in plain with prior knowledge, under the same bounds.

// A backend's test: real sockets, the OS clock.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use runtime::{HttpRequest, HttpResponse, HttpService, WallTime};
use runtime_tokio::{CertificateSlot, HttpsClient, HttpsConfig, HttpsServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A CA certificate and a leaf for `localhost` it signed: (root DER, chain DER, leaf key PKCS#8).
fn certificates() -> (Vec<u8>, Vec<Vec<u8>>, Vec<u8>) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (
        ca_cert.der().to_vec(),
        vec![leaf.der().to_vec(), ca_cert.der().to_vec()],
        key.serialize_der(),
    )
}

/// Answers 200, except on `/panic`, where it panics (a bug in a handler); on `/authorization`
/// it answers with the request's `Authorization` values, joined by `|`.
struct Fragile;

impl HttpService for Fragile {
    fn handle(&mut self, request: &HttpRequest, _now: WallTime) -> HttpResponse {
        assert_ne!(request.path, "/panic", "the test's injected bug");
        if request.path == "/authorization" {
            let values: Vec<String> = request
                .header_values("authorization")
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect();
            return HttpResponse::new(200, "text/plain", values.join("|"));
        }
        HttpResponse::new(200, "text/plain", format!("{} bytes\n", request.body.len()))
    }
}

/// Starts a server of [`Fragile`] with `config` on [::1]; returns its address and root.
async fn start(tune: impl FnOnce(&mut HttpsConfig)) -> (SocketAddr, Vec<u8>) {
    let (root, chain, key) = certificates();
    let mut config = HttpsConfig::new("[::1]:0".parse().unwrap());
    tune(&mut config);
    let slot = CertificateSlot::new(chain, key).unwrap();
    let server = HttpsServer::bind(config, slot, Arc::new(Mutex::new(Fragile))).unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(std::future::pending()));
    (addr, root)
}

/// Starts a plain HTTP server of [`Fragile`] with `config` on [::1]; returns its address.
async fn start_plain(tune: impl FnOnce(&mut HttpsConfig)) -> SocketAddr {
    let mut config = HttpsConfig::new("[::1]:0".parse().unwrap());
    tune(&mut config);
    let server = HttpsServer::bind_plain(config, Arc::new(Mutex::new(Fragile))).unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.serve(std::future::pending()));
    addr
}

/// A TLS connection to `addr` trusting `root`, offering `alpn` (none: no ALPN at all).
async fn connect(addr: SocketAddr, root: &[u8]) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    connect_offering(addr, root, &[]).await
}

async fn connect_offering(
    addr: SocketAddr,
    root: &[u8],
    alpn: &[&[u8]],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.to_vec().into()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap()
}

/// A client that sends a head declaring 100 bytes of body, sends 10, then stalls, is answered
/// 408 and disconnected once the body deadline passes: it does not hold its connection permit
/// for ever.
#[tokio::test]
async fn a_stalled_request_body_gets_408_and_the_connection_closes() {
    let (addr, root) = start(|c| {
        c.header_timeout = Duration::from_millis(500);
        c.body_timeout = Duration::from_millis(500);
    })
    .await;
    let mut tls = connect(addr, &root).await;
    tls.write_all(b"POST /slow HTTP/1.1\r\nhost: localhost\r\ncontent-length: 100\r\n\r\n0123456789")
        .await
        .unwrap();
    tls.flush().await.unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server still held the stalled connection after 5 s");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body"), "the answer names the problem: {answer}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

/// A handler that panics gets its client a 500, and the next request is served (the service's
/// lock was poisoned and every later request got 503).
#[tokio::test]
async fn a_panicking_handler_does_not_take_the_server_down() {
    // On the blocking pool, and answered on the connection's own task.
    for inline in [false, true] {
        let (addr, root) = start(|config| config.answer_inline = inline).await;
        let client = HttpsClient::new(addr, "localhost", &[root]).unwrap();
        let (status, body) = client.call("GET", "/panic", "").await.unwrap();
        assert_eq!(status, 500, "inline {inline}: {}", String::from_utf8_lossy(&body));
        for _ in 0..3 {
            let (status, body) = client.call("POST", "/fine", "abc").await.unwrap();
            assert_eq!(status, 200, "inline {inline}: {}", String::from_utf8_lossy(&body));
        }
    }
}

/// The service sees every header field as sent, in order, a repeated one twice, without the
/// whitespace HTTP puts around a value.
#[tokio::test]
async fn header_fields_reach_the_service_repeated_and_in_order() {
    let (addr, root) = start(|_| {}).await;
    let mut tls = connect(addr, &root).await;
    tls.write_all(
        b"GET /authorization HTTP/1.1\r\nhost: localhost\r\nAuthorization:   Bearer a \t\r\nauthorization: Bearer b\r\nconnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("Bearer a|Bearer b"), "{answer}");
}

/// Holds `/slow` until the test lets it go; counts every request it answers.
struct Slow {
    entered: std::sync::mpsc::Sender<()>,
    release: std::sync::mpsc::Receiver<()>,
    answered: Arc<std::sync::atomic::AtomicUsize>,
}

impl HttpService for Slow {
    fn handle(&mut self, request: &HttpRequest, _now: WallTime) -> HttpResponse {
        if request.path == "/slow" {
            self.entered.send(()).unwrap();
            self.release.recv().unwrap();
        }
        self.answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        HttpResponse::new(200, "text/plain", "done")
    }
}

/// One plain HTTP/1.1 request to `addr`, answered in full.
async fn plain_get(addr: SocketAddr, path: &str) -> String {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        format!("POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// A plain HTTP server of [`Slow`] (with `config` tuned) busy with one `/slow` request.
struct Busy {
    addr: SocketAddr,
    /// The `/slow` request's answer, once released.
    slow: tokio::task::JoinHandle<String>,
    /// Lets `/slow` finish.
    release: std::sync::mpsc::Sender<()>,
    /// Requests the service answered.
    answered: Arc<std::sync::atomic::AtomicUsize>,
    /// The server's counts of what it holds and refused.
    load: Arc<runtime_tokio::ServerLoad>,
}

async fn busy_server(tune: impl FnOnce(&mut HttpsConfig)) -> Busy {
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel();
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let service = Slow {
        entered: entered_tx,
        release: release_rx,
        answered: answered.clone(),
    };
    let mut config = HttpsConfig::new("[::1]:0".parse().unwrap());
    tune(&mut config);
    let server = HttpsServer::bind_plain(config, Arc::new(Mutex::new(service))).unwrap();
    let addr = server.local_addr().unwrap();
    let load = server.load();
    tokio::spawn(server.serve(std::future::pending()));
    let slow = tokio::spawn(plain_get(addr, "/slow"));
    tokio::task::spawn_blocking(move || entered.recv_timeout(Duration::from_secs(10)).unwrap())
        .await
        .unwrap();
    Busy {
        addr,
        slow,
        release,
        answered,
        load,
    }
}

/// With the service busy and the queue full, a request is answered 503 with `Retry-After` at
/// once and never reaches the service; the requests let in are all answered.
#[tokio::test]
async fn past_the_waiting_bound_a_request_gets_503_and_is_not_processed() {
    let busy = busy_server(|config| {
        config.requests_waiting_max = 2;
        config.busy_retry_after_s = 3;
    })
    .await;
    let (addr, slow, release, answered) = (busy.addr, busy.slow, busy.release, busy.answered);
    // The service is busy with /slow: one more may wait; of these three, two are refused.
    let others: Vec<_> = (0..3).map(|_| tokio::spawn(plain_get(addr, "/write"))).collect();
    let refused = answered_at_once(others, 2).await;
    for answer in &refused {
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(answer.to_ascii_lowercase().contains("retry-after: 3\r\n"), "{answer}");
        assert!(answer.contains("was not processed"), "{answer}");
    }
    release.send(()).unwrap();
    assert!(slow.await.unwrap().starts_with("HTTP/1.1 200"));
    // The one that waited is answered once /slow is done; the refused ones never were.
    assert_answered(&answered, 2).await;
}

/// Of `requests`, those answered within 2 s (the refused are answered without waiting for the
/// service); exactly `refused` of them, the rest still waiting.
async fn answered_at_once<T: std::fmt::Debug>(requests: Vec<tokio::task::JoinHandle<T>>, refused: usize) -> Vec<T> {
    let mut at_once = Vec::new();
    let total = requests.len();
    for request in requests {
        if let Ok(answer) = tokio::time::timeout(Duration::from_secs(2), request).await {
            at_once.push(answer.unwrap());
        }
    }
    assert_eq!(
        (at_once.len(), total - at_once.len()),
        (refused, total - refused),
        "{at_once:?}"
    );
    at_once
}

/// Waits until the service answered `count` requests, then checks it answers no more.
async fn assert_answered(answered: &std::sync::atomic::AtomicUsize, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while answered.load(std::sync::atomic::Ordering::SeqCst) < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(answered.load(std::sync::atomic::Ordering::SeqCst), count);
}

/// A client that hangs up while its request is being answered does not free its place: the
/// service is still busy with it, so the bound still counts it.
#[tokio::test]
async fn a_client_hanging_up_mid_answer_still_holds_its_place_in_the_queue() {
    let busy = busy_server(|config| config.requests_waiting_max = 1).await;
    let (addr, slow, release, load) = (busy.addr, busy.slow, busy.release, busy.load);
    let figures = load.figures();
    assert_eq!((figures.waiting, figures.waiting_max, figures.refused_busy), (1, 1, 0));
    // The client hangs up; the service is still busy with its request.
    slow.abort();
    let _ = slow.await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answer = tokio::time::timeout(Duration::from_secs(2), plain_get(addr, "/write"))
        .await
        .expect("refused at once, not left waiting behind the request hung up on");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    // Counted where the service cannot see it: the request refused, the one still held.
    let figures = load.figures();
    assert_eq!((figures.waiting, figures.refused_busy), (1, 1));
    release.send(()).unwrap();
}

/// The server's own errors are written in the style the service writes its own.
#[tokio::test]
async fn the_servers_own_errors_take_the_services_shape() {
    use runtime_tokio::ErrorStyle;
    for (style, expected) in [
        (
            ErrorStyle::Message,
            "{\"error\": \"request body over the 4-byte limit\"}\n",
        ),
        (
            ErrorStyle::CodeAndMessage,
            "{\"error\": {\"code\": \"body_too_large\", \"message\": \"request body over the 4-byte limit\"}}\n",
        ),
    ] {
        let (addr, root) = start(|config| {
            config.body_bytes_max = 4;
            config.error_style = style;
        })
        .await;
        let client = HttpsClient::new(addr, "localhost", &[root]).unwrap();
        let (status, body) = client.call("POST", "/fine", "too long").await.unwrap();
        assert_eq!((status, String::from_utf8_lossy(&body).as_ref()), (413, expected));
    }
}

/// A request body for the HTTP/2 client: whole, or stalling.
type Body = http_body_util::combinators::BoxBody<bytes::Bytes, std::convert::Infallible>;

/// An HTTP/2 client over `io` (TLS after ALPN `h2`, or plain TCP with prior knowledge); clones
/// of it send concurrent streams on the one connection.
async fn http2_client<I>(io: I) -> hyper::client::conn::http2::SendRequest<Body>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (send, connection) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), hyper_util::rt::TokioIo::new(io))
            .await
            .expect("the server speaks HTTP/2");
    tokio::spawn(connection);
    send
}

/// What an HTTP/2 exchange answered.
#[derive(Debug)]
struct Answered {
    version: hyper::Version,
    status: u16,
    retry_after: Option<String>,
    body: String,
}

/// `method path` with `body` as one stream on `client`.
async fn http2_call(
    mut client: hyper::client::conn::http2::SendRequest<Body>,
    method: &str,
    path: &str,
    body: Body,
) -> Answered {
    use http_body_util::BodyExt;
    client.ready().await.unwrap();
    let request = hyper::Request::builder()
        .method(method)
        .uri(format!("http://localhost{path}"))
        .body(body)
        .unwrap();
    let answer = client.send_request(request).await.unwrap();
    let (version, status) = (answer.version(), answer.status().as_u16());
    let retry_after = answer
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = answer.into_body().collect().await.unwrap().to_bytes();
    Answered {
        version,
        status,
        retry_after,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn whole(text: &'static str) -> Body {
    use http_body_util::BodyExt;
    http_body_util::Full::new(bytes::Bytes::from_static(text.as_bytes())).boxed()
}

/// A body that declares 100 bytes, sends 10 and then nothing more.
struct Stalling {
    sent: bool,
}

impl hyper::body::Body for Stalling {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, Self::Error>>> {
        if self.sent {
            return std::task::Poll::Pending;
        }
        self.sent = true;
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(bytes::Bytes::from_static(
            b"0123456789",
        )))))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(100)
    }
}

/// 16 requests at once on `client`'s one connection, each answered 200 over HTTP/2.
async fn sixteen_streams_at_once(client: hyper::client::conn::http2::SendRequest<Body>) {
    let streams: Vec<_> = (0..16)
        .map(|_| tokio::spawn(http2_call(client.clone(), "POST", "/fine", whole("abc"))))
        .collect();
    for stream in streams {
        let answered = stream.await.unwrap();
        assert_eq!(answered.version, hyper::Version::HTTP_2, "{answered:?}");
        assert_eq!((answered.status, answered.body.as_str()), (200, "3 bytes\n"));
    }
}

/// Over TLS a client offering `h2` speaks HTTP/2, many streams at once on one connection; one
/// offering only `http/1.1`, or no ALPN at all, is served HTTP/1.1.
#[tokio::test]
async fn over_tls_alpn_chooses_http2_or_http1() {
    let (addr, root) = start(|_| {}).await;
    let tls = connect_offering(addr, &root, &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    sixteen_streams_at_once(http2_client(tls).await).await;
    for offered in [&[&b"http/1.1"[..]][..], &[]] {
        let mut tls = connect_offering(addr, &root, offered).await;
        tls.write_all(b"GET /fine HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        tls.read_to_end(&mut answer).await.unwrap();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "offered {offered:?}: {answer}");
    }
}

/// In plain, one port serves HTTP/2 with prior knowledge (its preface first) and HTTP/1.1.
#[tokio::test]
async fn in_plain_one_port_serves_http2_with_prior_knowledge_and_http1() {
    let addr = start_plain(|_| {}).await;
    sixteen_streams_at_once(http2_client(tokio::net::TcpStream::connect(addr).await.unwrap()).await).await;
    // POST starts as the preface does ("P"): told apart at its second byte.
    let answer = plain_get(addr, "/fine").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// A plain connection that sends nothing, or stops inside the HTTP/2 preface, is closed at the
/// header deadline: it does not hold a connection slot.
#[tokio::test]
async fn a_silent_plain_connection_is_closed_at_the_header_deadline() {
    let addr = start_plain(|config| config.header_timeout = Duration::from_millis(300)).await;
    for sent in [&b""[..], b"PRI * HTTP/2.0\r\n"] {
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(sent).await.unwrap();
        let answer = closed_at_300ms_deadline(&mut tcp, &format!("sent {sent:?}")).await;
        assert!(answer.is_empty(), "sent {sent:?}: answered {answer:?}");
    }
}

/// An HTTP/2 connection with no request open for the header deadline is closed, as an idle
/// HTTP/1.1 one is: an idle client does not hold a connection slot.
#[tokio::test]
async fn an_idle_http2_connection_is_closed_at_the_header_deadline() {
    let addr = start_plain(|config| config.header_timeout = Duration::from_millis(400)).await;
    let client = http2_client(tokio::net::TcpStream::connect(addr).await.unwrap()).await;
    let answered = http2_call(client.clone(), "POST", "/fine", whole("a")).await;
    assert_eq!(answered.status, 200);
    let served = Instant::now();
    while !client.is_closed() && served.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(client.is_closed(), "still open after 5 s idle");
    assert!(
        served.elapsed() >= Duration::from_millis(350),
        "closed after {:?}, before the deadline",
        served.elapsed()
    );
}

/// A TLS client that chose HTTP/2 by ALPN and then sends nothing (not even the preface) is cut
/// once the graceful close it was sent at the header deadline is not finished a deadline later.
#[tokio::test]
async fn a_silent_http2_client_over_tls_is_cut() {
    let (addr, root) = start(|config| config.header_timeout = Duration::from_millis(300)).await;
    let mut tls = connect_offering(addr, &root, &[b"h2"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    closed_at_300ms_deadline(&mut tls, "a silent HTTP/2 client").await;
}

/// What `stream` received until the server closed it, asserting it did so near a header
/// deadline of 300 ms (from 250 ms on, within 3 s) and not later than 5 s.
async fn closed_at_300ms_deadline<S: tokio::io::AsyncRead + Unpin>(stream: &mut S, what: &str) -> Vec<u8> {
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "{what}: the connection was still open after 5 s");
    assert!(
        (Duration::from_millis(250)..Duration::from_secs(3)).contains(&started.elapsed()),
        "{what}: closed after {:?}, not at the deadline",
        started.elapsed()
    );
    answer
}

/// A request open longer than the header deadline (an answer held for a commit) keeps its
/// HTTP/2 connection: only a connection with none open is idle.
#[tokio::test]
async fn an_http2_request_open_past_the_header_deadline_is_answered() {
    let server = holding_server(Duration::from_secs(20), |c| {
        c.header_timeout = Duration::from_millis(300)
    })
    .await;
    let client = http2_client(tokio::net::TcpStream::connect(server.addr).await.unwrap()).await;
    let asked = tokio::spawn(http2_call(client, "POST", "/tx", whole("")));
    tokio::time::sleep(Duration::from_millis(900)).await;
    server.committed.store(true, std::sync::atomic::Ordering::SeqCst);
    server.changes.notify_waiters();
    let answered = tokio::time::timeout(Duration::from_secs(5), asked)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (answered.status, answered.body.as_str()),
        (200, "committed"),
        "{answered:?}"
    );
}

/// An HTTP/2 stream whose body stalls gets a 408 at the body deadline, and the connection's
/// other streams are served on.
#[tokio::test]
async fn a_stalled_http2_body_gets_408_and_the_connection_serves_on() {
    use http_body_util::BodyExt;
    let addr = start_plain(|config| config.body_timeout = Duration::from_millis(300)).await;
    let client = http2_client(tokio::net::TcpStream::connect(addr).await.unwrap()).await;
    let started = Instant::now();
    let stalled = http2_call(client.clone(), "POST", "/slow", Stalling { sent: false }.boxed()).await;
    assert_eq!(
        (stalled.version, stalled.status),
        (hyper::Version::HTTP_2, 408),
        "{stalled:?}"
    );
    assert!(
        stalled.body.contains("body"),
        "the answer names the problem: {stalled:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    let next = http2_call(client, "POST", "/fine", whole("ab")).await;
    assert_eq!((next.status, next.body.as_str()), (200, "2 bytes\n"));
}

/// HTTP/2 streams wait in the same bounded queue as HTTP/1.1 requests: past the bound a stream
/// is answered 503 with `Retry-After` at once and never reaches the service.
#[tokio::test]
async fn http2_streams_share_the_waiting_bound() {
    let busy = busy_server(|config| {
        config.requests_waiting_max = 2;
        config.busy_retry_after_s = 3;
    })
    .await;
    let client = http2_client(tokio::net::TcpStream::connect(busy.addr).await.unwrap()).await;
    // The service is busy with /slow: one more may wait; of these three streams, two are refused.
    let streams: Vec<_> = (0..3)
        .map(|_| tokio::spawn(http2_call(client.clone(), "POST", "/write", whole(""))))
        .collect();
    let refused = answered_at_once(streams, 2).await;
    for answered in &refused {
        assert_eq!((answered.version, answered.status), (hyper::Version::HTTP_2, 503));
        assert_eq!(answered.retry_after.as_deref(), Some("3"));
        assert!(answered.body.contains("was not processed"), "{answered:?}");
    }
    assert_eq!(busy.load.figures().refused_busy, 2);
    busy.release.send(()).unwrap();
    assert!(busy.slow.await.unwrap().starts_with("HTTP/1.1 200"));
    assert_answered(&busy.answered, 2).await;
}

/// Answers `/tx` 202, marked pending for `hold`; betters it with a 200 once `committed` is set.
/// Counts the last calls it is asked.
struct Committing {
    hold: Duration,
    committed: Arc<std::sync::atomic::AtomicBool>,
    last_calls: Arc<std::sync::atomic::AtomicUsize>,
}

impl HttpService for Committing {
    fn handle(&mut self, _request: &HttpRequest, now: WallTime) -> HttpResponse {
        let until = WallTime::from_unix_nanos(now.as_unix_nanos() + self.hold.as_nanos() as i64);
        HttpResponse::new(202, "text/plain", "taken")
            .with_header("x-first", "kept")
            .pending("tx-1", until)
    }

    fn resume(&mut self, first: &HttpResponse, _now: WallTime, last: bool) -> Option<HttpResponse> {
        if first.pending.as_ref().map(|p| p.token.as_str()) != Some("tx-1") {
            return Some(HttpResponse::new(500, "text/plain", "asked about another answer"));
        }
        if last {
            self.last_calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        self.committed
            .load(std::sync::atomic::Ordering::SeqCst)
            .then(|| HttpResponse::new(200, "text/plain", "committed"))
    }
}

/// A plain server of [`Committing`], tuned: its address, its change notifier, its load, the
/// commit flag and the count of last calls.
struct Holding {
    addr: SocketAddr,
    changes: Arc<tokio::sync::Notify>,
    load: Arc<runtime_tokio::ServerLoad>,
    committed: Arc<std::sync::atomic::AtomicBool>,
    last_calls: Arc<std::sync::atomic::AtomicUsize>,
}

async fn holding_server(hold: Duration, tune: impl FnOnce(&mut HttpsConfig)) -> Holding {
    let committed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let last_calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let service = Committing {
        hold,
        committed: committed.clone(),
        last_calls: last_calls.clone(),
    };
    let mut config = HttpsConfig::new("[::1]:0".parse().unwrap());
    config.answer_inline = true;
    tune(&mut config);
    let changes = Arc::new(tokio::sync::Notify::new());
    let server = HttpsServer::bind_plain(config, Arc::new(Mutex::new(service)))
        .unwrap()
        .with_changes(changes.clone());
    let holding = Holding {
        addr: server.local_addr().unwrap(),
        changes,
        load: server.load(),
        committed,
        last_calls,
    };
    tokio::spawn(server.serve(std::future::pending()));
    holding
}

/// A pending answer is held until a notified change lets the service better it: the client
/// reads the better answer, sooner than the server's own interval would have found it.
#[tokio::test]
async fn a_held_answer_is_bettered_once_a_change_is_notified() {
    let server = holding_server(Duration::from_secs(20), |c| c.resume_interval = Duration::from_secs(10)).await;
    let asked = tokio::spawn(plain_get(server.addr, "/tx"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!asked.is_finished(), "answered before the commit");
    assert_eq!(server.load.figures().held, 1);
    server.committed.store(true, std::sync::atomic::Ordering::SeqCst);
    let notified = Instant::now();
    server.changes.notify_waiters();
    let answer = tokio::time::timeout(Duration::from_secs(5), asked)
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("committed"), "{answer}");
    assert!(
        notified.elapsed() < Duration::from_secs(2),
        "took {:?}",
        notified.elapsed()
    );
    assert_eq!(server.load.figures().held, 0);
    assert_eq!(server.last_calls.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// Without a notification, the server's interval finds the better answer.
#[tokio::test]
async fn a_held_answer_is_asked_about_again_at_the_interval() {
    let server = holding_server(Duration::from_secs(20), |c| {
        c.resume_interval = Duration::from_millis(50)
    })
    .await;
    let asked = tokio::spawn(plain_get(server.addr, "/tx"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.committed.store(true, std::sync::atomic::Ordering::SeqCst);
    let answer = tokio::time::timeout(Duration::from_secs(5), asked)
        .await
        .unwrap()
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// Nothing better by the mark's time: the service is asked a last time, once, and the first
/// answer is sent, its headers as given.
#[tokio::test]
async fn at_its_time_a_held_answer_is_sent_as_first_given() {
    let server = holding_server(Duration::from_millis(400), |c| {
        c.resume_interval = Duration::from_millis(50)
    })
    .await;
    let started = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(5), plain_get(server.addr, "/tx"))
        .await
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    assert!(answer.contains("x-first: kept"), "{answer}");
    assert!(
        started.elapsed() >= Duration::from_millis(350),
        "sent after {:?}",
        started.elapsed()
    );
    assert_eq!(server.last_calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(server.load.figures().held, 0);
}

/// Past `held_max`, a pending answer is not held: the service has its last word at once.
#[tokio::test]
async fn past_the_held_bound_a_pending_answer_is_sent_at_once() {
    let server = holding_server(Duration::from_secs(20), |c| c.held_max = 1).await;
    let first = tokio::spawn(plain_get(server.addr, "/tx"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.load.figures().held, 1);
    let second = tokio::time::timeout(Duration::from_secs(2), plain_get(server.addr, "/tx"))
        .await
        .expect("sent at once, not held");
    assert!(second.starts_with("HTTP/1.1 202"), "{second}");
    assert_eq!(server.last_calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    server.committed.store(true, std::sync::atomic::Ordering::SeqCst);
    server.changes.notify_waiters();
    let first = tokio::time::timeout(Duration::from_secs(5), first)
        .await
        .unwrap()
        .unwrap();
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
}

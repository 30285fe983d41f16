//! An HTTPS/1.1 client for the stack's own services: trusts only the roots it is given (a
//! TrustChain root, not the system's store), one request per connection, bounded answers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpsClientError {
    /// A root certificate rustls cannot use, or a server name that is not one.
    #[error("client setup: {0}")]
    Setup(String),
    /// Connecting, the TLS handshake (including verifying the server's certificate), or HTTP failed.
    #[error("request to {addr} failed: {reason}")]
    Failed {
        /// The server.
        addr: SocketAddr,
        /// What went wrong.
        reason: String,
    },
    /// No answer in time.
    #[error("request to {addr} timed out after {after:?}")]
    TimedOut {
        /// The server.
        addr: SocketAddr,
        /// The deadline.
        after: Duration,
    },
}

/// A client of one HTTPS service.
#[derive(Clone)]
pub struct HttpsClient {
    connector: TlsConnector,
    server_name: ServerName<'static>,
    addr: SocketAddr,
    /// The whole exchange (connect, handshake, request, answer) must end within this.
    pub timeout: Duration,
    /// Answers above this many bytes are refused.
    pub response_bytes_max: usize,
}

impl std::fmt::Debug for HttpsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsClient")
            .field("addr", &self.addr)
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl HttpsClient {
    /// A client of the server at `addr`, whose certificate must chain to one of `roots` (DER)
    /// and name `server_name` (a DNS name or an IP address). 10 s timeout, 1 MiB answers.
    pub fn new(addr: SocketAddr, server_name: &str, roots: &[Vec<u8>]) -> Result<Self, HttpsClientError> {
        let mut store = rustls::RootCertStore::empty();
        for root in roots {
            store
                .add(CertificateDer::from(root.clone()))
                .map_err(|e| HttpsClientError::Setup(format!("root certificate refused: {e}")))?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| HttpsClientError::Setup(e.to_string()))?
            .with_root_certificates(store)
            .with_no_client_auth();
        let server_name = ServerName::try_from(server_name.to_owned())
            .map_err(|_| HttpsClientError::Setup(format!("{server_name:?} is not a DNS name or IP address")))?;
        Ok(HttpsClient {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
            addr,
            timeout: Duration::from_secs(10),
            response_bytes_max: 1 << 20,
        })
    }

    /// Sends `method target` with `body` on a new connection; returns the status and body.
    pub async fn call(
        &self,
        method: &str,
        target: &str,
        body: impl Into<Bytes>,
    ) -> Result<(u16, Bytes), HttpsClientError> {
        let body = body.into();
        match tokio::time::timeout(self.timeout, self.exchange(method, target, body)).await {
            Ok(result) => result,
            Err(_) => Err(HttpsClientError::TimedOut {
                addr: self.addr,
                after: self.timeout,
            }),
        }
    }

    async fn exchange(&self, method: &str, target: &str, body: Bytes) -> Result<(u16, Bytes), HttpsClientError> {
        let failed = |reason: String| HttpsClientError::Failed {
            addr: self.addr,
            reason,
        };
        let tcp = TcpStream::connect(self.addr).await.map_err(|e| failed(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let tls = self
            .connector
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| failed(format!("TLS: {e}")))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| failed(e.to_string()))?;
        tokio::spawn(connection);
        let host = match &self.server_name {
            ServerName::DnsName(d) => d.as_ref().to_owned(),
            ServerName::IpAddress(ip) => match std::net::IpAddr::from(*ip) {
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                v4 => v4.to_string(),
            },
            _ => self.addr.to_string(),
        };
        let request = Request::builder()
            .method(method)
            .uri(target)
            .header(hyper::header::HOST, host)
            .body(Full::new(body))
            .map_err(|e| failed(format!("bad request: {e}")))?;
        let response = sender.send_request(request).await.map_err(|e| failed(e.to_string()))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), self.response_bytes_max)
            .collect()
            .await
            .map_err(|e| failed(format!("reading the answer: {e}")))?
            .to_bytes();
        Ok((status, body))
    }
}

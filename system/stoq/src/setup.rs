//! The QUIC configuration of an endpoint, built once from [`StoqConfig`], credentials and trust:
//! quinn-proto's endpoint, server and client configurations over STOQ's rustls settings, with
//! every random draw from the chosen [`Randomness`]. Exposed so another driver can run exactly
//! the same settings (the benchmark's raw-quinn baseline).

use std::sync::{Arc, Mutex};

use quinn_proto::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn_proto::{EndpointConfig, IdleTimeout, TransportConfig, VarInt};
use runtime::DetRng;

use crate::config::{Randomness, StoqConfig};
use crate::endpoint::SetupError;
#[cfg(feature = "bench-plaintext")]
use crate::plaintext::{PlaintextClient, PlaintextServer};
use crate::random::{self, Installed, SeededCids, SharedRng};
use crate::tls::{Credentials, Security, TlsSetupError, Trust};

/// Whether application data is encrypted. Non-exhaustive because the `bench-plaintext` feature
/// adds a variant: a match written without it must still compile where another crate enables it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PacketProtection {
    /// As QUIC requires: AEAD on every packet (AES-GCM or ChaCha20-Poly1305, rustls on ring).
    Encrypted,
    /// **Benchmarks only**, behind the `bench-plaintext` feature: authenticated handshake, then
    /// plaintext application data, to measure what encryption costs. Never on a real network,
    /// and absent from production builds.
    #[cfg(feature = "bench-plaintext")]
    PlaintextForBenchmarks,
}

/// quinn-proto configurations for one endpoint, and the TLS state behind them.
pub struct QuicSetup {
    /// Endpoint-wide settings (reset key, connection-ID generator, rng seed).
    pub endpoint: EndpointConfig,
    /// What incoming connections get.
    pub server: quinn_proto::ServerConfig,
    /// What outgoing connections get.
    pub client: quinn_proto::ClientConfig,
    pub(crate) security: Security,
    pub(crate) rng: Option<SharedRng>,
}

impl QuicSetup {
    /// Builds the configurations. Validates `config` first.
    pub fn new(
        config: &StoqConfig,
        credentials: Option<&Credentials>,
        trust: Trust,
        protection: PacketProtection,
    ) -> Result<Self, SetupError> {
        config.validate()?;
        let rng = match config.randomness {
            Randomness::Os => None,
            Randomness::Seeded(seed) => Some(Arc::new(Mutex::new(DetRng::seed_from_u64(seed)))),
        };
        let _installed = Installed::new(rng.as_ref());
        let security = Security::new(random::provider(rng.is_some()), credentials, trust)?;
        let key_error = |_| TlsSetupError::Config("no randomness for keys".into());
        let transport = Arc::new(transport_config(config));

        let reset_key = random::key_bytes::<32>(rng.as_ref()).map_err(key_error)?;
        let mut endpoint = EndpointConfig::new(Arc::new(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &reset_key)));
        // Every QUIC packet keeps its fixed bit (0x40) set, so a datagram whose first byte lacks
        // it is not QUIC: that is how [`crate::Stoq`] tells its bare channels (bytes below 0x40,
        // as RFC 9443 multiplexes) from QUIC on one socket. Greasing (RFC 9287) would clear it at
        // random in packets sent to us.
        endpoint.grease_quic_bit(false);
        if let Some(rng) = &rng {
            let seed = random::key_bytes::<32>(Some(rng)).map_err(key_error)?;
            endpoint.rng_seed(Some(seed));
            let cids = rng.clone();
            endpoint.cid_generator(move || Box::new(SeededCids { rng: cids.clone() }));
        }

        let token_key = random::key_bytes::<64>(rng.as_ref()).map_err(key_error)?;
        let token_key = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, &[]).extract(&token_key);
        let server_tls: Arc<dyn quinn_proto::crypto::ServerConfig> = Arc::new(
            QuicServerConfig::try_from(security.server_config()?).map_err(|e| TlsSetupError::Config(e.to_string()))?,
        );
        let server_tls = match protection {
            PacketProtection::Encrypted => server_tls,
            #[cfg(feature = "bench-plaintext")]
            PacketProtection::PlaintextForBenchmarks => Arc::new(PlaintextServer(server_tls)),
        };
        let mut server = quinn_proto::ServerConfig::new(server_tls, Arc::new(token_key));
        server.transport_config(transport.clone());
        // No address-validation tokens: they would be stored and checked across connections
        // (and quinn's token log is a randomly keyed bloom filter).
        server.validation_token_config(quinn_proto::ValidationTokenConfig::default().sent(0).clone());
        server.migration(false);
        server.max_incoming(config.connections_max);

        let client_tls: Arc<dyn quinn_proto::crypto::ClientConfig> = Arc::new(
            QuicClientConfig::try_from(security.client_config()?).map_err(|e| TlsSetupError::Config(e.to_string()))?,
        );
        let client_tls = match protection {
            PacketProtection::Encrypted => client_tls,
            #[cfg(feature = "bench-plaintext")]
            PacketProtection::PlaintextForBenchmarks => Arc::new(PlaintextClient(client_tls)),
        };
        let mut client = quinn_proto::ClientConfig::new(client_tls);
        client.transport_config(transport);
        if let Some(rng) = &rng {
            let cids = rng.clone();
            client.initial_dst_cid_provider(Arc::new(move || random::initial_cid(&cids)));
        }
        Ok(QuicSetup {
            endpoint,
            server,
            client,
            security,
            rng,
        })
    }

    /// The shared TLS state: present renewed credentials or trust a new bundle through it.
    pub fn security(&self) -> &Security {
        &self.security
    }
}

/// Bytes of received DATAGRAM frames a connection holds until the endpoint takes them (past it
/// quinn-proto drops the oldest). It bounds what a peer's unreliable messages occupy while its
/// identity is not verified yet, when the endpoint reads nothing from it; quinn-proto's default,
/// named here.
pub(crate) const DATAGRAM_RECEIVE_BYTES_MAX: usize = 1_250_000;

fn transport_config(config: &StoqConfig) -> TransportConfig {
    let mut t = TransportConfig::default();
    t.datagram_receive_buffer_size(Some(DATAGRAM_RECEIVE_BYTES_MAX));
    t.max_concurrent_bidi_streams(VarInt::from_u32(config.streams_max));
    t.max_concurrent_uni_streams(VarInt::from_u32(config.streams_max));
    t.stream_receive_window(VarInt::from_u32(config.stream_window));
    t.receive_window(VarInt::from_u32(config.connection_window));
    t.send_window(config.send_window);
    // validate() bounds the timeout well inside QUIC's varint range.
    let idle = VarInt::from_u64(config.idle_timeout.as_millis() as u64).unwrap_or(VarInt::MAX);
    t.max_idle_timeout(Some(IdleTimeout::from(idle)));
    t.keep_alive_interval(Some(config.keep_alive));
    t.initial_rtt(config.initial_rtt);
    if !config.mtu_discovery {
        t.mtu_discovery_config(None);
    }
    t
}

//! Packet protection switched off after the handshake, **for benchmarks only**: it separates
//! the cost of encryption from the rest of the transport. The TLS handshake still runs and
//! authenticates both peers; only the 1-RTT packets (application data) are then sent as
//! plaintext with a zero tag, and header protection is skipped. Both ends must use it. Never on
//! a real network: anyone on the path can read and forge application data.

use std::any::Any;
use std::sync::Arc;

use bytes::BytesMut;
use quinn_proto::crypto::{
    ClientConfig, CryptoError, ExportKeyingMaterialError, HeaderKey, KeyPair, Keys, PacketKey, ServerConfig, Session,
    UnsupportedVersion,
};
use quinn_proto::transport_parameters::TransportParameters;
use quinn_proto::{ConnectError, ConnectionId, Side, TransportError};

/// The tag length of AES-GCM and ChaCha20-Poly1305, kept so packet sizes are unchanged.
const TAG_BYTES: usize = 16;

struct NullPacketKey;

impl PacketKey for NullPacketKey {
    fn encrypt(&self, _packet: u64, buf: &mut [u8], _header_len: usize) {
        let len = buf.len();
        buf[len - TAG_BYTES..].fill(0);
    }

    fn decrypt(&self, _packet: u64, _header: &[u8], payload: &mut BytesMut) -> Result<(), CryptoError> {
        let plain = payload.len().checked_sub(TAG_BYTES).ok_or(CryptoError)?;
        payload.truncate(plain);
        Ok(())
    }

    fn tag_len(&self) -> usize {
        TAG_BYTES
    }

    fn confidentiality_limit(&self) -> u64 {
        u64::MAX
    }

    fn integrity_limit(&self) -> u64 {
        u64::MAX
    }
}

struct NullHeaderKey;

impl HeaderKey for NullHeaderKey {
    fn decrypt(&self, _pn_offset: usize, _packet: &mut [u8]) {}
    fn encrypt(&self, _pn_offset: usize, _packet: &mut [u8]) {}
    fn sample_size(&self) -> usize {
        16
    }
}

fn null_pair<T, F: Fn() -> T>(f: F) -> KeyPair<T> {
    KeyPair {
        local: f(),
        remote: f(),
    }
}

/// A TLS session whose 1-RTT keys are replaced by null ones.
struct PlaintextSession {
    inner: Box<dyn Session>,
    key_changes: u8,
}

impl Session for PlaintextSession {
    fn initial_keys(&self, dst_cid: &ConnectionId, side: Side) -> Keys {
        self.inner.initial_keys(dst_cid, side)
    }
    fn handshake_data(&self) -> Option<Box<dyn Any>> {
        self.inner.handshake_data()
    }
    fn peer_identity(&self) -> Option<Box<dyn Any>> {
        self.inner.peer_identity()
    }
    fn early_crypto(&self) -> Option<(Box<dyn HeaderKey>, Box<dyn PacketKey>)> {
        None
    }
    fn early_data_accepted(&self) -> Option<bool> {
        self.inner.early_data_accepted()
    }
    fn is_handshaking(&self) -> bool {
        self.inner.is_handshaking()
    }
    fn read_handshake(&mut self, buf: &[u8]) -> Result<bool, TransportError> {
        self.inner.read_handshake(buf)
    }
    fn transport_parameters(&self) -> Result<Option<TransportParameters>, TransportError> {
        self.inner.transport_parameters()
    }
    fn write_handshake(&mut self, buf: &mut Vec<u8>) -> Option<Keys> {
        let keys = self.inner.write_handshake(buf)?;
        self.key_changes += 1;
        // TLS 1.3 changes keys twice: to handshake keys, then to 1-RTT (application) keys.
        if self.key_changes < 2 {
            return Some(keys);
        }
        Some(Keys {
            header: null_pair(|| Box::new(NullHeaderKey) as Box<dyn HeaderKey>),
            packet: null_pair(|| Box::new(NullPacketKey) as Box<dyn PacketKey>),
        })
    }
    fn next_1rtt_keys(&mut self) -> Option<KeyPair<Box<dyn PacketKey>>> {
        self.inner.next_1rtt_keys()?;
        Some(null_pair(|| Box::new(NullPacketKey) as Box<dyn PacketKey>))
    }
    fn is_valid_retry(&self, orig_dst_cid: &ConnectionId, header: &[u8], payload: &[u8]) -> bool {
        self.inner.is_valid_retry(orig_dst_cid, header, payload)
    }
    fn export_keying_material(
        &self,
        output: &mut [u8],
        label: &[u8],
        context: &[u8],
    ) -> Result<(), ExportKeyingMaterialError> {
        self.inner.export_keying_material(output, label, context)
    }
}

/// A client configuration whose sessions send application data unencrypted.
pub(crate) struct PlaintextClient(pub(crate) Arc<dyn ClientConfig>);

impl ClientConfig for PlaintextClient {
    fn start_session(
        self: Arc<Self>,
        version: u32,
        server_name: &str,
        params: &TransportParameters,
    ) -> Result<Box<dyn Session>, ConnectError> {
        let inner = self.0.clone().start_session(version, server_name, params)?;
        Ok(Box::new(PlaintextSession { inner, key_changes: 0 }))
    }
}

/// A server configuration whose sessions send application data unencrypted.
pub(crate) struct PlaintextServer(pub(crate) Arc<dyn ServerConfig>);

impl ServerConfig for PlaintextServer {
    fn initial_keys(&self, version: u32, dst_cid: &ConnectionId) -> Result<Keys, UnsupportedVersion> {
        self.0.initial_keys(version, dst_cid)
    }
    fn retry_tag(&self, version: u32, orig_dst_cid: &ConnectionId, packet: &[u8]) -> [u8; 16] {
        self.0.retry_tag(version, orig_dst_cid, packet)
    }
    fn start_session(self: Arc<Self>, version: u32, params: &TransportParameters) -> Box<dyn Session> {
        let inner = self.0.clone().start_session(version, params);
        Box::new(PlaintextSession { inner, key_changes: 0 })
    }
}

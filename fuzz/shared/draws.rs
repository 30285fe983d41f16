//! Structured fuzz input for the wire targets, shared by the membership and TrustChain
//! properties (each includes this file with `#[path]` and adds the draws its messages need).

/// Reads fuzz input as a sequence of choices; past its end every draw is zero, so any input
/// yields a complete message.
pub struct Draws<'a>(pub &'a [u8]);

impl Draws<'_> {
    /// The next `N` bytes (zeros past the end).
    pub fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0; N];
        let n = N.min(self.0.len());
        out[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        out
    }
    /// The next byte.
    pub fn u8(&mut self) -> u8 {
        self.bytes::<1>()[0]
    }
    /// The next big-endian `u32`.
    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.bytes())
    }
    /// The next big-endian `u64`.
    pub fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.bytes())
    }
}

/// Applies up to `edits_max` edits of 4 bytes each (operation, position as `u16`, value) to
/// `datagram`, never touching its first `header_bytes` (magic and version), so the edits reach
/// the body decoders instead of failing the header check.
pub fn edit(mut datagram: Vec<u8>, edits: &[u8], header_bytes: usize, edits_max: usize) -> Vec<u8> {
    for e in edits.chunks_exact(4).take(edits_max) {
        let body_len = datagram.len() - header_bytes;
        let at = header_bytes + usize::from(u16::from_be_bytes([e[1], e[2]])) % (body_len + 1);
        match e[0] % 4 {
            0 if at < datagram.len() => datagram[at] ^= e[3],
            1 if at < datagram.len() => datagram[at] = e[3],
            2 => datagram.truncate(at),
            3 => datagram.insert(at, e[3]),
            _ => {}
        }
    }
    datagram
}

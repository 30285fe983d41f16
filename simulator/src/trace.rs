//! The determinism auditor: every dispatched event is folded into a running hash, and optionally
//! written out as a JSON line for replay and debugging.

use std::io::Write;

use serde::Serialize;

/// A 128-bit running hash over the event stream. Not cryptographic: it detects accidental
/// divergence between two runs, and is defined by this code alone (not by `std`'s hasher, whose
/// algorithm may change between toolchains).
#[derive(Clone, Debug)]
pub struct TraceHasher {
    a: u64,
    b: u64,
    events: u64,
}

const K1: u64 = 0x9E37_79B9_7F4A_7C15;
const K2: u64 = 0xC2B2_AE3D_27D4_EB4F;

fn fold(x: u64) -> u64 {
    let x = (x ^ (x >> 33)).wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    let x = (x ^ (x >> 33)).wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    x ^ (x >> 33)
}

impl Default for TraceHasher {
    fn default() -> Self {
        TraceHasher {
            a: K1,
            b: K2,
            events: 0,
        }
    }
}

impl TraceHasher {
    /// Folds one word.
    pub fn word(&mut self, w: u64) {
        self.a = (self.a ^ w).wrapping_mul(K1).rotate_left(29);
        self.b = (self.b.wrapping_add(w)).rotate_left(31).wrapping_mul(K2) ^ self.a;
    }

    /// Folds a byte string, length first so boundaries count.
    pub fn bytes(&mut self, data: &[u8]) {
        self.word(data.len() as u64);
        let mut chunks = data.chunks_exact(8);
        for c in &mut chunks {
            self.word(u64::from_le_bytes(c.try_into().expect("chunk of 8")));
        }
        let mut tail = [0u8; 8];
        let rest = chunks.remainder();
        tail[..rest.len()].copy_from_slice(rest);
        self.word(u64::from_le_bytes(tail));
    }

    /// Marks the end of one event.
    pub fn end_event(&mut self) {
        self.events += 1;
        self.word(self.events);
    }

    /// Events folded so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The hash so far as 32 hex digits.
    pub fn hex(&self) -> String {
        format!("{:016x}{:016x}", fold(self.a ^ self.events), fold(self.b ^ K1))
    }
}

/// One event as written to a `--trace` file.
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TraceEvent<'a> {
    /// A node (re)started.
    Start {
        /// True time, ns.
        t: u64,
        /// Node index.
        node: u32,
    },
    /// A datagram reached a node's actor.
    Deliver {
        /// True time, ns.
        t: u64,
        /// Sender.
        from: u32,
        /// Receiver.
        to: u32,
        /// Payload length.
        bytes: usize,
    },
    /// A datagram was dropped.
    Drop {
        /// True time, ns.
        t: u64,
        /// Sender.
        from: u32,
        /// Intended receiver.
        to: u32,
        /// Why.
        reason: &'static str,
    },
    /// A timer fired.
    Timer {
        /// True time, ns.
        t: u64,
        /// Node.
        node: u32,
        /// Its token.
        token: u64,
    },
    /// An actor recorded a probe.
    Probe {
        /// True time, ns.
        t: u64,
        /// Node.
        node: u32,
        /// The protocol that recorded it (empty for an actor running alone).
        protocol: &'static str,
        /// Probe name.
        name: &'static str,
        /// Subject.
        subject: u64,
        /// Value.
        value: i64,
    },
    /// A scheduled fault fired.
    Fault {
        /// True time, ns.
        t: u64,
        /// Fault kind.
        fault: &'static str,
        /// Detail.
        detail: &'a str,
        /// What it changed (nodes, cuts, link models); 0 if nothing.
        effects: u64,
    },
}

/// Writes trace events as JSON lines; write errors are remembered and reported once at the end,
/// so a full disk never changes what the run computes.
pub struct TraceWriter {
    out: Box<dyn Write>,
    error: Option<std::io::Error>,
}

impl TraceWriter {
    /// A writer to `out`.
    pub fn new(out: Box<dyn Write>) -> Self {
        TraceWriter { out, error: None }
    }

    /// Appends `event`.
    pub fn write(&mut self, event: &TraceEvent<'_>) {
        if self.error.is_some() {
            return;
        }
        let result = serde_json::to_writer(&mut self.out, event)
            .map_err(std::io::Error::from)
            .and_then(|()| self.out.write_all(b"\n"));
        if let Err(e) = result {
            self.error = Some(e);
        }
    }

    /// Flushes, returning the first error met.
    pub fn finish(mut self) -> std::io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_depends_on_order_and_content() {
        let mut a = TraceHasher::default();
        a.word(1);
        a.word(2);
        let mut b = TraceHasher::default();
        b.word(2);
        b.word(1);
        assert_ne!(a.hex(), b.hex());
        let mut c = TraceHasher::default();
        c.bytes(b"abc");
        let mut d = TraceHasher::default();
        d.bytes(b"abd");
        assert_ne!(c.hex(), d.hex());
    }

    #[test]
    fn hash_of_nothing_is_pinned() {
        // Pinned so that a change to the hash itself, which would silently make every recorded
        // trace_hash incomparable, fails here first.
        assert_eq!(TraceHasher::default().hex(), "9ca066f1a4ab2eea8d8c0f1935b22218");
        let mut h = TraceHasher::default();
        h.bytes(b"testbed");
        h.end_event();
        assert_eq!(h.hex(), "0d7b85229f711b2fb7fdcad148c26132");
    }
}

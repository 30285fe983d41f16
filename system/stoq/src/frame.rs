//! Length-prefixed framing on QUIC streams: a 4-byte big-endian length, then the payload.
//!
//! Sending never copies a payload: the header is its own small `Bytes` written beside it
//! (quinn-proto takes a list of chunks). Receiving hands out a slice of the received chunk when a
//! frame lies within one (the common case for frames smaller than a packet); a frame that spans
//! chunks is assembled once, into a buffer of exactly its size.

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};

/// Bytes of the length prefix.
pub const HEADER_BYTES: usize = 4;

/// No configuration may raise the frame limit above this (1 GiB): a larger length prefix is a
/// corrupted stream, not a message.
pub const FRAME_BYTES_LIMIT: u32 = 1 << 30;

/// A stream whose bytes do not make frames.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix announces more than the limit.
    #[error("frame of {len} bytes announced, above the {max}-byte limit (frame_bytes_max)")]
    TooLarge {
        /// Announced length.
        len: u32,
        /// The limit.
        max: u32,
    },
    /// The stream ended inside a frame.
    #[error("stream ended {missing} bytes short of a complete frame")]
    Truncated {
        /// Bytes the frame still lacked.
        missing: usize,
    },
    /// More frames than the stream's kind allows (a request or response is one frame).
    #[error("unexpected data after the frame: a request or a response is exactly one frame")]
    TrailingData,
}

/// The header for a payload of `len` bytes.
pub fn header(len: usize) -> Bytes {
    // Callers check `len` against frame_bytes_max (≤ 1 GiB) first, so it fits in u32.
    Bytes::copy_from_slice(&(len as u32).to_be_bytes())
}

/// Reassembles frames from the chunks a stream delivers.
#[derive(Debug)]
pub struct FrameReader {
    chunks: VecDeque<Bytes>,
    buffered: usize,
    max: u32,
}

impl FrameReader {
    /// A reader refusing frames above `max` bytes.
    pub fn new(max: u32) -> Self {
        FrameReader {
            chunks: VecDeque::new(),
            buffered: 0,
            max,
        }
    }

    /// Bytes received and not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Adds a received chunk.
    pub fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.buffered += chunk.len();
            self.chunks.push_back(chunk);
        }
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<Bytes>, FrameError> {
        if self.buffered < HEADER_BYTES {
            return Ok(None);
        }
        let mut len_bytes = [0u8; HEADER_BYTES];
        self.peek(&mut len_bytes);
        let len = u32::from_be_bytes(len_bytes);
        if len > self.max {
            return Err(FrameError::TooLarge { len, max: self.max });
        }
        let len = len as usize;
        if self.buffered < HEADER_BYTES + len {
            return Ok(None);
        }
        self.skip(HEADER_BYTES);
        Ok(Some(self.take(len)))
    }

    /// Refuses the buffered frame now if its header announces more than the limit, without
    /// consuming anything (a one-frame stream is read at its end, but refused at its header).
    pub fn check_pending(&self) -> Result<(), FrameError> {
        if self.buffered < HEADER_BYTES {
            return Ok(());
        }
        let mut len_bytes = [0u8; HEADER_BYTES];
        self.peek(&mut len_bytes);
        let len = u32::from_be_bytes(len_bytes);
        if len > self.max {
            return Err(FrameError::TooLarge { len, max: self.max });
        }
        Ok(())
    }

    /// Checks that the stream ended on a frame boundary.
    pub fn finish(&self) -> Result<(), FrameError> {
        if self.buffered == 0 {
            return Ok(());
        }
        let missing = if self.buffered < HEADER_BYTES {
            HEADER_BYTES - self.buffered
        } else {
            let mut len_bytes = [0u8; HEADER_BYTES];
            self.peek(&mut len_bytes);
            (HEADER_BYTES + u32::from_be_bytes(len_bytes) as usize).saturating_sub(self.buffered)
        };
        Err(FrameError::Truncated { missing })
    }

    fn peek(&self, out: &mut [u8]) {
        let mut filled = 0;
        for chunk in &self.chunks {
            let n = (out.len() - filled).min(chunk.len());
            out[filled..filled + n].copy_from_slice(&chunk[..n]);
            filled += n;
            if filled == out.len() {
                return;
            }
        }
    }

    fn skip(&mut self, mut n: usize) {
        self.buffered -= n;
        while n > 0 {
            let front = self.chunks.front_mut().expect("skip within buffered bytes");
            if front.len() <= n {
                n -= front.len();
                self.chunks.pop_front();
            } else {
                front.advance(n);
                n = 0;
            }
        }
    }

    fn take(&mut self, len: usize) -> Bytes {
        self.buffered -= len;
        let front = match self.chunks.front_mut() {
            Some(front) => front,
            None => return Bytes::new(),
        };
        if front.len() >= len {
            let frame = front.split_to(len);
            if front.is_empty() {
                self.chunks.pop_front();
            }
            return frame;
        }
        let mut frame = BytesMut::with_capacity(len);
        while frame.len() < len {
            let front = self.chunks.front_mut().expect("take within buffered bytes");
            let n = (len - frame.len()).min(front.len());
            frame.extend_from_slice(&front[..n]);
            if n == front.len() {
                self.chunks.pop_front();
            } else {
                front.advance(n);
            }
        }
        frame.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(payloads: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            out.extend_from_slice(&header(p.len()));
            out.extend_from_slice(p);
        }
        out
    }

    #[test]
    fn frames_survive_any_chunking() {
        let payloads: [&[u8]; 4] = [b"hello", b"", b"a longer payload of some bytes", &[7u8; 300]];
        let wire = framed(&payloads);
        for cut in 1..wire.len() {
            let mut r = FrameReader::new(1024);
            let mut got = Vec::new();
            for piece in wire.chunks(cut) {
                r.push(Bytes::copy_from_slice(piece));
                while let Some(f) = r.next_frame().unwrap() {
                    got.push(f);
                }
            }
            assert_eq!(
                got,
                payloads.iter().map(|p| Bytes::copy_from_slice(p)).collect::<Vec<_>>()
            );
            assert!(r.finish().is_ok());
        }
    }

    #[test]
    fn a_frame_within_one_chunk_is_a_slice_of_it() {
        let wire = Bytes::from(framed(&[b"zero copy"]));
        let mut r = FrameReader::new(1024);
        r.push(wire.clone());
        let f = r.next_frame().unwrap().unwrap();
        assert_eq!(f.as_ptr(), wire[HEADER_BYTES..].as_ptr());
    }

    #[test]
    fn oversized_and_truncated_frames_are_named() {
        let mut r = FrameReader::new(8);
        r.push(Bytes::from(framed(&[&[0u8; 9]])));
        assert_eq!(r.next_frame(), Err(FrameError::TooLarge { len: 9, max: 8 }));
        let mut r = FrameReader::new(64);
        let wire = framed(&[b"truncated"]);
        r.push(Bytes::copy_from_slice(&wire[..7]));
        assert_eq!(r.next_frame(), Ok(None));
        assert_eq!(r.finish(), Err(FrameError::Truncated { missing: 6 }));
    }
}

//! What the STOQ frame fuzz target checks, stated once: compiled into this crate's corpus replay
//! (`tests/fuzz_corpus.rs`) and into the fuzz target (`fuzz/src/lib.rs` includes this file), so
//! the fuzzer and CI hold the frame reader to the same property.
//!
//! The property: however a stream's bytes are cut into chunks, [`FrameReader`] hands out the
//! frames, and refuses the oversized frame, that reading the whole stream at once finds; it never
//! panics; its `buffered` count, `check_pending` and `finish` agree with that reading.

use bytes::Bytes;
use stoq::frame::{FrameError, FrameReader, FRAME_BYTES_LIMIT, HEADER_BYTES};

/// The frame limits an input chooses from (its first byte): none, tiny, small, and the largest.
const LIMITS: [u32; 6] = [0, 1, 7, 64, 1024, FRAME_BYTES_LIMIT];

/// Most chunk lengths an input gives; they repeat until the stream is used up.
const CUTS_MAX: u8 = 32;

/// Reads `input` as: a limit choice byte, a cut count `n` byte, `n` cut bytes, then the stream.
/// A cut byte `c` makes a chunk of `c % 128 + 1` bytes, preceded by an empty chunk if `c >= 128`.
pub fn frames_survive_any_chunking(input: &[u8]) {
    let (max, cuts, stream) = parse(input);
    let (expected, refusal) = read_whole(stream, max);
    let mut reader = FrameReader::new(max);
    let mut frames = Vec::new();
    let mut consumed = 0;
    let mut pushed = 0;
    let mut error = None;
    for chunk in chunks(stream, &cuts) {
        pushed += chunk.len();
        reader.push(Bytes::copy_from_slice(chunk));
        assert_eq!(reader.buffered(), pushed - consumed, "buffered after a push");
        let pending = reader.check_pending();
        match read_frames(&mut reader, &mut frames, &mut consumed) {
            Ok(()) => assert_eq!(pending, Ok(()), "check_pending refused a frame next_frame accepted"),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
        assert_eq!(reader.buffered(), pushed - consumed, "buffered after reading frames");
    }
    assert_eq!(frames, expected, "chunked frames differ from the whole stream's");
    assert_eq!(error, refusal, "chunked refusal differs from the whole stream's");
    if error.is_none() {
        let left = stream.len() - consumed;
        let finish = reader.finish();
        if left == 0 {
            assert_eq!(finish, Ok(()), "a stream ending on a frame boundary is complete");
        } else {
            assert_eq!(
                finish,
                Err(FrameError::Truncated {
                    missing: missing(&stream[consumed..])
                })
            );
        }
    }
}

/// Takes frames from `reader` until it wants more bytes, counting the stream bytes they took.
fn read_frames(reader: &mut FrameReader, frames: &mut Vec<Bytes>, consumed: &mut usize) -> Result<(), FrameError> {
    while let Some(frame) = reader.next_frame()? {
        *consumed += HEADER_BYTES + frame.len();
        frames.push(frame);
    }
    Ok(())
}

fn parse(input: &[u8]) -> (u32, Vec<u8>, &[u8]) {
    let (choice, rest) = input.split_first().map_or((0, input), |(c, rest)| (*c, rest));
    let max = LIMITS[usize::from(choice) % LIMITS.len()];
    let (count, rest) = rest
        .split_first()
        .map_or((0, rest), |(c, rest)| (*c % (CUTS_MAX + 1), rest));
    let count = usize::from(count).min(rest.len());
    (max, rest[..count].to_vec(), &rest[count..])
}

/// The stream cut by `cuts` (repeated), or whole if there are none.
fn chunks<'a>(mut stream: &'a [u8], cuts: &[u8]) -> Vec<&'a [u8]> {
    if cuts.is_empty() {
        return vec![stream];
    }
    let mut out = Vec::new();
    for cut in cuts.iter().cycle() {
        if stream.is_empty() {
            break;
        }
        if *cut >= 128 {
            out.push(&stream[..0]);
        }
        let (chunk, rest) = stream.split_at(usize::from(cut % 128 + 1).min(stream.len()));
        out.push(chunk);
        stream = rest;
    }
    out
}

/// The frames of a whole stream read at once, and the refusal that stopped it, if one did.
fn read_whole(stream: &[u8], max: u32) -> (Vec<Bytes>, Option<FrameError>) {
    let mut frames = Vec::new();
    let mut rest = stream;
    while let Some(header) = rest.get(..HEADER_BYTES) {
        let len = u32::from_be_bytes(header.try_into().expect("4 bytes"));
        if len > max {
            return (frames, Some(FrameError::TooLarge { len, max }));
        }
        let Some(payload) = rest.get(HEADER_BYTES..HEADER_BYTES + len as usize) else {
            break;
        };
        frames.push(Bytes::copy_from_slice(payload));
        rest = &rest[HEADER_BYTES + len as usize..];
    }
    (frames, None)
}

/// Bytes an unfinished frame (`rest`, starting at its header) still lacks.
fn missing(rest: &[u8]) -> usize {
    match rest.get(..HEADER_BYTES) {
        None => HEADER_BYTES - rest.len(),
        Some(header) => HEADER_BYTES + u32::from_be_bytes(header.try_into().expect("4 bytes")) as usize - rest.len(),
    }
}

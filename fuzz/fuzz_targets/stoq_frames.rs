//! Arbitrary streams, cut into arbitrary chunks, into `stoq::frame::FrameReader`.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| testbed_fuzz::stoq_frames::frames_survive_any_chunking(input));

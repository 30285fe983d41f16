//! Arbitrary bytes into `hypermesh::consensus::Message::decode`; what decodes is verified
//! against a fixed validator set.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| testbed_fuzz::consensus_wire::decodes_canonically(data));

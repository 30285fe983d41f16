//! Arbitrary datagrams into `hypermesh::membership::wire::Message::decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|datagram: &[u8]| testbed_fuzz::membership_wire::decodes_canonically(datagram));

//! Arbitrary datagrams into `trustchain::node::wire::Message::decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|datagram: &[u8]| testbed_fuzz::trustchain_wire::decodes_consistently(datagram));

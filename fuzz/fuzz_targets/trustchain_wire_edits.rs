//! Valid TrustChain node messages, edited behind the header, into `Message::decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| testbed_fuzz::trustchain_wire::edited_message_decodes_consistently(input));

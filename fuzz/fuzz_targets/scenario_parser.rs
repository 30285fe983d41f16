//! Arbitrary text as a scenario file, into `testbed::scenario::parse`, and what parses printed
//! back and parsed again.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| testbed_fuzz::scenario_parser::scenario_parses_or_names_the_problem(input));

//! The property the `scenario_parser` fuzz target checks, written once: the fuzz package's
//! library and this crate's corpus replay (`tests/scenario_fuzz_corpus.rs`) both compile it.

/// Any text given as a scenario file either parses, and then prints back (`to_toml`) to a file
/// that parses to the same scenario, or is refused with an error naming the file; it never
/// panics.
pub fn scenario_parses_or_names_the_problem(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    match testbed::scenario::parse("fuzz.toml", &text) {
        Ok(scenario) => {
            let printed = testbed::scenario::to_toml(&scenario);
            let mut again = testbed::scenario::parse("printed.toml", &printed)
                .unwrap_or_else(|e| panic!("a parsed scenario printed back does not parse: {e}\n{printed}"));
            again.path = scenario.path.clone();
            again.source = scenario.source.clone();
            assert_eq!(again, scenario, "printed back differently:\n{printed}");
        }
        Err(e) => {
            assert_eq!(e.path, "fuzz.toml", "the error names another file: {e}");
            assert!(!e.message.is_empty(), "an error without a message");
        }
    }
}

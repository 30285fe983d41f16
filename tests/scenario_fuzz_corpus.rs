//! Replays the scenario parser's fuzz corpus (`fuzz/corpus/scenario_parser/`) as a plain test, so
//! CI holds the parser to the fuzz target's property on stable, without a fuzzer. A missing or
//! empty corpus fails: the replay cannot pass by checking nothing.

use std::path::Path;

#[path = "fuzz_corpus/property.rs"]
mod property;

#[path = "../fuzz/shared/corpus.rs"]
mod corpus;

#[test]
fn scenario_parser_corpus_parses_or_names_the_problem() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    corpus::replay(root, "scenario_parser", property::scenario_parses_or_names_the_problem);
}

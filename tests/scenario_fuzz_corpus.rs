//! Replays the scenario parser's fuzz corpus (`fuzz/corpus/scenario_parser/`) as a plain test, so
//! CI holds the parser to the fuzz target's property on stable, without a fuzzer. A missing or
//! empty corpus fails: the replay cannot pass by checking nothing.

use std::path::Path;

#[path = "fuzz_corpus/property.rs"]
mod property;

#[test]
fn scenario_parser_corpus_parses_or_names_the_problem() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/scenario_parser");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("fuzz corpus {}: {e}", dir.display()));
    let mut checked = 0;
    let mut failing = Vec::new();
    for entry in entries {
        let path = entry.expect("corpus directory entry").path();
        let input = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if std::panic::catch_unwind(|| property::scenario_parses_or_names_the_problem(&input)).is_err() {
            failing.push(path.display().to_string());
        }
        checked += 1;
    }
    assert!(checked > 0, "fuzz corpus {} is empty", dir.display());
    assert!(failing.is_empty(), "inputs failing the property: {failing:?}");
}

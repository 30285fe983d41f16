//! Reading a fuzz corpus back, for the replay tests: each owning crate's `tests/fuzz_corpus.rs`
//! (and the root's `tests/scenario_fuzz_corpus.rs`) includes this file with `#[path]`, so CI
//! replays every corpus the same way on stable, without a fuzzer.

use std::path::Path;

/// Every input of `fuzz/corpus/<target>/` under the repository at `root`, with its file name,
/// sorted by name. A missing or empty corpus fails: a replay cannot pass by checking nothing.
pub fn corpus(root: &Path, target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = root.join("fuzz/corpus").join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("fuzz corpus {}: {e}", dir.display()));
    let mut inputs: Vec<_> = entries
        .map(|entry| {
            let path = entry.expect("corpus directory entry").path();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path.file_name().unwrap().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "fuzz corpus {} is empty", dir.display());
    inputs
}

/// Runs `property` on every input of `target`'s corpus and names the inputs that fail it.
pub fn replay(root: &Path, target: &str, mut property: impl FnMut(&[u8])) {
    let failing: Vec<String> = corpus(root, target)
        .into_iter()
        .filter(|(_, input)| std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| property(input))).is_err())
        .map(|(name, _)| name)
        .collect();
    assert!(
        failing.is_empty(),
        "fuzz/corpus/{target}: inputs failing the property: {failing:?}"
    );
}

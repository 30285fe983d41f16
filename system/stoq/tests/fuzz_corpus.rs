//! Replays the STOQ frame reader's fuzz corpus (`fuzz/corpus/stoq_frames/`) as plain tests,
//! so CI holds the decoder to the fuzz targets' property on stable, without a fuzzer. A missing
//! or empty corpus fails: the replay cannot pass by checking nothing.

use std::path::Path;

#[path = "fuzz_corpus/property.rs"]
mod property;

/// Every input of `fuzz/corpus/<target>/`, with its file name, sorted by name.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
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
fn replay(target: &str, property: fn(&[u8])) {
    let failing: Vec<String> = corpus(target)
        .into_iter()
        .filter(|(_, input)| std::panic::catch_unwind(|| property(input)).is_err())
        .map(|(name, _)| name)
        .collect();
    assert!(
        failing.is_empty(),
        "fuzz/corpus/{target}: inputs failing the property: {failing:?}"
    );
}

#[test]
fn stoq_frames_corpus_survives_any_chunking() {
    replay("stoq_frames", property::frames_survive_any_chunking);
}

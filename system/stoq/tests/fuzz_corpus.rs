//! Replays the STOQ frame reader's fuzz corpus (`fuzz/corpus/stoq_frames/`) as plain tests,
//! so CI holds the decoder to the fuzz targets' property on stable, without a fuzzer. A missing
//! or empty corpus fails: the replay cannot pass by checking nothing.

use std::path::{Path, PathBuf};

#[path = "fuzz_corpus/property.rs"]
mod property;

#[path = "../../../fuzz/shared/corpus.rs"]
mod corpus;

/// The repository root, where `fuzz/corpus/` is.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn stoq_frames_corpus_survives_any_chunking() {
    corpus::replay(&root(), "stoq_frames", property::frames_survive_any_chunking);
}

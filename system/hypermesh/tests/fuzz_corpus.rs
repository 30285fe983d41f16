//! Replays the membership wire's fuzz corpora (`fuzz/corpus/membership_wire*/`) as plain tests,
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
fn membership_wire_corpus_decodes_canonically() {
    corpus::replay(&root(), "membership_wire", property::decodes_canonically);
}

#[test]
fn membership_wire_edits_corpus_decodes_canonically() {
    corpus::replay(
        &root(),
        "membership_wire_edits",
        property::edited_message_decodes_canonically,
    );
}

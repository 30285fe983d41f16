//! Replays the TrustChain node wire's fuzz corpora (`fuzz/corpus/trustchain_wire*/`) as plain tests,
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
fn trustchain_wire_corpus_decodes_consistently() {
    corpus::replay(&root(), "trustchain_wire", property::decodes_consistently);
}

#[test]
fn trustchain_wire_edits_corpus_decodes_consistently() {
    corpus::replay(
        &root(),
        "trustchain_wire_edits",
        property::edited_message_decodes_consistently,
    );
}

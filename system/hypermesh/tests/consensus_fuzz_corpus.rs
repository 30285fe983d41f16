//! Replays the consensus wire's fuzz corpus (`fuzz/corpus/consensus_wire/`) as a plain test, so
//! CI holds the decoder to the fuzz target's property on stable, without a fuzzer. A missing or
//! empty corpus fails: the replay cannot pass by checking nothing.

use std::path::{Path, PathBuf};

#[path = "fuzz_corpus/consensus.rs"]
mod property;

#[path = "../../../fuzz/shared/corpus.rs"]
mod corpus;

/// The repository root, where `fuzz/corpus/` is.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn consensus_wire_corpus_decodes_canonically() {
    corpus::replay(&root(), "consensus_wire", property::decodes_canonically);
}

/// The committed seeds are the messages `property::seeds` builds today (regenerate them with
/// `cargo run --example seeds consensus_wire` in `fuzz/` after a wire change), and each decodes
/// and verifies, so fuzzing starts from valid signed messages of every kind.
#[test]
fn the_committed_seeds_are_valid_signed_messages_of_every_kind() {
    let committed = corpus::corpus(&root(), "consensus_wire");
    let seeds = property::seeds();
    assert_eq!(seeds.len(), 25);
    for (name, bytes) in &seeds {
        assert!(property::decodes_and_verifies(bytes), "seed {name} does not verify");
        let file = format!("seed-{name}");
        let stored = committed
            .iter()
            .find(|(n, _)| *n == file)
            .unwrap_or_else(|| panic!("fuzz/corpus/consensus_wire/{file} is missing"));
        assert_eq!(&stored.1[..], &bytes[..], "fuzz/corpus/consensus_wire/{file} is stale");
    }
    // Every message tag is seeded.
    let mut tags: Vec<u8> = seeds.iter().map(|(_, b)| b[1]).collect();
    tags.dedup();
    assert_eq!(
        tags,
        [1, 2, 3, 4, 5, 6, 11, 12, 7, 13, 14, 16, 17, 18, 19, 20, 21, 15, 8, 9, 10]
    );
    assert_eq!(property::committee().0.epoch(), property::EPOCH);
    assert_eq!(property::committee().1.len(), property::VALIDATORS);
    // A seed with one byte changed in its signature decodes and no longer verifies.
    let mut forged = seeds[3].1.to_vec();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    property::decodes_canonically(&forged);
    assert!(!property::decodes_and_verifies(&forged));
}

//! The properties the fuzz targets check. Each is written once, beside the crate that owns the
//! decoder (`system/<crate>/tests/fuzz_corpus/property.rs`, or `tests/fuzz_corpus/property.rs` for the
//! scenario parser of the `testbed` harness), where that crate's corpus replay
//! test compiles it too; this library only gathers them for the targets in `fuzz_targets/`. The
//! crates do not depend on this package.

#[path = "../../system/hypermesh/tests/fuzz_corpus/property.rs"]
pub mod membership_wire;

#[path = "../../system/hypermesh/tests/fuzz_corpus/consensus.rs"]
pub mod consensus_wire;

#[path = "../../system/trustchain/tests/fuzz_corpus/property.rs"]
pub mod trustchain_wire;

#[path = "../../system/stoq/tests/fuzz_corpus/property.rs"]
pub mod stoq_frames;

#[path = "../../system/trustchain-service/tests/fuzz_corpus/property.rs"]
pub mod ca_api;

#[path = "../../tests/fuzz_corpus/property.rs"]
pub mod scenario_parser;

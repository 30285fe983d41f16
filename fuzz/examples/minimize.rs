//! Shrinks `fuzz/corpus/<target>/` to at most `files_max` inputs that keep as much of the
//! corpus's edge coverage as that many can: a greedy set cover over each input's own coverage.
//! libFuzzer's merge (`cargo fuzz cmin`) keeps an input for any new feature, hit counts included,
//! which leaves hundreds of files for a target that reaches deep into parsers; the replay tests
//! want a few dozen. Run `cargo fuzz cmin -s none <target>` first (fewer inputs to measure), then
//! from `fuzz/`: `cargo run --release --example minimize -- <target> [files_max]` (default 40).
//! It needs the target built by `cargo fuzz build -s none <target>`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const FILES_MAX_DEFAULT: usize = 40;

/// The coverage edges (libFuzzer's PC table indices) `input` reaches, measured by a merge of that
/// input alone (a merge's control file lists, per input, the edges not seen before it).
fn edges(binary: &Path, scratch: &Path, input: &Path) -> BTreeSet<u32> {
    let (one, out, control) = (scratch.join("one"), scratch.join("out"), scratch.join("control"));
    for dir in [&one, &out] {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).expect("scratch directory");
    }
    std::fs::copy(input, one.join("input")).expect("copy input");
    let _ = std::fs::remove_file(&control);
    let status = Command::new(binary)
        .arg("-merge=1")
        .arg(format!("-merge_control_file={}", control.display()))
        .args([&out, &one])
        .output()
        .expect("run the fuzz target")
        .status;
    assert!(status.success(), "{} fails on {}", binary.display(), input.display());
    let text = std::fs::read_to_string(&control).expect("merge control file");
    text.lines()
        .filter_map(|line| line.strip_prefix("COV 0"))
        .flat_map(|edges| edges.split_whitespace().map(|e| e.parse().expect("edge index")))
        .collect()
}

fn main() {
    let mut args = std::env::args().skip(1);
    let target = args.next().expect("usage: minimize <target> [files_max]");
    let files_max = args.next().map_or(FILES_MAX_DEFAULT, |n| n.parse().expect("files_max"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let binary = root.join("target/x86_64-unknown-linux-gnu/release").join(&target);
    let corpus = root.join("corpus").join(&target);
    let scratch = std::env::temp_dir().join(format!("fuzz-minimize-{target}"));
    let mut inputs: Vec<(PathBuf, u64, BTreeSet<u32>)> = std::fs::read_dir(&corpus)
        .expect("corpus directory")
        .map(|entry| {
            let path = entry.expect("corpus entry").path();
            let size = std::fs::metadata(&path).expect("input size").len();
            let edges = edges(&binary, &scratch, &path);
            (path, size, edges)
        })
        .collect();
    let total: BTreeSet<u32> = inputs.iter().flat_map(|(_, _, e)| e.iter().copied()).collect();
    let mut covered = BTreeSet::new();
    let mut kept = Vec::new();
    while kept.len() < files_max {
        // The input adding the most edges; the smaller one on a tie.
        let best = inputs
            .iter()
            .enumerate()
            .map(|(i, (_, size, edges))| (edges.difference(&covered).count(), std::cmp::Reverse(*size), i))
            .max();
        let Some((gain, _, i)) = best.filter(|(gain, _, _)| *gain > 0) else {
            break;
        };
        let (path, size, edges) = inputs.swap_remove(i);
        covered.extend(edges);
        println!("keep {} ({size} bytes, +{gain} edges)", path.display());
        kept.push((path, size));
    }
    for (path, _, _) in &inputs {
        std::fs::remove_file(path).expect("remove input");
    }
    let bytes: u64 = kept.iter().map(|(_, size)| size).sum();
    println!(
        "{target}: kept {} inputs, {bytes} bytes, covering {} of the corpus's {} edges",
        kept.len(),
        covered.len(),
        total.len()
    );
    let _ = std::fs::remove_dir_all(&scratch);
}

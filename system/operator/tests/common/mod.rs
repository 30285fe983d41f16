//! Helpers the process-level tests share: running the `trustchain` and `hypermesh` binaries, and
//! scratch directories.

#![allow(dead_code)] // each test crate uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `trustchain ARGS` to completion.
pub fn run_trustchain(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_trustchain"))
        .args(args)
        .output()
        .expect("trustchain runs")
}

/// Runs `hypermesh ARGS` to completion.
pub fn run_hypermesh(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hypermesh"))
        .args(args)
        .output()
        .expect("hypermesh runs")
}

/// Bytes as text, lossily.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An empty directory `name` under the test target's scratch space.
pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `trustchain ca init` into `dir/ca`, then `ca install` into `dir/trust`; returns the
/// state directory and the installed `root.pem`.
pub fn ca_with_trust(dir: &Path) -> (PathBuf, PathBuf) {
    let state = dir.join("ca");
    let state_arg = state.to_str().unwrap();
    let trust = dir.join("trust");
    let init = run_trustchain(&["ca", "init", "--state", state_arg]);
    assert!(init.status.success(), "{}", text(&init.stderr));
    let install = run_trustchain(&["ca", "install", "--state", state_arg, "--out", trust.to_str().unwrap()]);
    assert!(install.status.success(), "{}", text(&install.stderr));
    (state, trust.join("root.pem"))
}

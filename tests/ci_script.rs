//! `.ci/install-test-tools`: CI fails when a tool its tests need cannot be installed, rather than
//! letting those tests skip (they would pass by not running).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

/// Runs the install script with only `dir` on `PATH`, and the web3.py virtualenv at
/// `dir/venv`.
fn install_with_path(dir: &Path) -> Output {
    Command::new("/bin/bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/install-test-tools"))
        .env_clear()
        .env("PATH", dir)
        .env("TESTBED_WEB3_VENV", dir.join("venv"))
        .output()
        .expect("bash runs")
}

/// An empty directory of the test's own, removed when dropped.
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ci-script-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fake_tool(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/bash\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_missing_tool_without_a_package_manager_fails_and_says_which() {
    let dir = Scratch::new("none");
    let out = install_with_path(dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exited 0: {stderr}");
    assert!(stderr.contains("chromium is missing"), "{stderr}");
}

#[test]
fn a_failed_install_fails_and_says_which() {
    let dir = Scratch::new("failing");
    fake_tool(dir.path(), "apt-get", "exit 100");
    fake_tool(dir.path(), "id", "echo 0");
    let out = install_with_path(dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exited 0: {stderr}");
    assert!(stderr.contains("could not install chromium"), "{stderr}");
}

#[test]
fn present_tools_need_nothing() {
    let dir = Scratch::new("present");
    fake_tool(dir.path(), "chromium", "exit 0");
    fake_tool(dir.path(), "openssl", "exit 0");
    std::fs::create_dir_all(dir.path().join("venv/bin")).unwrap();
    fake_tool(&dir.path().join("venv/bin"), "python", "exit 0");
    let out = install_with_path(dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn web3_without_python_or_a_package_manager_fails_and_says_which() {
    let dir = Scratch::new("no-python");
    fake_tool(dir.path(), "chromium", "exit 0");
    fake_tool(dir.path(), "openssl", "exit 0");
    let out = install_with_path(dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exited 0: {stderr}");
    assert!(stderr.contains("python3 is missing"), "{stderr}");
}

#[test]
fn web3_that_pypi_cannot_give_fails_and_says_so() {
    let dir = Scratch::new("no-pypi");
    fake_tool(dir.path(), "chromium", "exit 0");
    fake_tool(dir.path(), "openssl", "exit 0");
    // A python3 whose venv makes a pip that fails, as without the package index.
    fake_tool(
        dir.path(),
        "python3",
        r#"if [ "$1 $2" = "-m venv" ] && [ "$3" != "--help" ]; then mkdir -p "$3/bin"; printf '#!/bin/bash\nexit 1\n' > "$3/bin/pip"; printf '#!/bin/bash\nexit 1\n' > "$3/bin/python"; chmod +x "$3/bin/pip" "$3/bin/python"; fi; exit 0"#,
    );
    let out = install_with_path(dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exited 0: {stderr}");
    assert!(stderr.contains("could not install web3.py"), "{stderr}");
}

//! Helpers the process-level tests share: running the `trustchain` and `hypermesh` binaries,
//! following a running one's output, and scratch directories.

#![allow(dead_code)]
// each test crate uses its own subset
// Tests of real processes: they read the OS clock, start reader threads and probe free ports.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

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

/// A child process whose stdout lines are collected; killed when dropped.
pub struct Process {
    /// The process.
    pub child: Child,
    /// Its first line of output.
    pub first_line: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Starts `binary` (the path of `trustchain` or `hypermesh`) with `args`.
    pub fn start(binary: &str, args: &[&str]) -> Process {
        let mut child = Command::new(binary)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut first_line = String::new();
        reader.read_line(&mut first_line).unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in reader.lines() {
                match line {
                    Ok(l) => sink.lock().unwrap().push(l),
                    Err(_) => break,
                }
            }
        });
        Process {
            child,
            first_line,
            lines,
        }
    }

    /// The address after "listening on " (and "https://").
    pub fn addr(&self) -> SocketAddr {
        self.first_line
            .strip_prefix("listening on ")
            .map(|rest| rest.trim_start_matches("https://"))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected first line: {:?}", self.first_line))
            .parse()
            .unwrap()
    }

    /// The membership id after "(id ".
    pub fn id(&self) -> u64 {
        let at = self
            .first_line
            .find("(id ")
            .unwrap_or_else(|| panic!("no membership id in the first line: {:?}", self.first_line))
            + 4;
        self.first_line[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// Every JSON line it printed.
    pub fn probes(&self) -> Vec<Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The last state (0 alive, 1 suspect, 2 dead) this node recorded for member `id`.
    pub fn state_of(&self, id: u64) -> Option<i64> {
        self.probes()
            .iter()
            .rfind(|p| p["probe"] == "member" && p["subject"].as_u64() == Some(id))
            .and_then(|p| p["value"].as_i64())
    }

    /// Its consensus probes named `name`, in order.
    pub fn consensus(&self, name: &str) -> Vec<Value> {
        let quoted = format!("\"probe\":\"{name}\"");
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .filter(|l| l.contains(&quoted) && l.contains("\"protocol\":\"consensus\""))
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The highest height it committed (its consensus `commit` probes), 0 if none.
    pub fn committed(&self) -> u64 {
        self.consensus("commit")
            .iter()
            .filter_map(|p| p["subject"].as_u64())
            .max()
            .unwrap_or(0)
    }

    /// How many probes named `name` it printed.
    pub fn count(&self, name: &str) -> usize {
        self.probes().iter().filter(|p| p["probe"] == name).count()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `done`, failing the test after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A free UDP/TCP port on [::1] (bound, read, released), so a process can be restarted on it;
/// never one handed out before in this process (the OS may give a released port again at once,
/// and two validators on one port make the validators file refused).
pub fn free_port() -> u16 {
    static GIVEN: Mutex<std::collections::BTreeSet<u16>> = Mutex::new(std::collections::BTreeSet::new());
    loop {
        let port = std::net::TcpListener::bind("[::1]:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if GIVEN.lock().unwrap().insert(port) {
            return port;
        }
    }
}

/// A JSON-RPC 2.0 call to `addr` over plain HTTP/1.1 (one connection per call): the `result`, or
/// the `error` object.
pub fn json_rpc(addr: SocketAddr, method: &str, params: Value) -> Result<Value, Value> {
    use std::io::{Read, Write};
    let body = serde_json::json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }).to_string();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let answer: Value = serde_json::from_str(body).unwrap();
    match answer.get("error") {
        Some(error) => Err(error.clone()),
        None => Ok(answer["result"].clone()),
    }
}

/// `method target` over one plain HTTP/1.1 connection to `addr`, with `key` as the bearer and
/// `body` (JSON) if any: the status, the header fields (names in lower case) and the body.
pub fn http_plain(
    addr: SocketAddr,
    method: &str,
    target: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> (u16, Vec<(String, String)>, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    let content = body
        .map(|b| format!("Content-Type: application/json\r\nContent-Length: {}\r\n", b.len()))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: localhost\r\n{auth}{content}Connection: close\r\n\r\n{}",
        body.unwrap_or("")
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {head}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

/// The Python interpreter with web3.py that `.ci/install-test-tools` prepares
/// (`TESTBED_WEB3_PYTHON`); `None` (the test skips) if it is not set up, unless CI requires it
/// (`TESTBED_REQUIRE_WEB3`).
pub fn web3_python() -> Option<String> {
    let python = std::env::var("TESTBED_WEB3_PYTHON").ok().filter(|p| {
        Command::new(p)
            .args(["-c", "import web3"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    assert!(
        python.is_some() || std::env::var_os("TESTBED_REQUIRE_WEB3").is_none(),
        "TESTBED_WEB3_PYTHON names no Python with web3 (.ci/install-test-tools makes one)"
    );
    python
}

/// Checks each case (`[path template, status, answer, target]`) against the schema the OpenAPI
/// document gives that path's GET answer of that status, with openapi-schema-validator's OpenAPI
/// 3.0 validator (`nullable` as 3.0 means it); any answer that does not match fails the test,
/// naming its target and why.
pub fn validate_answers(python: &str, input: &str) {
    let script = r#"
import json, sys
from openapi_schema_validator import OAS30Validator
given = json.load(sys.stdin)
document = given["document"]
wrong = []
for template, status, answer, target in given["cases"]:
    schema = document["paths"][template]["get"]["responses"][status]["content"]["application/json"]["schema"]
    validator = OAS30Validator(dict(schema, components=document["components"]))
    for error in validator.iter_errors(answer):
        wrong.append(f"{target} ({status}): {error.message} at {list(error.absolute_path)}")
if wrong:
    sys.exit("\n".join(wrong))
"#;
    python_on(python, script, input, "answers do not match the OpenAPI document");
}

/// Runs the Python `script` with `input` on its stdin: its stdout; a failure fails the test with
/// `refused` and what it printed.
pub fn python_on(python: &str, script: &str, input: &str, refused: &str) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{refused}: {}", text(&out.stderr));
    out.stdout
}

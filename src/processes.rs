//! The operator's binaries (`hypermesh`, `trustchain`) run as child processes by the benches on
//! real sockets (`testbed bench consensus`, `testbed node memory`): where the binaries are, a
//! command run to its end, and a long-running process whose output lines are followed.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

/// How long a process has to print its first line.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) type Result<T> = std::result::Result<T, String>;

/// A path as a command-line argument.
pub(crate) fn path_arg(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// `count` UDP ports free on `[::1]` (bound, read, released).
pub(crate) fn free_udp_ports(count: usize) -> Result<Vec<u16>> {
    let sockets: Vec<UdpSocket> = (0..count)
        .map(|_| UdpSocket::bind("[::1]:0").map_err(|e| format!("cannot bind a port on [::1]: {e}")))
        .collect::<Result<_>>()?;
    sockets
        .iter()
        .map(|s| s.local_addr().map(|a: SocketAddr| a.port()).map_err(|e| e.to_string()))
        .collect()
}

/// Where a bench on the operator's processes finds the binaries and keeps its state (flattened
/// into each such command's flags).
#[derive(clap::Args, Clone, Debug, Default)]
pub(crate) struct Workspace {
    /// Where the `hypermesh` and `trustchain` binaries are (default: beside testbed).
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Where the state directories and logs go, a new or empty directory (default: a fresh one
    /// under the system's temporary directory); removed afterwards unless --keep or the run
    /// failed.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Keep the state directories and logs afterwards.
    #[arg(long)]
    pub keep: bool,
}

impl Workspace {
    /// Runs `bench` in the state directory (`--dir`, or `testbed-NAME-PID` in the temporary
    /// directory, created new or empty) with the binaries found: prints the line it returns and
    /// exits with its code, removing the directory unless `--keep`; on an error prints it, keeps
    /// the directory for its logs and exits 2.
    pub(crate) fn run(
        &self,
        name: &str,
        bench: impl FnOnce(&Binaries, &Path) -> Result<(String, ExitCode)>,
    ) -> ExitCode {
        let dir = self
            .dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join(format!("testbed-{name}-{}", std::process::id())));
        let outcome = fresh_dir(&dir).and_then(|()| {
            let bins = Binaries::find(self.bin_dir.as_deref())?;
            bench(&bins, &dir)
        });
        match outcome {
            Ok((line, code)) => {
                println!("{line}");
                if !self.keep {
                    let _ = std::fs::remove_dir_all(&dir);
                }
                code
            }
            Err(message) => {
                eprintln!("error: {message} (state and logs kept in {})", dir.display());
                ExitCode::from(2)
            }
        }
    }
}

/// Creates `dir`, which must be new or empty: a run fills it and removes it afterwards, so a
/// directory holding anything else is refused rather than emptied.
fn fresh_dir(dir: &Path) -> Result<()> {
    if let Ok(mut entries) = std::fs::read_dir(dir) {
        if entries.next().is_some() {
            return Err(format!(
                "--dir {} is not empty: give a new or empty directory (the run removes what it made there)",
                dir.display()
            ));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// The operator's binaries.
pub(crate) struct Binaries {
    /// `hypermesh`.
    pub(crate) hypermesh: PathBuf,
    /// `trustchain`.
    pub(crate) trustchain: PathBuf,
}

impl Binaries {
    pub(crate) fn find(dir: Option<&Path>) -> Result<Binaries> {
        let dir = match dir {
            Some(d) => d.to_path_buf(),
            None => std::env::current_exe()
                .ok()
                .and_then(|e| e.parent().map(Path::to_path_buf))
                .ok_or("cannot tell where the testbed binary is: give --bin-dir")?,
        };
        let find = |name: &str| {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(format!(
                    "no {name} binary in {}: build the operator's binaries first (cargo build --release -p operator), or give --bin-dir",
                    dir.display()
                ))
            }
        };
        Ok(Binaries {
            hypermesh: find("hypermesh")?,
            trustchain: find("trustchain")?,
        })
    }

    /// `trustchain ca init` into `DIR/ca`, then `ca install` into `DIR/trust`: the CA's state
    /// directory and the root certificate (`root.pem`) nodes are given.
    pub(crate) fn new_ca(&self, dir: &Path) -> Result<(PathBuf, PathBuf)> {
        let state = dir.join("ca");
        let trust = dir.join("trust");
        self.trustchain(&["ca", "init", "--state", &path_arg(&state)])?;
        self.trustchain(&[
            "ca",
            "install",
            "--state",
            &path_arg(&state),
            "--out",
            &path_arg(&trust),
        ])?;
        Ok((state, trust.join("root.pem")))
    }

    /// `trustchain serve` of the CA in `state` on `[::1]`, its stderr in `DIR/ca.log`: the running
    /// CA and the address it listens on.
    pub(crate) fn serve_ca(&self, state: &Path, dir: &Path) -> Result<(Process, String)> {
        let ca = Process::start(
            &self.trustchain,
            &["serve", "--state", &path_arg(state), "--listen", "[::1]:0"],
            &dir.join("ca.log"),
            None,
        )?;
        let addr = ca
            .first_line
            .strip_prefix("listening on https://")
            .and_then(|rest| rest.split_whitespace().next())
            .ok_or_else(|| format!("the CA printed {:?}", ca.first_line))?
            .to_owned();
        Ok((ca, addr))
    }

    pub(crate) fn trustchain(&self, args: &[&str]) -> Result<String> {
        run_to_end(&self.trustchain, args)
    }

    pub(crate) fn hypermesh(&self, args: &[&str]) -> Result<String> {
        run_to_end(&self.hypermesh, args)
    }
}

pub(crate) fn run_to_end(binary: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(binary)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} {} failed: {}",
            binary.display(),
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What is done with a process's lines after the first.
pub(crate) enum Lines {
    /// Keep the highest consensus height committed, and every line in a file (kept with
    /// `--keep`, or when the bench fails).
    Heights(Arc<AtomicU64>, PathBuf),
    /// Hand every line over.
    Forward(mpsc::Sender<String>),
}

/// A child process, killed when dropped; its stderr goes to a log file.
pub(crate) struct Process {
    /// The process.
    pub(crate) child: Child,
    /// Its first line of output.
    pub(crate) first_line: String,
    height: Option<Arc<AtomicU64>>,
    /// The JSON-RPC address a validator printed (`{"event": "rpc", ...}`).
    rpc: Arc<std::sync::Mutex<Option<SocketAddr>>>,
}

impl Process {
    pub(crate) fn start(binary: &Path, args: &[&str], log: &Path, lines: Option<Lines>) -> Result<Process> {
        let stderr = std::fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let (height, mut copy) = match &lines {
            Some(Lines::Heights(h, path)) => {
                let file = std::fs::File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                (Some(h.clone()), Some(std::io::BufWriter::new(file)))
            }
            _ => (None, None),
        };
        let mut child = Command::new(binary)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let mut reader = BufReader::new(child.stdout.take().expect("piped"));
        let (first_tx, first_rx) = mpsc::channel();
        let shown = format!("{} {}", binary.display(), args.first().copied().unwrap_or(""));
        let rpc: Arc<std::sync::Mutex<Option<SocketAddr>>> = Arc::default();
        let rpc_seen = rpc.clone();
        thread::spawn(move || {
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            if let Some(out) = copy.as_mut() {
                let _ = write!(out, "{first}");
            }
            let _ = first_tx.send(first);
            // A validator's lines are copied as read; the copy is complete once it exits.
            for line in reader.lines() {
                let Ok(line) = line else { break };
                match &lines {
                    Some(Lines::Heights(h, _)) => {
                        if let Some(height) = commit_height(&line) {
                            h.fetch_max(height, Ordering::Relaxed);
                        } else if let Some(addr) = rpc_address(&line) {
                            *rpc_seen.lock().unwrap_or_else(|p| p.into_inner()) = Some(addr);
                        }
                        if let Some(out) = copy.as_mut() {
                            let _ = writeln!(out, "{line}");
                        }
                    }
                    // Read on after the bench stops listening: a full pipe would stall the process.
                    Some(Lines::Forward(tx)) => {
                        let _ = tx.send(line);
                    }
                    None => {}
                }
            }
        });
        let first_line = match first_rx.recv_timeout(START_TIMEOUT) {
            Ok(line) if !line.is_empty() => line.trim_end().to_owned(),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{shown} did not start: see {}", log.display()));
            }
        };
        Ok(Process {
            child,
            first_line,
            height,
            rpc,
        })
    }

    pub(crate) fn rpc(&self) -> Option<SocketAddr> {
        *self.rpc.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn height(&self) -> u64 {
        self.height.as_ref().map_or(0, |h| h.load(Ordering::Relaxed))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The JSON-RPC address of a node's `{"event": "rpc", "listening": "http://ADDR"}` line.
fn rpc_address(line: &str) -> Option<SocketAddr> {
    if !line.contains("\"rpc\"") {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    (value["event"] == "rpc")
        .then(|| value["listening"].as_str()?.strip_prefix("http://")?.parse().ok())
        .flatten()
}

/// The height of a consensus `commit` probe line, if it is one.
fn commit_height(line: &str) -> Option<u64> {
    if !line.contains("\"probe\":\"commit\"") {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    (value["protocol"] == "consensus")
        .then(|| value["subject"].as_u64())
        .flatten()
}

/// utime + stime of `pid`, in clock ticks (fields 14 and 15 of `/proc/PID/stat`, counted after
/// the command name, which may hold spaces).
pub(crate) fn cpu_ticks(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e} (did the process exit?)"))?;
    let after_name = &text[text.rfind(')').ok_or_else(|| format!("{path}: no command name"))? + 1..];
    // After the name: state is field 3, so utime (14) and stime (15) are the 12th and 13th.
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |i: usize| -> Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("{path}: field {} is not a number", i + 3))
    };
    Ok(field(11)? + field(12)?)
}

/// The kernel's USER_HZ (`getconf CLK_TCK`), 100 if it cannot be asked.
pub(crate) fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// A figure as the benches print it: one decimal.
pub(crate) fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The next line from `lines` (a process's output, [`Lines::Forward`]) containing `what`,
/// within `within`; the lines before it are dropped.
pub(crate) fn wait_line(lines: &mpsc::Receiver<String>, what: &str, within: Duration) -> Result<String> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(what) => return Ok(line),
            Ok(_) => {}
            Err(_) => return Err(format!("no line with {what} within {} s", within.as_secs())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_cpu_ticks_are_read() {
        assert!(cpu_ticks(std::process::id()).is_ok());
        assert!(cpu_ticks(u32::MAX).is_err());
    }

    #[test]
    fn commit_lines_give_heights_and_other_lines_nothing() {
        let line = r#"{"at_ms":5,"probe":"commit","protocol":"consensus","subject":12,"value":-3}"#;
        assert_eq!(commit_height(line), Some(12));
        assert_eq!(commit_height(&line.replace("\"commit\"", "\"view\"")), None);
        assert_eq!(commit_height(&line.replace("\"consensus\"", "\"membership\"")), None);
    }

    #[test]
    fn a_nodes_json_rpc_line_gives_its_address() {
        let line = r#"{"event":"rpc","listening":"http://[::1]:41234"}"#;
        assert_eq!(rpc_address(line), Some("[::1]:41234".parse().unwrap()));
        assert_eq!(rpc_address(r#"{"event":"consensus","validator":1}"#), None);
        assert_eq!(rpc_address(r#"{"event":"rpc","listening":"nonsense"}"#), None);
    }
}

//! `hypermesh client`: load on a consensus cluster from a certified client.
//!
//! Replicas speak to each other and to clients over STOQ, inside mutual TLS: a validator hears
//! nobody without a TrustChain certificate the CA issued. A client is therefore enrolled like a
//! node (its own join token, name and key, in its own `--state`), and its certificate must name
//! the IPv6 address it sends from. That is how a deployment lets clients in: the operator
//! issues them tokens; if the validators file lists `[[client]]` entries, only those clients'
//! signed transactions apply (the client signs with its certificate's key, as its entry's id).
//! A client that cannot hold a certificate (behind NAT, a browser) would need a gateway, which
//! is not built.
//!
//! It submits list-append transactions at `--rate` for `--warmup` and then `--seconds` (the
//! measured window), waits for the answers, and prints a summary: first `listening on ADDR as
//! NAME ...`, then `{"event": "measuring"}` when the window opens and `{"event": "stopped"}`
//! when it closes, then one summary line (JSON with `--json`): `submitted`, `committed`,
//! `refused`, `not_admitted`, `unanswered`, `throttled` (skipped: too many in flight), all of
//! the measured window, `tx_per_s` (committed per second of the window), `commit_p50_ms`,
//! `commit_p99_ms`, `commit_max_ms` (submission to the agreeing answers). The client does not
//! renew its certificate: a run must end within its leaf's life.

pub mod load;
pub mod read;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use runtime::host::Host;
use runtime::units::parse_duration;
use runtime_tokio::ProbeRecord;
use stoq::Stoq;

use crate::node::consensus::signing_key;
use crate::node::enroll::{enroll, EnrollFlags};
use crate::node::{emit, start_host, stop_host};
use crate::trustchain::Failure;
use crate::validators::{key_hex, Validators};
use load::{Load, LoadConfig};

/// How a certified client enrolls and what it speaks to: the flags `hypermesh client` and
/// `hypermesh read` share.
#[derive(Args)]
pub struct ClientFlags {
    /// The client's own IPv6 address, e.g. [fd00::9]:0 (port 0: the OS picks); its certificate
    /// names the address, so it must be specific.
    #[arg(long)]
    pub(crate) listen: String,
    /// The client's name, as its join token grants it (e.g. client-1.mesh).
    #[arg(long)]
    pub(crate) name: String,
    /// The CA's HTTPS address (`trustchain serve --listen`).
    #[arg(long)]
    pub(crate) ca: String,
    /// The name the CA's certificate carries.
    #[arg(long, default_value = "trustchain.mesh")]
    pub(crate) ca_name: String,
    /// The CA's root certificate (root.pem from `trustchain ca install`).
    #[arg(long, value_name = "FILE")]
    pub(crate) ca_root: PathBuf,
    /// The join token the operator issued for this client: needed the first time only.
    #[arg(long)]
    pub(crate) token: Option<String>,
    /// Directory for the client's key and chain (0700; files 0600).
    #[arg(long, default_value = "hypermesh-client")]
    pub(crate) state: PathBuf,
    /// The validators file the nodes run with: where the validators are, and the clients.
    #[arg(long, value_name = "FILE")]
    pub(crate) validators: PathBuf,
}

impl ClientFlags {
    /// What enrolling takes from them.
    pub(crate) fn enroll(&self) -> EnrollFlags<'_> {
        EnrollFlags {
            listen: &self.listen,
            name: &self.name,
            ca: &self.ca,
            ca_name: &self.ca_name,
            ca_root: &self.ca_root,
            token: self.token.as_deref(),
            state: &self.state,
        }
    }
}

/// Validators a client asks and agreeing answers it believes: `answers`, or `f + 1` of `n` by
/// default (at least one honest among them).
pub(crate) fn answers_required(answers: Option<usize>, n: usize) -> Result<usize, Failure> {
    let answers = answers.unwrap_or((n - 1) / 3 + 1);
    if !(1..=n).contains(&answers) {
        return Err(Failure(format!(
            "--answers {answers} is outside 1..={n} (the validators)"
        )));
    }
    Ok(answers)
}

/// `hypermesh client` arguments.
#[derive(Args)]
pub struct ClientArgs {
    #[command(flatten)]
    client: ClientFlags,
    /// Transactions per second offered.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    rate: u32,
    /// The measured window, in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    seconds: u64,
    /// Load before the measured window (connections, full pipelines).
    #[arg(long, default_value = "1s")]
    warmup: String,
    /// Transactions awaiting answers at most; beyond it the client skips (counted `throttled`).
    #[arg(long, default_value_t = 8192, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    in_flight: u32,
    /// Validators each transaction goes to, and agreeing answers believed (default f + 1: at
    /// least one honest validator among them).
    #[arg(long)]
    answers: Option<usize>,
    /// How long answers are awaited.
    #[arg(long, default_value = "5s")]
    answer_timeout: String,
    /// Print the summary as one JSON line.
    #[arg(long)]
    json: bool,
}

/// Runs `hypermesh client`. Exit 0 when the run completed (whatever it measured); 2 on bad
/// arguments, a failed enrollment or a file that does not list this client.
pub fn run(args: ClientArgs) -> ExitCode {
    match client(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

fn duration_arg(flag: &str, text: &str, zero_ok: bool) -> Result<Duration, Failure> {
    parse_duration(text)
        .ok()
        .filter(|d| zero_ok || !d.is_zero())
        .ok_or_else(|| Failure(format!("{flag} {text:?} is not a duration (e.g. 1s, 500ms)")))
}

fn client(args: ClientArgs) -> Result<(), Failure> {
    let warmup = duration_arg("--warmup", &args.warmup, true)?;
    let answer_timeout = duration_arg("--answer-timeout", &args.answer_timeout, false)?;
    let file = Validators::load(&args.client.validators)?;
    let shown = args.client.validators.display();
    let n = file.validators.len();
    let answers = answers_required(args.answers, n)?;
    let listed = if file.clients.is_empty() {
        None
    } else {
        Some(file.client(&args.client.name).cloned().ok_or_else(|| {
            Failure(format!(
                "--validators {shown}: no [[client]] is named {:?} (--name): the validators apply only \
                 listed clients' transactions",
                args.client.name
            ))
        })?)
    };
    let enrolled = enroll(&args.client.enroll())?;
    let signer = match &listed {
        Some(entry) => {
            let key = signing_key(&enrolled.identity, enrolled.state.path())?;
            if key.public_key() != entry.public_key {
                return Err(Failure(format!(
                    "--validators {shown}: client {:?}: public_key: {} is not this client's key, {}",
                    entry.name,
                    key_hex(&entry.public_key),
                    key_hex(&key.public_key())
                )));
            }
            Some((entry.id, enrolled.identity.key_seed))
        }
        None => None,
    };
    let measure = Duration::from_secs(args.seconds);
    let config = LoadConfig {
        replicas: file.addresses(),
        signer,
        rate_per_s: args.rate,
        warmup,
        measure,
        in_flight_max: args.in_flight as usize,
        answers_required: answers,
        answer_timeout,
    };
    let (stoq_config, setup) = enrolled.stoq()?;
    let running = start_host(enrolled.listen, enrolled.state.path(), move || {
        Box::new(Host::new(Stoq::with_setup(stoq_config, setup)).mount(hypermesh::consensus::MOUNT, Load::new(config)))
    })?;
    let id = listed
        .as_ref()
        .map_or("unsigned".to_owned(), |c| format!("client id {}", c.id));
    println!(
        "listening on {} as {} ({id}), submitting to {n} validators at {} tx/s",
        running.bound, enrolled.certified, args.rate
    );
    let _ = std::io::stdout().flush();
    let mut tally = Tally::default();
    let mut probes = running.probes;
    // Past this the client gives up on its run (the load protocol normally says `done` first).
    let deadline = warmup + measure + answer_timeout + Duration::from_secs(5);
    enrolled.runtime.block_on(async {
        let collecting = async {
            while let Some(record) = probes.recv().await {
                if tally.take(&record) {
                    break;
                }
            }
        };
        tokio::select! {
            () = crate::trustchain::stop_signal() => {}
            () = collecting => {}
            () = tokio::time::sleep(deadline) => {}
        }
    });
    stop_host(running.thread, &running.stop)?;
    let summary = tally.summary(&enrolled.certified, n, args.rate, measure);
    if args.json {
        emit(summary);
    } else {
        println!(
            "{} committed of {} submitted in {}s: {} tx/s, commit p50 {} ms, p99 {} ms ({} refused, {} not admitted, {} unanswered, {} throttled)",
            summary["committed"],
            summary["submitted"],
            args.seconds,
            summary["tx_per_s"],
            summary["commit_p50_ms"],
            summary["commit_p99_ms"],
            summary["refused"],
            summary["not_admitted"],
            summary["unanswered"],
            summary["throttled"]
        );
    }
    Ok(())
}

/// What the load protocol's probes add up to, for the measured window.
#[derive(Default)]
struct Tally {
    submitted: u64,
    throttled: u64,
    latencies_us: Vec<u64>,
    refused: u64,
    not_admitted: u64,
    unanswered: u64,
}

impl Tally {
    /// Counts one probe; true once the run is done.
    fn take(&mut self, record: &ProbeRecord) -> bool {
        let p = &record.probe;
        if p.protocol != hypermesh::consensus::MOUNT.name {
            return false;
        }
        let measured = p.subject == 1;
        match p.name {
            "measuring" | "stopped" => emit(serde_json::json!({ "event": p.name })),
            "done" => return true,
            "submitted" if measured => self.submitted += p.value as u64,
            "throttled" if measured => self.throttled += p.value as u64,
            "committed" if measured => self.latencies_us.push(p.value as u64),
            "refused" if measured && p.value == 2 => self.not_admitted += 1,
            "refused" if measured => self.refused += 1,
            "unanswered" if measured => self.unanswered += 1,
            _ => {}
        }
        false
    }

    fn summary(&mut self, name: &str, validators: usize, rate: u32, measure: Duration) -> serde_json::Value {
        self.latencies_us.sort_unstable();
        let committed = self.latencies_us.len();
        let ms = |q: f64| match committed {
            0 => serde_json::Value::Null,
            _ => {
                // Nearest rank.
                let rank = ((q * committed as f64).ceil() as usize).clamp(1, committed);
                serde_json::json!(round2(self.latencies_us[rank - 1] as f64 / 1000.0))
            }
        };
        serde_json::json!({
            "client": name,
            "validators": validators,
            "rate_per_s": rate,
            "seconds": measure.as_secs_f64(),
            "submitted": self.submitted,
            "committed": committed,
            "refused": self.refused,
            "not_admitted": self.not_admitted,
            "unanswered": self.unanswered,
            "throttled": self.throttled,
            "tx_per_s": round2(committed as f64 / measure.as_secs_f64()),
            "commit_p50_ms": ms(0.50),
            "commit_p99_ms": ms(0.99),
            "commit_max_ms": ms(1.0),
        })
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

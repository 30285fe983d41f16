//! `hypermesh read`: one read of a consensus cluster's state, at a chosen consistency, from a
//! certified client.
//!
//! It enrolls like `hypermesh client` (its own join token, name and key), sends one
//! [`Query`] of the keys given to `--answers` validators (default `f + 1`, so at least one is
//! honest) and believes an answer once that many agree on what the keys hold. `linearizable`
//! (the default) reflects every transaction acknowledged before the read was sent: each replica
//! asked learns the highest certificate of a quorum of validators and answers once it has
//! committed that height. `local` answers from each replica's committed state at once, possibly
//! stale. Replicas asked at different moments may answer at different heights; if they then
//! disagree on a key written between, the read says so rather than pick one.
//!
//! Output: one JSON line, `{"consistency", "height", "keys": {"K": [values]}, "validators"}`
//! (`height`: the highest committed height among the agreeing answers; `validators`: their
//! indices). Exit 0 with an answer; 1 if the replicas refused the read (no quorum in time, too
//! many reads) or did not agree or answer within `--timeout`, saying which; 2 on bad arguments
//! or a failed enrollment.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use clap::{Args, ValueEnum};
use hypermesh::consensus::{Consistency, Message, Query};
use hypermesh::replication::kv::{decode_read_lists, encode_transaction, Op};
use runtime::host::{Context, Host, Protocol};
use runtime::{Probe, Probes};
use stoq::Stoq;

use super::{answers_required, duration_arg, ClientFlags};
use crate::node::enroll::enroll;
use crate::node::{emit, start_host, stop_host};
use crate::trustchain::Failure;
use crate::validators::Validators;

/// Keys one read takes at most.
pub const READ_KEYS_MAX: usize = 64;

/// `hypermesh read` arguments.
#[derive(Args)]
pub struct ReadArgs {
    #[command(flatten)]
    client: ClientFlags,
    /// A key to read (a list of the list-append machine); repeatable, at most 64.
    #[arg(long = "key", required = true)]
    keys: Vec<u64>,
    /// How fresh the answer must be.
    #[arg(long, value_enum, default_value_t = ReadConsistency::Linearizable)]
    consistency: ReadConsistency,
    /// Validators asked, and agreeing answers believed (default f + 1: at least one honest).
    #[arg(long)]
    answers: Option<usize>,
    /// How long answers are awaited (a linearizable read waits for a quorum and for the replica
    /// to commit up to it; replicas refuse after their read_timeout, 5 s by default).
    #[arg(long, default_value = "10s")]
    timeout: String,
}

/// `--consistency`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ReadConsistency {
    /// Every transaction acknowledged before the read was sent is in what it reads.
    Linearizable,
    /// Each replica's committed state as it is: possibly stale.
    Local,
}

/// What the read came to.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    /// Agreeing answers: the lists, the highest height, the validators.
    Read(Vec<Vec<u64>>, u64, Vec<usize>),
    /// Why not.
    Failed(String),
}

/// The protocol of one read: sends the query, gathers answers until enough agree.
struct Reader {
    replicas: Vec<SocketAddr>,
    answers_required: usize,
    query: Bytes,
    keys: usize,
    /// Distinct answers, with the validators that gave each and the highest height.
    answers: Vec<(Result<Bytes, String>, BTreeSet<usize>, u64)>,
    outcome: Arc<Mutex<Option<Outcome>>>,
}

impl Reader {
    fn finish(&mut self, cx: &mut Context<'_, ()>, outcome: Outcome) {
        *self.outcome.lock().expect("not poisoned") = Some(outcome);
        cx.probe(Probe::new("read_done", 0, 1));
    }
}

impl Protocol for Reader {
    type Timer = ();

    fn on_start(&mut self, cx: &mut Context<'_, ()>) {
        for to in self.replicas.iter().take(self.answers_required) {
            let _ = cx.send_to(*to, self.query.clone());
        }
    }

    fn on_message(&mut self, cx: &mut Context<'_, ()>, from: SocketAddr, payload: Bytes) {
        let Ok(Message::QueryAnswer(a)) = Message::decode(&payload) else {
            return;
        };
        let Some(validator) = self
            .replicas
            .iter()
            .take(self.answers_required)
            .position(|r| *r == from)
        else {
            return;
        };
        if a.id != 1 || self.answers.iter().any(|(_, by, _)| by.contains(&validator)) {
            return;
        }
        let agreeing = match self.answers.iter_mut().find(|(r, _, _)| *r == a.result) {
            Some((_, by, top)) => {
                by.insert(validator);
                *top = (*top).max(a.height);
                by.len()
            }
            None => {
                self.answers
                    .push((a.result.clone(), BTreeSet::from([validator]), a.height));
                1
            }
        };
        let answered: usize = self.answers.iter().map(|(_, by, _)| by.len()).sum();
        if agreeing >= self.answers_required {
            let (result, by, top) = self
                .answers
                .iter()
                .find(|(r, _, _)| *r == a.result)
                .cloned()
                .expect("just counted");
            let outcome = match result {
                Ok(body) => match decode_read_lists(&body, self.keys) {
                    Some(lists) => Outcome::Read(lists, top, by.into_iter().collect()),
                    None => Outcome::Failed("the replicas' answer does not parse as the lists read".into()),
                },
                Err(why) => Outcome::Failed(format!("the replicas refused the read: {why}")),
            };
            self.finish(cx, outcome);
        } else if answered >= self.answers_required {
            let why = format!(
                "the {} validators asked gave {} different answers (asked at different moments, a key \
                 written between reads differently): read again",
                self.answers_required,
                self.answers.len()
            );
            self.finish(cx, Outcome::Failed(why));
        }
    }

    fn on_timer(&mut self, _cx: &mut Context<'_, ()>, _timer: ()) {}
}

/// Runs `hypermesh read`.
pub fn run(args: ReadArgs) -> ExitCode {
    match read(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(Failure(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// The read; `Ok(false)` if it was refused or did not agree in time (said on stderr).
fn read(args: ReadArgs) -> Result<bool, Failure> {
    let timeout = duration_arg("--timeout", &args.timeout, false)?;
    if args.keys.len() > READ_KEYS_MAX {
        return Err(Failure(format!(
            "{} --key given, at most {READ_KEYS_MAX} per read",
            args.keys.len()
        )));
    }
    let file = Validators::load(&args.client.validators)?;
    let n = file.validators.len();
    let answers = answers_required(args.answers, n)?;
    let enrolled = enroll(&args.client.enroll())?;
    let consistency = match args.consistency {
        ReadConsistency::Linearizable => Consistency::Linearizable,
        ReadConsistency::Local => Consistency::Local,
    };
    let ops: Vec<Op> = args.keys.iter().map(|&key| Op::Read { key }).collect();
    let query = Message::Query(Query {
        id: 1,
        consistency,
        request: encode_transaction(&ops),
    })
    .encode();
    let outcome = Arc::new(Mutex::new(None));
    let reader = Reader {
        replicas: file.addresses(),
        answers_required: answers,
        query,
        keys: ops.len(),
        answers: Vec::new(),
        outcome: outcome.clone(),
    };
    let (stoq_config, setup) = enrolled.stoq()?;
    let running = start_host(enrolled.listen, enrolled.state.path(), move || {
        Box::new(Host::new(Stoq::with_setup(stoq_config, setup)).mount(hypermesh::consensus::MOUNT, reader))
    })?;
    let mut probes = running.probes;
    enrolled.runtime.block_on(async {
        let done = async {
            while let Some(record) = probes.recv().await {
                if record.probe.name == "read_done" {
                    break;
                }
            }
        };
        tokio::select! {
            () = crate::trustchain::stop_signal() => {}
            () = done => {}
            () = tokio::time::sleep(timeout) => {}
        }
    });
    stop_host(running.thread, &running.stop)?;
    let outcome = outcome.lock().expect("not poisoned").take();
    match outcome {
        Some(Outcome::Read(lists, height, by)) => {
            let keys: serde_json::Map<String, serde_json::Value> = args
                .keys
                .iter()
                .zip(lists)
                .map(|(k, list)| (k.to_string(), serde_json::json!(list)))
                .collect();
            emit(serde_json::json!({
                "consistency": match args.consistency {
                    ReadConsistency::Linearizable => "linearizable",
                    ReadConsistency::Local => "local",
                },
                "height": height,
                "keys": keys,
                "validators": by,
            }));
            Ok(true)
        }
        Some(Outcome::Failed(why)) => {
            eprintln!("read failed: {why}");
            Ok(false)
        }
        None => {
            eprintln!("read failed: {answers} agreeing answers did not come within --timeout {timeout:?}");
            Ok(false)
        }
    }
}

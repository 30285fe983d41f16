//! Control transactions: what consensus itself commits beside the state machine's
//! transactions. Today one: [`Removal`], the isolation of a validator shown Byzantine.
//!
//! A control transaction starts with [`CONTROL_PREFIX`]; replicas refuse client submissions
//! that do, and hand the state machine only the others. Its proof travels inside it and every
//! replica checks it alike when the block commits, so isolation is a committed, deterministic
//! decision: a validator is isolated exactly when a block carrying a valid removal of it
//! commits, on every replica.
//!
//! ```text
//! removal = CONTROL_PREFIX | kind u8 (1 removal) | accused u16
//!         | proof: 1 evidence (u16 length | evidence) or 2 reports (u8 count | count × report)
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use super::evidence::Evidence;
use super::messages::Report;
use super::validators::{epoch_of_view, ValidatorIndex, ValidatorSet};
use super::wire::{Message, REPORT_BYTES};

/// The first bytes of every control transaction.
pub const CONTROL_PREFIX: &[u8] = b"\xffhypermesh/control/v1/";

/// Reports one removal carries at most.
pub const REPORTS_PER_REMOVAL_MAX: usize = 64;

const KIND_REMOVAL: u8 = 1;
const PROOF_EVIDENCE: u8 = 1;
const PROOF_REPORTS: u8 = 2;

/// Why a validator is removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Proof {
    /// Two conflicting messages it signed.
    Evidence(Box<Evidence>),
    /// Reports of it by enough distinct validators.
    Reports(Vec<Report>),
}

/// The isolation of a validator: the block that commits it ends the epoch, and the next
/// epoch's set no longer has the validator as a member (see the replica's *Isolation and
/// epochs*).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Removal {
    /// The validator removed.
    pub accused: ValidatorIndex,
    /// Why.
    pub proof: Proof,
}

/// Whether a transaction is a control transaction.
pub fn is_control(transaction: &[u8]) -> bool {
    transaction.starts_with(CONTROL_PREFIX)
}

impl Removal {
    /// Its transaction bytes.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        out.put_slice(CONTROL_PREFIX);
        out.put_u8(KIND_REMOVAL);
        out.put_u16(self.accused);
        match &self.proof {
            Proof::Evidence(e) => {
                let bytes = Message::Evidence((**e).clone()).encode();
                out.put_u8(PROOF_EVIDENCE);
                out.put_u16(bytes.len() as u16);
                out.put_slice(&bytes);
            }
            Proof::Reports(reports) => {
                assert!(
                    reports.len() <= REPORTS_PER_REMOVAL_MAX,
                    "too many reports in one removal"
                );
                out.put_u8(PROOF_REPORTS);
                out.put_u8(reports.len() as u8);
                for r in reports {
                    out.put_slice(&Message::Report(r.clone()).encode());
                }
            }
        }
        out.freeze()
    }

    /// Decodes a control transaction, naming what is wrong.
    pub fn decode(transaction: &[u8]) -> Result<Removal, String> {
        let Some(mut rest) = transaction.strip_prefix(CONTROL_PREFIX) else {
            return Err("not a control transaction".into());
        };
        let mut take = |n: usize, what: &str| -> Result<&[u8], String> {
            if rest.len() < n {
                return Err(format!("control transaction cut short in its {what}"));
            }
            let (head, tail) = rest.split_at(n);
            rest = tail;
            Ok(head)
        };
        if take(1, "kind")?[0] != KIND_REMOVAL {
            return Err("unknown control transaction kind".into());
        }
        let accused = u16::from_be_bytes(take(2, "accused")?.try_into().expect("2 bytes"));
        let proof = match take(1, "proof kind")?[0] {
            PROOF_EVIDENCE => {
                let len = u16::from_be_bytes(take(2, "evidence length")?.try_into().expect("2 bytes"));
                match Message::decode(take(usize::from(len), "evidence")?) {
                    Ok(Message::Evidence(e)) => Proof::Evidence(Box::new(e)),
                    _ => return Err("the evidence does not decode".into()),
                }
            }
            PROOF_REPORTS => {
                let count = usize::from(take(1, "report count")?[0]);
                if count > REPORTS_PER_REMOVAL_MAX {
                    return Err(format!("{count} reports, at most {REPORTS_PER_REMOVAL_MAX}"));
                }
                let mut reports = Vec::with_capacity(count);
                for i in 0..count {
                    match Message::decode(take(2 + REPORT_BYTES, "reports")?) {
                        Ok(Message::Report(r)) => reports.push(r),
                        _ => return Err(format!("report {i} does not decode")),
                    }
                }
                Proof::Reports(reports)
            }
            other => return Err(format!("unknown proof kind {other}")),
        };
        if !rest.is_empty() {
            return Err(format!("{} bytes after the proof", rest.len()));
        }
        Ok(Removal { accused, proof })
    }

    /// The epoch its proof was signed in (from the views its messages name); refuses reports
    /// of different epochs, which no one set checks.
    pub fn proof_epoch(&self) -> Result<u64, String> {
        let views: Vec<u64> = match &self.proof {
            Proof::Evidence(e) => vec![e.view()],
            Proof::Reports(reports) => reports.iter().map(|r| r.view).collect(),
        };
        let epoch = views.first().map_or(0, |v| epoch_of_view(*v));
        if views.iter().any(|v| epoch_of_view(*v) != epoch) {
            return Err("its reports were signed in different epochs".into());
        }
        Ok(epoch)
    }

    /// Whether the proof shows `accused` Byzantine under `set`: evidence against it, or
    /// reports of it from at least `threshold` distinct validators (each signature checked).
    pub fn verify(&self, set: &ValidatorSet, threshold: usize) -> Result<(), String> {
        if set.get(self.accused).is_none() {
            return Err(format!("validator {} is not in the set", self.accused));
        }
        match &self.proof {
            Proof::Evidence(e) => match e.verify(set) {
                Ok(offender) if offender == self.accused => Ok(()),
                Ok(offender) => Err(format!("the evidence is against validator {offender}")),
                Err(err) => Err(format!("the evidence does not hold: {err}")),
            },
            Proof::Reports(reports) => {
                let mut reporters = std::collections::BTreeSet::new();
                for r in reports {
                    if r.accused != self.accused {
                        return Err(format!("a report accuses validator {}", r.accused));
                    }
                    r.verify(set).map_err(|e| format!("report by {}: {e}", r.reporter))?;
                    reporters.insert(r.reporter);
                }
                if reporters.len() < threshold {
                    return Err(format!("{} distinct reporters, {threshold} needed", reporters.len()));
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{summary, Committee};
    use super::super::messages::Reason;
    use super::*;

    #[test]
    fn removals_round_trip_and_are_checked_alike_everywhere() {
        let c = Committee::new(7, 1);
        let evidence = Evidence::ConflictingVotes(c.vote(3, summary(4, 2, 1)), c.vote(3, summary(4, 2, 2)));
        let by_evidence = Removal {
            accused: 3,
            proof: Proof::Evidence(Box::new(evidence.clone())),
        };
        let report = |by: usize| Report::sign(&c.set, &c.keys[by], 5, Reason::Slow, 9).unwrap();
        let by_reports = Removal {
            accused: 5,
            proof: Proof::Reports(vec![report(0), report(1), report(2)]),
        };
        for removal in [&by_evidence, &by_reports] {
            let bytes = removal.encode();
            assert!(is_control(&bytes));
            assert_eq!(Removal::decode(&bytes).as_ref(), Ok(removal));
            assert_eq!(removal.verify(&c.set, 3), Ok(()));
            for cut in 0..bytes.len() {
                assert!(Removal::decode(&bytes[..cut]).is_err(), "cut at {cut}");
            }
        }
        let wrong = Removal {
            accused: 4,
            proof: Proof::Evidence(Box::new(evidence)),
        };
        assert_eq!(
            wrong.verify(&c.set, 3),
            Err("the evidence is against validator 3".into())
        );
        assert_eq!(
            by_reports.verify(&c.set, 4),
            Err("3 distinct reporters, 4 needed".into())
        );
        let twice = Removal {
            accused: 5,
            proof: Proof::Reports(vec![report(0), report(0), report(1)]),
        };
        assert_eq!(twice.verify(&c.set, 3), Err("2 distinct reporters, 3 needed".into()));
        let mut forged = report(2);
        forged.signature.0[0] ^= 1;
        let bad = Removal {
            accused: 5,
            proof: Proof::Reports(vec![report(0), report(1), forged]),
        };
        assert!(bad.verify(&c.set, 3).unwrap_err().starts_with("report by 2"));
        assert!(!is_control(b"an ordinary transaction"));
    }
}

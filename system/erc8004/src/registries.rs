//! The three registries' state and the calls to them: a call (sender, contract, calldata, time)
//! either succeeds whole, with its ABI-encoded return and its logs, or reverts with the revert
//! data the reference contracts give, leaving the state exactly as it was ([`crate::table`]);
//! unless it is committed [`Commit::Always`], seed 004's faulty setting, under which what it
//! wrote before reverting stands.
//!
//! Each registry's functions are in its own module ([`crate::identity`],
//! [`crate::reputation`], [`crate::validation`]); this one holds the state they share, decodes
//! the calldata by selector and routes it.

use alloy_primitives::{Address, Bytes, Log, LogData, B256, U256};
use alloy_sol_types::abi::AbiDecoderConfig;
use alloy_sol_types::{Revert as RevertReason, SolError, SolInterface};

use crate::abi::{
    IdentityRegistry, ReputationRegistry, ValidationRegistry, IDENTITY_REGISTRY, REPUTATION_REGISTRY,
    VALIDATION_REGISTRY,
};
use crate::table::{Journal, Lists, Table};
use serde::{Deserialize, Serialize};

/// Whether a call's writes stand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Commit {
    /// Never (`eth_call`): undone whether it succeeds or reverts.
    Never,
    /// If it succeeds; a call that reverts is undone whole, as the EVM undoes it. A transaction.
    IfSucceeded,
    /// Always, even past a revert: what it wrote before reverting stands. Seed 004's original
    /// ran its writes without a transaction to roll back ("Partial data writes", "Inconsistent
    /// state"); this is that fault, for the `registry-tx-rollback` scenario's variant
    /// ([`OnRevert::Keep`]). No client is told: its receipt still says it reverted.
    Always,
}

/// What becomes of a reverted transaction's writes: a setting of the chain
/// ([`crate::chain::ChainConfig::on_revert`]), replicated like the others.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnRevert {
    /// Undone whole (the guide's fix: "Transaction automatically rolls back on error").
    #[default]
    Rollback,
    /// Kept: the guide's faulty setting, partial writes ([`Commit::Always`]).
    Keep,
}

impl std::fmt::Display for OnRevert {
    /// Its name in settings and snapshots.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OnRevert::Rollback => "rollback",
            OnRevert::Keep => "keep",
        })
    }
}

impl OnRevert {
    /// How a transaction's call commits under this setting.
    pub fn commit(self) -> Commit {
        match self {
            OnRevert::Rollback => Commit::IfSucceeded,
            OnRevert::Keep => Commit::Always,
        }
    }

    /// Whether this is the default (snapshots of a chain with it omit it, as before it existed).
    pub fn is_rollback(&self) -> bool {
        *self == OnRevert::Rollback
    }
}

/// A call that succeeded: its return data (ABI-encoded) and its logs, in emission order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Success {
    /// The function's ABI-encoded return.
    pub output: Bytes,
    /// The logs it emitted.
    pub logs: Vec<Log>,
}

/// A call that reverted: the revert data the contract gives (`Error(string)` for a `require`,
/// a custom error's encoding, or empty), and the same said for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revert {
    /// The revert data, as `eth_call` returns it.
    pub data: Bytes,
    /// What it says: the `require` string, or the custom error with its arguments.
    pub reason: String,
}

impl Revert {
    /// A `require(…, reason)` failing: `Error(string)`.
    pub fn require(reason: &str) -> Revert {
        Revert {
            data: RevertReason::from(reason).abi_encode().into(),
            reason: reason.to_owned(),
        }
    }

    /// A custom error.
    pub fn error<E: SolError + std::fmt::Debug>(error: E) -> Revert {
        Revert {
            reason: format!("{error:?}"),
            data: error.abi_encode().into(),
        }
    }

    /// A revert without data (as the EVM gives for a call it cannot dispatch), with `why` for
    /// people.
    pub fn empty(why: String) -> Revert {
        Revert {
            data: Bytes::new(),
            reason: why,
        }
    }
}

/// The outcome of one call.
pub type CallResult = Result<Success, Revert>;

/// `require(condition, reason)`.
pub(crate) fn require(condition: bool, reason: &str) -> Result<(), Revert> {
    if condition {
        Ok(())
    } else {
        Err(Revert::require(reason))
    }
}

/// The call under way: who calls, when, and the logs emitted so far.
pub(crate) struct Frame {
    /// `msg.sender`.
    pub sender: Address,
    /// `block.timestamp`, Unix seconds.
    pub now: u64,
    /// Logs emitted so far, in order.
    pub logs: Vec<Log>,
}

impl Frame {
    /// Emits `data` from the contract at `address`.
    pub fn emit(&mut self, address: Address, data: LogData) {
        self.logs.push(Log { address, data });
    }
}

/// A stored feedback (the reference's `Feedback` struct).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feedback {
    /// The value, at most 1e38 in magnitude.
    pub value: i128,
    /// Its decimals, 0 to 18.
    pub decimals: u8,
    /// Whether the client revoked it.
    pub revoked: bool,
    /// The first tag.
    pub tag1: String,
    /// The second tag.
    pub tag2: String,
}

/// A validation request and its latest response (the reference's `ValidationStatus`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validation {
    /// Who is asked to validate.
    pub validator: Address,
    /// The agent validated.
    pub agent: U256,
    /// The latest response, 0 to 100 (0 until one comes).
    pub response: u8,
    /// The latest response's hash.
    pub response_hash: B256,
    /// The latest response's tag.
    pub tag: String,
    /// When the request or its latest response was made (Unix seconds).
    pub last_update: u64,
    /// Whether a response came.
    pub has_response: bool,
}

/// The registries' whole state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registries {
    // Identity: the next agent id, and the ERC-721 state with URIs and metadata.
    pub(crate) next_agent: Table<(), U256>,
    pub(crate) owners: Table<U256, Address>,
    pub(crate) balances: Table<Address, U256>,
    pub(crate) approvals: Table<U256, Address>,
    pub(crate) operators: Table<(Address, Address), bool>,
    pub(crate) uris: Table<U256, String>,
    pub(crate) metadata: Table<(U256, String), Bytes>,
    // Reputation.
    pub(crate) feedback: Table<(U256, Address, u64), Feedback>,
    pub(crate) last_index: Table<(U256, Address), u64>,
    pub(crate) clients: Lists<U256, Address>,
    pub(crate) is_client: Table<(U256, Address), ()>,
    pub(crate) response_counts: Table<(U256, Address, u64, Address), u64>,
    pub(crate) responders: Lists<(U256, Address, u64), Address>,
    // Validation.
    pub(crate) validations: Table<B256, Validation>,
    pub(crate) agent_validations: Lists<U256, B256>,
    pub(crate) validator_requests: Lists<Address, B256>,
    /// The chain id, for the identity registry's EIP-712 domain.
    pub(crate) chain_id: u64,
}

impl Registries {
    /// Empty registries on chain `chain_id`.
    pub fn new(chain_id: u64) -> Registries {
        Registries {
            chain_id,
            ..Registries::default()
        }
    }

    /// Calls `to` with `input` from `sender` at `now` (Unix seconds), sending `value` wei; its
    /// writes stand as `commit` says (a transaction's: if it succeeds, so that one that reverts
    /// leaves the state as it was).
    pub fn call(
        &mut self,
        sender: Address,
        to: Address,
        input: &[u8],
        value: U256,
        now: u64,
        commit: Commit,
    ) -> CallResult {
        let mut frame = Frame {
            sender,
            now,
            logs: Vec::new(),
        };
        // Rolled back when dropped unless kept: a panic mid-call (a bug) leaves no pending
        // writes for the next call to commit.
        let mut pending = Pending {
            registries: self,
            keep: false,
        };
        let result = if !value.is_zero() {
            // Every registry function is non-payable: Solidity reverts without data.
            Err(Revert::empty(format!(
                "{to} takes no value: the registries' functions are non-payable"
            )))
        } else if to == IDENTITY_REGISTRY {
            decode::<IdentityRegistry::IdentityRegistryCalls>(input, "IdentityRegistry")
                .and_then(|call| pending.registries.identity(&mut frame, call))
        } else if to == REPUTATION_REGISTRY {
            decode::<ReputationRegistry::ReputationRegistryCalls>(input, "ReputationRegistry")
                .and_then(|call| pending.registries.reputation(&mut frame, call))
        } else if to == VALIDATION_REGISTRY {
            decode::<ValidationRegistry::ValidationRegistryCalls>(input, "ValidationRegistry")
                .and_then(|call| pending.registries.validation(&mut frame, call))
        } else {
            Err(Revert::empty(format!(
                "no contract at {to}: this chain runs the ERC-8004 registries only (IdentityRegistry \
                 {IDENTITY_REGISTRY}, ReputationRegistry {REPUTATION_REGISTRY}, ValidationRegistry \
                 {VALIDATION_REGISTRY})"
            )))
        };
        pending.keep = match commit {
            Commit::Never => false,
            Commit::IfSucceeded => result.is_ok(),
            Commit::Always => true,
        };
        drop(pending);
        result.map(|output| Success {
            output,
            logs: frame.logs,
        })
    }

    /// Ends the call: its writes kept or undone, in every table.
    fn end(&mut self, keep: bool) {
        let journals: [&mut dyn Journal; 16] = [
            &mut self.next_agent,
            &mut self.owners,
            &mut self.balances,
            &mut self.approvals,
            &mut self.operators,
            &mut self.uris,
            &mut self.metadata,
            &mut self.feedback,
            &mut self.last_index,
            &mut self.clients,
            &mut self.is_client,
            &mut self.response_counts,
            &mut self.responders,
            &mut self.validations,
            &mut self.agent_validations,
            &mut self.validator_requests,
        ];
        for journal in journals {
            if keep {
                journal.commit();
            } else {
                journal.rollback();
            }
        }
    }
}

/// A call under way: its writes are kept or undone when it is dropped.
struct Pending<'a> {
    registries: &'a mut Registries,
    keep: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.registries.end(self.keep);
    }
}

/// `input` decoded as a call of the interface `I` (named `contract` in refusals): a selector it
/// does not have, or arguments that do not decode, revert without data, as the reference's
/// dispatch does.
fn decode<I: SolInterface>(input: &[u8], contract: &str) -> Result<I, Revert> {
    let Some(selector) = input.get(..4) else {
        return Err(Revert::empty(format!(
            "calldata of {} bytes names no function of the {contract}",
            input.len()
        )));
    };
    if !I::valid_selector(selector.try_into().expect("four bytes")) {
        return Err(Revert::empty(format!(
            "the {contract} has no function with selector 0x{} here",
            alloy_primitives::hex::encode(selector)
        )));
    }
    // Validated as Solidity's ABI decoder validates: values beyond their type (a uint8 with
    // higher bits set, a bool other than 0 or 1) revert rather than being cut; trailing bytes
    // are taken, as Solidity takes them. Strings must be UTF-8 here, where the reference takes
    // any bytes: a string that is not is refused by name rather than altered.
    I::abi_decode_with_config(input, AbiDecoderConfig::new().validate(true)).map_err(|e| {
        let lossy = I::abi_decode(input).is_ok();
        Revert::empty(format!(
            "the arguments of the {contract}'s function 0x{} do not decode{}: {e}",
            alloy_primitives::hex::encode(selector),
            if lossy {
                " (a value beyond its type, or a string that is not UTF-8, which this chain does not take)"
            } else {
                ""
            }
        ))
    })
}

//! The identity registry: an ERC-721 of agents (ids from 0, assigned here, so registrations
//! never collide), their URIs and metadata, and the agent wallet: set to the owner on
//! registration, changed only with the new wallet's EIP-712 signature, cleared on transfer.
//!
//! Checks, reverts and events follow the reference `IdentityRegistryUpgradeable` 2.0.0 over
//! OpenZeppelin 5.4's ERC-721, in the same order (the order decides which revert a bad call
//! gets, and the order of its logs).

use alloy_primitives::{keccak256, Address, Bytes, Signature, B256, U256};
use alloy_sol_types::{Eip712Domain, SolCall, SolEvent, SolStruct};

use crate::abi::IdentityRegistry::{self as I, IdentityRegistryCalls as Call};
use crate::abi::{
    ERC721IncorrectOwner, ERC721InsufficientApproval, ERC721InvalidApprover, ERC721InvalidOperator, ERC721InvalidOwner,
    ERC721InvalidReceiver, ERC721NonexistentToken, MetadataEntry, IDENTITY_REGISTRY, REPUTATION_REGISTRY,
    VALIDATION_REGISTRY, VERSION,
};
use crate::registries::{require, Frame, Registries, Revert};

/// The reserved metadata key holding the agent's verified wallet.
pub const AGENT_WALLET: &str = "agentWallet";

/// The revert reason of a metadata entry under [`AGENT_WALLET`], as the reference gives it.
pub const RESERVED_KEY: &str = "reserved key";

/// How far ahead a `setAgentWallet` deadline may be (the reference's `MAX_DEADLINE_DELAY`).
pub const DEADLINE_DELAY_MAX_S: u64 = 5 * 60;

/// The ERC-721 name and symbol.
pub const NAME: &str = "AgentIdentity";
/// The ERC-721 symbol.
pub const SYMBOL: &str = "AGENT";

/// Interfaces `supportsInterface` claims: ERC-165, ERC-721, ERC-721 Metadata, ERC-4906.
const INTERFACES: [[u8; 4]; 4] = [
    [0x01, 0xff, 0xc9, 0xa7],
    [0x80, 0xac, 0x58, 0xcd],
    [0x5b, 0x5e, 0x13, 0x9f],
    [0x49, 0x06, 0x49, 0x06],
];

alloy_sol_types::sol! {
    /// What the new wallet signs to become an agent's wallet (EIP-712).
    struct AgentWalletSet {
        uint256 agentId;
        address newWallet;
        address owner;
        uint256 deadline;
    }
}

/// The EIP-712 domain's name.
const EIP712_NAME: &str = "ERC8004IdentityRegistry";
/// The EIP-712 domain's version.
const EIP712_VERSION: &str = "1";

/// The identity registry's EIP-712 domain on chain `chain_id`.
pub fn eip712_domain(chain_id: u64) -> Eip712Domain {
    Eip712Domain::new(
        Some(EIP712_NAME.into()),
        Some(EIP712_VERSION.into()),
        Some(U256::from(chain_id)),
        Some(IDENTITY_REGISTRY),
        None,
    )
}

/// The digest `newWallet` signs to become `agent`'s wallet, naming its current `owner`.
pub fn agent_wallet_digest(chain_id: u64, agent: U256, new_wallet: Address, owner: Address, deadline: U256) -> B256 {
    AgentWalletSet {
        agentId: agent,
        newWallet: new_wallet,
        owner,
        deadline,
    }
    .eip712_signing_hash(&eip712_domain(chain_id))
}

/// Whether `address` holds code: only the registries do on this chain (every account is an
/// externally owned one), and none of them takes an ERC-721 or answers ERC-1271.
pub fn has_code(address: Address) -> bool {
    [IDENTITY_REGISTRY, REPUTATION_REGISTRY, VALIDATION_REGISTRY].contains(&address)
}

fn nonexistent(agent: U256) -> Revert {
    Revert::error(ERC721NonexistentToken { tokenId: agent })
}

impl Registries {
    /// Runs a call to the identity registry; its ABI-encoded return.
    pub(crate) fn identity(&mut self, f: &mut Frame, call: Call) -> Result<Bytes, Revert> {
        Ok(match call {
            Call::register_0(_) => {
                let agent = self.register(f, None, Vec::new())?;
                I::register_0Call::abi_encode_returns(&agent)
            }
            Call::register_1(c) => {
                let agent = self.register(f, Some(c.agentURI), Vec::new())?;
                I::register_1Call::abi_encode_returns(&agent)
            }
            Call::register_2(c) => {
                let agent = self.register(f, Some(c.agentURI), c.metadata)?;
                I::register_2Call::abi_encode_returns(&agent)
            }
            Call::getMetadata(c) => {
                let value = self
                    .metadata
                    .get(&(c.agentId, c.metadataKey))
                    .cloned()
                    .unwrap_or_default();
                I::getMetadataCall::abi_encode_returns(&value)
            }
            Call::setMetadata(c) => {
                self.set_metadata(f, c.agentId, c.metadataKey, c.metadataValue)?;
                Vec::new()
            }
            Call::setAgentURI(c) => {
                let owner = self.owner_of(c.agentId)?;
                self.require_inline_auth(f, owner, c.agentId)?;
                self.set_token_uri(f, c.agentId, c.newURI.clone());
                f.emit(
                    IDENTITY_REGISTRY,
                    I::URIUpdated {
                        agentId: c.agentId,
                        newURI: c.newURI,
                        updatedBy: f.sender,
                    }
                    .encode_log_data(),
                );
                Vec::new()
            }
            Call::getAgentWallet(c) => I::getAgentWalletCall::abi_encode_returns(&self.agent_wallet(c.agentId)),
            Call::setAgentWallet(c) => {
                self.set_agent_wallet(f, c.agentId, c.newWallet, c.deadline, &c.signature)?;
                Vec::new()
            }
            Call::unsetAgentWallet(c) => {
                let owner = self.owner_of(c.agentId)?;
                self.require_inline_auth(f, owner, c.agentId)?;
                self.write_wallet(f, c.agentId, Bytes::new());
                Vec::new()
            }
            Call::isAuthorizedOrOwner(c) => {
                let owner = self.owner_of(c.agentId)?;
                I::isAuthorizedOrOwnerCall::abi_encode_returns(&self.is_authorized(owner, c.spender, c.agentId))
            }
            Call::getVersion(_) => I::getVersionCall::abi_encode_returns(&VERSION.to_owned()),
            Call::balanceOf(c) => {
                if c.owner.is_zero() {
                    return Err(Revert::error(ERC721InvalidOwner { owner: c.owner }));
                }
                I::balanceOfCall::abi_encode_returns(&self.balances.get(&c.owner).copied().unwrap_or_default())
            }
            Call::ownerOf(c) => I::ownerOfCall::abi_encode_returns(&self.owner_of(c.tokenId)?),
            Call::approve(c) => {
                let owner = self.owner_of(c.tokenId)?;
                // OpenZeppelin's _approve checks no authority for the zero caller (reachable
                // only in an eth_call without `from`).
                if !f.sender.is_zero() && owner != f.sender && !self.is_operator(owner, f.sender) {
                    return Err(Revert::error(ERC721InvalidApprover { approver: f.sender }));
                }
                f.emit(
                    IDENTITY_REGISTRY,
                    I::Approval {
                        owner,
                        approved: c.to,
                        tokenId: c.tokenId,
                    }
                    .encode_log_data(),
                );
                self.set_approval(c.tokenId, c.to);
                Vec::new()
            }
            Call::getApproved(c) => I::getApprovedCall::abi_encode_returns(&self.get_approved(c.tokenId)?),
            Call::setApprovalForAll(c) => {
                if c.operator.is_zero() {
                    return Err(Revert::error(ERC721InvalidOperator { operator: c.operator }));
                }
                if c.approved {
                    self.operators.insert((f.sender, c.operator), true);
                } else {
                    self.operators.remove(&(f.sender, c.operator));
                }
                f.emit(
                    IDENTITY_REGISTRY,
                    I::ApprovalForAll {
                        owner: f.sender,
                        operator: c.operator,
                        approved: c.approved,
                    }
                    .encode_log_data(),
                );
                Vec::new()
            }
            Call::isApprovedForAll(c) => {
                I::isApprovedForAllCall::abi_encode_returns(&self.is_operator(c.owner, c.operator))
            }
            Call::transferFrom(c) => {
                self.transfer_from(f, c.from, c.to, c.tokenId)?;
                Vec::new()
            }
            Call::safeTransferFrom_0(c) => {
                self.transfer_from(f, c.from, c.to, c.tokenId)?;
                self.check_receiver(c.to)?;
                Vec::new()
            }
            Call::safeTransferFrom_1(c) => {
                self.transfer_from(f, c.from, c.to, c.tokenId)?;
                self.check_receiver(c.to)?;
                Vec::new()
            }
            Call::tokenURI(c) => {
                self.owner_of(c.tokenId)?;
                I::tokenURICall::abi_encode_returns(&self.uris.get(&c.tokenId).cloned().unwrap_or_default())
            }
            Call::name(_) => I::nameCall::abi_encode_returns(&NAME.to_owned()),
            Call::symbol(_) => I::symbolCall::abi_encode_returns(&SYMBOL.to_owned()),
            Call::supportsInterface(c) => {
                I::supportsInterfaceCall::abi_encode_returns(&INTERFACES.contains(&c.interfaceId.0))
            }
            Call::eip712Domain(_) => I::eip712DomainCall::abi_encode_returns(&I::eip712DomainReturn {
                // ERC-5267: name, version, chain id and verifying contract are set.
                fields: alloy_primitives::FixedBytes([0x0f]),
                name: EIP712_NAME.to_owned(),
                version: EIP712_VERSION.to_owned(),
                chainId: U256::from(self.chain_id),
                verifyingContract: IDENTITY_REGISTRY,
                salt: B256::ZERO,
                extensions: Vec::new(),
            }),
            Call::owner(_) => I::ownerCall::abi_encode_returns(&Address::ZERO),
        }
        .into())
    }

    /// `register` in its three forms: the next id, minted to the caller, whose wallet it
    /// becomes; then its URI (if given) and metadata (no entry may be the reserved key).
    fn register(&mut self, f: &mut Frame, uri: Option<String>, entries: Vec<MetadataEntry>) -> Result<U256, Revert> {
        let agent = self.next_agent.get(&()).copied().unwrap_or_default();
        self.next_agent.insert((), agent + U256::from(1));
        let wallet = Bytes::copy_from_slice(f.sender.as_slice());
        self.metadata.insert((agent, AGENT_WALLET.to_owned()), wallet.clone());
        // OpenZeppelin's _safeMint.
        self.owners.insert(agent, f.sender);
        self.balances.update(f.sender, U256::ZERO, |b| *b += U256::from(1));
        f.emit(
            IDENTITY_REGISTRY,
            I::Transfer {
                from: Address::ZERO,
                to: f.sender,
                tokenId: agent,
            }
            .encode_log_data(),
        );
        self.check_receiver(f.sender)?;
        if let Some(uri) = &uri {
            self.set_token_uri(f, agent, uri.clone());
        }
        f.emit(
            IDENTITY_REGISTRY,
            I::Registered {
                agentId: agent,
                agentURI: uri.unwrap_or_default(),
                owner: f.sender,
            }
            .encode_log_data(),
        );
        self.emit_metadata(f, agent, AGENT_WALLET, wallet);
        for entry in entries {
            require(entry.metadataKey != AGENT_WALLET, RESERVED_KEY)?;
            self.write_metadata(agent, entry.metadataKey.clone(), entry.metadataValue.clone());
            self.emit_metadata(f, agent, &entry.metadataKey, entry.metadataValue);
        }
        Ok(agent)
    }

    fn set_metadata(&mut self, f: &mut Frame, agent: U256, key: String, value: Bytes) -> Result<(), Revert> {
        // `_ownerOf`: zero for an unknown agent, whose `getApproved` then reverts.
        let owner = self.owners.get(&agent).copied().unwrap_or_default();
        self.require_inline_auth(f, owner, agent)?;
        require(key != AGENT_WALLET, RESERVED_KEY)?;
        self.write_metadata(agent, key.clone(), value.clone());
        self.emit_metadata(f, agent, &key, value);
        Ok(())
    }

    fn set_agent_wallet(
        &mut self,
        f: &mut Frame,
        agent: U256,
        new_wallet: Address,
        deadline: U256,
        signature: &[u8],
    ) -> Result<(), Revert> {
        let owner = self.owner_of(agent)?;
        self.require_inline_auth(f, owner, agent)?;
        require(!new_wallet.is_zero(), "bad wallet")?;
        let now = U256::from(f.now);
        require(now <= deadline, "expired")?;
        require(deadline <= now + U256::from(DEADLINE_DELAY_MAX_S), "deadline too far")?;
        let digest = agent_wallet_digest(self.chain_id, agent, new_wallet, owner, deadline);
        // ECDSA first (a 65-byte r‖s‖v with v 27 or 28 and a low s, as OpenZeppelin's
        // tryRecover and the ecrecover precompile take it); then ERC-1271, which no account
        // here answers.
        require(signed_by(signature, &digest) == Some(new_wallet), "invalid wallet sig")?;
        self.write_wallet(f, agent, Bytes::copy_from_slice(new_wallet.as_slice()));
        Ok(())
    }

    /// OpenZeppelin's `transferFrom`, with the registry's `_update` override clearing the
    /// agent wallet (its `MetadataSet` before the `Transfer`).
    fn transfer_from(&mut self, f: &mut Frame, from: Address, to: Address, agent: U256) -> Result<(), Revert> {
        if to.is_zero() {
            return Err(Revert::error(ERC721InvalidReceiver { receiver: to }));
        }
        let previous = self.owners.get(&agent).copied().unwrap_or_default();
        if !previous.is_zero() {
            self.write_wallet(f, agent, Bytes::new());
        }
        // OpenZeppelin's _update checks no authority for the zero caller (an eth_call without
        // `from`; a transaction always has a sender).
        if !f.sender.is_zero() && !self.is_authorized(previous, f.sender, agent) {
            return Err(if previous.is_zero() {
                nonexistent(agent)
            } else {
                Revert::error(ERC721InsufficientApproval {
                    operator: f.sender,
                    tokenId: agent,
                })
            });
        }
        if !previous.is_zero() {
            self.approvals.remove(&agent);
            self.balances.update(previous, U256::ZERO, |b| *b -= U256::from(1));
        }
        self.balances.update(to, U256::ZERO, |b| *b += U256::from(1));
        self.owners.insert(agent, to);
        f.emit(
            IDENTITY_REGISTRY,
            I::Transfer {
                from: previous,
                to,
                tokenId: agent,
            }
            .encode_log_data(),
        );
        if previous != from {
            return Err(Revert::error(ERC721IncorrectOwner {
                sender: from,
                tokenId: agent,
                owner: previous,
            }));
        }
        Ok(())
    }

    /// `safeTransferFrom`'s and `_safeMint`'s check: a receiver with code must take the token
    /// (`onERC721Received`); none here does.
    fn check_receiver(&self, to: Address) -> Result<(), Revert> {
        if has_code(to) {
            return Err(Revert::error(ERC721InvalidReceiver { receiver: to }));
        }
        Ok(())
    }

    /// `ownerOf`: the agent's owner, or `ERC721NonexistentToken`.
    pub(crate) fn owner_of(&self, agent: U256) -> Result<Address, Revert> {
        self.owners.get(&agent).copied().ok_or_else(|| nonexistent(agent))
    }

    /// `getApproved`: the agent's approved address (zero if none), or `ERC721NonexistentToken`.
    pub(crate) fn get_approved(&self, agent: U256) -> Result<Address, Revert> {
        self.owner_of(agent)?;
        Ok(self.approvals.get(&agent).copied().unwrap_or_default())
    }

    /// `isApprovedForAll`.
    pub(crate) fn is_operator(&self, owner: Address, operator: Address) -> bool {
        self.operators.get(&(owner, operator)).copied().unwrap_or(false)
    }

    /// OpenZeppelin's `_isAuthorized`: a non-zero spender that owns, operates for the owner, or
    /// is approved for the agent.
    pub(crate) fn is_authorized(&self, owner: Address, spender: Address, agent: U256) -> bool {
        !spender.is_zero()
            && (owner == spender
                || self.is_operator(owner, spender)
                || self.approvals.get(&agent).copied().unwrap_or_default() == spender)
    }

    /// The registry's inline check (`msg.sender == owner || isApprovedForAll(owner, msg.sender)
    /// || msg.sender == getApproved(agentId)`), evaluated in that order: `getApproved` reverts
    /// for an unknown agent before "Not authorized" is reached.
    fn require_inline_auth(&self, f: &Frame, owner: Address, agent: U256) -> Result<(), Revert> {
        let allowed = f.sender == owner || self.is_operator(owner, f.sender) || self.get_approved(agent)? == f.sender;
        require(allowed, "Not authorized")
    }

    /// `getAgentWallet`: `address(bytes20(metadata[agentWallet]))`, zero if unset or unknown.
    pub(crate) fn agent_wallet(&self, agent: U256) -> Address {
        let stored = self.metadata.get(&(agent, AGENT_WALLET.to_owned()));
        let mut word = [0u8; 20];
        if let Some(bytes) = stored {
            let n = bytes.len().min(20);
            word[..n].copy_from_slice(&bytes[..n]);
        }
        Address::from(word)
    }

    fn set_approval(&mut self, agent: U256, to: Address) {
        if to.is_zero() {
            self.approvals.remove(&agent);
        } else {
            self.approvals.insert(agent, to);
        }
    }

    /// `_setTokenURI`, with ERC-4906's `MetadataUpdate`.
    fn set_token_uri(&mut self, f: &mut Frame, agent: U256, uri: String) {
        self.uris.insert(agent, uri);
        f.emit(
            IDENTITY_REGISTRY,
            I::MetadataUpdate { _tokenId: agent }.encode_log_data(),
        );
    }

    /// Stores a metadata value; an empty one is kept as absence (the reference returns the
    /// same empty bytes for both).
    fn write_metadata(&mut self, agent: U256, key: String, value: Bytes) {
        if value.is_empty() {
            self.metadata.remove(&(agent, key));
        } else {
            self.metadata.insert((agent, key), value);
        }
    }

    /// Sets the agent wallet's stored bytes (empty clears it) and says so.
    fn write_wallet(&mut self, f: &mut Frame, agent: U256, value: Bytes) {
        self.write_metadata(agent, AGENT_WALLET.to_owned(), value.clone());
        self.emit_metadata(f, agent, AGENT_WALLET, value);
    }

    fn emit_metadata(&self, f: &mut Frame, agent: U256, key: &str, value: Bytes) {
        f.emit(
            IDENTITY_REGISTRY,
            I::MetadataSet {
                agentId: agent,
                indexedMetadataKey: keccak256(key.as_bytes()),
                metadataKey: key.to_owned(),
                metadataValue: value,
            }
            .encode_log_data(),
        );
    }
}

/// Who signed `digest` with `signature`, as OpenZeppelin's `ECDSA.tryRecover` over the
/// `ecrecover` precompile sees it: 65 bytes `r‖s‖v`, `v` 27 or 28, `s` in the lower half of the
/// curve's order; `None` otherwise.
fn signed_by(signature: &[u8], digest: &B256) -> Option<Address> {
    let raw: &[u8; 65] = signature.try_into().ok()?;
    if raw[64] != 27 && raw[64] != 28 {
        return None;
    }
    let parsed = Signature::from_raw_array(raw).ok()?;
    if parsed.normalize_s().is_some() {
        // A high s: malleable, refused.
        return None;
    }
    parsed.recover_address_from_prehash(digest).ok()
}

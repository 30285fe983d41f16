//! The validation registry: an agent's owner (or operator, or approved address) asks a validator
//! to validate it under a request hash unique across the registry; the named validator answers
//! 0 to 100, as often as it likes (the last answer stands), with a tag.
//!
//! Checks, reverts and events follow the reference `ValidationRegistryUpgradeable` 2.0.0.

use alloy_primitives::{Bytes, B256};
use alloy_sol_types::{SolCall, SolEvent};

use crate::abi::ValidationRegistry::{self as V, ValidationRegistryCalls as Call};
use crate::abi::{IDENTITY_REGISTRY, VALIDATION_REGISTRY, VERSION};
use crate::registries::{require, Frame, Registries, Revert, Validation};

/// The highest response.
pub const RESPONSE_MAX: u8 = 100;

impl Registries {
    /// Runs a call to the validation registry; its ABI-encoded return.
    pub(crate) fn validation(&mut self, f: &mut Frame, call: Call) -> Result<Bytes, Revert> {
        Ok(match call {
            Call::validationRequest(c) => {
                require(!c.validatorAddress.is_zero(), "bad validator")?;
                require(!self.validations.contains(&c.requestHash), "exists")?;
                // The identity registry's ownerOf, isApprovedForAll and getApproved: an unknown
                // agent's revert bubbles up.
                let owner = self.owner_of(c.agentId)?;
                let allowed =
                    f.sender == owner || self.is_operator(owner, f.sender) || self.get_approved(c.agentId)? == f.sender;
                require(allowed, "Not authorized")?;
                self.validations.insert(
                    c.requestHash,
                    Validation {
                        validator: c.validatorAddress,
                        agent: c.agentId,
                        response: 0,
                        response_hash: B256::ZERO,
                        tag: String::new(),
                        last_update: f.now,
                        has_response: false,
                    },
                );
                self.agent_validations.push(c.agentId, c.requestHash);
                self.validator_requests.push(c.validatorAddress, c.requestHash);
                f.emit(
                    VALIDATION_REGISTRY,
                    V::ValidationRequest {
                        validatorAddress: c.validatorAddress,
                        agentId: c.agentId,
                        requestURI: c.requestURI,
                        requestHash: c.requestHash,
                    }
                    .encode_log_data(),
                );
                Vec::new()
            }
            Call::validationResponse(c) => {
                let mut status = self.validations.get(&c.requestHash).cloned();
                let Some(s) = status.as_mut() else {
                    return Err(Revert::require("unknown"));
                };
                require(f.sender == s.validator, "not validator")?;
                require(c.response <= RESPONSE_MAX, "resp>100")?;
                s.response = c.response;
                s.response_hash = c.responseHash;
                s.tag = c.tag.clone();
                s.last_update = f.now;
                s.has_response = true;
                let (validator, agent) = (s.validator, s.agent);
                self.validations.insert(c.requestHash, status.expect("matched above"));
                f.emit(
                    VALIDATION_REGISTRY,
                    V::ValidationResponse {
                        validatorAddress: validator,
                        agentId: agent,
                        requestHash: c.requestHash,
                        response: c.response,
                        responseURI: c.responseURI,
                        responseHash: c.responseHash,
                        tag: c.tag,
                    }
                    .encode_log_data(),
                );
                Vec::new()
            }
            Call::getValidationStatus(c) => {
                let s = self
                    .validations
                    .get(&c.requestHash)
                    .ok_or_else(|| Revert::require("unknown"))?;
                V::getValidationStatusCall::abi_encode_returns(&V::getValidationStatusReturn {
                    validatorAddress: s.validator,
                    agentId: s.agent,
                    response: s.response,
                    responseHash: s.response_hash,
                    tag: s.tag.clone(),
                    lastUpdate: alloy_primitives::U256::from(s.last_update),
                })
            }
            Call::getSummary(c) => {
                let (mut count, mut sum) = (0u64, 0u64);
                for hash in self.agent_validations.iter(&c.agentId) {
                    let s = self.validations.get(hash).expect("an agent's requests are stored");
                    let validator_passes =
                        c.validatorAddresses.is_empty() || c.validatorAddresses.contains(&s.validator);
                    let tag_passes = c.tag.is_empty() || c.tag == s.tag;
                    if validator_passes && tag_passes && s.has_response {
                        count += 1;
                        sum += u64::from(s.response);
                    }
                }
                // A mean of responses of at most 100 fits a u8.
                let average = sum.checked_div(count).unwrap_or(0) as u8;
                V::getSummaryCall::abi_encode_returns(&V::getSummaryReturn {
                    count,
                    avgResponse: average,
                })
            }
            Call::getAgentValidations(c) => {
                let hashes: Vec<B256> = self.agent_validations.iter(&c.agentId).copied().collect();
                V::getAgentValidationsCall::abi_encode_returns(&hashes)
            }
            Call::getValidatorRequests(c) => {
                let hashes: Vec<B256> = self.validator_requests.iter(&c.validatorAddress).copied().collect();
                V::getValidatorRequestsCall::abi_encode_returns(&hashes)
            }
            Call::getIdentityRegistry(_) => V::getIdentityRegistryCall::abi_encode_returns(&IDENTITY_REGISTRY),
            Call::getVersion(_) => V::getVersionCall::abi_encode_returns(&VERSION.to_owned()),
            Call::owner(_) => V::ownerCall::abi_encode_returns(&alloy_primitives::Address::ZERO),
        }
        .into())
    }
}

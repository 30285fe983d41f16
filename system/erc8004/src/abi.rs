//! The registries' ABI as the reference contracts (`erc-8004/erc-8004-contracts`, version
//! 2.0.0) expose it: functions, events (same signatures and indexed fields, so the same topic
//! hashes) and errors. alloy's `sol!` derives selectors, calldata decoding, return encoding and
//! log encoding from these declarations; nothing here is encoded by hand.
//!
//! Only what callers see is declared. The proxies' administration (`upgradeToAndCall`,
//! `initialize`, ownership transfer) is deployment here, not callable: those selectors revert as
//! unknown, and `owner()` answers the zero address (nobody can upgrade these registries).

#![allow(missing_docs)] // The declarations are the reference contracts' own names.
#![allow(clippy::too_many_arguments)] // `giveFeedback` and `NewFeedback` are the reference's.

use alloy_primitives::{address, Address};

alloy_sol_types::sol! {
    #![sol(all_derives)]

    /// An entry of `register(string,(string,bytes)[])`.
    struct MetadataEntry {
        string metadataKey;
        bytes metadataValue;
    }

    /// The identity registry: an ERC-721 of agents, with URIs, metadata and a verified wallet.
    interface IdentityRegistry {
        event Registered(uint256 indexed agentId, string agentURI, address indexed owner);
        event MetadataSet(uint256 indexed agentId, string indexed indexedMetadataKey, string metadataKey, bytes metadataValue);
        event URIUpdated(uint256 indexed agentId, string newURI, address indexed updatedBy);
        event Transfer(address indexed from, address indexed to, uint256 indexed tokenId);
        event Approval(address indexed owner, address indexed approved, uint256 indexed tokenId);
        event ApprovalForAll(address indexed owner, address indexed operator, bool approved);
        event MetadataUpdate(uint256 _tokenId);

        function register() external returns (uint256 agentId);
        function register(string agentURI) external returns (uint256 agentId);
        function register(string agentURI, MetadataEntry[] metadata) external returns (uint256 agentId);
        function getMetadata(uint256 agentId, string metadataKey) external view returns (bytes);
        function setMetadata(uint256 agentId, string metadataKey, bytes metadataValue) external;
        function setAgentURI(uint256 agentId, string newURI) external;
        function getAgentWallet(uint256 agentId) external view returns (address);
        function setAgentWallet(uint256 agentId, address newWallet, uint256 deadline, bytes signature) external;
        function unsetAgentWallet(uint256 agentId) external;
        function isAuthorizedOrOwner(address spender, uint256 agentId) external view returns (bool);
        function getVersion() external pure returns (string);

        function balanceOf(address owner) external view returns (uint256);
        function ownerOf(uint256 tokenId) external view returns (address);
        function approve(address to, uint256 tokenId) external;
        function getApproved(uint256 tokenId) external view returns (address);
        function setApprovalForAll(address operator, bool approved) external;
        function isApprovedForAll(address owner, address operator) external view returns (bool);
        function transferFrom(address from, address to, uint256 tokenId) external;
        function safeTransferFrom(address from, address to, uint256 tokenId) external;
        function safeTransferFrom(address from, address to, uint256 tokenId, bytes data) external;
        function tokenURI(uint256 tokenId) external view returns (string);
        function name() external view returns (string);
        function symbol() external view returns (string);
        function supportsInterface(bytes4 interfaceId) external view returns (bool);
        function eip712Domain() external view returns (bytes1 fields, string name, string version, uint256 chainId, address verifyingContract, bytes32 salt, uint256[] extensions);
        function owner() external view returns (address);
    }

    /// The reputation registry: feedback from clients, revocations and responses.
    interface ReputationRegistry {
        event NewFeedback(uint256 indexed agentId, address indexed clientAddress, uint64 feedbackIndex, int128 value, uint8 valueDecimals, string indexed indexedTag1, string tag1, string tag2, string endpoint, string feedbackURI, bytes32 feedbackHash);
        event FeedbackRevoked(uint256 indexed agentId, address indexed clientAddress, uint64 indexed feedbackIndex);
        event ResponseAppended(uint256 indexed agentId, address indexed clientAddress, uint64 feedbackIndex, address indexed responder, string responseURI, bytes32 responseHash);

        function giveFeedback(uint256 agentId, int128 value, uint8 valueDecimals, string tag1, string tag2, string endpoint, string feedbackURI, bytes32 feedbackHash) external;
        function revokeFeedback(uint256 agentId, uint64 feedbackIndex) external;
        function appendResponse(uint256 agentId, address clientAddress, uint64 feedbackIndex, string responseURI, bytes32 responseHash) external;
        function getLastIndex(uint256 agentId, address clientAddress) external view returns (uint64);
        function readFeedback(uint256 agentId, address clientAddress, uint64 feedbackIndex) external view returns (int128 value, uint8 valueDecimals, string tag1, string tag2, bool isRevoked);
        function getSummary(uint256 agentId, address[] clientAddresses, string tag1, string tag2) external view returns (uint64 count, int128 summaryValue, uint8 summaryValueDecimals);
        function readAllFeedback(uint256 agentId, address[] clientAddresses, string tag1, string tag2, bool includeRevoked) external view returns (address[] clients, uint64[] feedbackIndexes, int128[] values, uint8[] valueDecimals, string[] tag1s, string[] tag2s, bool[] revokedStatuses);
        function getResponseCount(uint256 agentId, address clientAddress, uint64 feedbackIndex, address[] responders) external view returns (uint64 count);
        function getClients(uint256 agentId) external view returns (address[]);
        function getIdentityRegistry() external view returns (address);
        function getVersion() external pure returns (string);
        function owner() external view returns (address);
    }

    /// The validation registry: requests to validators and their responses.
    interface ValidationRegistry {
        event ValidationRequest(address indexed validatorAddress, uint256 indexed agentId, string requestURI, bytes32 indexed requestHash);
        event ValidationResponse(address indexed validatorAddress, uint256 indexed agentId, bytes32 indexed requestHash, uint8 response, string responseURI, bytes32 responseHash, string tag);

        function validationRequest(address validatorAddress, uint256 agentId, string requestURI, bytes32 requestHash) external;
        function validationResponse(bytes32 requestHash, uint8 response, string responseURI, bytes32 responseHash, string tag) external;
        function getValidationStatus(bytes32 requestHash) external view returns (address validatorAddress, uint256 agentId, uint8 response, bytes32 responseHash, string tag, uint256 lastUpdate);
        function getSummary(uint256 agentId, address[] validatorAddresses, string tag) external view returns (uint64 count, uint8 avgResponse);
        function getAgentValidations(uint256 agentId) external view returns (bytes32[]);
        function getValidatorRequests(address validatorAddress) external view returns (bytes32[]);
        function getIdentityRegistry() external view returns (address);
        function getVersion() external pure returns (string);
        function owner() external view returns (address);
    }

    /// OpenZeppelin 5.4's ERC-721 errors, as the identity registry reverts with them (and the
    /// other two bubble them up from it).
    error ERC721NonexistentToken(uint256 tokenId);
    error ERC721InsufficientApproval(address operator, uint256 tokenId);
    error ERC721IncorrectOwner(address sender, uint256 tokenId, address owner);
    error ERC721InvalidReceiver(address receiver);
    error ERC721InvalidApprover(address approver);
    error ERC721InvalidOperator(address operator);
    error ERC721InvalidOwner(address owner);
}

/// The identity registry's mainnet address (the same on every mainnet the reference deploys to).
pub const IDENTITY_REGISTRY: Address = address!("8004A169FB4a3325136EB29fA0ceB6D2e539a432");
/// The reputation registry's mainnet address.
pub const REPUTATION_REGISTRY: Address = address!("8004BAa17C55a88189AE136b182e5fdA19dE9b63");
/// The validation registry's mainnet address (in the reference's deployment scripts).
pub const VALIDATION_REGISTRY: Address = address!("8004Cc8439f36fd5F9F049D9fF86523Df6dAAB58");

/// What every registry's `getVersion()` answers.
pub const VERSION: &str = "2.0.0";

"""An ERC-8004 client written as an agent developer writes one: web3.py (a published package)
signs transactions with local keys and calls the registries' ABI at their mainnet addresses.

Usage: registry_client.py RPC_URL OWNER_KEY CLIENT_KEY

Registers an agent, gives it feedback from another account, reads the summary back through
eth_call, and fetches the logs with eth_getLogs. Prints one JSON line of what it saw; exits
non-zero on anything unexpected.
"""

import json
import sys

from web3 import Web3
from web3.logs import DISCARD

IDENTITY = "0x8004A169FB4a3325136EB29fA0ceB6D2e539a432"
REPUTATION = "0x8004BAa17C55a88189AE136b182e5fdA19dE9b63"

# The reference contracts' ABI, the parts this client uses (as in erc-8004-contracts/abis).
IDENTITY_ABI = [
    {"type": "function", "name": "register", "stateMutability": "nonpayable",
     "inputs": [{"name": "agentURI", "type": "string"}],
     "outputs": [{"name": "agentId", "type": "uint256"}]},
    {"type": "function", "name": "ownerOf", "stateMutability": "view",
     "inputs": [{"name": "tokenId", "type": "uint256"}],
     "outputs": [{"name": "", "type": "address"}]},
    {"type": "function", "name": "tokenURI", "stateMutability": "view",
     "inputs": [{"name": "tokenId", "type": "uint256"}],
     "outputs": [{"name": "", "type": "string"}]},
    {"type": "event", "name": "Registered", "anonymous": False,
     "inputs": [{"name": "agentId", "type": "uint256", "indexed": True},
                {"name": "agentURI", "type": "string", "indexed": False},
                {"name": "owner", "type": "address", "indexed": True}]},
]
REPUTATION_ABI = [
    {"type": "function", "name": "giveFeedback", "stateMutability": "nonpayable",
     "inputs": [{"name": "agentId", "type": "uint256"}, {"name": "value", "type": "int128"},
                {"name": "valueDecimals", "type": "uint8"}, {"name": "tag1", "type": "string"},
                {"name": "tag2", "type": "string"}, {"name": "endpoint", "type": "string"},
                {"name": "feedbackURI", "type": "string"}, {"name": "feedbackHash", "type": "bytes32"}],
     "outputs": []},
    {"type": "function", "name": "getSummary", "stateMutability": "view",
     "inputs": [{"name": "agentId", "type": "uint256"}, {"name": "clientAddresses", "type": "address[]"},
                {"name": "tag1", "type": "string"}, {"name": "tag2", "type": "string"}],
     "outputs": [{"name": "count", "type": "uint64"}, {"name": "summaryValue", "type": "int128"},
                 {"name": "summaryValueDecimals", "type": "uint8"}]},
    {"type": "event", "name": "NewFeedback", "anonymous": False,
     "inputs": [{"name": "agentId", "type": "uint256", "indexed": True},
                {"name": "clientAddress", "type": "address", "indexed": True},
                {"name": "feedbackIndex", "type": "uint64", "indexed": False},
                {"name": "value", "type": "int128", "indexed": False},
                {"name": "valueDecimals", "type": "uint8", "indexed": False},
                {"name": "indexedTag1", "type": "string", "indexed": True},
                {"name": "tag1", "type": "string", "indexed": False},
                {"name": "tag2", "type": "string", "indexed": False},
                {"name": "endpoint", "type": "string", "indexed": False},
                {"name": "feedbackURI", "type": "string", "indexed": False},
                {"name": "feedbackHash", "type": "bytes32", "indexed": False}]},
]


def send(w3, account, call):
    """Signs `call` with `account`'s local key (EIP-1559), sends it raw, waits for the receipt."""
    tx = call.build_transaction({
        "from": account.address,
        "nonce": w3.eth.get_transaction_count(account.address),
        "chainId": w3.eth.chain_id,
    })
    signed = account.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    return w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.05)


def main():
    url, owner_key, client_key = sys.argv[1:4]
    w3 = Web3(Web3.HTTPProvider(url))
    if not w3.is_connected():
        raise SystemExit(f"not connected to {url}")
    owner = w3.eth.account.from_key(owner_key)
    client = w3.eth.account.from_key(client_key)
    identity = w3.eth.contract(address=IDENTITY, abi=IDENTITY_ABI)
    reputation = w3.eth.contract(address=REPUTATION, abi=REPUTATION_ABI)

    receipt = send(w3, owner, identity.functions.register("ipfs://agent-card"))
    assert receipt.status == 1, receipt
    # The receipt also carries Transfer and MetadataSet, which this ABI leaves out.
    registered = identity.events.Registered().process_receipt(receipt, errors=DISCARD)
    agent_id = registered[0].args.agentId

    receipt = send(w3, client, reputation.functions.giveFeedback(
        agent_id, -250, 2, "quality", "", "https://agent.example", "ipfs://feedback", b"\x00" * 32))
    assert receipt.status == 1, receipt
    count, value, decimals = reputation.functions.getSummary(agent_id, [client.address], "", "").call()

    logs = w3.eth.get_logs({
        "fromBlock": 0,
        "toBlock": "latest",
        "address": REPUTATION,
        "topics": [reputation.events.NewFeedback().topic, None, "0x" + "00" * 12 + client.address[2:].lower()],
    })
    feedback = reputation.events.NewFeedback().process_log(logs[0])
    print(json.dumps({
        "agent_id": agent_id,
        "owner": identity.functions.ownerOf(agent_id).call(),
        "token_uri": identity.functions.tokenURI(agent_id).call(),
        "summary": [count, value, decimals],
        "logs": len(logs),
        "log_topic0": logs[0]["topics"][0].to_0x_hex(),
        "feedback_value": feedback.args.value,
        "feedback_index": feedback.args.feedbackIndex,
        "block_number": w3.eth.block_number,
    }))


if __name__ == "__main__":
    main()

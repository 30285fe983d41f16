//! The validators file (`hypermesh node --validators FILE`, `hypermesh client --validators FILE`):
//! who runs consensus, where, and with which key; and which clients the state machine serves.
//!
//! ```toml
//! # The epoch is signed into every consensus message; change it whenever the set changes.
//! epoch = 1
//!
//! [[validator]]                       # index 0 (validators are indexed in file order)
//! name = "node-a.mesh"                # the name its TrustChain certificate carries
//! address = "[fd00::1]:7000"          # its --listen address
//! public_key = "3b6a27bc…"            # `hypermesh key --state DIR` on that node (64 hex digits)
//!
//! [[client]]                          # optional: then only these clients' signed transactions apply
//! id = 1                              # the id it signs as (unique)
//! name = "client-1.mesh"              # the name its TrustChain certificate carries
//! public_key = "…"                    # `hypermesh key --state DIR` on that client
//! ```
//!
//! The state machine is the list-append store by default; `machine = "erc8004"` (with an
//! optional `chain_id`, default 8004) makes it the ERC-8004 registries' chain, which takes
//! signed Ethereum transactions from any account (no `[[client]]` entries then), and which
//! `hypermesh node --rpc` serves JSON-RPC for. Every validator must name the same machine; a
//! node's state directory keeps the one it ran and refuses another.
//!
//! Every node of the set reads the same file. A validator's key is the Ed25519 key of its
//! TrustChain leaf (renewals keep it): a node finds its own entry by the name its certificate
//! certifies and refuses to start if the entry's key or address is not its own. Errors name the
//! file, the line, the entry and the field.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use hypermesh::consensus::{PublicKey, Validator, ValidatorSet, VALIDATORS_MAX};
use hypermesh::membership::IdentityBinding;
use hypermesh::replication::kv::ListAppend;
use serde::Deserialize;
use toml::Spanned;

/// Why a validators file was refused: the file, line, entry and field, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidFile(pub String);

/// Client ids at most ([`ClientEntry::id`] is below it): ids are the client's name in the
/// state machine's records, and small ones read better in logs.
pub const CLIENT_ID_LIMIT: u64 = 1 << 32;

/// One validator of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorEntry {
    /// The name its certificate carries.
    pub name: String,
    /// Where it listens.
    pub address: SocketAddr,
    /// Its Ed25519 public key.
    pub public_key: PublicKey,
}

/// One client of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientEntry {
    /// The id it signs its transactions as.
    pub id: u64,
    /// The name its certificate carries.
    pub name: String,
    /// Its Ed25519 public key.
    pub public_key: PublicKey,
}

/// A checked validators file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validators {
    /// The epoch of the set.
    pub epoch: u64,
    /// The validators, in index order.
    pub validators: Vec<ValidatorEntry>,
    /// The clients; empty means the state machine takes unsigned transactions from anyone
    /// who can reach a validator.
    pub clients: Vec<ClientEntry>,
    /// The state machine every validator runs.
    pub machine: Machine,
}

/// The state machine a validators file asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    /// The list-append store (`hypermesh::replication::kv`).
    ListAppend,
    /// The ERC-8004 registries' chain, for signed Ethereum transactions of this chain id.
    Erc8004 {
        /// The chain id.
        chain_id: u64,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    epoch: Option<Spanned<u64>>,
    machine: Option<Spanned<String>>,
    chain_id: Option<Spanned<u64>>,
    #[serde(default)]
    validator: Vec<Spanned<RawValidator>>,
    #[serde(default)]
    client: Vec<Spanned<RawClient>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawValidator {
    name: Spanned<String>,
    address: Spanned<String>,
    public_key: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    id: Spanned<u64>,
    name: Spanned<String>,
    public_key: Spanned<String>,
}

impl Validators {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Validators, InvalidFile> {
        let text =
            std::fs::read_to_string(path).map_err(|e| InvalidFile(format!("--validators {}: {e}", path.display())))?;
        Validators::parse(&path.display().to_string(), &text)
    }

    /// Checks `text`, the contents of the file `file` (named in errors).
    pub fn parse(file: &str, text: &str) -> Result<Validators, InvalidFile> {
        let raw: RawFile =
            toml::from_str(text).map_err(|e| InvalidFile(format!("{file}: {}", one_line(&e.to_string()))))?;
        let at = |span: std::ops::Range<usize>| format!("{file}:{}", line_of(text, span.start));
        let epoch = raw.epoch.map_or(1, |e| *e.get_ref());
        if raw.validator.is_empty() {
            return Err(InvalidFile(format!(
                "{file}: no [[validator]] entries: list every validator (name, address, public_key)"
            )));
        }
        if raw.validator.len() > VALIDATORS_MAX {
            return Err(InvalidFile(format!(
                "{file}: {} validators, at most {VALIDATORS_MAX}",
                raw.validator.len()
            )));
        }
        let mut validators: Vec<ValidatorEntry> = Vec::with_capacity(raw.validator.len());
        for (index, entry) in raw.validator.iter().enumerate() {
            let v = entry.get_ref();
            let what = format!("validator {index} ({:?})", v.name.get_ref());
            let name = checked_name(v.name.get_ref())
                .map_err(|e| InvalidFile(format!("{}: {what}: name: {e}", at(v.name.span()))))?;
            let address = checked_address(v.address.get_ref())
                .map_err(|e| InvalidFile(format!("{}: {what}: address: {e}", at(v.address.span()))))?;
            let public_key = checked_key(v.public_key.get_ref())
                .map_err(|e| InvalidFile(format!("{}: {what}: public_key: {e}", at(v.public_key.span()))))?;
            for (earlier, other) in validators.iter().enumerate() {
                let clash = if other.name == name {
                    Some(("name", v.name.span()))
                } else if other.address == address {
                    Some(("address", v.address.span()))
                } else if other.public_key == public_key {
                    Some(("public_key", v.public_key.span()))
                } else {
                    None
                };
                if let Some((field, span)) = clash {
                    return Err(InvalidFile(format!(
                        "{}: {what}: {field}: the same as validator {earlier}'s ({:?}): each validator has its own name, address and key",
                        at(span),
                        other.name
                    )));
                }
            }
            validators.push(ValidatorEntry {
                name,
                address,
                public_key,
            });
        }
        let mut clients: Vec<ClientEntry> = Vec::with_capacity(raw.client.len());
        for (index, entry) in raw.client.iter().enumerate() {
            let c = entry.get_ref();
            let what = format!("client {index} ({:?})", c.name.get_ref());
            let id = *c.id.get_ref();
            if id >= CLIENT_ID_LIMIT {
                return Err(InvalidFile(format!(
                    "{}: {what}: id: {id} is not below {CLIENT_ID_LIMIT}",
                    at(c.id.span())
                )));
            }
            let name = checked_name(c.name.get_ref())
                .map_err(|e| InvalidFile(format!("{}: {what}: name: {e}", at(c.name.span()))))?;
            let public_key = checked_key(c.public_key.get_ref())
                .map_err(|e| InvalidFile(format!("{}: {what}: public_key: {e}", at(c.public_key.span()))))?;
            for (earlier, other) in clients.iter().enumerate() {
                let clash = if other.id == id {
                    Some(("id", c.id.span()))
                } else if other.name == name {
                    Some(("name", c.name.span()))
                } else {
                    None
                };
                if let Some((field, span)) = clash {
                    return Err(InvalidFile(format!(
                        "{}: {what}: {field}: the same as client {earlier}'s ({:?})",
                        at(span),
                        other.name
                    )));
                }
            }
            clients.push(ClientEntry { id, name, public_key });
        }
        let machine = match raw.machine.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
            None | Some(("list-append", _)) => {
                if let Some(id) = &raw.chain_id {
                    return Err(InvalidFile(format!(
                        "{}: chain_id: only the erc8004 machine has a chain id (machine = \"erc8004\")",
                        at(id.span())
                    )));
                }
                Machine::ListAppend
            }
            Some(("erc8004", span)) => {
                if !clients.is_empty() {
                    return Err(InvalidFile(format!(
                        "{}: machine = \"erc8004\" takes signed Ethereum transactions from any account: leave out the [[client]] entries",
                        at(span)
                    )));
                }
                Machine::Erc8004 {
                    chain_id: raw
                        .chain_id
                        .as_ref()
                        .map_or(erc8004::chain::CHAIN_ID_DEFAULT, |c| *c.get_ref()),
                }
            }
            Some((other, span)) => {
                return Err(InvalidFile(format!(
                    "{}: machine: {other:?} is not one: \"list-append\" (the default) or \"erc8004\"",
                    at(span)
                )));
            }
        };
        let checked = Validators {
            epoch,
            validators,
            clients,
            machine,
        };
        // What ValidatorSet refuses beyond the checks above (two names hashing to one node id).
        checked.set().map_err(|e| InvalidFile(format!("{file}: {e}")))?;
        Ok(checked)
    }

    /// The validator set: node ids are the membership ids of the names (FNV-1a, as
    /// `hypermesh node` binds them).
    pub fn set(&self) -> Result<ValidatorSet, hypermesh::consensus::ValidatorSetError> {
        let validators = self
            .validators
            .iter()
            .map(|v| Validator {
                node: IdentityBinding::hashed(&v.name),
                name: v.name.clone(),
                public_key: v.public_key,
            })
            .collect();
        ValidatorSet::new(self.epoch, validators)
    }

    /// Every validator's address, in index order.
    pub fn addresses(&self) -> Vec<SocketAddr> {
        self.validators.iter().map(|v| v.address).collect()
    }

    /// The index of the validator named `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.validators.iter().position(|v| v.name == name)
    }

    /// The client named `name`.
    pub fn client(&self, name: &str) -> Option<&ClientEntry> {
        self.clients.iter().find(|c| c.name == name)
    }

    /// The list-append machine the file asks for: [`ListAppend::with_clients`] if it lists clients
    /// (only their signed transactions apply), else [`ListAppend::default`].
    pub fn machine(&self) -> ListAppend {
        if self.clients.is_empty() {
            ListAppend::default()
        } else {
            ListAppend::with_clients(
                self.clients
                    .iter()
                    .map(|c| (c.id, c.public_key))
                    .collect::<BTreeMap<_, _>>(),
            )
        }
    }
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// toml's multi-line message (with a source excerpt) as one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        // Drop the excerpt: `5 | the line` and `| ^^^` under it.
        .filter(|l| {
            let gutter = l.split('|').next().unwrap_or("");
            let excerpt = l.contains('|') && gutter.chars().all(|c| c.is_ascii_digit() || c == ' ');
            !l.is_empty() && !excerpt
        })
        .collect::<Vec<_>>()
        .join(": ")
}

fn checked_name(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("empty: give the name the certificate carries, e.g. \"node-a.mesh\"".into());
    }
    if name.len() > 253 || name.contains(char::is_whitespace) {
        return Err(format!("{name:?} is not a DNS name"));
    }
    Ok(name.to_owned())
}

fn checked_address(text: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = text.parse().map_err(|_| {
        format!("{text:?} is not an address and port: give the validator's --listen address, e.g. \"[fd00::1]:7000\"")
    })?;
    match addr.ip() {
        std::net::IpAddr::V6(ip) if ip.to_ipv4_mapped().is_none() && !ip.is_unspecified() && addr.port() != 0 => {
            Ok(addr)
        }
        _ => Err(format!(
            "{addr} is not a specific IPv6 address with a port: validators are reached over IPv6 at the address they listen on"
        )),
    }
}

fn checked_key(text: &str) -> Result<PublicKey, String> {
    let digits = text.trim();
    if digits.len() != 64 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!(
            "{:?} is not 64 hex digits (an Ed25519 public key): print it with `hypermesh key --state DIR`",
            text
        ));
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).expect("hex digits checked");
    }
    Ok(key)
}

/// `key` as 64 lowercase hex digits, as the file writes it.
pub fn key_hex(key: &PublicKey) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0101010101010101010101010101010101010101010101010101010101010101";
    const B: &str = "0202020202020202020202020202020202020202020202020202020202020202";

    fn file(body: &str) -> Result<Validators, String> {
        Validators::parse("v.toml", body).map_err(|InvalidFile(m)| m)
    }

    fn two(extra: &str) -> String {
        format!(
            "epoch = 3\n[[validator]]\nname = \"a.mesh\"\naddress = \"[::1]:7000\"\npublic_key = \"{A}\"\n\
             [[validator]]\nname = \"b.mesh\"\naddress = \"[::1]:7001\"\npublic_key = \"{B}\"\n{extra}"
        )
    }

    #[test]
    fn the_machine_is_list_append_unless_the_file_asks_for_the_registries() {
        assert_eq!(file(&two("")).unwrap().machine, Machine::ListAppend);
        let registries = |head: &str| file(&format!("{head}\n{}", two("")));
        assert_eq!(
            registries("machine = \"erc8004\"").unwrap().machine,
            Machine::Erc8004 { chain_id: 8004 }
        );
        assert_eq!(
            registries("machine = \"erc8004\"\nchain_id = 31337").unwrap().machine,
            Machine::Erc8004 { chain_id: 31337 }
        );
        let err = registries("machine = \"evm\"").unwrap_err();
        assert!(err.starts_with("v.toml:1: machine: \"evm\" is not one"), "{err}");
        let err = registries("chain_id = 5").unwrap_err();
        assert!(err.contains("only the erc8004 machine has a chain id"), "{err}");
        let with_client = format!(
            "machine = \"erc8004\"\n{}",
            two(&format!(
                "[[client]]\nid = 1\nname = \"c.mesh\"\npublic_key = \"{A}\"\n"
            ))
        );
        let err = file(&with_client).unwrap_err();
        assert!(err.contains("leave out the [[client]] entries"), "{err}");
    }

    #[test]
    fn a_file_gives_the_set_in_order_and_the_machine_it_names() {
        let v = file(&two(&format!(
            "[[client]]\nid = 9\nname = \"c.mesh\"\npublic_key = \"{A}\"\n"
        )))
        .unwrap();
        let set = v.set().unwrap();
        assert_eq!((set.epoch(), set.len()), (3, 2));
        assert_eq!(set.get(1).unwrap().name, "b.mesh");
        assert_eq!(set.get(0).unwrap().node, IdentityBinding::hashed("a.mesh"));
        assert_eq!(v.index_of("b.mesh"), Some(1));
        assert_eq!(v.addresses()[1], "[::1]:7001".parse().unwrap());
        assert_eq!(v.client("c.mesh").unwrap().id, 9);
        assert_ne!(
            v.machine(),
            ListAppend::default(),
            "clients make a machine with clients"
        );
        let plain = file(&two("")).unwrap();
        assert_eq!(plain.machine(), ListAppend::default());
        assert_eq!(key_hex(&plain.validators[0].public_key), A);
    }

    #[test]
    fn mistakes_are_named_by_file_line_entry_and_field() {
        let short = two("").replace(B, &B[..63]);
        let err = file(&short).unwrap_err();
        assert!(
            err.starts_with("v.toml:9: validator 1 (\"b.mesh\"): public_key: ") && err.contains("not 64 hex digits"),
            "{err}"
        );
        let err = file(&two("").replace("[::1]:7001", "127.0.0.1:7001")).unwrap_err();
        assert!(
            err.starts_with("v.toml:8: validator 1 (\"b.mesh\"): address: 127.0.0.1:7001 is not"),
            "{err}"
        );
        let err = file(&two("").replace("[::1]:7001", "[::1]:7000")).unwrap_err();
        assert!(
            err.contains("validator 1 (\"b.mesh\"): address: the same as validator 0's"),
            "{err}"
        );
        let err = file(&two("").replace(B, A)).unwrap_err();
        assert!(err.contains("public_key: the same as validator 0's"), "{err}");
        let err = file(&two("").replace("public_key = \"0202", "pubkey = \"0202")).unwrap_err();
        assert!(err.starts_with("v.toml: ") && err.contains("pubkey"), "{err}");
        assert!(err.contains("line 9") && !err.contains(" | "), "{err}");
        assert!(!err.contains('\n'), "{err}");
        let err = file("epoch = 1\n").unwrap_err();
        assert!(err.contains("no [[validator]] entries"), "{err}");
        let dup = two(&format!(
            "[[client]]\nid = 1\nname = \"c.mesh\"\npublic_key = \"{A}\"\n[[client]]\nid = 1\nname = \"d.mesh\"\npublic_key = \"{B}\"\n"
        ));
        let err = file(&dup).unwrap_err();
        assert!(
            err.contains("client 1 (\"d.mesh\"): id: the same as client 0's"),
            "{err}"
        );
    }
}

//! The address flags of `hypermesh node` and `hypermesh client` (`--listen`, `--seed`, `--ca`):
//! IPv6 only, specific addresses, refused by name with an example the command accepts.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use crate::trustchain::Failure;

/// What an address flag names, for its messages: who is at the address and an example of one
/// the node accepts.
pub(crate) struct AddressFlag {
    /// The flag, e.g. `--seed`.
    flag: &'static str,
    /// Whose address it is, e.g. "a seed node's".
    whose: &'static str,
    /// An example the node accepts, e.g. `[fd00::1]:7000`.
    example: &'static str,
    /// Why IPv4 will not do, e.g. "seeds are reached over IPv6 only".
    ipv6_only: &'static str,
}

/// `--seed`: a node to join through.
pub(crate) const SEED_FLAG: AddressFlag = AddressFlag {
    flag: "--seed",
    whose: "a seed node's",
    example: "[fd00::1]:7000",
    ipv6_only: "seeds are reached over IPv6 only",
};
/// `--ca`: where `trustchain serve` listens.
pub(crate) const CA_FLAG: AddressFlag = AddressFlag {
    flag: "--ca",
    whose: "the CA's",
    example: "[fd00::1]:8443",
    ipv6_only: "the CA is reached over IPv6 only",
};

/// The IPv6 address and port of a peer (a seed, the CA) the node dials: refused, by the flag
/// and the value given, when it is not an address and port, is IPv4 (STOQ and the node are
/// IPv6-only) or is the unspecified address (which names no one to dial).
pub(crate) fn peer_arg(f: &AddressFlag, text: &str) -> Result<SocketAddr, Failure> {
    let AddressFlag {
        flag,
        whose,
        example,
        ipv6_only,
    } = f;
    let Ok(addr) = text.parse::<SocketAddr>() else {
        return Err(Failure(format!(
            "{flag} {text:?} is not an address and port: give {whose} IPv6 address in brackets \
             and its port, e.g. {flag} {example}"
        )));
    };
    match ipv6_of(&addr) {
        None => Err(Failure(format!(
            "{flag} {addr} is {}: {ipv6_only}; give {whose} IPv6 address and port, e.g. {flag} \
             {example}",
            ipv4_kind(&addr)
        ))),
        Some(ip) if ip.is_unspecified() => Err(Failure(format!(
            "{flag} {addr} is the unspecified address, which names no one to reach: give {whose} \
             own IPv6 address, e.g. {flag} {example}"
        ))),
        Some(_) => Ok(addr),
    }
}

/// The node's own address (`--listen`): a specific IPv6 address, since its certificate names
/// the address and peers check it. A refusal suggests an address the node accepts, keeping the
/// port given: `[::1]` for a loopback or unspecified address (one machine), else an example
/// of a host's own address.
pub(crate) fn listen_arg(text: &str) -> Result<(SocketAddr, Ipv6Addr), Failure> {
    let Ok(addr) = text.parse::<SocketAddr>() else {
        return Err(Failure(format!(
            "--listen {text:?} is not an address and port: give the node's own IPv6 address in \
             brackets and a port, e.g. --listen [::1]:7000 on one machine, or the host's own \
             address such as --listen [fd00::7]:7000"
        )));
    };
    let port = addr.port();
    let elsewhere = format!("or the host's own IPv6 address such as --listen [fd00::7]:{port}");
    match ipv6_of(&addr) {
        None => {
            let loopback = addr.ip().is_loopback() || addr.ip().to_canonical().is_loopback();
            let suggestion = if loopback {
                format!("--listen [::1]:{port}, the IPv6 loopback")
            } else {
                format!("--listen [::1]:{port} on one machine, {elsewhere}")
            };
            Err(Failure(format!(
                "--listen {addr} is {}, and the node runs over IPv6 only: use {suggestion}",
                ipv4_kind(&addr)
            )))
        }
        Some(ip) if ip.is_unspecified() => Err(Failure(format!(
            "--listen {addr} is the unspecified address: the node's certificate names the address it \
             listens on, so give one address, e.g. --listen [::1]:{port} on one machine, {elsewhere}"
        ))),
        Some(ip) => Ok((addr, ip)),
    }
}

/// "an IPv4 address", or for one written as IPv6 (`[::ffff:10.0.0.1]`) a word on that, since
/// the brackets make it look like IPv6.
fn ipv4_kind(addr: &SocketAddr) -> &'static str {
    if addr.is_ipv6() {
        "an IPv4 address written as IPv6 (::ffff:…)"
    } else {
        "an IPv4 address"
    }
}

/// The IPv6 address of `addr`; `None` for IPv4, including IPv4 written as IPv6
/// (`[::ffff:10.0.0.1]`), which still travels over IPv4.
fn ipv6_of(addr: &SocketAddr) -> Option<Ipv6Addr> {
    match addr.ip() {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => Some(v6),
        _ => None,
    }
}

//! Bootstrap phase 0 on real networks: the static seed list, as IPv6 literals or DNS names of
//! which only AAAA records are used.
//!
//! The guide's IPv6-only rule applies from the first lookup: a name with only A records, an IPv4
//! literal, or an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, IPv4 in disguise) is refused with
//! an error naming it, rather than silently dropped or used.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// Why a seed entry cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SeedError {
    /// Not `[v6]:port` or `name:port`.
    #[error("seed {0:?}: expected [IPv6]:PORT or NAME:PORT (e.g. [fd00::1]:7946 or seed-1.mesh:7946)")]
    Malformed(String),
    /// An IPv4 address, literal or mapped.
    #[error("seed {0:?} is an IPv4 address: this system is IPv6-only; give the node's IPv6 address")]
    Ipv4(String),
    /// The name resolved, but to IPv4 addresses only.
    #[error("seed {name:?} has no AAAA record (it resolves only to IPv4: {found}); publish an AAAA record")]
    NoAaaa {
        /// The name.
        name: String,
        /// What it resolved to.
        found: String,
    },
    /// The name did not resolve.
    #[error("seed {name:?} does not resolve: {reason}")]
    Unresolved {
        /// The name.
        name: String,
        /// The resolver's message.
        reason: String,
    },
}

fn is_v4(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(_) => true,
        IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some(),
    }
}

/// Resolves one seed entry to its IPv6 socket addresses (AAAA records only), in resolver order.
pub fn resolve_seed(entry: &str) -> Result<Vec<SocketAddr>, SeedError> {
    let entry = entry.trim();
    if let Ok(addr) = entry.parse::<SocketAddr>() {
        return if is_v4(&addr.ip()) {
            Err(SeedError::Ipv4(entry.to_string()))
        } else {
            Ok(vec![addr])
        };
    }
    let (name, port) = entry
        .rsplit_once(':')
        .filter(|(n, p)| !n.is_empty() && !n.contains(':') && p.parse::<u16>().is_ok())
        .ok_or_else(|| SeedError::Malformed(entry.to_string()))?;
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err(SeedError::Ipv4(entry.to_string()));
    }
    let found: Vec<SocketAddr> = (name, port.parse::<u16>().expect("checked"))
        .to_socket_addrs()
        .map_err(|e| SeedError::Unresolved {
            name: name.to_string(),
            reason: e.to_string(),
        })?
        .collect();
    let v6: Vec<SocketAddr> = found.iter().copied().filter(|a| !is_v4(&a.ip())).collect();
    if v6.is_empty() {
        return Err(SeedError::NoAaaa {
            name: name.to_string(),
            found: found.iter().map(|a| a.ip().to_string()).collect::<Vec<_>>().join(", "),
        });
    }
    Ok(v6)
}

/// Resolves a whole seed list; the first unusable entry is the error.
pub fn resolve_seeds(entries: &[String]) -> Result<Vec<SocketAddr>, SeedError> {
    let mut out = Vec::new();
    for e in entries {
        for a in resolve_seed(e)? {
            if !out.contains(&a) {
                out.push(a);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_literals_pass_and_every_form_of_ipv4_is_refused_by_name() {
        assert_eq!(resolve_seed("[::1]:7946").unwrap(), vec!["[::1]:7946".parse().unwrap()]);
        assert_eq!(
            resolve_seed("10.0.0.1:7946"),
            Err(SeedError::Ipv4("10.0.0.1:7946".into()))
        );
        assert_eq!(
            resolve_seed("[::ffff:10.0.0.1]:7946"),
            Err(SeedError::Ipv4("[::ffff:10.0.0.1]:7946".into()))
        );
        for bad in ["", "seed-1.mesh", ":7946", "seed:port", "fd00::1:7946"] {
            assert!(matches!(resolve_seed(bad), Err(SeedError::Malformed(_))), "{bad:?}");
        }
        assert_eq!(
            resolve_seeds(&["[fd00::1]:7946".into(), "[fd00::1]:7946".into()])
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn a_name_with_only_a_records_is_refused_naming_what_it_resolved_to() {
        // On hosts where `localhost` also has an AAAA record this resolves to it instead.
        match resolve_seed("localhost:7946") {
            Ok(addrs) => assert!(addrs.iter().all(|a| a.is_ipv6() && !is_v4(&a.ip()))),
            Err(SeedError::NoAaaa { name, found }) => {
                assert_eq!(name, "localhost");
                assert!(found.contains("127.0.0.1"), "{found}");
            }
            Err(other) => panic!("{other}"),
        }
    }
}

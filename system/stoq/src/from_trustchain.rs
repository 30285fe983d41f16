//! [`TrustChainCredentials`]: STOQ presents and trusts what the node's TrustChain protocol holds.
//!
//! In the simulator a node enrolls, renews and rotates through the TrustChain node protocol
//! (`trustchain::node::TrustNode`) mounted on its host. Mounted with this publisher, every chain
//! it adopts is presented by the node's [`Stoq`] transport from the next handshake on, and every
//! bundle or revocation list it installs is trusted at once, so live connections to a peer the
//! new lists revoke close ([`Security::trust`]). A production node does the same from its keeper
//! (`hypermesh node`).

use bytes::Bytes;
use pki_types::{CertificateDer, CertificateRevocationListDer};
use runtime::host::Context;
use runtime::{Probe, Probes};
use trustchain::node::{Published, Publisher, Timer};

use crate::tls::{Credentials, Security, Trust};
use crate::transport::Stoq;

/// A [`Publisher`] that hands the TrustChain node's chain, bundle and revocation lists to the
/// node's [`Stoq`] transport.
///
/// Probes, under the TrustChain protocol's name: `stoq_presented` (0, 1) a chain handed to
/// STOQ; `stoq_trusted` (0, 1) a bundle or lists handed to STOQ; `stoq_unpublished` (0, 1) the
/// node's transport is not a started STOQ endpoint, or refused the chain (the node stays unable
/// to connect, and the run shows it).
#[derive(Copy, Clone, Debug, Default)]
pub struct TrustChainCredentials;

impl Publisher for TrustChainCredentials {
    fn publish(&mut self, cx: &mut Context<'_, Timer>, published: &Published<'_>) {
        let Some(security) = cx
            .transport::<Stoq>()
            .and_then(Stoq::endpoint)
            .map(|e| e.security().clone())
        else {
            cx.probe(Probe::new("stoq_unpublished", 0, 1));
            return;
        };
        if published.trust_changed {
            if let Some(bundle) = published.bundle {
                security.trust(Trust {
                    bundle: bundle.clone(),
                    crls: published.crls.iter().map(crl_der).collect(),
                });
                cx.probe(Probe::new("stoq_trusted", 0, 1));
            }
        }
        if published.chain_changed {
            if let Some(chain) = published.chain {
                present(cx, &security, chain, published);
            }
        }
    }
}

fn present(cx: &mut Context<'_, Timer>, security: &Security, chain: &[Bytes], published: &Published<'_>) {
    let credentials = Credentials {
        chain: chain.iter().map(|c| CertificateDer::from(c.to_vec())).collect(),
        key_pkcs8: published.key.serialize_der(),
    };
    match security.present(&credentials) {
        Ok(()) => cx.probe(Probe::new("stoq_presented", 0, 1)),
        Err(e) => {
            tracing::error!(error = %e, "STOQ refused the chain TrustChain issued");
            cx.probe(Probe::new("stoq_unpublished", 0, 1));
        }
    }
}

fn crl_der(crl: &Bytes) -> CertificateRevocationListDer<'static> {
    CertificateRevocationListDer::from(crl.to_vec())
}

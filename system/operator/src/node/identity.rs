//! The node's identity on disk: its key and its certificate chain, in its state directory.
//!
//! The directory is 0700 and both files 0600: the key is the node's identity, and whoever reads
//! it can be the node. Each file is replaced atomically (written beside, synced, renamed, the
//! directory synced), so a crash mid-write leaves the previous identity, never a torn one. With
//! both files present a restarted node needs no new join token: it presents its chain, renewing
//! it first if it is due.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use pki_types::CertificateDer;
use trustchain_service::pem;

use crate::trustchain::Failure;

/// The key file: the 32-byte seed of the node's Ed25519 key.
const KEY_FILE: &str = "node.key";
/// The chain file: leaf then intermediate, PEM.
const CHAIN_FILE: &str = "node.chain.pem";

/// A node's key seed and current chain.
pub struct Identity {
    /// The seed of the node's Ed25519 key.
    pub key_seed: [u8; 32],
    /// Leaf first.
    pub chain: Vec<CertificateDer<'static>>,
}

/// The node's state directory.
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    /// Opens (creating, 0700) the state directory `dir`.
    pub fn open(dir: &Path) -> Result<StateDir, Failure> {
        fs::create_dir_all(dir).map_err(|e| Failure(format!("--state {}: {e}", dir.display())))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| Failure(format!("--state {}: cannot make it private: {e}", dir.display())))?;
        Ok(StateDir { dir: dir.to_path_buf() })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The stored identity, if both files are there; an error if one is damaged.
    pub fn load(&self) -> Result<Option<Identity>, Failure> {
        let (key_path, chain_path) = (self.dir.join(KEY_FILE), self.dir.join(CHAIN_FILE));
        if !key_path.exists() || !chain_path.exists() {
            return Ok(None);
        }
        let key_seed = self.load_key()?.expect("the key file exists");
        let text = fs::read(&chain_path).map_err(|e| Failure(format!("{}: {e}", chain_path.display())))?;
        let chain = pem::chain(&text).map_err(|e| Failure(format!("{}: {e}", chain_path.display())))?;
        if chain.is_empty() {
            return Err(Failure(format!("{}: no certificate in it", chain_path.display())));
        }
        Ok(Some(Identity { key_seed, chain }))
    }

    /// The stored key seed, if there is one (with or without a chain: `hypermesh key` makes the
    /// key before enrollment, so its public key can go into a validators file).
    pub fn load_key(&self) -> Result<Option<[u8; 32]>, Failure> {
        let key_path = self.dir.join(KEY_FILE);
        if !key_path.exists() {
            return Ok(None);
        }
        let key = fs::read(&key_path).map_err(|e| Failure(format!("{}: {e}", key_path.display())))?;
        let seed = key.try_into().map_err(|k: Vec<u8>| {
            Failure(format!(
                "{}: {} bytes, not a 32-byte key seed: restore it from a backup or enroll again with a new state directory",
                key_path.display(),
                k.len()
            ))
        })?;
        Ok(Some(seed))
    }

    /// Stores the key seed (once, at enrollment).
    pub fn save_key(&self, key_seed: &[u8; 32]) -> Result<(), Failure> {
        self.replace(KEY_FILE, key_seed)
    }

    /// Stores the current chain (after enrollment and every renewal).
    pub fn save_chain(&self, chain: &[CertificateDer<'static>]) -> Result<(), Failure> {
        let text = pem::certificates(chain.iter().map(|c| c.as_ref()));
        self.replace(CHAIN_FILE, text.as_bytes())
    }

    /// Replaces `name` with `data`, atomically and durably, mode 0600.
    pub(crate) fn replace(&self, name: &str, data: &[u8]) -> Result<(), Failure> {
        let target = self.dir.join(name);
        let staged = self.dir.join(format!("{name}.new"));
        let fail = |e: std::io::Error| Failure(format!("cannot write {}: {e}", target.display()));
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&staged)
            .map_err(fail)?;
        file.write_all(data).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        fs::rename(&staged, &target).map_err(fail)?;
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(fail)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_round_trips_privately_and_a_damaged_key_is_named() {
        let dir = std::env::temp_dir().join(format!("operator-identity-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let state = StateDir::open(&dir).unwrap();
        assert!(state.load().unwrap().is_none(), "nothing stored yet");
        let chain = vec![CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01])];
        state.save_key(&[7; 32]).unwrap();
        state.save_chain(&chain).unwrap();
        let loaded = state.load().unwrap().unwrap();
        assert_eq!((loaded.key_seed, loaded.chain), ([7; 32], chain));
        for (path, mode) in [
            (dir.clone(), 0o700),
            (dir.join(KEY_FILE), 0o600),
            (dir.join(CHAIN_FILE), 0o600),
        ] {
            assert_eq!(
                fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                mode,
                "{}",
                path.display()
            );
        }
        fs::write(dir.join(KEY_FILE), b"short").unwrap();
        let Err(Failure(message)) = state.load() else {
            panic!("a damaged key loaded")
        };
        assert!(message.contains("not a 32-byte key seed"), "{message}");
        let _ = fs::remove_dir_all(&dir);
    }
}

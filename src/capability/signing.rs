//! The agent's signing key and what it signs.
//!
//! The key is an Ed25519 seed in `STATE_DIR/signing.key` (32 raw bytes, mode 0600, the state
//! directory 0700), generated on first start and reused after restarts; a key file readable by
//! anyone else is refused. A capability's signature covers a canonical, length-prefixed encoding
//! of its immutable fields — everything but `usedCount`, `status` and the signature itself — plus
//! the holder's uid, so neither a changed field nor a changed holder verifies.
//!
//! Every validation checks the signature, and an Ed25519 verification costs far more than the
//! rest of a validation. The signer therefore remembers, by SHA-256 digest, the exact (signed
//! bytes, signature) pairs it has signed or verified: checking those bytes again is a digest and
//! a lookup, with the same answer. Anything else — a capability read back from a changed store
//! file, a changed field, another holder — has other bytes and is verified in full. The memo
//! holds at most [`VERIFIED_MEMO`] entries (about 4 MiB) and starts over when full.
//!
//! Signatures are made with AWS-LC's Ed25519 (`aws-lc-rs`), which signs in about half the
//! time of ed25519-dalek's here; Ed25519 signatures are deterministic (RFC 8032), so both make
//! the same bytes from the same seed, which a test checks. Verification stays with
//! ed25519-dalek, as does the public key the agent shows.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use aws_lc_rs::signature::Ed25519KeyPair;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, SigningKey, Verifier as _};
use sha2::{Digest, Sha256};

use crate::protocol::types::Capability;
use crate::trust;

/// File name of the key inside the state directory.
pub const KEY_FILE: &str = "signing.key";

/// Why the key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading, creating or writing failed.
    #[error("signing key {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The key file or its directory is not one the agent trusts.
    #[error(transparent)]
    File(#[from] trust::FileError),
    /// The key file is not what we wrote.
    #[error("signing key {path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Most (signed bytes, signature) pairs remembered as good; past it the memo starts over.
pub const VERIFIED_MEMO: usize = 1 << 16;

/// Signs and verifies capabilities with the agent's key.
pub struct Signer {
    /// The key as ed25519-dalek holds it: the public key and verification.
    key: SigningKey,
    /// The same seed as AWS-LC holds it: every signature.
    signing: Ed25519KeyPair,
    /// Digests of (signed bytes, signature) pairs this key made or verified.
    verified: Mutex<HashSet<[u8; 32]>>,
}

/// The memo's key for `signature` over `message`.
fn memo_key(message: &[u8], signature: &[u8; 64]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"aether-vault-verified-v1");
    h.update((message.len() as u64).to_be_bytes());
    h.update(message);
    h.update(signature);
    h.finalize().into()
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "Signer(public={})", self.public_key_base64())
    }
}

impl Signer {
    /// A signer from a 32-byte seed (tests).
    pub fn from_seed(seed: [u8; 32]) -> Signer {
        Signer {
            key: SigningKey::from_bytes(&seed),
            signing: Ed25519KeyPair::from_seed_unchecked(&seed)
                .expect("AWS-LC takes every 32-byte seed (it fails only without memory)"),
            verified: Mutex::new(HashSet::new()),
        }
    }

    /// Loads `state_dir/signing.key`, creating the directory (0700) and the key (0600) if absent.
    /// Both must belong to the agent's user and be writable by no one else, and the key
    /// readable by no one else; neither may be a symbolic link ([`crate::trust`]).
    pub fn load_or_create(state_dir: &Path) -> Result<Signer, KeyError> {
        let owner = trust::Owner::agent(nix::unistd::geteuid().as_raw());
        trust::private_dir(state_dir, "state directory", 0o700, owner)?;
        let path = state_dir.join(KEY_FILE);
        match std::fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed).map_err(|e| KeyError::Invalid {
                    path: path.clone(),
                    reason: format!("no randomness: {e}"),
                })?;
                write_new_key(&path, &seed)?;
                tracing::info!(path = %path.display(), "created a new signing key");
                Ok(Signer::from_seed(seed))
            }
            _ => {
                let mut file = trust::open(
                    &path,
                    "signing key",
                    std::fs::OpenOptions::new().read(true),
                    owner,
                    trust::Secrecy::Private,
                )?;
                let mut bytes = Vec::with_capacity(33);
                (&mut file)
                    .take(33)
                    .read_to_end(&mut bytes)
                    .map_err(|source| KeyError::Io {
                        path: path.clone(),
                        source,
                    })?;
                let seed: [u8; 32] =
                    bytes.as_slice().try_into().map_err(|_| KeyError::Invalid {
                        path: path.clone(),
                        reason: format!("expected 32 bytes, found {}", file_len(&file)),
                    })?;
                Ok(Signer::from_seed(seed))
            }
        }
    }

    /// The public key, base64 (shown in status so others can verify signatures).
    pub fn public_key_base64(&self) -> String {
        B64.encode(self.key.verifying_key().as_bytes())
    }

    /// The public key.
    pub fn public_key(&self) -> ed25519_dalek::VerifyingKey {
        self.key.verifying_key()
    }

    /// Signs `message` as it is. For other statements than capabilities (the audit log's seals,
    /// [`crate::audit::seal`]): the caller starts `message` with its own domain tag, which no
    /// capability's signed bytes (`aether-vault-capability-v1…`) share.
    pub fn sign_message(&self, message: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(self.signing.sign(message).as_ref());
        out
    }

    /// Signs a capability bound to `holder_uid`; returns base64.
    pub fn sign(&self, cap: &Capability, holder_uid: u32) -> String {
        let message = canonical_bytes(cap, holder_uid);
        let signature = self.sign_message(&message);
        self.remember(memo_key(&message, &signature));
        B64.encode(signature)
    }

    /// Whether `cap.signature` is this key's signature over `cap` bound to `holder_uid`.
    pub fn verify(&self, cap: &Capability, holder_uid: u32) -> bool {
        let Ok(raw) = B64.decode(cap.signature.as_bytes()) else {
            return false;
        };
        let Ok(sig) = Signature::from_slice(&raw) else {
            return false;
        };
        let message = canonical_bytes(cap, holder_uid);
        let memo = memo_key(&message, &sig.to_bytes());
        if self.verified.lock().is_ok_and(|m| m.contains(&memo)) {
            return true;
        }
        let good = self.key.verifying_key().verify(&message, &sig).is_ok();
        if good {
            self.remember(memo);
        }
        good
    }

    fn remember(&self, memo: [u8; 32]) {
        if let Ok(mut m) = self.verified.lock() {
            if m.len() >= VERIFIED_MEMO {
                m.clear();
            }
            m.insert(memo);
        }
    }
}

fn file_len(f: &std::fs::File) -> u64 {
    f.metadata().map(|m| m.len()).unwrap_or(0)
}

/// Writes a new key file: O_EXCL, 0600, synced, then the directory synced.
fn write_new_key(path: &Path, seed: &[u8; 32]) -> Result<(), KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    f.write_all(seed).map_err(io)?;
    f.sync_all().map_err(io)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    Ok(())
}

fn put(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(&(field.len() as u64).to_be_bytes());
    out.extend_from_slice(field);
}

/// The bytes a capability's signature covers.
pub fn canonical_bytes(cap: &Capability, holder_uid: u32) -> Vec<u8> {
    let mut out = b"aether-vault-capability-v1".to_vec();
    put(&mut out, cap.id.as_bytes());
    put(&mut out, cap.kind.as_bytes());
    put(&mut out, cap.resource.as_bytes());
    out.extend_from_slice(&(cap.actions.len() as u64).to_be_bytes());
    for a in &cap.actions {
        put(&mut out, a.as_bytes());
    }
    put(&mut out, cap.identity.as_bytes());
    put(&mut out, cap.issuer.as_bytes());
    put(&mut out, cap.issued_at.as_bytes());
    put(&mut out, cap.expires_at.as_bytes());
    out.extend_from_slice(&cap.ttl.to_be_bytes());
    out.extend_from_slice(&cap.max_uses.to_be_bytes());
    out.extend_from_slice(&holder_uid.to_be_bytes());
    // Deterministic: `metadata` is a map sorted by key; `constraints` is a struct serialized in
    // field order with absent fields left out (docs/protocol.md spells the layout out).
    put(
        &mut out,
        &serde_json::to_vec(&cap.metadata).unwrap_or_default(),
    );
    put(
        &mut out,
        &serde_json::to_vec(&cap.constraints).unwrap_or_default(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt;

    fn cap() -> Capability {
        Capability {
            id: "cap_00".into(),
            kind: "read".into(),
            resource: "secret:/db".into(),
            actions: vec!["read".into()],
            identity: "app".into(),
            issuer: "aether-vault-agent".into(),
            issued_at: "2026-01-01T00:00:00Z".into(),
            expires_at: "2026-01-01T00:05:00Z".into(),
            ttl: 300,
            max_uses: 10,
            used_count: 0,
            signature: String::new(),
            metadata: BTreeMap::new(),
            constraints: None,
            status: None,
            holder: None,
        }
    }

    #[test]
    fn signatures_are_ed25519_dalek_s_byte_for_byte() {
        use ed25519_dalek::Signer as _;
        for seed in [
            [0u8; 32],
            [9; 32],
            [0xff; 32],
            *b"0123456789abcdef0123456789abcdef",
        ] {
            let signer = Signer::from_seed(seed);
            let dalek = SigningKey::from_bytes(&seed);
            for len in [0, 1, 63, 64, 65, 300, 4096] {
                let message: Vec<u8> = (0..len).map(|i| (i * 7 + seed[0] as usize) as u8).collect();
                let ours = signer.sign_message(&message);
                assert_eq!(
                    ours,
                    dalek.sign(&message).to_bytes(),
                    "seed {seed:?}, {len} bytes"
                );
                assert!(
                    signer
                        .public_key()
                        .verify(&message, &Signature::from_bytes(&ours))
                        .is_ok()
                );
            }
            let c = cap();
            assert!(signer.verify(
                &Capability {
                    signature: signer.sign(&c, 1000),
                    ..c
                },
                1000
            ));
        }
    }

    #[test]
    fn every_immutable_field_and_the_holder_are_covered() {
        let s = Signer::from_seed([7; 32]);
        let mut c = cap();
        c.signature = s.sign(&c, 1000);
        assert!(s.verify(&c, 1000));
        assert!(!s.verify(&c, 1001), "another holder must not verify");
        type Mutation = Box<dyn Fn(&mut Capability)>;
        let mutations: Vec<Mutation> = vec![
            Box::new(|c| c.resource.push('x')),
            Box::new(|c| c.actions.push("write".into())),
            Box::new(|c| c.expires_at = "2027-01-01T00:00:00Z".into()),
            Box::new(|c| c.max_uses = 0),
            Box::new(|c| c.ttl += 1),
            Box::new(|c| c.kind = "admin".into()),
            Box::new(|c| {
                c.metadata.insert("purpose".into(), "x".into());
            }),
        ];
        for m in mutations {
            let mut d = c.clone();
            m(&mut d);
            assert!(!s.verify(&d, 1000));
        }
        let mut used = c.clone();
        used.used_count = 5;
        assert!(s.verify(&used, 1000), "usedCount is mutable and not signed");
        assert!(
            !Signer::from_seed([8; 32]).verify(&c, 1000),
            "another key must not verify"
        );
        let mut garbage = c.clone();
        garbage.signature = "%%%".into();
        assert!(!s.verify(&garbage, 1000));
    }

    #[test]
    fn remembered_checks_answer_as_a_full_verification_does() {
        let s = Signer::from_seed([7; 32]);
        let mut c = cap();
        c.signature = s.sign(&c, 1000);
        let fresh = Signer::from_seed([7; 32]);
        assert!(fresh.verify(&c, 1000), "verified in full");
        assert!(fresh.verify(&c, 1000), "and again, from the memo");
        assert!(!fresh.verify(&c, 1001), "the memo is per holder");
        let mut raw = B64.decode(c.signature.as_bytes()).unwrap();
        raw[10] ^= 1;
        let mut forged = c.clone();
        forged.signature = B64.encode(&raw);
        assert!(
            !s.verify(&forged, 1000),
            "another signature over remembered bytes"
        );
        let mut changed = c.clone();
        changed.resource.push('x');
        assert!(!s.verify(&changed, 1000));
        for i in 0..VERIFIED_MEMO as u32 {
            let mut k = [0u8; 32];
            k[..4].copy_from_slice(&i.to_be_bytes());
            s.remember(k);
        }
        assert!(
            s.verified.lock().unwrap().len() <= VERIFIED_MEMO,
            "the memo is bounded"
        );
        assert!(s.verify(&c, 1000), "a full memo starts over");
    }

    #[test]
    fn a_key_behind_a_symlink_or_in_an_open_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        Signer::load_or_create(&real).unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink(real.join(KEY_FILE), state.join(KEY_FILE)).unwrap();
        let e = Signer::load_or_create(&state).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = Signer::load_or_create(&real).unwrap_err().to_string();
        assert!(
            e.contains("state directory") && e.contains("chmod go-w"),
            "{e}"
        );
    }

    #[test]
    fn key_is_created_once_with_private_modes_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let a = Signer::load_or_create(&state).unwrap();
        let meta = std::fs::metadata(state.join(KEY_FILE)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(
            std::fs::metadata(&state).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let b = Signer::load_or_create(&state).unwrap();
        assert_eq!(a.public_key_base64(), b.public_key_base64());
        assert!(!format!("{a:?}").contains(&B64.encode([0u8; 32])));
    }

    #[test]
    fn readable_or_truncated_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        Signer::load_or_create(dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            Signer::load_or_create(dir.path())
                .unwrap_err()
                .to_string()
                .contains("chmod 600")
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, b"short").unwrap();
        assert!(
            Signer::load_or_create(dir.path())
                .unwrap_err()
                .to_string()
                .contains("32 bytes")
        );
    }
}

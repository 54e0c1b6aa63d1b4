//! The embedded secrets backend: secrets under the state directory, encrypted at rest.
//!
//! Each secret is one file `STATE_DIR/secrets/<sha256(path)>.sec` holding a 24-byte nonce and
//! the XChaCha20-Poly1305 encryption of `{"path", "versions": [...]}`; the file name is the
//! associated data, so a file moved to another name does not decrypt. The last `max_versions`
//! versions are kept (KV version 2 style). Writes are atomic and durable before they return
//! (temporary file, `fsync`, `rename`, `fsync` of the directory).
//!
//! The 32-byte key comes from a systemd credential (`$CREDENTIALS_DIRECTORY/<name>`, for
//! `LoadCredentialEncrypted=`), else from `STATE_DIR/secrets.key` (0600), created on first
//! start. A key-check file tells a wrong key apart from damaged data at start.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{
    BackendHealth, PathKind, SecretBackend, SecretError, SecretMap, SecretVersion, check_path,
};

/// Name of the key file in the state directory.
pub const KEY_FILE: &str = "secrets.key";
/// Directory of secret files in the state directory.
pub const SECRETS_DIR: &str = "secrets";
const KEYCHECK: &str = ".keycheck";
const KEYCHECK_PLAINTEXT: &[u8] = b"aether-vault secrets key check v1";

/// Where the key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A systemd credential file.
    Credential(PathBuf),
    /// The key file in the state directory.
    KeyFile(PathBuf),
}

/// Finds the key: the credential `name` in `$CREDENTIALS_DIRECTORY` if present, else the key
/// file (created 0600 when missing). Accepts 32 raw bytes or 64 hex digits.
pub fn load_key(
    state_dir: &Path,
    credentials_dir: Option<&Path>,
    name: &str,
) -> Result<(Zeroizing<[u8; 32]>, KeySource), SecretError> {
    let bad = |m: String| SecretError::Storage(m);
    if let Some(dir) = credentials_dir {
        let path = dir.join(name);
        if path.exists() {
            let bytes = Zeroizing::new(
                std::fs::read(&path)
                    .map_err(|e| bad(format!("cannot read credential {}: {e}", path.display())))?,
            );
            return Ok((
                parse_key(&bytes)
                    .map_err(|m| bad(format!("credential {}: {m}", path.display())))?,
                KeySource::Credential(path),
            ));
        }
    }
    let path = state_dir.join(KEY_FILE);
    match std::fs::symlink_metadata(&path) {
        Ok(_) => {
            // Never through a symbolic link; the agent's own, writable and readable by no one
            // else (crate::trust).
            let owner = crate::trust::Owner::agent(nix::unistd::geteuid().as_raw());
            let file = crate::trust::open(
                &path,
                "secrets key",
                std::fs::OpenOptions::new().read(true),
                owner,
                crate::trust::Secrecy::Private,
            )
            .map_err(|e| bad(e.to_string()))?;
            let mut bytes = Zeroizing::new(Vec::new());
            std::io::Read::read_to_end(&mut std::io::Read::take(file, 1024), &mut bytes)
                .map_err(|e| bad(format!("cannot read {}: {e}", path.display())))?;
            Ok((
                parse_key(&bytes).map_err(|m| bad(format!("key file {}: {m}", path.display())))?,
                KeySource::KeyFile(path),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut key = Zeroizing::new([0u8; 32]);
            getrandom::fill(key.as_mut()).map_err(|e| bad(format!("no randomness: {e}")))?;
            if !state_dir.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(state_dir)
                    .map_err(|e| bad(e.to_string()))?;
            }
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| bad(format!("cannot create {}: {e}", path.display())))?;
            f.write_all(key.as_ref())
                .and_then(|()| f.sync_all())
                .map_err(|e| bad(e.to_string()))?;
            // The key's directory entry must be durable too, before any secret depends on it.
            std::fs::File::open(state_dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| bad(e.to_string()))?;
            tracing::info!(path = %path.display(), "created a new secrets key");
            Ok((key, KeySource::KeyFile(path)))
        }
        Err(e) => Err(bad(format!("cannot read {}: {e}", path.display()))),
    }
}

/// A key as the agent reads it: 32 raw bytes or 64 hex digits.
pub fn parse_key(bytes: &[u8]) -> Result<Zeroizing<[u8; 32]>, String> {
    let mut key = Zeroizing::new([0u8; 32]);
    if bytes.len() == 32 {
        key.copy_from_slice(bytes);
        return Ok(key);
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| "expected 32 bytes or 64 hex digits".to_string())?
        .trim();
    let decoded = Zeroizing::new(
        hex::decode(text).map_err(|_| "expected 32 bytes or 64 hex digits".to_string())?,
    );
    if decoded.len() != 32 {
        return Err("expected 32 bytes or 64 hex digits".into());
    }
    key.copy_from_slice(&decoded);
    Ok(key)
}

#[derive(Serialize, Deserialize)]
struct Stored {
    path: String,
    versions: Vec<SecretVersion>,
}

/// The file backend.
pub struct FileBackend {
    dir: PathBuf,
    cipher: XChaCha20Poly1305,
    max_versions: usize,
    /// Every secret, decrypted at start and kept current: path → versions (oldest first).
    /// Held only to look or to swap in a change, never across file I/O, so that reads (which
    /// the agent makes on its event loop) never wait for a disk.
    secrets: Mutex<BTreeMap<String, Vec<SecretVersion>>>,
    /// Held by a write or delete for its whole read-modify-store, so that changes to the
    /// store happen one at a time and the map always matches the files.
    changing: Mutex<()>,
}

impl std::fmt::Debug for FileBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FileBackend({})", self.dir.display())
    }
}

fn file_name(path: &str) -> String {
    format!("{}.sec", hex::encode(Sha256::digest(path.as_bytes())))
}

impl FileBackend {
    /// Opens the store in `state_dir` with `key`, checking the key and decrypting every secret.
    pub fn open(
        state_dir: &Path,
        key: &[u8; 32],
        max_versions: usize,
    ) -> Result<FileBackend, SecretError> {
        let dir = state_dir.join(SECRETS_DIR);
        let st = |m: String| SecretError::Storage(m);
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| st(format!("cannot create {}: {e}", dir.display())))?;
        }
        let backend = FileBackend {
            dir: dir.clone(),
            cipher: XChaCha20Poly1305::new(key.into()),
            max_versions: max_versions.max(1),
            secrets: Mutex::new(BTreeMap::new()),
            changing: Mutex::new(()),
        };
        let check = dir.join(KEYCHECK);
        match std::fs::read(&check) {
            Ok(sealed) => {
                let opened = backend.open_sealed(KEYCHECK, &sealed);
                if opened.as_ref().map(|p| p.as_slice()) != Some(KEYCHECK_PLAINTEXT) {
                    return Err(st(format!(
                        "the secrets key does not match the store in {} (wrong key or a key from another host?)",
                        dir.display()
                    )));
                }
            }
            Err(_) => {
                backend.write_atomically(KEYCHECK, &backend.seal(KEYCHECK, KEYCHECK_PLAINTEXT)?)?
            }
        }
        let mut all = BTreeMap::new();
        for entry in std::fs::read_dir(&dir)
            .map_err(|e| st(format!("cannot read {}: {e}", dir.display())))?
        {
            let entry = entry.map_err(|e| st(e.to_string()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".sec") {
                continue;
            }
            let sealed =
                std::fs::read(entry.path()).map_err(|e| st(format!("cannot read {name}: {e}")))?;
            let plain = backend.open_sealed(&name, &sealed).ok_or_else(|| {
                st(format!(
                    "{name} does not decrypt (damaged, or moved from another name)"
                ))
            })?;
            let stored: Stored = serde_json::from_slice(&plain)
                .map_err(|_| st(format!("{name} does not hold a secret")))?;
            if file_name(&stored.path) != name {
                return Err(st(format!("{name} holds a secret of another path")));
            }
            all.insert(stored.path, stored.versions);
        }
        *backend
            .secrets
            .lock()
            .map_err(|_| st("lock poisoned".into()))? = all;
        Ok(backend)
    }

    /// Checks, without writing anything, that `key` unlocks the store in `state_dir`: its
    /// `.keycheck` decrypts to what the agent wrote there. Returns how many secret files the
    /// store holds (counted by name; none is read). For `aether-vault doctor`, which often runs
    /// as root over a directory the agent's user controls: the directory and the check file are
    /// opened without following a link (`O_NOFOLLOW`), the check file must be a regular file
    /// and is read up to 4 KiB, and nothing is created, written or renamed, unlike [`open`]
    /// (which writes a `.keycheck` it cannot read).
    ///
    /// [`open`]: FileBackend::open
    pub fn verify_key(state_dir: &Path, key: &[u8; 32]) -> Result<usize, SecretError> {
        use std::io::Read;
        let st = |m: String| SecretError::Storage(m);
        let dir = state_dir.join(SECRETS_DIR);
        let no_follow = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;
        let dir_fd = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(no_follow | libc::O_DIRECTORY)
            .open(&dir)
            .map_err(|e| st(format!("cannot open {} as a directory: {e}", dir.display())))?;
        let check = Path::new("/proc/self/fd")
            .join(dir_fd.as_raw_fd().to_string())
            .join(KEYCHECK);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(no_follow)
            .open(&check)
            .map_err(|e| st(format!("cannot open {}/{KEYCHECK}: {e}", dir.display())))?;
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            return Err(st(format!(
                "{}/{KEYCHECK} is not a regular file",
                dir.display()
            )));
        }
        let mut sealed = Vec::new();
        file.take(4096)
            .read_to_end(&mut sealed)
            .map_err(|e| st(format!("cannot read {}/{KEYCHECK}: {e}", dir.display())))?;
        let backend = FileBackend {
            dir: dir.clone(),
            cipher: XChaCha20Poly1305::new(key.into()),
            max_versions: 1,
            secrets: Mutex::new(BTreeMap::new()),
            changing: Mutex::new(()),
        };
        let opened = backend.open_sealed(KEYCHECK, &sealed);
        if opened.as_ref().map(|p| p.as_slice()) != Some(KEYCHECK_PLAINTEXT) {
            return Err(st(format!(
                "the secrets key does not match the store in {} (wrong key or a key from another host?)",
                dir.display()
            )));
        }
        let listed =
            std::fs::read_dir(Path::new("/proc/self/fd").join(dir_fd.as_raw_fd().to_string()))
                .map_err(|e| st(format!("cannot read {}: {e}", dir.display())))?;
        Ok(listed
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".sec"))
            .count())
    }

    fn seal(&self, aad: &str, plain: &[u8]) -> Result<Vec<u8>, SecretError> {
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce)
            .map_err(|e| SecretError::Storage(format!("no randomness: {e}")))?;
        let ct = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Storage("encryption failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        Ok(out)
    }

    fn open_sealed(&self, aad: &str, sealed: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if sealed.len() < 24 {
            return None;
        }
        let (nonce, ct) = sealed.split_at(24);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .ok()
            .map(Zeroizing::new)
    }

    fn write_atomically(&self, name: &str, bytes: &[u8]) -> Result<(), SecretError> {
        let st = |e: std::io::Error| SecretError::Storage(format!("cannot write {name}: {e}"));
        let tmp = self.dir.join(format!(".{name}.tmp"));
        // A temporary file left by a crash (or a link put in its place) is removed, never
        // written through: the new one is created exclusively, without following a link.
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(st(e)),
            _ => {}
        }
        let mut f = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
            .map_err(st)?;
        f.write_all(bytes).and_then(|()| f.sync_all()).map_err(st)?;
        std::fs::rename(&tmp, self.dir.join(name)).map_err(st)?;
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(st)
    }

    /// The map, locked briefly.
    fn current(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, BTreeMap<String, Vec<SecretVersion>>>, SecretError> {
        self.secrets
            .lock()
            .map_err(|_| SecretError::Storage("lock poisoned".into()))
    }

    /// The right to change the store, one change at a time.
    fn changing(&self) -> Result<std::sync::MutexGuard<'_, ()>, SecretError> {
        self.changing
            .lock()
            .map_err(|_| SecretError::Storage("lock poisoned".into()))
    }

    fn store(&self, path: &str, versions: &[SecretVersion]) -> Result<(), SecretError> {
        let name = file_name(path);
        let plain = Zeroizing::new(
            serde_json::to_vec(&Stored {
                path: path.to_string(),
                versions: versions.to_vec(),
            })
            .map_err(|_| SecretError::Storage("cannot encode".into()))?,
        );
        self.write_atomically(&name, &self.seal(&name, &plain)?)
    }
}

impl SecretBackend for FileBackend {
    fn read(&self, path: &str, version: Option<u64>) -> Result<SecretVersion, SecretError> {
        let path = check_path(path, PathKind::Secret)?;
        super::check_version(version)?;
        let all = self.current()?;
        let versions = all
            .get(&path)
            .ok_or_else(|| SecretError::NotFound(path.clone()))?;
        let found = match version {
            Some(v) => versions.iter().find(|x| x.version == v),
            None => versions.last(),
        };
        found.cloned().ok_or_else(|| {
            SecretError::NotFound(format!("{path} version {}", version.unwrap_or_default()))
        })
    }

    fn write(&self, path: &str, data: SecretMap) -> Result<u64, SecretError> {
        let path = check_path(path, PathKind::Secret)?;
        if data.is_empty() {
            return Err(SecretError::Invalid(
                "a secret needs at least one field".into(),
            ));
        }
        let _changing = self.changing()?;
        let mut versions = self.current()?.get(&path).cloned().unwrap_or_default();
        let version = versions.last().map(|v| v.version + 1).unwrap_or(1);
        versions.push(SecretVersion {
            version,
            created_time: crate::timefmt::now_rfc3339(),
            data,
        });
        let excess = versions.len().saturating_sub(self.max_versions);
        versions.drain(..excess);
        // On disk first, then visible: a read never sees a version that is not stored.
        self.store(&path, &versions)?;
        self.current()?.insert(path, versions);
        Ok(version)
    }

    fn list(&self, prefix: &str) -> Result<Vec<String>, SecretError> {
        let prefix = check_path(prefix, PathKind::Folder)?;
        let all = self.current()?;
        // Keys are sorted: those under the prefix are one run, starting at it (this runs on
        // the event loop, so it does not scan the others).
        let mut names: Vec<String> = all
            .range::<str, _>((
                std::ops::Bound::Included(prefix.as_str()),
                std::ops::Bound::Unbounded,
            ))
            .map(|(p, _)| p)
            .map_while(|p| p.strip_prefix(prefix.as_str()))
            .map(|rest| match rest.split_once('/') {
                Some((folder, _)) => format!("{folder}/"),
                None => rest.to_string(),
            })
            .collect();
        names.dedup();
        if names.is_empty() {
            return Err(SecretError::NotFound(prefix));
        }
        Ok(names)
    }

    fn delete(&self, path: &str) -> Result<(), SecretError> {
        let path = check_path(path, PathKind::Secret)?;
        let _changing = self.changing()?;
        if !self.current()?.contains_key(&path) {
            return Err(SecretError::NotFound(path));
        }
        std::fs::remove_file(self.dir.join(file_name(&path)))
            .and_then(|()| std::fs::File::open(&self.dir).and_then(|d| d.sync_all()))
            .map_err(|e| SecretError::Storage(format!("cannot delete: {e}")))?;
        self.current()?.remove(&path);
        Ok(())
    }

    fn reads_are_local(&self) -> bool {
        // Every secret is decrypted at start and kept in memory; reads touch no file, and the
        // map's lock is never held across file I/O.
        true
    }

    fn health(&self) -> BackendHealth {
        BackendHealth {
            backend: "file".into(),
            healthy: true,
            last_error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::SecretString;
    use std::os::unix::fs::PermissionsExt;

    fn data(pairs: &[(&str, &str)]) -> SecretMap {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), SecretString::new(v.to_string())))
            .collect()
    }

    #[test]
    fn versions_persist_encrypted_and_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        let (key, src) = load_key(dir.path(), None, "secrets-key").unwrap();
        assert!(matches!(src, KeySource::KeyFile(_)));
        let b = FileBackend::open(dir.path(), &key, 2).unwrap();
        assert_eq!(
            b.write("db/primary", data(&[("password", "hunter2")]))
                .unwrap(),
            1
        );
        assert_eq!(
            b.write("db/primary", data(&[("password", "hunter3")]))
                .unwrap(),
            2
        );
        assert_eq!(
            b.write("db/primary", data(&[("password", "hunter4")]))
                .unwrap(),
            3
        );
        b.write("db/replica", data(&[("password", "x")])).unwrap();
        b.write("web/token", data(&[("t", "y")])).unwrap();
        drop(b);
        for entry in std::fs::read_dir(dir.path().join(SECRETS_DIR)).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains("hunter"),
                "encrypted at rest"
            );
        }
        let (key, _) = load_key(dir.path(), None, "secrets-key").unwrap();
        let b = FileBackend::open(dir.path(), &key, 2).unwrap();
        assert_eq!(
            b.read("db/primary", None).unwrap().data["password"].expose(),
            "hunter4"
        );
        assert_eq!(
            b.read("db/primary", Some(2)).unwrap().data["password"].expose(),
            "hunter3"
        );
        assert!(
            matches!(b.read("db/primary", Some(1)), Err(SecretError::NotFound(_))),
            "only 2 versions kept"
        );
        assert_eq!(b.list("").unwrap(), vec!["db/", "web/"]);
        assert_eq!(b.list("db/").unwrap(), vec!["primary", "replica"]);
        b.delete("db/primary").unwrap();
        assert!(matches!(
            b.read("db/primary", None),
            Err(SecretError::NotFound(_))
        ));
        assert!(matches!(
            b.delete("db/primary"),
            Err(SecretError::NotFound(_))
        ));
    }

    #[test]
    fn the_wrong_key_is_a_clear_error_and_a_credential_wins_over_the_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let (key, _) = load_key(dir.path(), None, "secrets-key").unwrap();
        FileBackend::open(dir.path(), &key, 5)
            .unwrap()
            .write("a", data(&[("k", "v")]))
            .unwrap();
        let creds = tempfile::tempdir().unwrap();
        std::fs::write(creds.path().join("secrets-key"), "11".repeat(32)).unwrap();
        let (other, src) = load_key(dir.path(), Some(creds.path()), "secrets-key").unwrap();
        assert!(matches!(src, KeySource::Credential(_)));
        let e = FileBackend::open(dir.path(), &other, 5).unwrap_err();
        assert!(e.to_string().contains("wrong key"), "{e}");
    }

    #[test]
    fn list_names_what_is_directly_under_a_folder_and_nothing_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let (key, _) = load_key(dir.path(), None, "k").unwrap();
        let b = FileBackend::open(dir.path(), &key, 5).unwrap();
        for p in ["da", "db/a/x", "db/a/y", "db/a.b", "db/b", "dbx", "dc/z"] {
            b.write(p, data(&[("k", "v")])).unwrap();
        }
        assert_eq!(b.list("db/").unwrap(), vec!["a.b", "a/", "b"]);
        assert_eq!(b.list("db/a/").unwrap(), vec!["x", "y"]);
        assert_eq!(b.list("").unwrap(), vec!["da", "db/", "dbx", "dc/"]);
        assert!(matches!(b.list("dd/"), Err(SecretError::NotFound(_))));
    }

    #[test]
    fn reads_do_not_wait_for_a_change_in_progress() {
        let dir = tempfile::tempdir().unwrap();
        let (key, _) = load_key(dir.path(), None, "k").unwrap();
        let b = FileBackend::open(dir.path(), &key, 5).unwrap();
        b.write("a", data(&[("k", "v1")])).unwrap();
        // A write or delete holds this for its whole file I/O (a sync can take milliseconds);
        // the agent reads on its event loop, so a read must not queue behind it.
        let change = b.changing().unwrap();
        let (done, read) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| {
                let _ = done.send((b.read("a", None), b.list("")));
            });
            let (got, listed) = read
                .recv_timeout(std::time::Duration::from_secs(5))
                .expect("a read waited for a change in progress");
            assert_eq!(got.unwrap().version, 1);
            assert_eq!(listed.unwrap(), vec!["a".to_string()]);
            drop(change);
        });
        assert_eq!(b.write("a", data(&[("k", "v2")])).unwrap(), 2);
        assert_eq!(b.read("a", None).unwrap().version, 2);
    }

    #[test]
    fn a_file_moved_to_another_name_does_not_decrypt() {
        let dir = tempfile::tempdir().unwrap();
        let (key, _) = load_key(dir.path(), None, "k").unwrap();
        let b = FileBackend::open(dir.path(), &key, 5).unwrap();
        b.write("a", data(&[("k", "v")])).unwrap();
        drop(b);
        let sdir = dir.path().join(SECRETS_DIR);
        std::fs::rename(sdir.join(file_name("a")), sdir.join(file_name("b"))).unwrap();
        assert!(FileBackend::open(dir.path(), &key, 5).is_err());
    }

    #[test]
    fn bad_keys_and_paths_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KEY_FILE), b"short").unwrap();
        std::fs::set_permissions(
            dir.path().join(KEY_FILE),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        assert!(load_key(dir.path(), None, "k").is_err());
        let (key, _) = load_key(tempfile::tempdir().unwrap().path(), None, "k").unwrap();
        let b = FileBackend::open(dir.path(), &key, 5).unwrap();
        assert!(matches!(
            b.write("../x", data(&[("k", "v")])),
            Err(SecretError::Invalid(_))
        ));
        assert!(matches!(
            b.write("x", SecretMap::new()),
            Err(SecretError::Invalid(_))
        ));
    }
}

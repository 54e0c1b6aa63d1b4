//! Files and directories the agent trusts, checked the same way everywhere: who may own them,
//! who may write them, and that no symbolic link stands in for them.
//!
//! The rule (as sudo and sshd apply it): a file or directory the agent relies on is owned by
//! root or by the agent's own user and is writable by neither group nor others, because
//! whoever can write it can change what the agent believes — its policy, its signing key, its
//! capability store, its audit log. The policy loader ([`crate::policy`]) applies it with root
//! allowed as the owner ([`Owner::root_or_agent`]): root-owned policy is the packaged layout.
//! The agent's own state and audit files ([`check_agent_files`]) must belong to the agent's
//! user ([`Owner::agent`]), since the agent writes them: a root-owned file left by a run as root
//! would otherwise fail later with a bare "Permission denied".
//!
//! Symbolic links are never followed for these files: files are opened with `O_NOFOLLOW`
//! ([`open`]) and directories checked with `O_DIRECTORY | O_NOFOLLOW` ([`private_dir`]), so a
//! link planted in place of a file is refused instead of leading the agent elsewhere.
//!
//! Every refusal is a [`FileError`] that names the file, says what is wrong and gives the
//! command that fixes it (`chown aether-vault: /var/lib/aether-vault/signing.key`,
//! `chmod go-w …`). The daemon logs it with the journald `MESSAGE_ID`
//! [`crate::oplog::FILE_REFUSED`].

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::config::AgentConfig;

/// A file or directory the agent will not use, or could not check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {}: {problem}{}", path.display(), fix.as_deref().map(|f| format!("; fix: {f}")).unwrap_or_default())]
pub struct FileError {
    /// The file or directory at fault.
    pub path: PathBuf,
    /// What it is to the agent ("signing key", "state directory").
    pub what: String,
    /// What is wrong.
    pub problem: String,
    /// The command (or step) that fixes it, when there is one.
    pub fix: Option<String>,
}

impl FileError {
    fn new(path: &Path, what: &str, problem: String, fix: Option<String>) -> FileError {
        FileError {
            path: path.to_path_buf(),
            what: what.to_string(),
            problem,
            fix,
        }
    }

    /// The message without the path in front (for errors that print the path themselves).
    pub fn detail(&self) -> String {
        match &self.fix {
            Some(f) => format!("{}; fix: {f}", self.problem),
            None => self.problem.clone(),
        }
    }
}

/// Who may own a trusted file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// The agent's effective uid.
    pub agent_uid: u32,
    /// Whether root may own it too (the agent only reads it).
    pub root_too: bool,
}

impl Owner {
    /// Root or the agent's user (files the agent only reads: policy).
    pub fn root_or_agent(agent_uid: u32) -> Owner {
        Owner {
            agent_uid,
            root_too: true,
        }
    }

    /// The agent's user only (files the agent writes: its state and audit log).
    pub fn agent(agent_uid: u32) -> Owner {
        Owner {
            agent_uid,
            root_too: false,
        }
    }

    fn accepts(self, uid: u32) -> bool {
        uid == self.agent_uid || (self.root_too && uid == 0)
    }
}

/// `uid 999 (aether-vault)`, or `uid 999` when the name does not resolve.
fn describe_uid(uid: u32) -> String {
    match user_name(uid) {
        Some(name) => format!("uid {uid} ({name})"),
        None => format!("uid {uid}"),
    }
}

fn user_name(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

/// What to write in a `chown` command for the agent's user: its name, else its uid.
fn chown_target(agent_uid: u32) -> String {
    user_name(agent_uid).unwrap_or_else(|| agent_uid.to_string())
}

/// The shell-quoted form of a path, for a command to copy.
fn quoted(path: &Path) -> String {
    let s = path.display().to_string();
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The `chown` that gives `path` to `uid` (`-R` for a directory).
fn chown_fix(path: &Path, uid: u32, dir: bool) -> String {
    let r = if dir { "-R " } else { "" };
    format!("chown {r}{}: {}", chown_target(uid), quoted(path))
}

/// The owner and mode rule: refuses an owner `owner` does not accept, and group or other write
/// bits. `mode` is the permission bits (`st_mode & 0o7777`); `dir` picks `chown -R` for the fix.
pub fn check_owner_mode(
    path: &Path,
    what: &str,
    uid: u32,
    mode: u32,
    owner: Owner,
    dir: bool,
) -> Result<(), FileError> {
    if !owner.accepts(uid) {
        let agent = describe_uid(owner.agent_uid);
        let problem = if uid == 0 {
            format!(
                "refused: it belongs to root, but the agent runs as {agent} and writes its own files (left over from a run as root?)"
            )
        } else if owner.root_too {
            format!(
                "refused: it belongs to {}, which is neither root nor the agent's user ({agent}): whoever owns it can change what the agent trusts, so check its contents before you fix the owner",
                describe_uid(uid)
            )
        } else {
            format!(
                "refused: it belongs to {}, not to the agent's user ({agent}): whoever owns it can change what the agent trusts, so check its contents before you fix the owner",
                describe_uid(uid)
            )
        };
        // Files the agent only reads (policy) are best owned by root; its own, by itself.
        let fix = chown_fix(path, if owner.root_too { 0 } else { owner.agent_uid }, dir);
        return Err(FileError::new(path, what, problem, Some(fix)));
    }
    if mode & 0o022 != 0 {
        return Err(FileError::new(
            path,
            what,
            format!("refused: it is writable by group or others (mode {mode:04o})"),
            Some(format!("chmod go-w {}", quoted(path))),
        ));
    }
    Ok(())
}

/// [`check_owner_mode`] on what `meta` says.
fn check_meta(path: &Path, what: &str, meta: &Metadata, owner: Owner) -> Result<(), FileError> {
    check_owner_mode(
        path,
        what,
        meta.uid(),
        meta.mode() & 0o7777,
        owner,
        meta.is_dir(),
    )
}

fn symlink_refused(path: &Path, what: &str) -> FileError {
    let kind = if what.contains("directory") {
        "directory"
    } else {
        "file"
    };
    let target = std::fs::read_link(path)
        .map(|t| format!(" (it points to {})", t.display()))
        .unwrap_or_default();
    FileError::new(
        path,
        what,
        format!(
            "refused: it is a symbolic link{target}, and the agent does not follow links to the files it trusts"
        ),
        Some(format!(
            "replace the link with the {kind} itself, or configure the path the link points to"
        )),
    )
}

/// Explains a permission error on `path`: who owns it (or its directory) and the `chown`.
fn denied(path: &Path, what: &str, agent_uid: u32, err: &io::Error) -> FileError {
    let agent = describe_uid(agent_uid);
    match std::fs::symlink_metadata(path) {
        Ok(meta) => FileError::new(
            path,
            what,
            format!(
                "the agent ({agent}) cannot use it: {err}; it belongs to {} with mode {:04o}",
                describe_uid(meta.uid()),
                meta.mode() & 0o7777
            ),
            Some(chown_fix(path, agent_uid, meta.is_dir())),
        ),
        Err(_) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let owner = std::fs::metadata(dir)
                .map(|m| format!(", which belongs to {}", describe_uid(m.uid())))
                .unwrap_or_default();
            FileError::new(
                path,
                what,
                format!(
                    "the agent ({agent}) cannot reach it: {err} on its directory {}{owner}",
                    dir.display()
                ),
                Some(chown_fix(dir, agent_uid, true)),
            )
        }
    }
}

/// Turns an error opening or creating `path` into a [`FileError`]: a symbolic link, a
/// permission problem (with the owner and the fix), or the plain error.
fn open_error(path: &Path, what: &str, agent_uid: u32, err: io::Error) -> FileError {
    match err.raw_os_error() {
        Some(libc::ELOOP) => symlink_refused(path, what),
        Some(libc::EACCES) | Some(libc::EPERM) => denied(path, what, agent_uid, &err),
        _ => FileError::new(path, what, format!("cannot open it: {err}"), None),
    }
}

/// How a trusted file is checked once open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrecy {
    /// Others may read it (the capability store, the audit log).
    Readable,
    /// Neither group nor others may read it (a key): mode 0600 or less.
    Private,
}

fn check_private(path: &Path, what: &str, meta: &Metadata) -> Result<(), FileError> {
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(FileError::new(
            path,
            what,
            format!("refused: mode {mode:04o} lets others read it"),
            Some(format!("chmod 600 {}", quoted(path))),
        ));
    }
    Ok(())
}

/// A trusted file's metadata: a regular file whose owner and mode pass the rule (and, when
/// private, that no one else may read).
fn check_file(
    path: &Path,
    what: &str,
    meta: &std::fs::Metadata,
    owner: Owner,
    secrecy: Secrecy,
) -> Result<(), FileError> {
    if !meta.is_file() {
        return Err(FileError::new(
            path,
            what,
            "refused: not a regular file".into(),
            None,
        ));
    }
    // A private file that others may read or write is told the one mode that fixes both.
    if secrecy == Secrecy::Private {
        check_private(path, what, meta)?;
    }
    check_meta(path, what, meta, owner)
}

/// Opens a trusted file with `options`, never through a symbolic link (`O_NOFOLLOW`), and
/// only if what was opened is a regular file whose owner and mode pass the rule (checked on
/// the open file, so nothing can be swapped in between).
pub fn open(
    path: &Path,
    what: &str,
    options: &mut OpenOptions,
    owner: Owner,
    secrecy: Secrecy,
) -> Result<File, FileError> {
    let file = options
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| open_error(path, what, owner.agent_uid, e))?;
    let meta = file
        .metadata()
        .map_err(|e| FileError::new(path, what, format!("cannot stat it: {e}"), None))?;
    check_file(path, what, &meta, owner, secrecy)?;
    Ok(file)
}

/// Checks a trusted file that may not exist yet (before anything opens it): absent is fine;
/// a symbolic link, anything but a regular file, or a failed owner/mode rule is refused.
pub fn existing_file(
    path: &Path,
    what: &str,
    owner: Owner,
    secrecy: Secrecy,
) -> Result<(), FileError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(open_error(path, what, owner.agent_uid, e)),
    };
    if meta.file_type().is_symlink() {
        return Err(symlink_refused(path, what));
    }
    check_file(path, what, &meta, owner, secrecy)?;
    Ok(())
}

/// Checks a directory the agent keeps its files in, creating it (and missing parents) with
/// `mode` if it does not exist: it must be a directory, not a symbolic link (checked by opening
/// it `O_DIRECTORY | O_NOFOLLOW`), and pass the owner/mode rule.
pub fn private_dir(path: &Path, what: &str, mode: u32, owner: Owner) -> Result<(), FileError> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(path)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS) => {
                    denied(path, what, owner.agent_uid, &e)
                }
                _ => FileError::new(path, what, format!("cannot create it: {e}"), None),
            })?,
        _ => {}
    }
    existing_dir(path, what, owner)
}

/// Checks an existing directory as [`private_dir`] does, without creating it.
pub fn existing_dir(path: &Path, what: &str, owner: Owner) -> Result<(), FileError> {
    let dir = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENOTDIR)
                if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) =>
            {
                symlink_refused(path, what)
            }
            Some(libc::ENOTDIR) => {
                FileError::new(path, what, "refused: not a directory".into(), None)
            }
            _ => open_error(path, what, owner.agent_uid, e),
        })?;
    let meta = dir
        .metadata()
        .map_err(|e| FileError::new(path, what, format!("cannot stat it: {e}"), None))?;
    check_meta(path, what, &meta, owner)
}

/// Checks the directory the agent binds its socket in: a directory only root or the agent's
/// user can write, or one owned by root with the sticky bit (like `/tmp`: nobody can remove or
/// rename what another user made there). Anyone else able to write it could swap the socket
/// for something else between two steps of binding it.
pub fn socket_dir(path: &Path, agent_uid: u32) -> Result<(), FileError> {
    let what = "socket directory";
    let meta = std::fs::metadata(path).map_err(|e| open_error(path, what, agent_uid, e))?;
    if !meta.is_dir() {
        return Err(FileError::new(
            path,
            what,
            "refused: not a directory".into(),
            None,
        ));
    }
    let sticky = meta.mode() & libc::S_ISVTX != 0;
    if sticky && meta.uid() == 0 {
        return Ok(());
    }
    check_meta(path, what, &meta, Owner::root_or_agent(agent_uid)).map_err(|mut e| {
        e.problem.push_str(
            " (another user could swap the socket for something else while the agent binds it; or set socket_path in a directory only root or the agent's user can write)",
        );
        e
    })
}

/// Files in the state directory: (name, what, secrecy).
pub const STATE_FILES: &[(&str, &str, Secrecy)] = &[
    (
        crate::capability::signing::KEY_FILE,
        "signing key",
        Secrecy::Private,
    ),
    (
        crate::capability::store::STORE_FILE,
        "capability store",
        Secrecy::Readable,
    ),
    (
        "capabilities.log.compact",
        "capability store (compaction)",
        Secrecy::Readable,
    ),
    (
        crate::secrets::file::KEY_FILE,
        "secrets key",
        Secrecy::Private,
    ),
];

/// A file of the agent's owned by root while the agent is not root is most likely one of many
/// left by a run as root: the fix then gives the whole directory back, not just this file.
pub fn leftover_fix(mut e: FileError, dir: &Path, agent_uid: u32) -> FileError {
    let root_owned = std::fs::symlink_metadata(&e.path).is_ok_and(|m| m.uid() == 0);
    if agent_uid != 0 && root_owned {
        e.problem.push_str(&format!(
            "; everything in {} must belong to the agent's user",
            dir.display()
        ));
        e.fix = Some(chown_fix(dir, agent_uid, true));
    }
    e
}

/// Checks the agent's own files before it opens any (at start): the state directory (created
/// 0700 if missing), the signing key, the capability store, the secrets key and store, the
/// audit log's directory (created 0750 if missing), the audit log, its rotated files and the
/// audit seal file. Each
/// must belong to the agent's user, be writable by no one else and not be a symbolic link.
/// The policy directory is checked by the policy loader, where root may own it.
pub fn check_agent_files(config: &AgentConfig, agent_uid: u32) -> Result<(), FileError> {
    let owner = Owner::agent(agent_uid);
    let state = &config.state_dir;
    private_dir(state, "state directory", 0o700, owner)?;
    for (name, what, secrecy) in STATE_FILES {
        existing_file(&state.join(name), what, owner, *secrecy)
            .map_err(|e| leftover_fix(e, state, agent_uid))?;
    }
    if config.secrets.backend == "file" {
        let dir = state.join(crate::secrets::file::SECRETS_DIR);
        if std::fs::symlink_metadata(&dir).is_ok() {
            existing_dir(&dir, "secrets directory", owner)?;
            let entries = std::fs::read_dir(&dir).map_err(|e| {
                FileError::new(
                    &dir,
                    "secrets directory",
                    format!("cannot read it: {e}"),
                    None,
                )
            })?;
            for entry in entries.flatten() {
                existing_file(&entry.path(), "secret file", owner, Secrecy::Readable)
                    .map_err(|e| leftover_fix(e, state, agent_uid))?;
            }
        }
    }
    if config.audit.enable {
        let log = &config.audit.log_file;
        if let Some(dir) = log.parent().filter(|d| !d.as_os_str().is_empty()) {
            private_dir(dir, "audit log directory", 0o750, owner)?;
        }
        let log_dir = log.parent().unwrap_or(Path::new("."));
        existing_file(log, "audit log", owner, Secrecy::Readable)
            .map_err(|e| leftover_fix(e, log_dir, agent_uid))?;
        // Rotated files: the count kept, and any kept past it (audit.min_retention_days).
        for n in 1u64.. {
            let mut rotated = log.as_os_str().to_owned();
            rotated.push(format!(".{n}"));
            let rotated = Path::new(&rotated);
            if n > u64::from(config.audit.max_backup_files.max(1))
                && std::fs::symlink_metadata(rotated).is_err()
            {
                break;
            }
            existing_file(rotated, "rotated audit log", owner, Secrecy::Readable)
                .map_err(|e| leftover_fix(e, log_dir, agent_uid))?;
        }
        if config.audit.seal {
            let seals = config.audit.seal_path(state);
            existing_file(&seals, "audit seal file", owner, Secrecy::Private).map_err(|e| {
                leftover_fix(e, seals.parent().unwrap_or(Path::new(".")), agent_uid)
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn me() -> u32 {
        nix::unistd::geteuid().as_raw()
    }

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn the_rule_refuses_foreign_owners_and_group_or_other_write() {
        let p = Path::new("/x/policy.yaml");
        let o = Owner::root_or_agent(1000);
        assert!(check_owner_mode(p, "policy file", 0, 0o644, o, false).is_ok());
        assert!(check_owner_mode(p, "policy file", 1000, 0o600, o, false).is_ok());
        let e = check_owner_mode(p, "policy file", 1001, 0o644, o, false).unwrap_err();
        assert!(e.problem.contains("neither root"), "{e}");
        assert!(e.fix.as_deref().unwrap().starts_with("chown "), "{e}");
        assert!(e.to_string().contains("/x/policy.yaml"), "{e}");
        let e = check_owner_mode(p, "policy file", 0, 0o664, o, false).unwrap_err();
        assert!(e.problem.contains("writable by group or others"), "{e}");
        assert_eq!(e.fix.as_deref(), Some("chmod go-w /x/policy.yaml"));
        assert!(check_owner_mode(p, "f", 0, 0o646, o, false).is_err());
        // The agent's own files: root is not the agent, unless the agent is root.
        let e =
            check_owner_mode(p, "signing key", 0, 0o600, Owner::agent(1000), false).unwrap_err();
        assert!(e.problem.contains("belongs to root"), "{e}");
        assert!(check_owner_mode(p, "signing key", 0, 0o600, Owner::agent(0), false).is_ok());
        let e = check_owner_mode(
            Path::new("/d"),
            "state directory",
            7,
            0o700,
            Owner::agent(0),
            true,
        )
        .unwrap_err();
        assert!(
            e.fix.as_deref().unwrap().starts_with("chown -R root: /d"),
            "{e}"
        );
    }

    #[test]
    fn paths_in_fixes_are_quoted_when_they_need_it() {
        assert_eq!(quoted(Path::new("/var/lib/a-b_c.1")), "/var/lib/a-b_c.1");
        assert_eq!(quoted(Path::new("/tmp/a b")), "'/tmp/a b'");
        assert_eq!(quoted(Path::new("/tmp/it's")), r"'/tmp/it'\''s'");
    }

    #[test]
    fn open_refuses_a_symlink_and_checks_the_open_file() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::write(&real, b"x").unwrap();
        chmod(&real, 0o600);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let o = Owner::agent(me());
        let e = open(
            &link,
            "audit log",
            OpenOptions::new().read(true),
            o,
            Secrecy::Readable,
        )
        .unwrap_err();
        assert!(e.problem.contains("symbolic link"), "{e}");
        assert!(
            open(
                &real,
                "f",
                OpenOptions::new().read(true),
                o,
                Secrecy::Private
            )
            .is_ok()
        );
        chmod(&real, 0o640);
        let e = open(
            &real,
            "key",
            OpenOptions::new().read(true),
            o,
            Secrecy::Private,
        )
        .unwrap_err();
        assert_eq!(
            e.fix.as_deref(),
            Some(&*format!("chmod 600 {}", real.display()))
        );
        chmod(&real, 0o620);
        assert!(
            open(
                &real,
                "f",
                OpenOptions::new().read(true),
                o,
                Secrecy::Readable
            )
            .is_err(),
            "group write"
        );
        let e = existing_file(&link, "capability store", o, Secrecy::Readable).unwrap_err();
        assert!(e.problem.contains("symbolic link"), "{e}");
        assert!(existing_file(&dir.path().join("absent"), "f", o, Secrecy::Readable).is_ok());
        let e = open(
            dir.path(),
            "f",
            OpenOptions::new().read(true),
            o,
            Secrecy::Readable,
        )
        .unwrap_err();
        assert!(e.problem.contains("not a regular file"), "{e}");
    }

    #[test]
    fn directories_are_created_private_and_links_or_open_ones_refused() {
        let base = tempfile::tempdir().unwrap();
        let o = Owner::agent(me());
        let state = base.path().join("a/state");
        private_dir(&state, "state directory", 0o700, o).unwrap();
        assert_eq!(
            std::fs::metadata(&state).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let link = base.path().join("link");
        std::os::unix::fs::symlink(&state, &link).unwrap();
        let e = private_dir(&link, "state directory", 0o700, o).unwrap_err();
        assert!(e.problem.contains("symbolic link"), "{e}");
        chmod(&state, 0o777);
        let e = private_dir(&state, "state directory", 0o700, o).unwrap_err();
        assert!(e.problem.contains("writable by group or others"), "{e}");
        let file = base.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let e = existing_dir(&file, "secrets directory", o).unwrap_err();
        assert!(e.problem.contains("not a directory"), "{e}");
    }

    #[test]
    fn a_socket_directory_others_can_write_is_refused_unless_root_owned_and_sticky() {
        let base = tempfile::tempdir().unwrap();
        let d = base.path().join("run");
        std::fs::create_dir(&d).unwrap();
        chmod(&d, 0o755);
        assert!(socket_dir(&d, me()).is_ok());
        chmod(&d, 0o777);
        let e = socket_dir(&d, me()).unwrap_err();
        assert!(e.to_string().contains(&*d.display().to_string()), "{e}");
        assert!(e.fix.as_deref().unwrap().contains("chmod go-w"), "{e}");
        chmod(&d, 0o1777);
        assert_eq!(
            socket_dir(&d, me()).is_ok(),
            me() == 0,
            "sticky is enough only for a root-owned directory"
        );
    }
}

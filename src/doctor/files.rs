//! Owners and modes of every file and directory the agent uses, checked by the agent's own
//! rule ([`crate::trust`]): its state directory, signing key, capability store, secrets key and
//! store, audit directory, log, rotated files and seal file must belong to the agent's user and
//! be writable by no one else, keys readable by no one else; the policy directory and files and
//! the configuration file may belong to root too. Unlike the agent, which stops at the first
//! refusal, every file is looked at, and nothing is created. Also the key files themselves
//! ([`keys`]): present and of the form the agent reads.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::{Finding, can_enter, not_readable};
use crate::config::AgentConfig;
use crate::policy::load::{FileKind, classify};
use crate::trust::{self, FileError, Owner, Secrecy};

const CHECK: &str = "files";

/// The files the agent keeps (state and audit), then the policy directory and files, then the
/// configuration file: one problem per file that fails, or one line saying all passed.
pub fn agent_files(
    config: &AgentConfig,
    config_file: Option<&Path>,
    agent_uid: u32,
) -> Vec<Finding> {
    let mut checked = 0usize;
    let mut out = Vec::new();
    let mut take = |r: Result<(), FileError>, out: &mut Vec<Finding>| {
        checked += 1;
        if let Err(e) = r {
            out.push(Finding::file(CHECK, &e));
        }
    };
    let owner = Owner::agent(agent_uid);
    let state = &config.state_dir;
    if exists(state) && !can_enter(state) {
        take(stat_dir(state, "state directory", owner), &mut out);
        out.push(not_readable(CHECK, state));
    } else if exists(state) {
        take(
            trust::existing_dir(state, "state directory", owner),
            &mut out,
        );
        for (name, what, secrecy) in trust::STATE_FILES {
            let r = trust::existing_file(&state.join(name), what, owner, *secrecy)
                .map_err(|e| trust::leftover_fix(e, state, agent_uid));
            take(r, &mut out);
        }
        let secrets = state.join(crate::secrets::file::SECRETS_DIR);
        if exists(&secrets) {
            take(
                trust::existing_dir(&secrets, "secrets directory", owner),
                &mut out,
            );
            for entry in std::fs::read_dir(&secrets).into_iter().flatten().flatten() {
                let r =
                    trust::existing_file(&entry.path(), "secret file", owner, Secrecy::Readable)
                        .map_err(|e| trust::leftover_fix(e, state, agent_uid));
                take(r, &mut out);
            }
        }
    }
    if config.audit.enable {
        let log = &config.audit.log_file;
        let dir = log
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let enter = !exists(dir) || can_enter(dir);
        if !enter {
            take(stat_dir(dir, "audit log directory", owner), &mut out);
            out.push(not_readable(CHECK, dir));
        } else if exists(dir) {
            take(
                trust::existing_dir(dir, "audit log directory", owner),
                &mut out,
            );
        }
        for file in crate::audit::chain::rotation_set(log)
            .into_iter()
            .filter(|_| enter)
        {
            let what = if &file == log {
                "audit log"
            } else {
                "rotated audit log"
            };
            let r = trust::existing_file(&file, what, owner, Secrecy::Readable)
                .map_err(|e| trust::leftover_fix(e, dir, agent_uid));
            take(r, &mut out);
        }
        let seals = config.audit.seal_path(state);
        if config.audit.seal && seals.parent().is_none_or(|d| !exists(d) || can_enter(d)) {
            take(
                trust::existing_file(&seals, "audit seal file", owner, Secrecy::Private),
                &mut out,
            );
        }
    }
    for r in policy_files(&config.policy_engine.directory, agent_uid) {
        take(r, &mut out);
    }
    if let Some(file) = config_file {
        let r = trust::existing_file(
            file,
            "configuration file",
            Owner::root_or_agent(agent_uid),
            Secrecy::Readable,
        );
        take(r, &mut out);
    }
    if !out.iter().any(|f| f.status == super::Status::Problem) {
        out.insert(0, Finding::ok(
            CHECK,
            format!("{checked} files and directories: owners and modes as the agent requires (uid {agent_uid} or root)"),
        ));
    }
    out
}

/// The policy directory and each policy file in it (as the loader resolves them: a symbolic
/// link is followed and the file it leads to checked): owned by root or the agent's user,
/// writable by no one else.
pub fn policy_files(dir: &Path, agent_uid: u32) -> Vec<Result<(), FileError>> {
    let owner = Owner::root_or_agent(agent_uid);
    let Ok(meta) = std::fs::metadata(dir) else {
        return Vec::new();
    };
    let mut out = vec![trust::check_owner_mode(
        dir,
        "policy directory",
        meta.uid(),
        meta.mode() & 0o7777,
        owner,
        true,
    )];
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        if matches!(classify(&name.to_string_lossy()), FileKind::Ignored(_)) {
            continue;
        }
        let path = entry.path();
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => out.push(trust::check_owner_mode(
                &path,
                "policy file",
                m.uid(),
                m.mode() & 0o7777,
                owner,
                false,
            )),
            Ok(_) => {}
            Err(e) => out.push(Err(FileError {
                path: path.clone(),
                what: "policy file".into(),
                problem: format!("cannot read it: {e}"),
                fix: Some(format!("remove or repair {}", path.display())),
            })),
        }
    }
    out
}

/// A directory's owner and mode by `stat` alone (for one this process may not open).
fn stat_dir(dir: &Path, what: &str, owner: Owner) -> Result<(), FileError> {
    match std::fs::metadata(dir) {
        Ok(m) => trust::check_owner_mode(dir, what, m.uid(), m.mode() & 0o7777, owner, true),
        Err(_) => Ok(()),
    }
}

/// An open error in words: a symbolic link is named as one.
fn why(e: &std::io::Error) -> String {
    if e.raw_os_error() == Some(libc::ELOOP) {
        "it is a symbolic link, which the agent never follows".to_string()
    } else {
        e.to_string()
    }
}

fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

/// The key files: the signing key (32 bytes; absent before the first start) and, with the
/// file backend, the secrets key (32 bytes or 64 hex digits).
pub fn keys(config: &AgentConfig) -> Vec<Finding> {
    const KEYS: &str = "keys";
    let mut out = Vec::new();
    let signing = config.state_dir.join(crate::capability::signing::KEY_FILE);
    out.push(match super::read_regular(&signing, 1024) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Finding::ok(
            KEYS,
            format!("signing key {}: not created yet (the agent creates it at its first start)", signing.display()),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => not_readable(KEYS, &signing),
        Err(e) => Finding::problem(
            KEYS,
            format!("signing key {}: cannot read it: {}", signing.display(), why(&e)),
            format!("put the agent's key back at {} as a regular file (from a backup), or move it away so that the agent makes a new one", signing.display()),
        ),
        Ok(b) if b.len() == 32 => {
            let key = crate::capability::Signer::from_seed(b.as_slice().try_into().unwrap_or([0; 32]));
            Finding::ok(KEYS, format!("signing key {}: public key {}", signing.display(), key.public_key_base64()))
        }
        Ok(b) => Finding::problem(
            KEYS,
            format!("signing key {}: {} bytes, not the 32 the agent reads (damaged or not a signing key)", signing.display(), b.len()),
            format!("restore {} from a backup; or move it away so that the agent makes a new one (capabilities and audit seals signed with the old one then no longer verify)", signing.display()),
        ),
    });
    if config.secrets.backend == "file" {
        let path = config.state_dir.join(crate::secrets::file::KEY_FILE);
        match super::read_regular(&path, 1024) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                out.push(not_readable(KEYS, &path))
            }
            Err(e) => out.push(Finding::problem(
                KEYS,
                format!(
                    "secrets key {}: cannot read it: {}",
                    path.display(),
                    why(&e)
                ),
                format!(
                    "put the key back at {} as a regular file, from a backup",
                    path.display()
                ),
            )),
            Ok(b) => out.push(match crate::secrets::file::parse_key(&b) {
                Ok(_) => Finding::ok(
                    KEYS,
                    format!("secrets key {}: readable, 32 bytes of key", path.display()),
                ),
                Err(why) => Finding::problem(
                    KEYS,
                    format!("secrets key {}: {why}", path.display()),
                    format!(
                        "restore {} from a backup (without it the stored secrets cannot be read)",
                        path.display()
                    ),
                ),
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DefaultPaths, Mode};
    use std::os::unix::fs::PermissionsExt;

    fn me() -> u32 {
        nix::unistd::geteuid().as_raw()
    }

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn config(base: &Path) -> AgentConfig {
        let mut c = AgentConfig::defaults(Mode::Standard, &DefaultPaths::user(base));
        c.state_dir = base.join("state");
        c.policy_engine.directory = base.join("policies");
        c.audit.log_file = base.join("log/audit.log");
        c
    }

    #[test]
    fn every_bad_file_is_named_with_its_fix_and_nothing_is_created() {
        let base = tempfile::tempdir().unwrap();
        let c = config(base.path());
        let f = agent_files(&c, None, me());
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].status, super::super::Status::Ok);
        assert!(!c.state_dir.exists(), "doctor creates nothing");
        std::fs::create_dir_all(&c.state_dir).unwrap();
        chmod(&c.state_dir, 0o700);
        std::fs::create_dir_all(&c.policy_engine.directory).unwrap();
        chmod(&c.policy_engine.directory, 0o755);
        let key = c.state_dir.join("signing.key");
        std::fs::write(&key, [7u8; 32]).unwrap();
        chmod(&key, 0o644);
        let pol = c.policy_engine.directory.join("a.yaml");
        std::fs::write(&pol, "id: a\nrules: []\n").unwrap();
        chmod(&pol, 0o664);
        std::fs::write(c.policy_engine.directory.join("a.yaml~"), "").unwrap();
        chmod(&c.policy_engine.directory.join("a.yaml~"), 0o666);
        let f = agent_files(&c, None, me());
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(
            f[0].message.contains("signing key") && f[0].message.contains("lets others read it"),
            "{f:?}"
        );
        assert_eq!(
            f[0].fix.as_deref(),
            Some(&*format!("chmod 600 {}", key.display()))
        );
        assert!(
            f[1].message
                .starts_with(&format!("policy file {}", pol.display())),
            "{f:?}"
        );
        assert_eq!(
            f[1].fix.as_deref(),
            Some(&*format!("chmod go-w {}", pol.display()))
        );
        let k = keys(&c);
        assert!(k[0].message.contains("public key"), "{k:?}");
        std::fs::write(&key, b"short").unwrap();
        let k = keys(&c);
        assert_eq!(k[0].status, super::super::Status::Problem, "{k:?}");
        // A FIFO or a link to a device in place of a key neither hangs nor exhausts doctor.
        std::fs::remove_file(&key).unwrap();
        nix::unistd::mkfifo(&key, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let k = keys(&c);
        assert!(k[0].message.contains("not a regular file"), "{k:?}");
        std::fs::remove_file(&key).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &key).unwrap();
        let k = keys(&c);
        assert!(k[0].message.contains("symbolic link"), "{k:?}");
        let f = agent_files(&c, None, me());
        assert!(
            f.iter().any(|f| f.message.contains("symbolic link")),
            "{f:?}"
        );
    }
}

//! A per-user agent's first start: its policy directory, `~/.aether-vault/policies` (the
//! upstream documents' `ls ~/.aether-vault/policies/`), is made if it does not exist yet —
//! mode 0700, owned by the agent's user — with a `README` and an inert example policy
//! (`00-example.json.example`, mode 0600), so that the place where policies go is there to be
//! found, with what to put in it. Neither file is loaded (their names do not end in `.json`,
//! `.yaml` or `.yml`), so nothing is allowed by it.
//!
//! Only the per-user default directory is made: a directory named by configuration, flag or
//! environment that does not exist is left alone (it may be a typo, and the agent says so when
//! it loads policies), and so is an existing one, whatever it holds. The system directory
//! (`/etc/aether-vault/policies.d`) is the packages' to make.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::config::{AgentConfig, DefaultPaths, Mode};
use crate::trust::{FileError, Owner};

/// The file that says what the directory is for.
pub const README: &str = "README";

/// The inert example policy.
pub const EXAMPLE: &str = "00-example.json.example";

/// Makes the per-user policy directory if `config` reads the default one under `home` and it
/// does not exist; answers the directory when it was made. An existing directory, or one that
/// is not the per-user default, is left as it is.
pub fn prepare_policy_dir(
    config: &AgentConfig,
    home: &Path,
    agent_uid: u32,
) -> Result<Option<PathBuf>, FileError> {
    let dir = &config.policy_engine.directory;
    if *dir != DefaultPaths::user(home).policy_dir || std::fs::symlink_metadata(dir).is_ok() {
        return Ok(None);
    }
    // Only in a home of the agent's own user, through directories (not links) it owns: root
    // started with another user's HOME (`su` without `-`, `sudo -E`) must not create files
    // where that user could redirect them.
    let owned = |p: &Path| {
        std::fs::symlink_metadata(p)
            .is_ok_and(|m| m.is_dir() && std::os::unix::fs::MetadataExt::uid(&m) == agent_uid)
    };
    let parent = dir.parent().unwrap_or(home);
    if !owned(home) || (parent != home && parent.exists() && !owned(parent)) {
        return Ok(None);
    }
    crate::trust::private_dir(dir, "policy directory", 0o700, Owner::agent(agent_uid))?;
    write_new(dir, README, &readme(config.mode))?;
    write_new(dir, EXAMPLE, &example(agent_uid))?;
    Ok(Some(dir.clone()))
}

/// Writes `name` in `dir`, mode 0600, only if nothing (not even a link) is there.
fn write_new(dir: &Path, name: &str, text: &str) -> Result<(), FileError> {
    let path = dir.join(name);
    let fail = |e: std::io::Error| FileError {
        path: path.clone(),
        what: "policy directory file".into(),
        problem: format!("cannot write it: {e}"),
        fix: None,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(fail)?;
    f.write_all(text.as_bytes()).map_err(fail)
}

/// What the README says, for an agent in `mode`.
fn readme(mode: Mode) -> String {
    let fallback = match mode {
        Mode::Development => {
            "This agent runs in development mode: while no rule is loaded it allows requests \
             from your own uid and denies everyone else's."
        }
        Mode::Standard | Mode::Hardened => {
            "This agent runs in standard or hardened mode: while no rule is loaded it denies \
             every request."
        }
    };
    format!(
        "This directory holds the policies of your own aether-vault agent (made at its first \
start). Only *.json, *.yaml and *.yml files are loaded; README and *.example files never are.\n\
\n\
{fallback}\n\
\n\
To allow something: copy the example without its .example suffix, edit it, and check it:\n\
\n\
    cp 00-example.json.example 00-mine.json\n\
    aether-vault policy check 00-mine.json\n\
\n\
The agent picks up changes here by itself (or on \"aether-vault agent reload\"); a file that \
does not load leaves the previous policies in force, and \"aether-vault agent status\" shows \
the error. Keep the files yours and not writable by group or others: the agent refuses them \
otherwise. The format: aether-vault-policy(5).\n"
    )
}

/// The example: the agent's own uid may read and write its secrets for up to an hour.
fn example(agent_uid: u32) -> String {
    format!(
        r#"{{
  "id": "example",
  "name": "Example policy",
  "version": "1.0",
  "status": "active",
  "description": "Inert example: copy it to NAME.json in this directory to use it.",
  "rules": [
    {{
      "id": "own-secrets",
      "description": "My own processes (uid {agent_uid}) may read and write my secrets.",
      "effect": "allow",
      "resources": ["secret:/*"],
      "actions": ["read", "write"],
      "identities": ["uid:{agent_uid}"],
      "max_ttl": 3600
    }}
  ]
}}
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn config(home: &Path, mode: Mode) -> AgentConfig {
        AgentConfig::defaults(mode, &DefaultPaths::user(home))
    }

    #[test]
    fn makes_the_default_directory_once_with_an_inert_example() {
        let home = tempfile::tempdir().unwrap();
        let uid = nix::unistd::geteuid().as_raw();
        let c = config(home.path(), Mode::Development);
        let dir = prepare_policy_dir(&c, home.path(), uid).unwrap().unwrap();
        assert_eq!(dir, home.path().join(".aether-vault/policies"));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(README)), 0o600);
        assert_eq!(mode(&dir.join(EXAMPLE)), 0o600);
        // The example is a valid policy once copied, and nothing here loads as it is.
        let loaded =
            crate::policy::load_dir(&dir, crate::policy::LoadOptions { agent_uid: uid }).unwrap();
        assert_eq!(loaded.ignored.len(), 2);
        std::fs::copy(dir.join(EXAMPLE), dir.join("00-mine.json")).unwrap();
        let loaded =
            crate::policy::load_dir(&dir, crate::policy::LoadOptions { agent_uid: uid }).unwrap();
        assert_eq!(loaded.files.len(), 1);
        // Existing: left alone (a deleted README stays deleted).
        std::fs::remove_file(dir.join(README)).unwrap();
        assert_eq!(prepare_policy_dir(&c, home.path(), uid).unwrap(), None);
        assert!(!dir.join(README).exists());
    }

    #[test]
    fn nothing_is_made_in_a_home_of_another_user() {
        // The agent's uid is not the home's owner (as for root with another user's HOME).
        let home = tempfile::tempdir().unwrap();
        let other = nix::unistd::geteuid().as_raw() + 1;
        let c = config(home.path(), Mode::Development);
        assert_eq!(prepare_policy_dir(&c, home.path(), other).unwrap(), None);
        assert!(!home.path().join(".aether-vault").exists());
        // A ~/.aether-vault that is a link is not followed either.
        let me = nix::unistd::geteuid().as_raw();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), home.path().join(".aether-vault")).unwrap();
        assert_eq!(prepare_policy_dir(&c, home.path(), me).unwrap(), None);
        assert!(!elsewhere.path().join("policies").exists());
    }

    #[test]
    fn a_configured_directory_is_never_made() {
        let home = tempfile::tempdir().unwrap();
        let mut c = config(home.path(), Mode::Standard);
        c.policy_engine.directory = home.path().join("typo");
        assert_eq!(prepare_policy_dir(&c, home.path(), 0).unwrap(), None);
        assert!(!home.path().join("typo").exists());
    }

    #[test]
    fn the_readme_says_what_the_mode_allows_without_a_policy() {
        assert!(readme(Mode::Development).contains("allows requests from your own uid"));
        assert!(readme(Mode::Standard).contains("denies every request"));
    }
}

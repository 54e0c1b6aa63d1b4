//! What a mode puts in force from a policy directory: the one code path the agent's
//! `PolicyWatcher` and the offline `aether-vault policy check|test` and `credential test` share,
//! so that they cannot disagree.
//!
//! A missing directory is an empty set (a warning, not an error), and a set without rules gets
//! the mode's fallback: development mode allows the agent's own uid, standard and hardened
//! modes deny everything. A set that fails to load is never half used: at start the agent puts
//! the fallback in force, on a reload the previous set stays.

use std::path::Path;

use super::{Fallback, LoadError, LoadOptions, PolicySet, load_dir};
use crate::config::Mode;

/// The fallback for a mode when no rule is loaded (a missing or empty directory, or a set
/// that failed to load at start).
pub fn fallback_for(mode: Mode, agent_uid: u32) -> Fallback {
    match mode {
        Mode::Development => Fallback::OwnerOnly { uid: agent_uid },
        Mode::Standard | Mode::Hardened => Fallback::DenyAll,
    }
}

/// Loads `directory` into a set of `generation`, with the mode's fallback.
pub fn build_set(
    directory: &Path,
    mode: Mode,
    agent_uid: u32,
    generation: u64,
) -> Result<PolicySet, LoadError> {
    let loaded = load_dir(directory, LoadOptions { agent_uid })?;
    Ok(PolicySet::from_loaded(
        generation,
        loaded,
        fallback_for(mode, agent_uid),
    ))
}

/// Whether `directory` is missing (the agent then runs with an empty set and watches for it).
pub fn is_missing(directory: &Path) -> bool {
    matches!(std::fs::symlink_metadata(directory), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

/// What a set without rules decides in `mode`, in words.
pub fn without_rules(mode: Mode, agent_uid: u32) -> String {
    match fallback_for(mode, agent_uid) {
        Fallback::DenyAll => format!("in {mode} mode every request is denied"),
        Fallback::OwnerOnly { uid } => {
            format!("in {mode} mode only the agent's own uid {uid} is allowed")
        }
    }
}

/// The warning for a missing policy directory: what the agent does with it in `mode`.
pub fn missing_warning(directory: &Path, mode: Mode, agent_uid: u32) -> String {
    format!(
        "{} does not exist; the agent treats a missing policy directory as empty ({}) and loads it once it is created",
        directory.display(),
        without_rules(mode, agent_uid)
    )
}

/// What the agent does with a set that fails to load, in words (for offline tools).
pub fn on_failure(mode: Mode, agent_uid: u32) -> String {
    format!(
        "the agent would refuse this set: at start it runs without rules ({}); on a reload the previous set stays in force",
        without_rules(mode, agent_uid)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_directory_gets_the_mode_fallback() {
        let missing = Path::new("/nonexistent/aether-vault/policies");
        assert!(is_missing(missing));
        let dev = build_set(missing, Mode::Development, 4242, 1).unwrap();
        assert_eq!(dev.fallback, Fallback::OwnerOnly { uid: 4242 });
        for mode in [Mode::Standard, Mode::Hardened] {
            assert_eq!(
                build_set(missing, mode, 4242, 1).unwrap().fallback,
                Fallback::DenyAll
            );
        }
        let w = missing_warning(missing, Mode::Standard, 0);
        assert!(
            w.contains("does not exist") && w.contains("standard mode"),
            "{w}"
        );
    }
}

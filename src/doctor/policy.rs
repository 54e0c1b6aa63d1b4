//! The policy directory as the agent loads it (the same loader, [`crate::policy::load`]): a
//! missing directory (a warning: what the mode then allows), a set that does not load (a
//! problem, naming file:line:column), an empty set; and the users and groups the rules name
//! that do not exist on this host ([`unknown_names`]): such a rule never matches anyone.

use std::collections::BTreeSet;
use std::path::Path;

use super::Finding;
use crate::config::Mode;
use crate::policy::load::{LoadOptions, LoadedPolicies, load_dir};
use crate::policy::selector::Selector;

const CHECK: &str = "policy";

/// Loads `dir` as the agent would; the findings, and the loaded set when it loaded.
pub fn policy_dir(
    dir: &Path,
    mode: Mode,
    agent_uid: u32,
) -> (Vec<Finding>, Option<LoadedPolicies>) {
    let shown = dir.display();
    let until = match mode {
        Mode::Development => format!(
            "in development mode only the agent's own uid {agent_uid} is allowed until a policy exists"
        ),
        Mode::Standard | Mode::Hardened => {
            format!("in {mode} mode everything is denied until a policy exists")
        }
    };
    let check = format!("aether-vault policy check {shown}");
    match load_dir(dir, LoadOptions { agent_uid }) {
        Err(e) => (
            vec![Finding::problem(
                CHECK,
                format!("the policy set does not load: {e}"),
                format!(
                    "correct it ({check} shows every error); the agent keeps the set it has in force, or at start denies everything"
                ),
            )],
            None,
        ),
        Ok(loaded) if !loaded.dir_exists => (
            vec![Finding::warning(
                CHECK,
                format!("policy directory {shown} does not exist: {until}"),
                format!(
                    "mkdir -m 755 -p {shown} and add a policy file (see aether-vault-policy(5)), then {check}; or set policy_engine.directory"
                ),
            )],
            Some(loaded),
        ),
        Ok(loaded) if loaded.rules.is_empty() => (
            vec![Finding::warning(
                CHECK,
                format!(
                    "policy directory {shown} has no active rule ({} files): {until}",
                    loaded.files.len()
                ),
                format!("add a policy file to {shown} (see aether-vault-policy(5)), then {check}"),
            )],
            Some(loaded),
        ),
        Ok(loaded) => (
            vec![Finding::ok(
                CHECK,
                format!(
                    "{shown}: {} files, {} policies, {} rules load{}",
                    loaded.files.len(),
                    loaded.policies.len(),
                    loaded.rules.len(),
                    if loaded.ignored.is_empty() {
                        String::new()
                    } else {
                        format!(" ({} entries ignored)", loaded.ignored.len())
                    }
                ),
            )],
            Some(loaded),
        ),
    }
}

/// The `user:` and `group:` names of every rule (conjunctions included), with the rule
/// (`policy/rule`) and the file that names them, each name once.
fn named(loaded: &LoadedPolicies) -> Vec<(bool, String, String, String)> {
    fn walk(s: &Selector, out: &mut Vec<(bool, String)>) {
        match s {
            Selector::User(n) => out.push((false, n.clone())),
            Selector::Group(n) => out.push((true, n.clone())),
            Selector::All(all) => all.iter().for_each(|s| walk(s, out)),
            _ => {}
        }
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for rule in &loaded.rules {
        let mut names = Vec::new();
        rule.identities.iter().for_each(|s| walk(s, &mut names));
        let file = loaded
            .summaries
            .iter()
            .find(|f| f.policy_id == rule.policy_id)
            .map(|f| f.path.display().to_string())
            .unwrap_or_default();
        for (group, name) in names {
            if seen.insert((group, name.clone())) {
                out.push((group, name, rule.qualified_id(), file.clone()));
            }
        }
    }
    out
}

/// A problem for each user or group a rule names that `exists` says is not on this host.
pub fn unknown_names(loaded: &LoadedPolicies, exists: &dyn Fn(bool, &str) -> bool) -> Vec<Finding> {
    const USERS: &str = "users";
    let names = named(loaded);
    let mut out: Vec<Finding> = names
        .iter()
        .filter(|(group, name, _, _)| !exists(*group, name))
        .map(|(group, name, rule, file)| {
            let kind = if *group { "group" } else { "user" };
            Finding::problem(
                USERS,
                format!("{file}: rule {rule} names {kind} {name:?}, which does not exist on this host: the rule matches no one"),
                format!(
                    "correct the name in {file}, or create the {kind} ({} {name})",
                    if *group { "groupadd" } else { "useradd --system" }
                ),
            )
        })
        .collect();
    if out.is_empty() {
        out.push(Finding::ok(
            USERS,
            format!("the {} users and groups the rules name exist", names.len()),
        ));
    }
    out
}

/// Whether the user (`group` false) or group of this name exists (nss: passwd, group).
pub fn host_has(group: bool, name: &str) -> bool {
    if group {
        matches!(nix::unistd::Group::from_name(name), Ok(Some(_)))
    } else {
        matches!(nix::unistd::User::from_name(name), Ok(Some(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Status;

    #[test]
    fn a_missing_directory_is_a_warning_saying_what_the_mode_allows() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("policies");
        let (f, _) = policy_dir(&dir, Mode::Standard, 0);
        assert_eq!(f[0].status, Status::Warning);
        assert!(
            f[0].message
                .contains("everything is denied until a policy exists"),
            "{f:?}"
        );
        assert!(f[0].fix.as_deref().unwrap().contains("mkdir"), "{f:?}");
        let (f, _) = policy_dir(&dir, Mode::Development, 1000);
        assert!(f[0].message.contains("own uid 1000"), "{f:?}");
    }

    #[test]
    fn a_broken_file_is_a_problem_naming_line_and_column_and_unknown_names_are_found() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("policies");
        std::fs::create_dir(&dir).unwrap();
        let me = nix::unistd::geteuid().as_raw();
        std::fs::write(
            dir.join("a.yaml"),
            "id: a\nrules:\n  - id: r\n    effect: allow\n    resources: [\"secret:/x\"]\n    actions: [read]\n    identities: [\"user:root\", \"group:no-such-group-xyz\", \"user:no-such-user-xyz+exe:/usr/bin/true\"]\n",
        )
        .unwrap();
        let (f, loaded) = policy_dir(&dir, Mode::Standard, me);
        assert_eq!(f[0].status, Status::Ok, "{f:?}");
        let u = unknown_names(&loaded.unwrap(), &host_has);
        assert_eq!(u.len(), 2, "{u:?}");
        assert!(
            u[0].message.contains("group \"no-such-group-xyz\""),
            "{u:?}"
        );
        assert!(u[0].message.contains("a.yaml: rule a/r"), "{u:?}");
        assert!(u[1].message.contains("user \"no-such-user-xyz\""), "{u:?}");
        assert!(u[1].fix.as_deref().unwrap().contains("useradd"), "{u:?}");
        std::fs::write(
            dir.join("b.yaml"),
            "id: b\nrules:\n  - id: r\n    efect: allow\n",
        )
        .unwrap();
        let (f, loaded) = policy_dir(&dir, Mode::Standard, me);
        assert!(loaded.is_none());
        assert_eq!(f[0].status, Status::Problem);
        assert!(f[0].message.contains("b.yaml:4:"), "{f:?}");
    }
}

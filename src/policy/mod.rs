//! Policy: who may do what, decided only over kernel-verified identity.
//!
//! - [`document`]: the upstream JSON file format, parsed strictly (unknown fields are errors).
//! - [`selector`]: `identities` selectors (`*`, `uid:N`, `uid:N-M`, `user:`, `group:`, `unit:`,
//!   `exe:`) and glob patterns for resources and actions.
//! - [`rules`]: compiling documents into validated rules; conditions.
//! - [`load`]: reading a policy directory, all or nothing.
//! - [`credentials`]: the `credentials` list, mapping a unit's systemd credential to a secret.
//! - [`mode`]: what a mode puts in force from a directory (shared by the agent and the CLI).
//! - [`eval`]: the decision: a matching deny wins; otherwise every requested action needs an
//!   allow; no rule means deny.
//!
//! All of this is plain functions over plain data; the `PolicyWatcher` actor only calls them.

pub mod credentials;
pub mod document;
pub mod eval;
pub mod glob;
pub mod index;
pub mod load;
pub mod mode;
pub mod rules;
pub mod selector;
pub mod tester;

#[cfg(test)]
mod proptests;

use std::path::PathBuf;

pub use eval::{Decision, EvalInput, evaluate};
pub use index::RuleIndex;
pub use load::{FileSummary, LoadError, LoadOptions, LoadedPolicies, load_dir, load_file};
pub use rules::Rule;

/// What applies when the set has no rule at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fallback {
    /// Deny everything (standard and hardened modes, and any mode with rules).
    DenyAll,
    /// Development mode with no policy: allow the agent's own uid, deny everyone else.
    OwnerOnly {
        /// The agent's uid.
        uid: u32,
    },
}

impl Fallback {
    /// The fallback in words, for status and logs.
    pub fn describe(&self) -> String {
        match self {
            Fallback::DenyAll => "no rule allows: deny".to_string(),
            Fallback::OwnerOnly { uid } => format!(
                "development mode without policies: requests from the agent's own uid {uid} are allowed, all others denied"
            ),
        }
    }
}

/// An immutable, fully validated set of rules, as handed to whoever evaluates.
#[derive(Debug, Clone)]
pub struct PolicySet {
    /// Increments with every successful load; 0 before the first.
    pub generation: u64,
    /// When this set was loaded.
    pub loaded_at: jiff::Timestamp,
    /// The files it came from, in load order.
    pub files: Vec<PathBuf>,
    /// The ids of its active policies.
    pub policies: Vec<String>,
    /// Directory entries that were not loaded, and why.
    pub ignored: Vec<(PathBuf, String)>,
    /// What each file contributed.
    pub summaries: Vec<FileSummary>,
    /// Its credential mappings, by `(unit, id)`.
    pub credentials: credentials::CredentialMap,
    /// Its rules, in file order (private: only [`PolicySet::from_loaded`] pairs them with their
    /// index).
    rules: Vec<Rule>,
    /// `rules` indexed by resource prefix.
    pub(crate) index: RuleIndex,
    /// What applies when `rules` is empty.
    pub fallback: Fallback,
}

impl PolicySet {
    /// Its rules, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The mapping of credential `id` of `unit`, if one is in force.
    pub fn credential(&self, unit: &str, id: &str) -> Option<&credentials::CredentialMapping> {
        self.credentials.get(&(unit.to_string(), id.to_string()))
    }

    /// A set with no rules.
    pub fn empty(generation: u64, fallback: Fallback) -> PolicySet {
        PolicySet::from_loaded(generation, LoadedPolicies::default(), fallback)
    }

    /// A set from a loaded directory; the fallback applies only if it has no rules.
    pub fn from_loaded(generation: u64, loaded: LoadedPolicies, fallback: Fallback) -> PolicySet {
        let fallback = if loaded.rules.is_empty() {
            fallback
        } else {
            Fallback::DenyAll
        };
        PolicySet {
            generation,
            loaded_at: jiff::Timestamp::now(),
            files: loaded.files,
            policies: loaded.policies,
            ignored: loaded.ignored,
            summaries: loaded.summaries,
            credentials: loaded.credentials,
            index: RuleIndex::build(&loaded.rules),
            rules: loaded.rules,
            fallback,
        }
    }
}

//! An index of rules by the literal prefix of their resource patterns, so a decision over
//! thousands of rules looks only at the rules whose resources could match.
//!
//! Each resource pattern's literal prefix (everything before its first `*` or `?`) is a key;
//! a resource's candidates are the rules filed under any of its prefixes. A pattern starting
//! with a wildcard has the empty prefix and is a candidate for every resource. Candidates are
//! then matched in full, so the index can only narrow the search, never change a decision.
//!
//! A request for a pattern (`secret:/db/*`) may also meet rules whose prefix is longer than its
//! own literal prefix (`secret:/db/primary`): [`RuleIndex::candidates_for_pattern`] adds those,
//! from the prefixes kept in order.

use std::collections::{BTreeSet, HashMap};

use super::rules::Rule;

/// Rule positions by resource-pattern prefix.
#[derive(Debug, Clone, Default)]
pub struct RuleIndex {
    by_prefix: HashMap<String, Vec<usize>>,
    /// Distinct prefix lengths (bytes), to probe only lengths that exist.
    lengths: BTreeSet<usize>,
    /// The prefixes in order, for the rules a pattern's prefix begins.
    sorted: Vec<String>,
}

fn literal_prefix(pattern: &str) -> &str {
    let end = pattern.find(['*', '?']).unwrap_or(pattern.len());
    &pattern[..end]
}

impl RuleIndex {
    /// Indexes `rules` by position.
    pub fn build(rules: &[Rule]) -> RuleIndex {
        let mut idx = RuleIndex::default();
        for (i, rule) in rules.iter().enumerate() {
            for p in &rule.resources {
                let prefix = literal_prefix(p.as_str()).to_string();
                idx.lengths.insert(prefix.len());
                let slot = idx.by_prefix.entry(prefix).or_default();
                if slot.last() != Some(&i) {
                    slot.push(i);
                }
            }
        }
        idx.sorted = idx.by_prefix.keys().cloned().collect();
        idx.sorted.sort_unstable();
        idx
    }

    /// Positions of the rules that may meet some resource the pattern `pattern` covers: those
    /// whose prefix begins its literal prefix, and those whose prefix that literal prefix
    /// begins; in rule order, without duplicates.
    pub fn candidates_for_pattern(&self, pattern: &str) -> Vec<usize> {
        let lit = literal_prefix(pattern);
        let mut out = self.candidates(lit);
        let from = self.sorted.partition_point(|p| p.as_str() < lit);
        for p in self.sorted[from..]
            .iter()
            .take_while(|p| p.starts_with(lit))
        {
            out.extend_from_slice(&self.by_prefix[p]);
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Positions of the rules that may match `resource`, in rule order, without duplicates.
    pub fn candidates(&self, resource: &str) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        for &len in self.lengths.range(..=resource.len()) {
            let Some(prefix) = resource.get(..len) else {
                continue;
            };
            if let Some(rules) = self.by_prefix.get(prefix) {
                out.extend_from_slice(rules);
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::load::{compile, parse_document};
    use std::path::{Path, PathBuf};

    fn rules(resources: &[&[&str]]) -> Vec<Rule> {
        let rules: Vec<serde_json::Value> = resources
            .iter()
            .enumerate()
            .map(|(i, r)| serde_json::json!({"id":format!("r{i}"),"effect":"allow","resources":r,"actions":["*"],"identities":["*"]}))
            .collect();
        let doc = serde_json::json!({"id":"p","rules":rules}).to_string();
        compile(vec![(
            PathBuf::from("p.json"),
            parse_document(Path::new("p"), &doc).unwrap(),
        )])
        .unwrap()
        .rules
    }

    #[test]
    fn candidates_are_the_rules_whose_prefix_fits() {
        let r = rules(&[
            &["secret:/db/*"],
            &["secret:/db/primary"],
            &["*"],
            &["config:*", "secret:/d?/x"],
            &["secret:/web/*"],
        ]);
        let idx = RuleIndex::build(&r);
        assert_eq!(idx.candidates("secret:/db/primary"), vec![0, 1, 2, 3]);
        assert_eq!(idx.candidates("secret:/web/a"), vec![2, 4]);
        assert_eq!(idx.candidates("config:x"), vec![2, 3]);
        assert_eq!(idx.candidates(""), vec![2]);
        // Non-ASCII resources do not panic on char boundaries.
        assert_eq!(idx.candidates("sé"), vec![2]);
    }

    #[test]
    fn pattern_candidates_include_longer_prefixes() {
        let r = rules(&[
            &["secret:/db/*"],
            &["secret:/db/primary"],
            &["*"],
            &["config:*"],
            &["secret:/web/*"],
            &["secret:/"],
        ]);
        let idx = RuleIndex::build(&r);
        assert_eq!(idx.candidates_for_pattern("secret:/d*"), vec![0, 1, 2, 5]);
        assert_eq!(idx.candidates_for_pattern("secret:/*"), vec![0, 1, 2, 4, 5]);
        assert_eq!(idx.candidates_for_pattern("*"), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(idx.candidates_for_pattern("config:/x?"), vec![2, 3]);
    }

    #[test]
    fn a_candidate_superset_of_every_match() {
        let r = rules(&[
            &["x:/a*"],
            &["x:/ab*"],
            &["x:/abc"],
            &["x:/?bc"],
            &["x:/b*"],
            &["*c"],
        ]);
        let idx = RuleIndex::build(&r);
        for res in ["x:/abc", "x:/abd", "x:/bbc", "x:/b", "x:/", "", "x:/zzc"] {
            let cands = idx.candidates(res);
            for (i, rule) in r.iter().enumerate() {
                if rule.resources.iter().any(|p| p.matches(res)) {
                    assert!(
                        cands.contains(&i),
                        "{res}: rule {i} matches but is not a candidate"
                    );
                }
            }
        }
    }
}

//! Replays the fuzz corpora (`fuzz/corpus/<target>/`) and the kept crash and regression inputs
//! (`fuzz/regressions/<target>/`) through the very checks the fuzz targets run
//! (`fuzz/src/lib.rs`, included below), so that CI guards the decoder's and the policy
//! parser's invariants without running a fuzzer. See docs/fuzzing.md.

#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::panic::catch_unwind;
use std::path::{Path, PathBuf};

use aether_vault_agent::protocol::RequestType;
use checks::{Chunking, End, Outcome};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The regular files of `dir`, sorted; none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.expect("a readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// Runs `check` on every corpus and regression file of `target`; fails naming every file that
/// breaks an invariant, and fails if the corpus is missing or empty.
fn replay(target: &str, check: fn(&[u8])) {
    let corpus = files(&fuzz_dir().join("corpus").join(target));
    assert!(
        corpus.len() >= 10,
        "fuzz/corpus/{target}/ is missing or (nearly) empty ({} files): nothing would be tested",
        corpus.len()
    );
    let regressions = files(&fuzz_dir().join("regressions").join(target));
    let mut failed = Vec::new();
    for path in corpus.iter().chain(&regressions) {
        let data = std::fs::read(path).expect("a readable corpus file");
        if catch_unwind(|| check(&data)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} inputs break an invariant (messages above):\n{}",
        failed.len(),
        corpus.len() + regressions.len(),
        failed.join("\n")
    );
}

#[test]
fn request_stream_corpus_and_regressions_keep_the_invariants() {
    replay("request_stream", checks::check_request_stream);
}

#[test]
fn policy_corpus_and_regressions_keep_the_invariants() {
    replay("policy_parse", checks::check_policy);
}

#[test]
fn glob_corpus_and_regressions_keep_the_invariants() {
    replay("glob_containment", checks::check_glob);
}

/// The replay is only as good as the checks: they must see what the session sees.
#[test]
fn the_checks_decode_and_classify_as_the_session_does() {
    let stream = b"{\"type\":\"ping_request\"}\n  {\"type\":\"nope\",\"id\":\"7\"}{\"id\":1}";
    for chunking in [Chunking::Whole, Chunking::Bytewise, Chunking::Random(5)] {
        let d = checks::decode(stream, checks::SESSION, chunking);
        assert_eq!(d.frames.len(), 3, "{chunking:?}");
        assert_eq!(d.end, End::Clean);
    }
    let d = checks::decode(stream, checks::SESSION, Chunking::Whole);
    let outcomes: Vec<Outcome> = d
        .frames
        .iter()
        .map(|f| checks::session_outcome(f))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            Outcome::Accepted(RequestType::PingRequest),
            Outcome::UnknownType,
            Outcome::InvalidRequest
        ]
    );
    assert_eq!(
        checks::session_outcome(br#"{"type":"capability_validate","payload":{}}"#),
        Outcome::InvalidPayload(RequestType::CapabilityValidate)
    );
    assert_eq!(checks::session_outcome(b"{\"type\":}"), Outcome::Malformed);

    let deep = format!("{{\"a\":{}", "[".repeat(80));
    let d = checks::decode(deep.as_bytes(), checks::SESSION, Chunking::Bytewise);
    assert!(d.frames.is_empty());
    assert_eq!(d.end, End::TooDeep);
    let big = format!("{{\"a\":\"{}\"}}", "x".repeat(2000));
    assert_eq!(
        checks::decode(big.as_bytes(), checks::SMALLEST, Chunking::Whole).end,
        End::TooLarge
    );
    assert!(matches!(
        checks::decode(b"{\"a\":", checks::TIGHT, Chunking::Whole).end,
        End::Malformed(_)
    ));
    assert_eq!(checks::value_depth(&serde_json::json!({})), 1);
    assert_eq!(
        checks::value_depth(&serde_json::json!({"a": [{"b": []}]})),
        4
    );
}

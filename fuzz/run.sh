#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 300), one after the other, on a stable
# toolchain (RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its -Z flags), and prints per target the
# executions, executions per second, corpus size and findings. See docs/fuzzing.md.
#
#   fuzz/run.sh [SECONDS] [TARGET...]       # e.g. fuzz/run.sh 600 request_stream
#
# The checked-in corpus (fuzz/corpus/<target>/) is copied to fuzz/work/<target>/ and grown
# there; fuzz/corpus is never written (libFuzzer adds its finds to the first corpus directory it
# is given). To refresh fuzz/corpus from fuzz/work, see "Corpus and regressions" in
# docs/fuzzing.md (merge, then fuzz/pick.py, then fuzz/seed.py). Crashes land in
# fuzz/artifacts/<target>/. Exit status: 0 no finding, 1 a finding, 2 a tool error.
set -uo pipefail
cd "$(dirname "$0")"

secs=${1:-300}
shift || true
targets=("$@")
((${#targets[@]})) || targets=(request_stream policy_parse glob_containment)
export RUSTC_BOOTSTRAP=1
# cargo-fuzz's default build: optimized, with debug assertions and overflow checks (so an
# integer overflow is a finding) and AddressSanitizer. (-O would drop the checks.)

command -v cargo-fuzz >/dev/null || {
  echo "cargo-fuzz is not installed: cargo install cargo-fuzz --locked" >&2
  exit 2
}
mkdir -p work
cargo fuzz build >work/build.log 2>&1 || {
  cat work/build.log >&2
  exit 2
}

status=0
summary=()
for t in "${targets[@]}"; do
  mkdir -p "work/$t" "artifacts/$t"
  cp -n "corpus/$t"/* "work/$t"/ 2>/dev/null || true
  before=$(find "artifacts/$t" -type f | wc -l)
  log="work/$t.log"
  echo "== $t: ${secs}s (log $log)"
  # -timeout: an input that takes 10 s is a finding (a hang); -rss_limit_mb: so is 2 GiB.
  cargo fuzz run "$t" "work/$t" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -max_len=8192 >"$log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  files=$(find "work/$t" -type f | wc -l)
  after=$(find "artifacts/$t" -type f | wc -l)
  found=$((after - before))
  line="$t: ${secs}s, ${execs:-?} executions (${rate:-?}/s), coverage ${cov:-?} edges, corpus $files files, $found new findings"
  if ((rc != 0 || found > 0)); then
    status=1
    line+=" (exit $rc; see $log and artifacts/$t/)"
  fi
  echo "$line"
  summary+=("$line")
done
echo "== summary"
printf '%s\n' "${summary[@]}"
exit "$status"

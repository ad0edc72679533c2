#!/usr/bin/env bash
# Cold start and peak RSS of the RELEASE tool executors (tool-code-interpreter, tool-http-fetch,
# tool-web-search) against a local Lambda Runtime API (bench/executor_coldstart.py): per
# executor, a `{"list": true}` first invocation, a real call first, and warm calls in one
# process. The page http_fetch reads and the search API web_search asks are served by the
# script itself on 127.0.0.1; no AWS service, no DynamoDB, no API key.
#
#   bench/executor-cold-start.sh                         # 20 runs per case
#   RUNS=5 bench/executor-cold-start.sh                  # quicker
#   EXECUTORS=tool-http-fetch EXECUTOR_CASES=call bench/executor-cold-start.sh
#   SKIP_BUILD=1 bench/executor-cold-start.sh            # use the binaries in target/release
#
# Results: stdout and target/bench/executor-coldstart.json.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BENCH_OUT=${BENCH_OUT:-$ROOT/target/bench}
mkdir -p "$BENCH_OUT"

RUNS=${RUNS:-20}
EXECUTORS=${EXECUTORS:-tool-code-interpreter tool-http-fetch tool-web-search}
EXECUTOR_CASES=${EXECUTOR_CASES:-list call warm}

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  cargo build --release -p tool-http-fetch -p tool-web-search -p tool-code-interpreter
fi

args=()
for executor in $EXECUTORS; do args+=(--executor "$executor"); done
for case_name in $EXECUTOR_CASES; do args+=(--case "$case_name"); done

python3 "$ROOT/bench/executor_coldstart.py" --bin-dir "$ROOT/target/release" --runs "$RUNS" \
  "${args[@]}" --json "$BENCH_OUT/executor-coldstart.json"

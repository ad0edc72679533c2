#!/usr/bin/env bash
# Runs every benchmark and prints a summary against the targets:
#   1. builds the release session handler, the three tool executors and the Bedrock stand-in;
#   2. starts DynamoDB Local (bench/lib.sh) and runs bench/cold-start.sh (cold start, peak RSS,
#      deployment size);
#   3. runs bench/executor-cold-start.sh (the executors' cold starts and peak RSS; no services);
#   4. runs `cargo bench -p shared --bench turn_overhead --bench tool_invoke` with
#      AWS_ENDPOINT_URL_DYNAMODB set, so the DynamoDB Local variants run too, and
#      `cargo bench -p session-handler --bench stream_overhead` (a model's stream event to the
#      bytes of its server-sent event);
#   5. prints bench/summary.py's table (also in target/bench/summary.md).
#
#   bench/run.sh                  # everything, about 5 minutes after the builds
#   RUNS=5 TURNS=5 bench/run.sh   # fewer cold-start runs
#   NO_DYNAMODB=1 bench/run.sh    # no DynamoDB Local: the /tools cold start and the in-memory benches only
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
export BENCH_OUT

cargo build --release -p session-handler -p bedrock-standin \
  -p tool-http-fetch -p tool-web-search -p tool-code-interpreter

trap bench_cleanup EXIT
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-bench}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-bench}
export AWS_REGION=us-east-1
if [[ "${NO_DYNAMODB:-0}" == 1 ]]; then
  unset AWS_ENDPOINT_URL_DYNAMODB
  export CASES=tools
else
  bench_ddb_start
fi

SKIP_BUILD=1 "$ROOT/bench/cold-start.sh"
SKIP_BUILD=1 "$ROOT/bench/executor-cold-start.sh"

rm -rf "$BENCH_OUT/criterion"
CRITERION_HOME="$BENCH_OUT/criterion" cargo bench -p shared --bench turn_overhead --bench tool_invoke \
  | tee "$BENCH_OUT/criterion.log"
CRITERION_HOME="$BENCH_OUT/criterion" cargo bench -p session-handler --bench stream_overhead \
  | tee -a "$BENCH_OUT/criterion.log"

bench_cleanup
python3 "$ROOT/bench/summary.py" "$BENCH_OUT" | tee "$BENCH_OUT/summary.md"

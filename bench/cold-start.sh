#!/usr/bin/env bash
# Cold start and peak RSS of the RELEASE session handler against a local Lambda Runtime API
# (bench/coldstart.py), plus the size of what would be deployed (bench/size.sh).
#
#   bench/cold-start.sh                 # 20 runs per case, 20 turns for the RSS case
#   RUNS=5 TURNS=5 bench/cold-start.sh  # quicker
#   CASES="tools" bench/cold-start.sh   # only the no-I/O case: needs neither DynamoDB nor Docker
#   SKIP_BUILD=1 bench/cold-start.sh    # use the binaries already in target/release
#
# The turn cases use DynamoDB Local (AWS_ENDPOINT_URL_DYNAMODB if set, else started here; see
# bench/lib.sh) and the release Bedrock stand-in, both on loopback. Results: stdout and
# target/bench/coldstart.json.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

RUNS=${RUNS:-20}
TURNS=${TURNS:-20}
CASES=${CASES:-tools turn session-turn rss-turns}

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  cargo build --release -p session-handler -p bedrock-standin
fi

trap bench_cleanup EXIT

case_args=()
needs_services=0
for case_name in $CASES; do
  case_args+=(--case "$case_name")
  [[ "$case_name" == tools ]] || needs_services=1
done

table_args=()
if [[ "$needs_services" == 1 ]]; then
  export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-bench}
  export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-bench}
  export AWS_REGION=us-east-1
  bench_ddb_start
  bench_standin_start
  bench_table_create coldstart
  table_args=(--table "$BENCH_TABLE")
fi

python3 "$ROOT/bench/coldstart.py" --binary "$ROOT/target/release/session-handler" \
  --runs "$RUNS" --turns "$TURNS" "${table_args[@]+"${table_args[@]}"}" "${case_args[@]}" \
  --json "$BENCH_OUT/coldstart.json"

"$ROOT/bench/size.sh"

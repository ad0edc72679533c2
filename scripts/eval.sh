#!/usr/bin/env bash
# `make eval`: the eval scenarios (evals/scenarios.json) scored by evals/run.py (docs/evals.md).
#
# Against, in this order:
#   1. EVAL_API_URL set      an already-running stack (`make dev`'s API, or a deployed one with
#                            EVAL_TOKEN a JWT); nothing is started
#   2. EVAL_BEDROCK=1        a local stack of its own whose model is real Amazon Bedrock: your
#                            AWS credentials (AWS_PROFILE or AWS_ACCESS_KEY_ID...) and MODEL_ID
#                            (default the project's), or AWS_ENDPOINT_URL_BEDROCK_RUNTIME
#   3. otherwise             a local stack of its own with the Bedrock stand-in (no credentials)
# A local stack is DynamoDB Local, the stand-ins and cargo lambda watch, as make test starts
# them (scripts/lib.sh), in .dev/eval-<pid>/, stopped on exit by recorded PID.
#
# Writes target/eval/report.md, results.json and cost_latency.png. Exits non-zero when the
# overall score is under EVAL_MIN_SCORE (default 0.8) or a scenario broke its cost or latency
# ceiling. Knobs: EVAL_SCENARIOS (file), EVAL_ONLY (ids, comma-separated), EVAL_MIN_SCORE,
# EVAL_OUT (folder), EVAL_KEEP_SESSIONS=1, DEV_CONCURRENCY (default 1 here: one scenario at a
# time needs no more), MODEL_ID.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

run_eval() {
    "$VENV/bin/python3" "$REPO_ROOT/evals/run.py" "$@"
}

if [[ -n "${EVAL_API_URL:-}" ]]; then
    "$REPO_ROOT/scripts/install-tools.sh"
    log "eval: against $EVAL_API_URL (EVAL_API_URL; nothing started)"
    run_eval --api-url "$EVAL_API_URL"
    exit
fi

DEV_CONCURRENCY="${DEV_CONCURRENCY:-1}"
DEV_CONCURRENCY="$(dev_concurrency)" || exit 1
bedrock=standin
if [[ "${EVAL_BEDROCK:-0}" == 1 ]]; then
    if [[ -z "${AWS_ENDPOINT_URL_BEDROCK_RUNTIME:-}${AWS_PROFILE:-}${AWS_ACCESS_KEY_ID:-}" ]]; then
        die "eval: EVAL_BEDROCK=1 needs AWS credentials (AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) with access to MODEL_ID in AWS_REGION, or AWS_ENDPOINT_URL_BEDROCK_RUNTIME"
    fi
    bedrock=inherit
fi

export DEV_DIR="$REPO_ROOT/.dev/eval-$$"
PID_DIR="$DEV_DIR/pids"
LOG_DIR="$DEV_DIR/logs"
ENV_FILE="$DEV_DIR/env"
TABLE_NAME="agent-eval-$(date +%Y%m%d%H%M%S)-$$"
export TABLE_NAME
ok=0

# shellcheck disable=SC2329 # run by the EXIT trap
cleanup() {
    local rc=$?
    trap - EXIT
    trap '' INT TERM
    [[ -d "$PID_DIR" ]] && "$REPO_ROOT/scripts/services.sh" stop >/dev/null 2>&1 || true
    if [[ "$ok" == 1 && "${KEEP_EVAL_STATE:-0}" != 1 ]]; then
        rm -rf "$DEV_DIR"
    elif [[ -d "$DEV_DIR" ]]; then
        log "eval: logs kept in ${DEV_DIR#"$REPO_ROOT"/}/logs/"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$REPO_ROOT/scripts/install-tools.sh"
start_local_services "$bedrock"
"$VENV/bin/python3" "$REPO_ROOT/scripts/create-table.py" --table "$TABLE_NAME"
log "eval: Bedrock: $BEDROCK_MODE${AWS_ENDPOINT_URL_BEDROCK_RUNTIME:+ at $AWS_ENDPOINT_URL_BEDROCK_RUNTIME}; model ${MODEL_ID:-$DEFAULT_MODEL_ID}"
log "eval: starting cargo lambda watch (the first run compiles the functions: minutes)"
start_local_watch >&2
rc=0
run_eval --api-url "$E2E_API_URL" || rc=$?
[[ "$rc" == 0 ]] && ok=1
exit "$rc"

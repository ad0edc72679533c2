#!/usr/bin/env bash
# `make test` (and CI through .ci/run): every check, against a local stack of its own.
#
#   tools     scripts/install-tools.sh
#   fmt       cargo fmt --all -- --check
#   services  DynamoDB Local, the Bedrock and search stand-ins and moto (Secrets Manager), in
#             .dev/test-<pid>/ (never a `make dev` stack)
#   table     a uniquely named table
#   secret    the web search API key in moto: a random value the search stand-in alone accepts
#   build     cargo build --workspace, cargo test --workspace --all-targets --no-run
#   watch     cargo lambda watch on 127.0.0.1 (background), serving the handler and the three
#             tool executors (the handler invokes them through its Invoke API; web search reads
#             its key from moto and asks the search stand-in), each function with
#             DEV_CONCURRENCY concurrent instances (default 4; tests/tests/concurrency.rs checks
#             that overlapping requests are served at once), warmed up with GET /tools
#   test      cargo test --workspace --all-targets, with E2E_API_URL, E2E_STREAM_URL (the
#             streaming function), TABLE_NAME,
#             AWS_ENDPOINT_URL_DYNAMODB / DYNAMODB_ENDPOINT,
#             AWS_ENDPOINT_URL_BEDROCK_RUNTIME / BEDROCK_ENDPOINT, AWS_ENDPOINT_URL_SECRETS_MANAGER,
#             SEARCH_STANDIN_URL, E2E_WATCH_LOG and E2E_SEARCH_API_KEY (the key's value, given to
#             the tests only, so they can search everything written for it)
#   browser   the web console in headless Chromium (Selenium; scripts/browser-test.sh): a
#             streamed calculator turn and its trace; screenshot in target/console.png
#   eval      the scoring's unit tests (evals/test_scoring.py) and the eval scenarios
#             (evals/scenarios.json) run by evals/run.py against this stack's E2E_API_URL:
#             report in target/eval/report.md (docs/evals.md)
#   clippy    cargo clippy --workspace --all-targets -- -D warnings
#   validate  sam validate --lint (template.yaml)           scripts/validate.sh
#   arm64     cargo lambda build --arm64 (zip) of every function (scripts/build-arm64.sh), with
#             the arm64-check profile: the release profile without its slow whole-program
#             optimization, so the step checks the cross-build in minutes (ARM64_PROFILE=release
#             for the deployed artifacts and their sizes)
#
# Everything started here is stopped on exit (trap), by recorded PID. Exits non-zero if any
# step failed; the steps after a failed one still run where they can.
#
# Knobs: TEST_BEDROCK=inherit keeps your Bedrock settings (by default the stand-in is used even
# when AWS credentials are set: the end-to-end test reads the stand-in's counters);
# DEV_CONCURRENCY (default 4, at least 1) sets the instances of each function, as for make dev;
# KEEP_TEST_STATE=1 keeps .dev/test-<pid>/ (logs) after a successful run;
# TEST_SELECT="-p integration-tests --test e2e" narrows the build and cargo test (default
# "--workspace --all-targets"); SKIP_STEPS="fmt clippy validate arm64" leaves steps out (for a
# quick local loop; the summary names what was left out).
set -uo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT" || exit 1
# Checked before anything starts.
DEV_CONCURRENCY="$(dev_concurrency)" || exit 1

export DEV_DIR="$REPO_ROOT/.dev/test-$$"
PID_DIR="$DEV_DIR/pids"
LOG_DIR="$DEV_DIR/logs"
ENV_FILE="$DEV_DIR/env"
TABLE_NAME="agent-test-$(date +%Y%m%d%H%M%S)-$$-$RANDOM"
export TABLE_NAME
# The web search key of this run: in moto and the search stand-in, never in a function's
# environment (not exported).
SEARCH_SECRET_ID="agent-test/web-search-api-key-$$"
SEARCH_API_KEY="tvly-test-$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
export SAM_CLI_TELEMETRY=0 DDB_LOCAL_TELEMETRY=0
read -r -a TEST_SELECT_ARGS <<<"${TEST_SELECT:---workspace --all-targets}"
if [[ -t 1 ]]; then FMT_COLOR=auto; else FMT_COLOR=never; fi

declare -a STEP_NAMES=() STEP_RESULTS=() STEP_TIMES=() SKIPPED_ON_REQUEST=()
FAILED=0
ARTIFACT_REPORT=""

# shellcheck disable=SC2329 # run by the EXIT trap
cleanup() {
    local rc=$?
    # A second signal must not cut the clean-up short: `make` passes its own SIGTERM on to
    # this script after the process group's, which would otherwise leave everything running.
    trap - EXIT
    trap '' INT TERM
    stop_stack
    if [[ "$FAILED" == 0 && "$rc" == 0 && "${KEEP_TEST_STATE:-0}" != 1 ]]; then
        rm -rf "$DEV_DIR"
    elif [[ -d "$DEV_DIR" ]]; then
        log "test: logs kept in ${DEV_DIR#"$REPO_ROOT"/}/logs/"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

stop_stack() {
    [[ -d "$PID_DIR" ]] && DEV_DIR="$DEV_DIR" "$REPO_ROOT/scripts/services.sh" stop >/dev/null 2>&1 || true
}

# step NAME CMD...: run CMD, time it, record the result.
step() {
    local name="$1" start rc
    shift
    if [[ " ${SKIP_STEPS:-} " == *" $name "* ]]; then
        skip "$name" "SKIP_STEPS" nofail
        return 0
    fi
    printf '\n==> %s: %s\n' "$name" "$*"
    start=$SECONDS
    "$@"
    rc=$?
    STEP_NAMES+=("$name")
    STEP_TIMES+=("$((SECONDS - start))s")
    if [[ "$rc" == 0 ]]; then
        STEP_RESULTS+=("ok")
    else
        STEP_RESULTS+=("FAILED (exit $rc)")
        FAILED=1
        printf '==> %s FAILED (exit %s)\n' "$name" "$rc"
    fi
    return "$rc"
}

skip() { # skip NAME WHY [nofail]
    STEP_NAMES+=("$1")
    STEP_RESULTS+=("skipped: $2")
    STEP_TIMES+=("-")
    if [[ "${3:-}" == nofail ]]; then
        SKIPPED_ON_REQUEST+=("$1")
    else
        FAILED=1
    fi
    printf '\n==> %s skipped: %s\n' "$1" "$2"
}

summary() {
    local i
    echo
    echo "==> make test summary"
    for i in "${!STEP_NAMES[@]}"; do
        printf '    %-9s %-7s %s\n' "${STEP_NAMES[$i]}" "${STEP_TIMES[$i]}" "${STEP_RESULTS[$i]}"
    done
    [[ -n "$ARTIFACT_REPORT" ]] && printf '%s\n' "$ARTIFACT_REPORT"
    if [[ "$FAILED" == 0 && ${#SKIPPED_ON_REQUEST[@]} -gt 0 ]]; then
        echo "make test: the checks run passed (left out by SKIP_STEPS: ${SKIPPED_ON_REQUEST[*]})"
    elif [[ "$FAILED" == 0 ]]; then
        echo "make test: all checks passed"
    else
        echo "make test: some checks FAILED"
    fi
}

start_services() {
    start_local_services "${TEST_BEDROCK:-}" SERVICES_MOTO=1 SEARCH_STANDIN_API_KEY="$SEARCH_API_KEY"
}

put_search_secret() {
    printf %s "$SEARCH_API_KEY" | "$VENV/bin/python3" "$REPO_ROOT/scripts/put-secret.py" --name "$SEARCH_SECRET_ID"
}

# run_tests ARGS...: cargo test with the web search key given to the tests only (not on the
# command line step() prints, not to the functions).
run_tests() {
    E2E_SEARCH_API_KEY="$SEARCH_API_KEY" cargo test "$@"
}

build_all() {
    cargo build --workspace && cargo test "${TEST_SELECT_ARGS[@]}" --no-run
}

# What `make dev` serves, with web search keyed from moto and cached in the test table
# (scripts/lib.sh start_local_watch).
start_watch() {
    WATCH_SEARCH_SECRET="$SEARCH_SECRET_ID" start_local_watch
}

stop_watch() {
    stop_local_watch
}

# The eval (docs/evals.md) against this stack: the scoring's unit tests, then the scenarios.
run_eval() {
    "$VENV/bin/python3" "$REPO_ROOT/evals/test_scoring.py" &&
        "$VENV/bin/python3" "$REPO_ROOT/evals/run.py" --api-url "$E2E_API_URL" \
            --scenarios "$REPO_ROOT/evals/scenarios.json" --out "$REPO_ROOT/target/eval"
}

build_arm64() {
    local rc line
    mkdir -p "$LOG_DIR"
    ARM64_PROFILE="${ARM64_PROFILE:-arm64-check}" "$REPO_ROOT/scripts/build-arm64.sh" 2>&1 | tee "$LOG_DIR/arm64.log"
    rc=${PIPESTATUS[0]}
    line="$(tail -n 1 "$LOG_DIR/arm64.log")"
    [[ "$rc" == 0 && "$line" == arm64:* ]] && ARTIFACT_REPORT="    $line"
    return "$rc"
}

# ---------------------------------------------------------------------------
step tools "$REPO_ROOT/scripts/install-tools.sh" || { summary; exit 1; }
step fmt cargo fmt --all -- --check --color "$FMT_COLOR"

stack_ok=1
step services start_services || stack_ok=0
if [[ "$stack_ok" == 1 ]]; then
    export TABLE_NAME
    step table "$VENV/bin/python3" "$REPO_ROOT/scripts/create-table.py" --table "$TABLE_NAME" || stack_ok=0
    step secret put_search_secret || stack_ok=0
else
    skip table "services did not start"
fi

build_ok=1
step build build_all || build_ok=0

if [[ "$stack_ok" == 1 && "$build_ok" == 1 ]]; then
    step watch start_watch
    echo "E2E_API_URL=${E2E_API_URL:-} TABLE_NAME=$TABLE_NAME AWS_ENDPOINT_URL_DYNAMODB=${AWS_ENDPOINT_URL_DYNAMODB:-} AWS_ENDPOINT_URL_BEDROCK_RUNTIME=${AWS_ENDPOINT_URL_BEDROCK_RUNTIME:-}"
    # The end-to-end tests fail by themselves (and say why) if the stack is incomplete.
    step test run_tests "${TEST_SELECT_ARGS[@]}" --no-fail-fast
    # On a failure, the functions' last log lines say what the page was waiting for.
    step browser "$REPO_ROOT/scripts/browser-test.sh" ||
        { echo "--- the last lines of ${E2E_WATCH_LOG:-the watch log}:"; tail -n 40 "${E2E_WATCH_LOG:-/dev/null}"; }
    step eval run_eval
    stop_watch
elif [[ "$build_ok" == 1 ]]; then
    skip watch "no local stack"
    step test cargo test "${TEST_SELECT_ARGS[@]}" --no-fail-fast
    skip browser "no local stack"
    skip eval "no local stack"
else
    skip watch "build failed"
    skip test "build failed"
    skip browser "build failed"
    skip eval "build failed"
fi
stop_stack

step clippy cargo clippy --workspace --all-targets -- -D warnings
step validate "$REPO_ROOT/scripts/validate.sh"
step arm64 build_arm64

summary
[[ "$FAILED" == 0 ]]

# shellcheck shell=bash disable=SC2034
# Shared helpers for the scripts in this folder. Source it; don't run it.
#
# Layout (all git-ignored):
#   .venv/                      python venv: cargo-lambda, ziglang, aws-sam-cli, moto, boto3, selenium
#   .local/dynamodb/            npm prefix holding amplify-dynamodb-simulator (DynamoDBLocal.jar)
#   .local/dynamodb-launcher/   LoopbackDynamoDbLocal.class (compiled from dev/dynamodb-local/)
#   .local/logs/                install logs
#   .dev/pids/*.pid             PIDs of services started by scripts/services.sh
#   .dev/logs/*.log             their logs
#   .dev/env                    export lines for the running services

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.venv"
LOCAL_DIR="$REPO_ROOT/.local"
DEV_DIR="${DEV_DIR:-$REPO_ROOT/.dev}"
PID_DIR="$DEV_DIR/pids"
LOG_DIR="$DEV_DIR/logs"
ENV_FILE="$DEV_DIR/env"

DDB_PREFIX="$LOCAL_DIR/dynamodb"
DDB_LAUNCHER_DIR="$LOCAL_DIR/dynamodb-launcher"
DDB_LAUNCHER_SRC="$REPO_ROOT/dev/dynamodb-local/LoopbackDynamoDbLocal.java"

# The binary name of the session handler (cargo package functions/session-handler).
FUNCTION_BINARY="session-handler"
# The streaming session handler (the same package's second binary), a Function URL deployed.
STREAM_BINARY="session-stream"
DEFAULT_MODEL_ID="us.anthropic.claude-haiku-4-5-20251001-v1:0"

# How many instances of each function `cargo lambda watch` runs at once (`make dev` and the
# tests' stack), unless DEV_CONCURRENCY says otherwise: Lambda serves overlapping requests with
# as many instances, so races, in-flight retries and load behave locally as they do there.
DEFAULT_DEV_CONCURRENCY=4

# The venv first on PATH: `cargo lambda` finds cargo-lambda there, and cargo-lambda
# (through cargo-zigbuild) finds Zig as `python3 -m ziglang`, python3 being the venv's.
export PATH="$VENV/bin:$PATH"

log() { printf '%s\n' "$*" >&2; }

# write_stack_file FILE API STREAM CONSOLE: where a local stack answers, for `lambda-agent`.
write_stack_file() {
    python3 -c 'import json, sys; print(json.dumps({"api": sys.argv[2], "stream": sys.argv[3], "console": sys.argv[4], "auth_mode": "insecure-local"}, indent=2))' \
        "$@" >"$1"
}
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# dev_concurrency: DEV_CONCURRENCY (default $DEFAULT_DEV_CONCURRENCY) checked, on stdout; fails
# (naming it) unless it is a whole number of at least 1.
dev_concurrency() {
    local value="${DEV_CONCURRENCY:-$DEFAULT_DEV_CONCURRENCY}"
    if [[ ! "$value" =~ ^[0-9]+$ ]] || ((10#$value < 1)); then
        log "error: DEV_CONCURRENCY must be a whole number of at least 1 (concurrent instances of each function), not '$value'"
        return 1
    fi
    echo "$((10#$value))"
}

# Directory holding DynamoDBLocal.jar inside the npm install (empty if absent).
ddb_emulator_dir() {
    local jar
    jar="$(find "$DDB_PREFIX/node_modules" -name DynamoDBLocal.jar -path '*amplify-dynamodb-simulator*' -print -quit 2>/dev/null || true)"
    [[ -n "$jar" ]] && dirname "$jar"
}

# is_port_free PORT: true if nothing listens on 127.0.0.1:PORT.
is_port_free() {
    python3 - "$1" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
PY
}

# free_port [PREFERRED]: PREFERRED if free, else a port the kernel hands out.
free_port() {
    local preferred="${1:-}"
    if [[ -n "$preferred" ]] && is_port_free "$preferred"; then
        echo "$preferred"
        return
    fi
    python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# wait_for_line FILE REGEX TIMEOUT_S PID: wait until FILE has a line matching REGEX;
# print the first match. Fails if PID dies or the time runs out.
wait_for_line() {
    local file="$1" regex="$2" timeout="$3" pid="$4" i line
    for ((i = 0; i < timeout * 10; i++)); do
        line="$(grep -m1 -E "$regex" "$file" 2>/dev/null || true)"
        if [[ -n "$line" ]]; then
            echo "$line"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            return 1
        fi
        sleep 0.1
    done
    return 1
}

# descendants PID: PIDs of every process below PID (children first seen, then theirs).
descendants() {
    local child
    for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        echo "$child"
        descendants "$child"
    done
}

# kill_pid_tree PID [NAME]: SIGTERM the process group led by PID (we start services
# with setsid, so PID is the group leader) or, failing that, PID alone; SIGKILL after 10 s.
# Processes below PID that left its group (cargo lambda watch starts the function in a
# session of its own) are noted first and stopped too, each by its PID.
kill_pid_tree() {
    local pid="$1" name="${2:-process}" i below p
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    kill -0 "$pid" 2>/dev/null || return 0
    below="$(descendants "$pid")"
    if [[ "$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')" == "$pid" ]]; then
        kill -TERM -- "-$pid" 2>/dev/null || true
    else
        kill -TERM "$pid" 2>/dev/null || true
    fi
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name (pid $pid) did not stop on SIGTERM; sending SIGKILL"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    for p in $below; do
        kill -TERM "$p" 2>/dev/null || true
    done
}

# ---- a local stack of its own (scripts/test.sh, scripts/eval.sh) ----
# Both use DEV_DIR, PID_DIR, LOG_DIR and ENV_FILE as set by the caller (a folder of their
# own, never a `make dev` stack's) and are stopped through scripts/services.sh stop, which
# stops everything recorded in PID_DIR, watch.pid included.

# start_local_services BEDROCK [VAR=VALUE...]: scripts/services.sh start with the VARs set,
# then the stack's env loaded (exported). BEDROCK `inherit` keeps the caller's Bedrock
# settings (an endpoint, or AWS credentials: real Bedrock); anything else takes them out of
# the services' environment, so the Bedrock stand-in answers.
start_local_services() {
    local bedrock="$1" keep=()
    shift
    [[ "$bedrock" == inherit ]] || keep=(-u AWS_ENDPOINT_URL_BEDROCK_RUNTIME -u AWS_PROFILE
        -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN)
    env "${keep[@]}" -u AWS_ENDPOINT_URL_SECRETS_MANAGER "$@" "$REPO_ROOT/scripts/services.sh" start || return 1
    # shellcheck disable=SC1090
    source "$ENV_FILE"
}

# start_local_watch: cargo lambda watch on a free port of 127.0.0.1 in the background (PID in
# $PID_DIR/watch.pid, log in $LOG_DIR/watch.log), serving what `make dev` serves, each function
# with DEV_CONCURRENCY instances, web search answered by the search stand-in (keyed from the
# Secrets Manager secret WATCH_SEARCH_SECRET when set); waits until GET /tools answers 200.
# Then starts the stream relay (start_local_relay), so stored turns reach the memory extractor.
# Exports E2E_API_URL, E2E_STREAM_URL, E2E_WATCH_LOG and E2E_EXTRACTION_MODEL_ID (the names the
# tests read).
start_local_watch() {
    local port i code pid search=()
    port="$(free_port)"
    mkdir -p "$PID_DIR" "$LOG_DIR"
    : >"$LOG_DIR/watch.log"
    export E2E_WATCH_LOG="$LOG_DIR/watch.log"
    export E2E_EXTRACTION_MODEL_ID="${EXTRACTION_MODEL_ID:-$LOCAL_EXTRACTION_MODEL_ID}"
    [[ -n "${WATCH_SEARCH_SECRET:-}" ]] && search=(SEARCH_API_KEY_SECRET="$WATCH_SEARCH_SECRET")
    # --ignore-changes: one build is served. Without it every instance (five functions
    # times DEV_CONCURRENCY) watches the whole tree, target/ included; the watches run out
    # (inotify's MaxFilesWatch in watch.log) and a reload mid-run restarts the instances
    # under in-flight requests, which then answer 500 (the likeliest cause of the one 500 the
    # browser step got, on style.css, in a CI run).
    # shellcheck disable=SC2016 # $$ and $0 are for the inner bash
    (exec env AUTH_MODE=insecure-local MODEL_ID="${MODEL_ID:-$DEFAULT_MODEL_ID}" RUST_LOG="${RUST_LOG:-info}" \
        EXTRACTION_MODEL_ID="${EXTRACTION_MODEL_ID:-$LOCAL_EXTRACTION_MODEL_ID}" \
        TOOL_FUNCTIONS="web_search=tool-web-search,http_fetch=tool-http-fetch,run_javascript=tool-code-interpreter" \
        TOOL_LIST_TIMEOUT_MS=600000 TOOL_LIST_RETRY_MS=5000 \
        AWS_ENDPOINT_URL_LAMBDA="http://127.0.0.1:$port" \
        STREAM_URL="http://127.0.0.1:$port/lambda-url/$STREAM_BINARY" \
        SEARCH_PROVIDER=tavily SEARCH_BASE_URL="$SEARCH_STANDIN_URL" "${search[@]}" \
        setsid bash -c 'echo $$ >"$0" && exec "$@"' "$PID_DIR/watch.pid" \
        cargo lambda watch --ignore-changes --invoke-address 127.0.0.1 --invoke-port "$port" --concurrency "$DEV_CONCURRENCY") \
        >>"$LOG_DIR/watch.log" 2>&1 </dev/null &
    for ((i = 0; i < 100; i++)); do [[ -s "$PID_DIR/watch.pid" ]] && break; sleep 0.05; done
    pid="$(cat "$PID_DIR/watch.pid" 2>/dev/null)" || { echo "no PID for cargo lambda watch"; return 1; }
    export E2E_API_URL="http://127.0.0.1:$port/lambda-url/$FUNCTION_BINARY"
    export E2E_STREAM_URL="http://127.0.0.1:$port/lambda-url/$STREAM_BINARY"
    echo "cargo lambda watch pid $pid ($DEV_CONCURRENCY concurrent instances of each function); E2E_API_URL=$E2E_API_URL E2E_STREAM_URL=$E2E_STREAM_URL"
    # Warm up: the first invocation compiles/starts the function. Any HTTP answer ends the
    # wait; only 200 passes. At most 15 minutes in all.
    local deadline=$((SECONDS + 900))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 40 "$LOG_DIR/watch.log"
            echo "cargo lambda watch exited"
            return 1
        fi
        code="$(curl -s -o /dev/null -w '%{http_code}' -m $((deadline - SECONDS + 1)) \
            -H 'x-user-id: make-test' "$E2E_API_URL/tools" 2>/dev/null || true)"
        if [[ "$code" =~ ^[1-5][0-9][0-9]$ ]]; then
            echo "GET /tools -> HTTP $code"
            [[ "$code" == 200 ]] && { start_local_relay "$port"; return; }
            tail -n 40 "$LOG_DIR/watch.log"
            return 1
        fi
        sleep 0.5
    done
    tail -n 40 "$LOG_DIR/watch.log"
    echo "the function did not answer in time"
    return 1
}

# The extraction role's model in local stacks: another id than MODEL_ID, so the tests can tell
# the memory extractor's calls from the turns' in the stand-in's counts (it answers both).
LOCAL_EXTRACTION_MODEL_ID="us.amazon.nova-micro-v1:0"

# start_local_relay PORT: dev/stream-relay (built by `cargo build --workspace`) reading the
# table's stream and invoking memory-extractor through the Invoke API on 127.0.0.1:PORT, as
# the event source mapping of template.yaml would (PID in $PID_DIR/relay.pid, log in
# $LOG_DIR/relay.log, given-up batches in $LOG_DIR/memory-dlq.jsonl); waits until it reads.
start_local_relay() {
    local port="$1" binary i
    binary="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug/stream-relay"
    [[ -x "$binary" ]] || { echo "no $binary (cargo build -p stream-relay)"; return 1; }
    mkdir -p "$PID_DIR" "$LOG_DIR"
    : >"$LOG_DIR/relay.log"
    # shellcheck disable=SC2016 # $$ and $0 are for the inner bash
    (exec env AWS_ENDPOINT_URL_LAMBDA="http://127.0.0.1:$port" RUST_LOG="stream_relay=info" \
        setsid bash -c 'echo $$ >"$0" && exec "$@"' "$PID_DIR/relay.pid" \
        "$binary" --table "$TABLE_NAME" --function memory-extractor \
        --filter "$REPO_ROOT/functions/memory-extractor/stream-filter.json" \
        --dlq "$LOG_DIR/memory-dlq.jsonl") >>"$LOG_DIR/relay.log" 2>&1 </dev/null &
    for ((i = 0; i < 200; i++)); do
        grep -q "relaying" "$LOG_DIR/relay.log" 2>/dev/null && { echo "stream relay pid $(cat "$PID_DIR/relay.pid") -> memory-extractor"; return 0; }
        if [[ -s "$PID_DIR/relay.pid" ]] && ! kill -0 "$(cat "$PID_DIR/relay.pid")" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    tail -n 20 "$LOG_DIR/relay.log"
    echo "the stream relay did not start"
    return 1
}

# stop_local_watch: stop what start_local_watch started (by its recorded PID).
stop_local_watch() {
    local pid
    pid="$(cat "$PID_DIR/watch.pid" 2>/dev/null)" || return 0
    kill_pid_tree "$pid" "cargo lambda watch"
    rm -f "$PID_DIR/watch.pid"
    pid="$(cat "$PID_DIR/relay.pid" 2>/dev/null)" || return 0
    kill_pid_tree "$pid" "stream relay"
    rm -f "$PID_DIR/relay.pid"
}

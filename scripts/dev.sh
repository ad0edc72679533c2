#!/usr/bin/env bash
# `make dev`: the whole local stack in one terminal.
#   1. install the tools (idempotent)         scripts/install-tools.sh
#   2. start DynamoDB Local, the Bedrock and search stand-ins   scripts/services.sh start
#   3. create the table                        scripts/create-table.py
#   4. cargo lambda watch on 127.0.0.1         serves the session handler and the tool executors,
#                                              rebuilding on change, each function with
#                                              DEV_CONCURRENCY concurrent instances (default 4)
#
# web_search answers from the local search stand-in (results say they are not live) unless you
# set SEARCH_API_KEY_SECRET to a Secrets Manager secret holding a real provider key (then
# SEARCH_PROVIDER, default tavily, is asked with your AWS credentials' access to that secret).
# Ctrl-C or SIGTERM stops everything this script started (by PID / process group).
#
# Knobs: WATCH_PORT (preferred, default 9000), TABLE_NAME, MODEL_ID, RUST_LOG, DEV_CONCURRENCY
# (instances of each function serving requests at once, as Lambda would; default 4, at least 1:
# with 1, two requests never overlap), and the Bedrock choice of scripts/services.sh
# (AWS_ENDPOINT_URL_BEDROCK_RUNTIME, or AWS credentials).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export DEV_DIR="${DEV_DIR:-$REPO_ROOT/.dev}"
PID_DIR="$DEV_DIR/pids"
LOG_DIR="$DEV_DIR/logs"
ENV_FILE="$DEV_DIR/env"

started_services=0
watch_pid=""
tail_pid=""

# shellcheck disable=SC2329 # run by the EXIT trap
cleanup() {
    local rc=$?
    # A second signal must not cut the clean-up short: `make` passes its own SIGTERM on to
    # this script after the process group's, which would otherwise leave everything running.
    trap - EXIT
    trap '' INT TERM
    [[ -n "$tail_pid" ]] && kill "$tail_pid" 2>/dev/null || true
    rm -f "$DEV_DIR/stack.json"
    if [[ -n "$watch_pid" ]]; then
        kill_pid_tree "$watch_pid" "cargo lambda watch"
        rm -f "$PID_DIR/watch.pid"
    fi
    if [[ -s "$PID_DIR/relay.pid" ]]; then
        kill_pid_tree "$(cat "$PID_DIR/relay.pid")" "stream relay"
        rm -f "$PID_DIR/relay.pid"
    fi
    if [[ "$started_services" == 1 ]]; then
        "$REPO_ROOT/scripts/services.sh" stop || true
        log "dev: stopped."
    else
        log "dev: stopped cargo lambda watch; services were already running before 'make dev' and are left up ('make services-down')"
    fi
    exit "$rc"
}
# Checked before anything starts.
concurrency="$(dev_concurrency)" || exit 1

trap cleanup EXIT
trap 'exit 0' INT  # Ctrl-C is how a dev session ends
trap 'exit 143' TERM

"$REPO_ROOT/scripts/install-tools.sh"

if [[ ! -f "$ENV_FILE" ]]; then
    started_services=1
fi
"$REPO_ROOT/scripts/services.sh" start
# shellcheck disable=SC1090
source "$ENV_FILE"

"$VENV/bin/python3" "$REPO_ROOT/scripts/create-table.py" --table "$TABLE_NAME"

if [[ -f "$PID_DIR/watch.pid" ]] && kill -0 "$(cat "$PID_DIR/watch.pid")" 2>/dev/null; then
    die "dev: cargo lambda watch is already running (pid $(cat "$PID_DIR/watch.pid")); stop that 'make dev' first"
fi

port="$(free_port "${WATCH_PORT:-9000}")"
export AUTH_MODE=insecure-local
export MODEL_ID="${MODEL_ID:-$DEFAULT_MODEL_ID}"
export EXTRACTION_MODEL_ID="${EXTRACTION_MODEL_ID:-$LOCAL_EXTRACTION_MODEL_ID}"
export RUST_LOG="${RUST_LOG:-info}"
# The tool executors are served by the same `cargo lambda watch`; the handler invokes them
# through its real Invoke API.
export TOOL_FUNCTIONS="${TOOL_FUNCTIONS:-web_search=tool-web-search,http_fetch=tool-http-fetch,run_javascript=tool-code-interpreter}"
# `cargo lambda watch` builds an executor on its first invocation, which takes far longer than
# a deployed cold start: give the tool listing time for that, and ask a failed executor again
# after seconds, not the deployed 30 s.
export TOOL_LIST_TIMEOUT_MS="${TOOL_LIST_TIMEOUT_MS:-600000}" TOOL_LIST_RETRY_MS="${TOOL_LIST_RETRY_MS:-5000}"
if [[ -z "${SEARCH_API_KEY_SECRET:-}" ]]; then
    export SEARCH_PROVIDER=tavily SEARCH_BASE_URL="$SEARCH_STANDIN_URL"
    SEARCH_MODE="the local stand-in at $SEARCH_STANDIN_URL (not live)"
else
    SEARCH_MODE="${SEARCH_PROVIDER:-tavily}, key from the secret $SEARCH_API_KEY_SECRET"
fi
export AWS_ENDPOINT_URL_LAMBDA="http://127.0.0.1:$port"
API="http://127.0.0.1:$port/lambda-url/$FUNCTION_BINARY"
STREAM="http://127.0.0.1:$port/lambda-url/$STREAM_BINARY"
CONSOLE="$API/console"
# The console and `lambda-agent` learn where turns stream from (GET /console/config.json).
export STREAM_URL="$STREAM"

mkdir -p "$PID_DIR" "$LOG_DIR"
: >"$LOG_DIR/watch.log"
# A session of its own, so stopping it takes cargo, the function and all with it.
# shellcheck disable=SC2016 # $$, $0 and $@ are for the inner bash
(cd "$REPO_ROOT" && exec setsid bash -c 'echo $$ >"$0" && exec "$@"' "$PID_DIR/watch.pid" \
    cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$port" --concurrency "$concurrency") \
    >>"$LOG_DIR/watch.log" 2>&1 </dev/null &
for ((i = 0; i < 100; i++)); do [[ -s "$PID_DIR/watch.pid" ]] && break; sleep 0.05; done
watch_pid="$(cat "$PID_DIR/watch.pid")"

# Ready when the runtime server listens.
for ((i = 0; i < 600; i++)); do
    if ! kill -0 "$watch_pid" 2>/dev/null; then
        tail -n 30 "$LOG_DIR/watch.log" >&2
        die "dev: cargo lambda watch exited"
    fi
    is_port_free "$port" || break
    sleep 0.1
done
is_port_free "$port" && die "dev: cargo lambda watch is not listening on 127.0.0.1:$port"

# Long-term memory: the table's stream, relayed to memory-extractor as Lambda would.
cargo build -q -p stream-relay
start_local_relay "$port" >/dev/null || die "dev: the stream relay did not start (${LOG_DIR#"$REPO_ROOT"/}/relay.log)"

# Where `lambda-agent` (make chat) finds this stack.
write_stack_file "$DEV_DIR/stack.json" "$API" "$STREAM" "$CONSOLE"
cat <<EOF

Local stack is up (table $TABLE_NAME, Bedrock: $BEDROCK_MODE${AWS_ENDPOINT_URL_BEDROCK_RUNTIME:+ at $AWS_ENDPOINT_URL_BEDROCK_RUNTIME}).
Functions: $concurrency concurrent instances each (DEV_CONCURRENCY).
Model: $MODEL_ID (${MODEL_PROVIDER:-bedrock}; roles, fallback and prices: docs/models.md).
Memory: turns reach memory-extractor through the table's stream (relay log: ${LOG_DIR#"$REPO_ROOT"/}/relay.log); GET /memory lists what is remembered (docs/memory.md).
Tools: calculator, current_time, and through the Invoke API: ${TOOL_FUNCTIONS//,/, }.
Web search: $SEARCH_MODE.
The first request waits for cargo lambda watch to compile the function. Ctrl-C stops everything.

API: $API
STREAM: $STREAM
Console: $CONSOLE

Try it (AUTH_MODE=insecure-local: the caller is the x-user-id header):
  API=$API
  SESSION=\$(curl -s -X POST \$API/sessions -H 'x-user-id: alice' | sed -n 's/.*"session_id" *: *"\([^"]*\)".*/\1/p')
  curl -s -X POST \$API/sessions/\$SESSION/messages -H 'x-user-id: alice' -H 'content-type: application/json' -d '{"message":"What is 12*(3+4)?"}'
  curl -s -X POST \$API/sessions/\$SESSION/messages -H 'x-user-id: alice' -H 'content-type: application/json' -d '{"message":"Search for rust lambda cold starts"}'
  curl -s \$API/sessions/\$SESSION/trace -H 'x-user-id: alice'
Streamed (text/event-stream: text, tool_start, tool_end, done):
  curl -N -X POST $STREAM/sessions/\$SESSION/messages -H 'x-user-id: alice' -H 'content-type: application/json' -d '{"message":"What is 12*7?"}'
Chat in the terminal: make chat. Console in a browser: $CONSOLE (user id alice).

cargo lambda watch log (also in ${LOG_DIR#"$REPO_ROOT"/}/watch.log):
EOF

tail -n +1 -f "$LOG_DIR/watch.log" --pid="$watch_pid" &
tail_pid=$!
wait "$tail_pid" || true
tail_pid=""
# watch exited by itself
die "dev: cargo lambda watch exited"

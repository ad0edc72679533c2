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

#!/usr/bin/env bash
# Local services for development and tests, all on 127.0.0.1.
#
#   scripts/services.sh start    start DynamoDB Local, the search stand-in and (unless told
#                                otherwise) the Bedrock stand-in, and with SERVICES_MOTO=1
#                                moto_server (Secrets Manager); wait until all are ready;
#                                write .dev/env
#   scripts/services.sh stop     stop what `start` started (by recorded PID / process group)
#   scripts/services.sh env      print the export lines (eval "$(scripts/services.sh env)")
#   scripts/services.sh status   say what is running
#
# Bedrock, in this order:
#   1. AWS_ENDPOINT_URL_BEDROCK_RUNTIME already set  -> that endpoint; no stand-in
#   2. AWS_ACCESS_KEY_ID or AWS_PROFILE set          -> real Amazon Bedrock; no stand-in
#   3. otherwise                                     -> the stand-in (cargo build -p bedrock-standin)
#
# State lives in $DEV_DIR (default .dev/): pids/*.pid, logs/*.log, env. scripts/test.sh points
# DEV_DIR at a folder of its own, so `make test` never touches a running `make dev`.
# The search stand-in (dev/search-standin) answers web_search with made-up, not-live results;
# SEARCH_STANDIN_API_KEY, when set, is the only key it accepts (make test sets one and puts it
# in moto, so the tests prove the executor read it from Secrets Manager).
#
# Knobs: TABLE_NAME (default agent-sessions-local), DYNAMODB_PORT (preferred port, default 8000),
# SERVICES_MOTO=1 (also start moto_server), SEARCH_STANDIN_API_KEY.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEV_DIR="${DEV_DIR:-$REPO_ROOT/.dev}"
PID_DIR="$DEV_DIR/pids"
LOG_DIR="$DEV_DIR/logs"
ENV_FILE="$DEV_DIR/env"
SERVICES=(dynamodb bedrock-standin search-standin moto)
export DDB_LOCAL_TELEMETRY=0 SAM_CLI_TELEMETRY=0

usage() { echo "usage: $0 start|stop|env|status" >&2; exit 2; }

pid_of() { # pid_of NAME: the recorded PID, if that process is alive
    local file="$PID_DIR/$1.pid" pid
    [[ -f "$file" ]] || return 1
    pid="$(cat "$file")"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# start_bg NAME CMD...: run CMD in a new session (its own process group), stdout+stderr to
# $LOG_DIR/NAME.log, PID to $PID_DIR/NAME.pid. The PID is written by the process itself,
# so it is right whether or not setsid had to fork.
start_bg() {
    local name="$1" pidfile="$PID_DIR/$1.pid" i
    shift
    rm -f "$pidfile"
    : >"$LOG_DIR/$name.log"
    # shellcheck disable=SC2016 # $$, $0 and $@ are for the inner bash
    setsid bash -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$pidfile" "$@" \
        >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
    for ((i = 0; i < 100; i++)); do
        [[ -s "$pidfile" ]] && return 0
        sleep 0.05
    done
    die "$name: no PID recorded"
}

fail_start() { # fail_start NAME MESSAGE: show the log, stop everything, exit
    log "services: $1: $2 (log: ${LOG_DIR#"$REPO_ROOT"/}/$1.log)"
    tail -n 30 "$LOG_DIR/$1.log" >&2 || true
    stop_all
    exit 1
}

start_dynamodb() {
    local ddb_dir port pid line
    ddb_dir="$(ddb_emulator_dir)"
    [[ -n "$ddb_dir" && -f "$DDB_LAUNCHER_DIR/LoopbackDynamoDbLocal.class" ]] \
        || die "DynamoDB Local is not installed: run scripts/install-tools.sh"
    port="$(free_port "${DYNAMODB_PORT:-8000}")"
    start_bg dynamodb \
        java -Xmx1g -XX:+UseSerialGC -Djava.net.preferIPv4Stack=true \
        "-Djava.library.path=$ddb_dir/DynamoDBLocal_lib" \
        -cp "$DDB_LAUNCHER_DIR:$ddb_dir/DynamoDBLocal.jar:$ddb_dir/DynamoDBLocal_lib/*" \
        LoopbackDynamoDbLocal -inMemory -disableTelemetry -port "$port"
    pid="$(cat "$PID_DIR/dynamodb.pid")"
    line="$(wait_for_line "$LOG_DIR/dynamodb.log" '^dynamodb-local listening on http://127\.0\.0\.1:[0-9]+$' 60 "$pid")" \
        || fail_start dynamodb "did not become ready"
    DYNAMODB_URL="${line##* }"
    # Ready means it answers a real API call, not just that the port is open.
    wait_answers dynamodb "$pid" "$DYNAMODB_URL" 20 dynamodb list_tables Limit=1
}

# wait_answers NAME PID URL SECONDS SERVICE OPERATION [ARG=INT]: wait until the AWS API at URL
# answers OPERATION (boto3, dummy credentials); stop everything if it does not in time.
wait_answers() {
    local name="$1" pid="$2" url="$3" seconds="$4" service="$5" operation="$6" i
    shift 4
    for ((i = 0; i < seconds * 5; i++)); do
        if env -u AWS_PROFILE -u AWS_SESSION_TOKEN AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local \
            "$VENV/bin/python3" - "$url" "$@" <<'PY' >/dev/null 2>&1
import sys, boto3
url, service, operation, *args = sys.argv[1:]
kwargs = {k: int(v) for k, v in (a.split("=", 1) for a in args)}
getattr(boto3.client(service, endpoint_url=url, region_name="us-east-1"), operation)(**kwargs)
PY
        then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    fail_start "$name" "does not answer $service $operation"
}

# build_standins: the stand-ins this start needs, in one cargo build.
build_standins() {
    local packages=(-p search-standin)
    [[ "$BEDROCK_MODE" == standin ]] && packages+=(-p bedrock-standin)
    log "services: building the stand-ins (cargo build ${packages[*]})"
    (cd "$REPO_ROOT" && cargo build --quiet "${packages[@]}") >"$LOG_DIR/standins-build.log" 2>&1 || {
        tail -n 40 "$LOG_DIR/standins-build.log" >&2
        stop_all
        die "services: cargo build ${packages[*]} failed"
    }
}

# start_standin NAME [ENV=VALUE...]: run target/debug/NAME --listen 127.0.0.1:0 and read its
# "NAME listening on URL" line; prints the URL.
start_standin() {
    local name="$1" bin pid line
    shift
    bin="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/debug/$name"
    [[ -x "$bin" ]] || { stop_all; die "services: $bin not found after the build"; }
    start_bg "$name" env "$@" "$bin" --listen 127.0.0.1:0
    pid="$(cat "$PID_DIR/$name.pid")"
    line="$(wait_for_line "$LOG_DIR/$name.log" "^$name listening on http://127\.0\.0\.1:[0-9]+\$" 60 "$pid")" \
        || fail_start "$name" "did not print its listening line"
    echo "${line##* }"
}

start_moto() {
    local port pid
    [[ -x "$VENV/bin/moto_server" ]] || die "moto_server is not installed: run scripts/install-tools.sh"
    port="$(free_port)"
    start_bg moto "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port"
    pid="$(cat "$PID_DIR/moto.pid")"
    MOTO_URL="http://127.0.0.1:$port"
    wait_answers moto "$pid" "$MOTO_URL" 60 secretsmanager list_secrets MaxResults=1
}

write_env() {
    local tmp="$ENV_FILE.tmp" table="${TABLE_NAME:-agent-sessions-local}"
    {
        echo "# written by scripts/services.sh start; source it or eval \"\$(scripts/services.sh env)\""
        printf 'export %s=%q\n' \
            AWS_ENDPOINT_URL_DYNAMODB "$DYNAMODB_URL" \
            DYNAMODB_ENDPOINT "$DYNAMODB_URL" \
            TABLE_NAME "$table" \
            AWS_EC2_METADATA_DISABLED true \
            DDB_LOCAL_TELEMETRY 0 \
            SAM_CLI_TELEMETRY 0 \
            BEDROCK_MODE "$BEDROCK_MODE" \
            SEARCH_STANDIN_URL "$SEARCH_STANDIN_URL"
        [[ -n "${MOTO_URL:-}" ]] && printf 'export %s=%q\n' AWS_ENDPOINT_URL_SECRETS_MANAGER "$MOTO_URL"
        case "$BEDROCK_MODE" in
        standin | endpoint)
            printf 'export %s=%q\n' \
                AWS_ENDPOINT_URL_BEDROCK_RUNTIME "$BEDROCK_URL" \
                BEDROCK_ENDPOINT "$BEDROCK_URL"
            ;;
        aws)
            # Real Bedrock: the SDK's default endpoint; make sure no stale override leaks in.
            echo "unset AWS_ENDPOINT_URL_BEDROCK_RUNTIME BEDROCK_ENDPOINT"
            ;;
        esac
        if [[ "$HAVE_AWS_CREDENTIALS" == 1 ]]; then
            # The caller's credentials and region stay; DynamoDB Local accepts any signature.
            printf 'export %s=%q\n' AWS_REGION "${AWS_REGION:-us-east-1}" \
                AWS_DEFAULT_REGION "${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}"
        else
            printf 'export %s=%q\n' AWS_REGION us-east-1 AWS_DEFAULT_REGION us-east-1 \
                AWS_ACCESS_KEY_ID local AWS_SECRET_ACCESS_KEY local
        fi
    } >"$tmp"
    mv "$tmp" "$ENV_FILE"
}

stop_all() {
    local name pid
    # Anything recorded in the pid folder, including `cargo lambda watch` from dev.sh/test.sh.
    shopt -s nullglob
    for file in "$PID_DIR"/*.pid; do
        name="$(basename "$file" .pid)"
        pid="$(cat "$file" 2>/dev/null || true)"
        if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
            kill_pid_tree "$pid" "$name"
        fi
        rm -f "$file"
    done
    shopt -u nullglob
    rm -f "$ENV_FILE"
}

cmd_start() {
    mkdir -p "$PID_DIR" "$LOG_DIR"
    "$REPO_ROOT/scripts/install-tools.sh"

    # Already up (e.g. `make services-up` twice)? Keep it.
    if [[ -f "$ENV_FILE" ]] && pid_of dynamodb >/dev/null && pid_of search-standin >/dev/null \
        && { [[ "${SERVICES_MOTO:-0}" != 1 ]] || pid_of moto >/dev/null; }; then
        if ! grep -q 'BEDROCK_MODE=standin' "$ENV_FILE" || pid_of bedrock-standin >/dev/null; then
            log "services: already running (${ENV_FILE#"$REPO_ROOT"/}); 'scripts/services.sh stop' to restart"
            return 0
        fi
    fi
    stop_all
    mkdir -p "$PID_DIR" "$LOG_DIR"

    HAVE_AWS_CREDENTIALS=0
    if [[ -n "${AWS_ACCESS_KEY_ID:-}" || -n "${AWS_PROFILE:-}" ]]; then
        HAVE_AWS_CREDENTIALS=1
    fi
    if [[ -n "${AWS_ENDPOINT_URL_BEDROCK_RUNTIME:-}" ]]; then
        BEDROCK_MODE=endpoint
        BEDROCK_URL="$AWS_ENDPOINT_URL_BEDROCK_RUNTIME"
    elif [[ "$HAVE_AWS_CREDENTIALS" == 1 ]]; then
        BEDROCK_MODE=aws
        BEDROCK_URL=""
    else
        BEDROCK_MODE=standin
    fi

    build_standins
    start_dynamodb
    if [[ "$BEDROCK_MODE" == standin ]]; then
        BEDROCK_URL="$(start_standin bedrock-standin)"
    fi
    SEARCH_STANDIN_URL="$(start_standin search-standin SEARCH_STANDIN_API_KEY="${SEARCH_STANDIN_API_KEY:-}")"
    MOTO_URL=""
    [[ "${SERVICES_MOTO:-0}" == 1 ]] && start_moto
    write_env

    log "services: DynamoDB Local  $DYNAMODB_URL (pid $(cat "$PID_DIR/dynamodb.pid"))"
    case "$BEDROCK_MODE" in
    standin) log "services: Bedrock stand-in $BEDROCK_URL (pid $(cat "$PID_DIR/bedrock-standin.pid"))" ;;
    endpoint) log "services: Bedrock endpoint $BEDROCK_URL (from AWS_ENDPOINT_URL_BEDROCK_RUNTIME; no stand-in)" ;;
    aws) log "services: Bedrock: real Amazon Bedrock with your AWS credentials (no stand-in)" ;;
    esac
    log "services: search stand-in $SEARCH_STANDIN_URL (pid $(cat "$PID_DIR/search-standin.pid"); results are not live)"
    [[ -n "$MOTO_URL" ]] && log "services: Secrets Manager (moto) $MOTO_URL (pid $(cat "$PID_DIR/moto.pid"))"
    log "services: env in ${ENV_FILE#"$REPO_ROOT"/}; logs in ${LOG_DIR#"$REPO_ROOT"/}/"
}

cmd_status() {
    local name pid any=0
    for name in "${SERVICES[@]}" watch; do
        if pid="$(pid_of "$name")"; then
            echo "$name: running (pid $pid)"
            any=1
        fi
    done
    [[ -f "$ENV_FILE" ]] && grep '^export' "$ENV_FILE"
    [[ "$any" == 1 ]] || { echo "no services running"; return 1; }
}

case "${1:-}" in
start) cmd_start ;;
stop) stop_all ;;
env)
    [[ -f "$ENV_FILE" ]] || die "services are not running: scripts/services.sh start"
    cat "$ENV_FILE"
    ;;
status) cmd_status ;;
*) usage ;;
esac

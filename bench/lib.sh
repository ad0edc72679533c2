# shellcheck shell=bash
# Helpers shared by bench/cold-start.sh and bench/run.sh: start and stop DynamoDB Local and the
# Bedrock stand-in for a benchmark run. Source it from a script that has `set -euo pipefail`
# and has set ROOT to the workspace root. Everything it starts binds 127.0.0.1 (DynamoDB
# Local cannot be told which address to bind; it only ever gets loopback traffic from here)
# and is stopped by its PID in bench_cleanup, which the caller runs from an EXIT trap.

BENCH_OUT=${BENCH_OUT:-$ROOT/target/bench}
mkdir -p "$BENCH_OUT"

# What was started here, so bench_cleanup stops exactly that.
BENCH_DDB_MODE=""   # external | services | own
BENCH_DDB_PID=""
BENCH_STANDIN_PID=""
BENCH_TABLES=()
export BENCH_TABLE=""  # the table bench_table_create made last

bench_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Makes AWS_ENDPOINT_URL_DYNAMODB point at a DynamoDB Local: the one already set in the
# environment, else scripts/services.sh's, else a Java DynamoDB Local started here.
bench_ddb_start() {
  if [[ -n "${AWS_ENDPOINT_URL_DYNAMODB:-}" ]]; then
    BENCH_DDB_MODE=external
    echo "bench: using DynamoDB Local at $AWS_ENDPOINT_URL_DYNAMODB" >&2
  elif [[ -x "$ROOT/scripts/services.sh" ]]; then
    # A state folder of our own, so a running `make dev` is neither reused nor stopped.
    # AWS_ACCESS_KEY_ID is set by the caller, so services.sh starts no stand-in of its own.
    BENCH_DDB_MODE=services
    DEV_DIR="$BENCH_OUT/services" "$ROOT/scripts/services.sh" start >&2
    # shellcheck disable=SC1091
    source "$BENCH_OUT/services/env"
    export AWS_ENDPOINT_URL_DYNAMODB
    echo "bench: DynamoDB Local from scripts/services.sh at $AWS_ENDPOINT_URL_DYNAMODB" >&2
  else
    local dir=${DDB_LOCAL_DIR:-/tmp/ddb}
    local emulator="$dir/node_modules/amplify-dynamodb-simulator/emulator"
    if [[ ! -f "$emulator/DynamoDBLocal.jar" ]]; then
      echo "bench: installing DynamoDB Local (npm amplify-dynamodb-simulator) into $dir" >&2
      npm install --prefix "$dir" --no-audit --no-fund amplify-dynamodb-simulator@2.9.30 >&2
    fi
    local port
    port=$(bench_free_port)
    DDB_LOCAL_TELEMETRY=0 java "-Djava.library.path=$emulator/DynamoDBLocal_lib" \
      -jar "$emulator/DynamoDBLocal.jar" -inMemory -disableTelemetry -port "$port" \
      >"$BENCH_OUT/dynamodb-local.log" 2>&1 &
    BENCH_DDB_PID=$!
    BENCH_DDB_MODE=own
    export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$port"
    echo "bench: started DynamoDB Local (pid $BENCH_DDB_PID) at $AWS_ENDPOINT_URL_DYNAMODB" >&2
  fi
  python3 "$ROOT/bench/ddb.py" wait-ready 90
}

# Creates a table for the session handler, named in BENCH_TABLE; bench_cleanup deletes it.
bench_table_create() {
  local table="bench-$1-$$-$RANDOM"
  python3 "$ROOT/bench/ddb.py" create-table "$table"
  BENCH_TABLES+=("$table")
  BENCH_TABLE=$table
}

# Starts the release Bedrock stand-in on a free loopback port; exports its endpoint.
bench_standin_start() {
  local binary="$ROOT/target/release/bedrock-standin"
  local log="$BENCH_OUT/bedrock-standin.log"
  [[ -x "$binary" ]] || { echo "bench: $binary is missing (cargo build --release -p bedrock-standin)" >&2; return 1; }
  STANDIN_LATENCY_MS=0 "$binary" --listen 127.0.0.1:0 >"$log" 2>&1 &
  BENCH_STANDIN_PID=$!
  local line="" tries
  for ((tries = 0; tries < 100; tries++)); do
    line=$(head -n 1 "$log" 2>/dev/null || true)
    [[ "$line" == *"listening on http://"* ]] && break
    kill -0 "$BENCH_STANDIN_PID" 2>/dev/null || break
    sleep 0.1
  done
  [[ "$line" == *"listening on http://"* ]] || { echo "bench: the stand-in did not start: $(cat "$log")" >&2; return 1; }
  export AWS_ENDPOINT_URL_BEDROCK_RUNTIME="${line##* }"
  echo "bench: started the Bedrock stand-in (pid $BENCH_STANDIN_PID) at $AWS_ENDPOINT_URL_BEDROCK_RUNTIME" >&2
}

# Stops what was started here, by PID, and deletes the tables made here. Never fails.
bench_cleanup() {
  local table
  for table in "${BENCH_TABLES[@]+"${BENCH_TABLES[@]}"}"; do
    python3 "$ROOT/bench/ddb.py" delete-table "$table" >/dev/null 2>&1 || true
  done
  BENCH_TABLES=()
  if [[ -n "$BENCH_STANDIN_PID" ]]; then
    kill "$BENCH_STANDIN_PID" 2>/dev/null || true
    wait "$BENCH_STANDIN_PID" 2>/dev/null || true
    BENCH_STANDIN_PID=""
  fi
  case "$BENCH_DDB_MODE" in
    own)
      kill "$BENCH_DDB_PID" 2>/dev/null || true
      wait "$BENCH_DDB_PID" 2>/dev/null || true
      ;;
    services)
      DEV_DIR="$BENCH_OUT/services" "$ROOT/scripts/services.sh" stop >&2 || true
      ;;
  esac
  BENCH_DDB_MODE=""
  BENCH_DDB_PID=""
}

#!/usr/bin/env bash
# Installs the project's local tools into git-ignored folders, idempotently:
#   .venv/            cargo-lambda, ziglang (Zig for the arm64 cross build), aws-sam-cli,
#                     moto[server], boto3, selenium (the browser test), matplotlib (the eval
#                     report's chart, evals/run.py), opentelemetry-proto (the OTLP receiver of
#                     the traces test) -- pinned, from PyPI
#   /usr/bin/chromium, /usr/bin/chromedriver  Debian's chromium and chromium-driver, for the
#                     headless browser test (apt-get, as root), when either is missing
#   .local/dynamodb/  the npm package amplify-dynamodb-simulator (ships DynamoDBLocal.jar)
#   .local/dynamodb-launcher/  LoopbackDynamoDbLocal.class, compiled with javac
#   rustup target aarch64-unknown-linux-gnu (for `cargo lambda build --arm64`)
# Quiet on success; on failure prints the tail of .local/logs/install-tools.log.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---- pins (bump here; the stamps below key on them) ----
PY_PINS=(
    "cargo-lambda==1.9.2"
    "ziglang==0.17.1"
    "aws-sam-cli==1.170.0"
    "moto[server]==5.2.5"
    "boto3==1.43.108"
    "selenium==4.51.0"
    "matplotlib==3.11.2"
    "opentelemetry-proto==1.45.2"
)
BROWSER_DEBS=(chromium chromium-driver)
NPM_DDB_PKG="amplify-dynamodb-simulator@2.9.30"
ARM64_TARGET="aarch64-unknown-linux-gnu"

mkdir -p "$LOCAL_DIR/logs"
INSTALL_LOG="$LOCAL_DIR/logs/install-tools.log"
: >"$INSTALL_LOG"

run() { # run CMD...: output to the install log, shown only on failure
    if ! "$@" >>"$INSTALL_LOG" 2>&1; then
        log "install-tools: failed: $*"
        tail -n 40 "$INSTALL_LOG" >&2
        exit 1
    fi
}

need() { command -v "$1" >/dev/null 2>&1 || die "install-tools: '$1' is required but not on PATH${2:+ ($2)}"; }
need python3
need npm "Node.js 20 + npm"
need java "Java 17"
need javac "a JDK 17"
need cargo "the Rust toolchain"

# Serialise concurrent installs (make dev in one shell, make test in another).
exec 9>"$LOCAL_DIR/.install.lock"
flock 9

# ---- python venv ----
py_stamp="$VENV/.tools-stamp"
py_key="$(printf '%s\n' "${PY_PINS[@]}")"
if [[ ! -x "$VENV/bin/python3" ]]; then
    run python3 -m venv "$VENV"
fi
if [[ ! -f "$py_stamp" || "$(cat "$py_stamp")" != "$py_key" ]]; then
    run "$VENV/bin/python3" -m pip install --disable-pip-version-check --no-input -q "${PY_PINS[@]}"
    "$VENV/bin/sam" --version >/dev/null 2>&1 || die "install-tools: sam does not run"
    printf '%s\n' "$py_key" >"$py_stamp"
fi

# ---- DynamoDB Local, via the npm package that ships it ----
ddb_stamp="$DDB_PREFIX/.stamp"
if [[ ! -f "$ddb_stamp" || "$(cat "$ddb_stamp")" != "$NPM_DDB_PKG" || -z "$(ddb_emulator_dir)" ]]; then
    mkdir -p "$DDB_PREFIX"
    # --ignore-scripts: the jar is in the tarball; no install script is needed.
    run npm install --prefix "$DDB_PREFIX" --no-save --no-audit --no-fund --ignore-scripts \
        --omit=dev --loglevel=error "$NPM_DDB_PKG"
    [[ -n "$(ddb_emulator_dir)" ]] || die "install-tools: DynamoDBLocal.jar not found under $DDB_PREFIX"
    printf '%s\n' "$NPM_DDB_PKG" >"$ddb_stamp"
fi
DDB_DIR="$(ddb_emulator_dir)"
[[ -d "$DDB_DIR/DynamoDBLocal_lib" ]] || die "install-tools: DynamoDBLocal_lib not found beside $DDB_DIR/DynamoDBLocal.jar"

# ---- the loopback launcher ----
launcher_stamp="$DDB_LAUNCHER_DIR/.stamp"
launcher_key="$(sha256sum "$DDB_LAUNCHER_SRC" | cut -d' ' -f1) $NPM_DDB_PKG"
if [[ ! -f "$DDB_LAUNCHER_DIR/LoopbackDynamoDbLocal.class" || ! -f "$launcher_stamp" \
      || "$(cat "$launcher_stamp")" != "$launcher_key" ]]; then
    rm -rf "$DDB_LAUNCHER_DIR"
    mkdir -p "$DDB_LAUNCHER_DIR"
    run javac -nowarn -d "$DDB_LAUNCHER_DIR" \
        -cp "$DDB_DIR/DynamoDBLocal.jar:$DDB_DIR/DynamoDBLocal_lib/*" "$DDB_LAUNCHER_SRC"
    printf '%s\n' "$launcher_key" >"$launcher_stamp"
fi

# ---- headless Chromium and its driver, Debian's (the browser test: scripts/browser-test.sh) ----
apt_install() { # apt_install PKG...: quietly; the package lists are refreshed only if it fails
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -qq "$@" >>"$INSTALL_LOG" 2>&1 \
        || { apt-get update -qq >>"$INSTALL_LOG" 2>&1 \
            && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -qq "$@" >>"$INSTALL_LOG" 2>&1; }
}
if [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]]; then
    if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
        log "install-tools: warning: chromium or chromedriver is missing and this is not root on Debian; install '${BROWSER_DEBS[*]}' for the browser test"
    elif ! apt_install "${BROWSER_DEBS[@]}"; then
        log "install-tools: failed: apt-get install ${BROWSER_DEBS[*]}"
        tail -n 40 "$INSTALL_LOG" >&2
        exit 1
    fi
fi

# ---- Rust std for the arm64 Lambda target ----
if command -v rustup >/dev/null 2>&1; then
    if ! rustup target list --installed 2>/dev/null | grep -qx "$ARM64_TARGET"; then
        if ! rustup target add "$ARM64_TARGET" >>"$INSTALL_LOG" 2>&1; then
            log "install-tools: warning: 'rustup target add $ARM64_TARGET' failed; 'make build-arm64' will not work"
        fi
    fi
else
    log "install-tools: warning: rustup not found; cannot add $ARM64_TARGET for 'make build-arm64'"
fi

# ---- checks (cheap, every time) ----
"$VENV/bin/cargo-lambda" lambda --version >/dev/null 2>&1 || die "install-tools: cargo-lambda from the venv does not run"
cargo lambda --version >/dev/null 2>&1 || die "install-tools: 'cargo lambda' does not resolve to the venv's cargo-lambda"
"$VENV/bin/python3" -m ziglang version >/dev/null 2>&1 || die "install-tools: 'python3 -m ziglang' does not run"

if [[ "${1:-}" == "--print" || "${VERBOSE:-0}" == 1 ]]; then
    echo "cargo-lambda: $(cargo lambda --version)"
    echo "zig:          $("$VENV/bin/python3" -m ziglang version) (python3 -m ziglang)"
    echo "sam:          $("$VENV/bin/sam" --version)"
    echo "moto:         $("$VENV/bin/python3" -c 'import moto; print(moto.__version__)')"
    echo "boto3:        $("$VENV/bin/python3" -c 'import boto3; print(boto3.__version__)')"
    echo "selenium:     $("$VENV/bin/python3" -c 'import selenium; print(selenium.__version__)')"
    echo "matplotlib:   $("$VENV/bin/python3" -c 'import matplotlib; print(matplotlib.__version__)')"
    echo "otel-proto:   $("$VENV/bin/python3" -c 'import importlib.metadata as m; print(m.version("opentelemetry-proto"))')"
    echo "chromium:     $(/usr/bin/chromium --version 2>/dev/null || echo missing)"
    echo "chromedriver: $(/usr/bin/chromedriver --version 2>/dev/null || echo missing)"
    echo "DynamoDB Local: $DDB_DIR/DynamoDBLocal.jar"
    echo "launcher:     $DDB_LAUNCHER_DIR/LoopbackDynamoDbLocal.class"
fi

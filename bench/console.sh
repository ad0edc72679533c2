#!/usr/bin/env bash
# Load time (Navigation Timing loadEventEnd, median of RUNS loads, cache off) and weight of the
# web console in headless Chromium (bench/console.py), against a running stack: API is its API
# URL, as make dev prints it. Results: stdout and target/bench/console.json.
#
#   API=http://127.0.0.1:9000/lambda-url/session-handler bench/console.sh
#   RUNS=50 API=... bench/console.sh
#
# Needs what scripts/install-tools.sh installs: selenium in .venv, Debian's chromium and
# chromium-driver.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"

[[ -n "${API:-}" ]] || die "bench/console: set API to a running stack's API URL (make dev prints it)"
mkdir -p "$ROOT/target/bench"
exec "$VENV/bin/python3" "$ROOT/bench/console.py" --runs "${RUNS:-20}" --json "$ROOT/target/bench/console.json"

#!/usr/bin/env bash
# The web console's browser test (tests/browser/test_console.py): Selenium from the .venv
# driving Debian's headless chromium and chromedriver, both installed by
# scripts/install-tools.sh, against the stack at E2E_API_URL (make dev prints it as API).
#   E2E_API_URL=http://127.0.0.1:9000/lambda-url/session-handler scripts/browser-test.sh
# Leaves a screenshot in target/console.png.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[[ -n "${E2E_API_URL:-}" ]] || die "browser-test: E2E_API_URL is not set (the API URL of a running stack: make dev prints it)"
"$VENV/bin/python3" -c 'import selenium' 2>/dev/null || die "browser-test: selenium is not in $VENV (run scripts/install-tools.sh)"
for binary in "${CHROMIUM:-/usr/bin/chromium}" "${CHROMEDRIVER:-/usr/bin/chromedriver}"; do
    [[ -x "$binary" ]] || die "browser-test: $binary is missing (scripts/install-tools.sh installs Debian's chromium and chromium-driver)"
done

cd "$REPO_ROOT"
exec "$VENV/bin/python3" tests/browser/test_console.py

#!/usr/bin/env bash
# sam validate --lint on template.yaml, then scripts/check-metrics.py (the dashboard and alarms
# against the metrics the agent publishes). Runs cfn-lint and the SAM translator locally: no AWS
# call and no credentials needed, but SAM CLI wants a region (us-east-1 here).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"
export SAM_CLI_TELEMETRY=0 AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
sam validate --lint --region us-east-1 --template-file "$REPO_ROOT/template.yaml"
# The dashboard and alarms name only metrics shared::telemetry::emf publishes (PyYAML is in the venv).
python3 "$REPO_ROOT/scripts/check-metrics.py"

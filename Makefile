# lambda-agent: every entry point. The tools (cargo-lambda, zig, AWS SAM CLI, DynamoDB Local)
# are installed on first use into the git-ignored .venv/ and .local/ (scripts/install-tools.sh).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# The venv's cargo-lambda and sam first; cargo-lambda finds Zig as the venv's `python3 -m ziglang`.
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export SAM_CLI_TELEMETRY := 0
export DDB_LOCAL_TELEMETRY := 0

.PHONY: help dev chat test eval tools services-up services-down lint fmt build-arm64 validate bench deploy clean-local

help: ## this list
	@echo "lambda-agent targets:"
	@awk -F ':.*## ' '/^[a-zA-Z0-9_-]+:.*## / { printf "  make %-14s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

dev: ## run the agent locally: DynamoDB Local + Bedrock stand-in + cargo lambda watch; prints the API URL
	@scripts/dev.sh

chat: ## start the CLI chat against the make dev stack
	@cargo run -q -p lambda-agent-cli -- chat

cost: ## the monthly cost of the reference workload, from the ledger's code (docs/cost.md)
	@cargo run -q -p shared --example cost

test: ## everything: fmt, unit + DynamoDB Local + end-to-end tests, the console in Chromium, clippy, sam validate, arm64 build
	@scripts/test.sh

eval: ## score the agent on the scenarios of evals/ (stand-in by default): target/eval/report.md (docs/evals.md)
	@scripts/eval.sh

tools: ## install cargo-lambda, zig, SAM CLI, moto, boto3, matplotlib, DynamoDB Local into .venv/ and .local/
	@scripts/install-tools.sh --print

services-up: ## start DynamoDB Local and the Bedrock stand-in on 127.0.0.1 (env in .dev/env)
	@scripts/services.sh start
	@echo 'load the env with: eval "$$(scripts/services.sh env)"'

services-down: ## stop what services-up (or make dev) started
	@scripts/services.sh stop

lint: ## cargo fmt --check and clippy -D warnings
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt: ## cargo fmt
	cargo fmt --all

build-arm64: tools-quiet ## release build of every function for Lambda arm64: target/lambda/<function>/bootstrap.zip
	@scripts/build-arm64.sh

validate: tools-quiet ## sam validate --lint template.yaml
	@scripts/validate.sh

bench: tools-quiet ## benchmarks: cargo bench -p shared and the bench/ scripts (bench/run.sh)
	@if [[ -x bench/run.sh ]]; then \
		bench/run.sh; \
	else \
		cargo bench -p shared; \
		for script in bench/*.sh; do [[ -e "$$script" ]] && bash "$$script"; done; \
	fi

deploy: tools-quiet ## sam build (cargo-lambda, arm64) and sam deploy --guided (needs AWS credentials)
	sam build
	sam deploy --guided

clean-local: services-down ## remove the installed tools (.venv/, .local/) and local state (.dev/)
	rm -rf .venv .local .dev

.PHONY: tools-quiet
tools-quiet:
	@scripts/install-tools.sh

#!/usr/bin/env bash
# Release build of every function for Lambda arm64 (Graviton), cross-compiled with Zig through
# cargo-lambda: target/lambda/<function>/bootstrap.zip for the session handler, the streaming
# session handler and the three tool executors, plus their sizes. Needs the venv
# (scripts/install-tools.sh) and the rustup target aarch64-unknown-linux-gnu.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

FUNCTIONS=("$FUNCTION_BINARY" "$STREAM_BINARY" tool-web-search tool-http-fetch tool-code-interpreter memory-extractor)

# --bin (not --package): the same cargo invocation as `sam build` (rust-cargolambda with
# BuildProperties.Binary), so this measures the artifacts that get deployed and both share one
# build cache. One cargo invocation for all, so shared dependencies are built once.
# ARM64_PROFILE=arm64-check (make test): the same build without the release profile's slow
# optimization, to check that everything cross-compiles; its sizes are not the deployed ones.
profile="${ARM64_PROFILE:-release}"
bins=()
for function in "${FUNCTIONS[@]}"; do bins+=(--bin "$function"); done
cargo lambda build --profile "$profile" --arm64 "${bins[@]}" --output-format zip "$@"

target_dir="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
total=0
for function in "${FUNCTIONS[@]}"; do
    zip="$target_dir/lambda/$function/bootstrap.zip"
    bin="$target_dir/aarch64-unknown-linux-gnu/$profile/$function"
    [[ -f "$zip" ]] || die "build-arm64: $zip was not produced"
    [[ -f "$bin" ]] || die "build-arm64: $bin was not produced"
    file -b "$bin" | grep -q 'ARM aarch64' || die "build-arm64: $bin is not an arm64 ELF: $(file -b "$bin")"
    echo "  ${zip#"$REPO_ROOT"/}: $(stat -c %s "$zip") bytes zipped, binary $(stat -c %s "$bin") bytes"
    total=$((total + $(stat -c %s "$zip")))
done
echo "arm64: ${#FUNCTIONS[@]} functions (ELF aarch64, profile $profile), $total bytes zipped in all; session handler $(stat -c %s "$target_dir/lambda/$FUNCTION_BINARY/bootstrap.zip") bytes"

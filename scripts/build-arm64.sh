#!/usr/bin/env bash
# Release build of the session handler for Lambda arm64 (Graviton), cross-compiled with Zig
# through cargo-lambda: target/lambda/session-handler/bootstrap.zip, plus its size.
# Needs the venv (scripts/install-tools.sh) and the rustup target aarch64-unknown-linux-gnu.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

# --bin (not --package): the same cargo invocation as `sam build` (rust-cargolambda with
# BuildProperties.Binary), so this measures the artifact that gets deployed and both share
# one build cache.
cargo lambda build --release --arm64 --bin "$FUNCTION_BINARY" --output-format zip "$@"

target_dir="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
zip="$target_dir/lambda/$FUNCTION_BINARY/bootstrap.zip"
bin="$target_dir/aarch64-unknown-linux-gnu/release/$FUNCTION_BINARY"
[[ -f "$zip" ]] || die "build-arm64: $zip was not produced"
[[ -f "$bin" ]] || die "build-arm64: $bin was not produced"
file -b "$bin" | grep -q 'ARM aarch64' || die "build-arm64: $bin is not an arm64 ELF: $(file -b "$bin")"
echo "arm64: ${zip#"$REPO_ROOT"/} $(stat -c %s "$zip") bytes zipped; binary $(stat -c %s "$bin") bytes ($(file -b "$bin" | cut -d, -f1-2))"

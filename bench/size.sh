#!/usr/bin/env bash
# Size of the deployment artifact: the arm64 zip that `cargo lambda build --release --arm64
# --output-format zip` leaves in target/lambda/session-handler/bootstrap.zip when it exists,
# and always the x86_64 release binary of this machine (stripped by the release profile) with
# its `zip -9` as Lambda would get it (a file named bootstrap). Writes target/bench/size.json.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BENCH_OUT=${BENCH_OUT:-$ROOT/target/bench}
mkdir -p "$BENCH_OUT"

binary=target/release/session-handler
arm64_zip=target/lambda/session-handler/bootstrap.zip
[[ -x "$binary" ]] || { echo "size: $binary is missing (cargo build --release -p session-handler)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$binary" "$work/bootstrap"
(cd "$work" && zip -9 -q bootstrap.zip bootstrap)

binary_bytes=$(stat -c %s "$binary")
zip_bytes=$(stat -c %s "$work/bootstrap.zip")
stripped=false
if command -v file >/dev/null && file "$binary" | grep -q ", stripped"; then stripped=true; fi
arm64_bytes=null
arm64_binary_bytes=null
if [[ -f "$arm64_zip" ]]; then
  arm64_bytes=$(stat -c %s "$arm64_zip")
  arm64_binary_bytes=$(python3 -c 'import sys, zipfile; print(sum(i.file_size for i in zipfile.ZipFile(sys.argv[1]).infolist()))' "$arm64_zip")
fi
cargo_lambda=false
if [[ -x "$ROOT/.venv/bin/cargo-lambda" ]] || command -v cargo-lambda >/dev/null; then cargo_lambda=true; fi

cat >"$BENCH_OUT/size.json" <<JSON
{"x86_64_binary_bytes": $binary_bytes, "x86_64_binary_stripped": $stripped, "x86_64_zip9_bytes": $zip_bytes,
 "arm64_zip_bytes": $arm64_bytes, "arm64_unzipped_bytes": $arm64_binary_bytes, "cargo_lambda_installed": $cargo_lambda}
JSON

mib() { awk -v b="$1" 'BEGIN { printf "%.2f MiB", b / 1048576 }'; }
echo
echo "deployment size"
echo "  x86_64 release binary (stripped: $stripped): $(mib "$binary_bytes") ($binary_bytes bytes)"
echo "  x86_64 zip -9 of it:                        $(mib "$zip_bytes") ($zip_bytes bytes)"
if [[ "$arm64_bytes" != null ]]; then
  echo "  arm64 bootstrap.zip (cargo lambda):         $(mib "$arm64_bytes") ($arm64_bytes bytes; unzipped $(mib "$arm64_binary_bytes"))"
else
  echo "  arm64 bootstrap.zip: not built ($arm64_zip absent; cargo-lambda installed: $cargo_lambda)"
fi

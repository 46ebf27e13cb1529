#!/usr/bin/env bash
# Sets up what is missing on a fresh Debian 12 machine (as root), builds berth,
# builds the example busybox image and runs berth on examples/.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "$(id -u)" != "0" ]]; then
  echo "error: run as root (berth mounts overlays, creates namespaces and runs runc)" >&2
  exit 1
fi
scripts/install-deps.sh
if ! command -v cargo >/dev/null; then
  echo "error: cargo is missing: install a Rust toolchain (rustup) first" >&2
  exit 1
fi

cargo build --release --locked
berth=target/release/berth
scripts/make-busybox-image.sh examples/images/busybox >/dev/null

echo "+ berth validate -f examples/"
"$berth" validate -f examples/

echo "+ berth apply --wait -f examples/quickstart"
"$berth" apply --wait -f examples/quickstart
echo "+ berth ps"
"$berth" ps

cat <<NEXT

The quickstart's containers are running. Next, try:
  $berth logs -f web                     # follow the web container's output
  $berth plan -f examples/quickstart     # edit a manifest, then see what apply would change
  $berth delete -f examples/quickstart   # remove what the quickstart made
NEXT

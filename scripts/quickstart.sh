#!/usr/bin/env bash
# Sets up what is missing on a fresh Debian 12 machine (as root), builds berth,
# builds the example busybox image and runs berth on examples/.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "$(id -u)" != "0" ]]; then
  echo "error: run as root (berth mounts overlays, creates namespaces and runs runc)" >&2
  exit 1
fi
# Before anything is installed: a missing or too old Rust says what to get.
scripts/check-rust.sh
scripts/install-deps.sh

# The first build compiles berth and about 230 crates it uses from source:
# several minutes on 2 cores, with berth itself the last, long, quiet step.
echo "+ cargo build --release --locked   (the first build takes several minutes; berth itself compiles last, silently)"
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

#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this script): formatting,
# lints, unit tests and the root end-to-end tests against real runc, overlayfs,
# CNI plugins and a local registry.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${CI:-}" == "true" && "$(id -u)" != "0" ]]; then
  echo "error: the test suite runs as root in CI (end-to-end tests need runc, mounts and netns)" >&2
  exit 1
fi
# Before anything is installed: a missing or too old Rust says what to get.
scripts/check-rust.sh
if [[ "$(id -u)" == "0" ]]; then
  scripts/install-deps.sh
fi

# kubernetes-validate (PyPI, pinned) in a venv under target/, for
# tests/kube_export.rs; the unprivileged run below finds it by this path.
BERTH_KUBE_VALIDATE="$(scripts/kube-validate-env.sh)"
export BERTH_KUBE_VALIDATE

cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
status=0
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast || status=$?
else
  cargo test --locked --no-fail-fast || status=$?
fi
# The same binaries as an ordinary user: what needs no root must pass
# without it, and root-only tests must say they skipped.
if [[ "$(id -u)" == "0" ]]; then
  scripts/test-unprivileged.sh || status=$?
fi
exit "$status"

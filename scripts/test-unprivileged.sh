#!/usr/bin/env bash
# Runs the whole test suite again as an ordinary user (created if missing):
# the planner, the shim lifecycle, the stop/remove protocol against the fake
# runtime, the unpack containment tests and everything else that needs no
# root must pass; tests that need root print "SKIP ...: needs root" and
# return. Any failure fails this script. Run as root after a build (test.sh
# calls it); CI is unset for this run so that root-only tests skip instead
# of failing.
set -euo pipefail
cd "$(dirname "$0")/.."

user="${BERTH_TEST_USER:-berthtest}"
if [[ "$(id -u)" != "0" ]]; then
  echo "error: scripts/test-unprivileged.sh runs as root (it switches to the user $user)" >&2
  exit 1
fi
if ! id "$user" >/dev/null 2>&1; then
  useradd --create-home --shell /usr/sbin/nologin "$user"
fi

# The test binaries as cargo built them (nothing is rebuilt).
mapfile -t binaries < <(cargo test --locked --no-run 2>&1 |
  sed -n 's/^ *Executable .*(\(target\/[^)]*\))$/\1/p')
if [[ ${#binaries[@]} -eq 0 ]]; then
  echo "error: cargo listed no test binaries" >&2
  exit 1
fi

# The binaries name this tree by its absolute path (CARGO_MANIFEST_DIR,
# CARGO_BIN_EXE_berth): the user must be able to reach it.
if ! runuser -u "$user" -- test -x "${binaries[0]}"; then
  echo "error: $user cannot reach $(pwd)/${binaries[0]}: a directory above this checkout is private to root; clone it where other users may traverse (e.g. chmod o+x on its parents)" >&2
  exit 1
fi

# Tests that need a directory the trust rules accept use $HOME (the user's
# own, not under the sticky /tmp).
home="$(getent passwd "$user" | cut -d: -f6)"
scratch="$(mktemp -d /tmp/berth-unprivileged.XXXXXX)"
chown "$user" "$scratch"
trap 'rm -rf "$scratch"' EXIT

failed=0
passed=0
for binary in "${binaries[@]}"; do
  name="$(basename "$binary")"
  log="$scratch/$name.log"
  if runuser -u "$user" -- env -u CI HOME="$home" TMPDIR="$scratch" \
      "$binary" --test-threads 2 --nocapture >"$log" 2>&1; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAILED as $user: $binary" >&2
    tail -n 40 "$log" >&2
  fi
done
skipped="$(cat "$scratch"/*.log | grep -c 'SKIP' || true)"
summary="$(cat "$scratch"/*.log | sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1 \2/p' |
  awk '{p += $1; f += $2} END {print p" passed, "f" failed"}')"
echo "as $user: $passed of ${#binaries[@]} test binaries passed; $skipped root-only tests skipped"
echo "unprivileged: $summary"
exit $((failed > 0))

#!/usr/bin/env bash
# Checks that cargo is installed and that rustc is at least the version
# Cargo.toml's `rust-version` names, before anything is installed or built:
# an older toolchain (Debian's own) fails deep in the build on a Cargo.toml
# key without saying which version is needed. On failure it says exactly
# what to install and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

# `rust-version = "1.85"` in [package]; read, not hard-coded, so that a
# raise in Cargo.toml needs no change here.
required=""
while IFS= read -r line; do
  if [[ "$line" =~ ^rust-version[[:space:]]*=[[:space:]]*\"([0-9]+(\.[0-9]+){1,2})\" ]]; then
    required="${BASH_REMATCH[1]}"
    break
  fi
done <Cargo.toml
if [[ -z "$required" ]]; then
  echo "error: Cargo.toml names no rust-version" >&2
  exit 1
fi

how_to_install() {
  cat >&2 <<HOW
berth needs Rust $required or newer (Cargo.toml's rust-version). Install it with rustup:

  curl https://sh.rustup.rs -sSf | sh -s -- -y --default-toolchain stable
  . "\$HOME/.cargo/env"        # puts ~/.cargo/bin first on PATH in this shell

Debian's own cargo and rustc packages (apt-get install cargo) are too old for
berth: remove them (apt-get remove cargo rustc) or keep ~/.cargo/bin ahead of
/usr/bin on PATH. Then run this script again.
HOW
}

# "rustc 1.65.0 (897e37553 2022-11-02)" -> 1.65.0; empty when unreadable.
version_of() {
  local words
  read -r -a words <<<"$("$1" --version 2>/dev/null || true)"
  if [[ "${words[1]:-}" =~ ^[0-9]+\.[0-9]+(\.[0-9]+)? ]]; then
    echo "${BASH_REMATCH[0]}"
  fi
}

# Whether version $1 is at least $2, compared as numbers part by part
# (1.100 is newer than 1.85; a missing patch counts as 0).
at_least() {
  local -a have want
  IFS=. read -r -a have <<<"$1"
  IFS=. read -r -a want <<<"$2"
  local i
  for i in 0 1 2; do
    local h=$((10#${have[i]:-0})) w=$((10#${want[i]:-0}))
    if ((h != w)); then
      ((h > w))
      return
    fi
  done
  return 0
}

for tool in cargo rustc; do
  if ! command -v "$tool" >/dev/null; then
    echo "error: $tool is missing" >&2
    how_to_install
    exit 1
  fi
  found=$(version_of "$tool")
  if [[ -z "$found" ]]; then
    echo "error: cannot tell $tool's version ($(command -v "$tool") --version)" >&2
    how_to_install
    exit 1
  fi
  if ! at_least "$found" "$required"; then
    echo "error: $tool $found ($(command -v "$tool")) is older than Rust $required" >&2
    how_to_install
    exit 1
  fi
done

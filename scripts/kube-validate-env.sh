#!/usr/bin/env bash
# Prints the path of a kubernetes-validate (PyPI, pinned below) that checks
# Kubernetes objects offline against the API's own JSON schemas, installing
# it first into a venv when it is missing. tests/kube_export.rs runs what it
# prints; scripts/test.sh exports it as BERTH_KUBE_VALIDATE.
#
#   scripts/kube-validate-env.sh            # venv under target/kube-validate-venv
#   BERTH_KUBE_VALIDATE_VENV=DIR scripts/kube-validate-env.sh
#
# Safe to run side by side (a lock) and again (an installed venv is reused).
set -euo pipefail
cd "$(dirname "$0")/.."

version="1.37.0"
venv="${BERTH_KUBE_VALIDATE_VENV:-$PWD/target/kube-validate-venv}"
tool="$venv/bin/kubernetes-validate"

# (pip's output is read whole: `pip show | grep -q` under pipefail fails
# whenever grep stops reading first.)
installed() {
  [[ -x "$tool" ]] || return 1
  [[ "$(readlink -f "$venv/bin/python")" == "$(readlink -f "$(command -v "$python")")" ]] || return 1
  local shown
  shown="$("$venv/bin/python" -m pip show kubernetes-validate 2>/dev/null)" || return 1
  grep -qx "Version: $version" <<<"$shown"
}

# The system's python when there is one, so that the venv works for every
# user (scripts/test-unprivileged.sh runs the tests as another user; a
# python under root's home would not be reachable).
python="${BERTH_PYTHON:-python3}"
if [[ -z "${BERTH_PYTHON:-}" && -x /usr/bin/python3 ]]; then
  python=/usr/bin/python3
fi

mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if ! installed; then
  if ! "$python" -m venv --help >/dev/null 2>&1 || ! "$python" -c 'import ensurepip' 2>/dev/null; then
    if [[ "$(id -u)" == "0" ]]; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv >&2
    else
      echo "error: python3 with venv is missing: install the Debian packages python3 and python3-venv" >&2
      exit 1
    fi
  fi
  rm -rf "$venv"
  "$python" -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "kubernetes-validate==$version" >&2
fi
echo "$tool"

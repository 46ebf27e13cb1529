#!/usr/bin/env bash
# Sourced by the bench scripts: a private containerd to measure berth
# against, installed from Debian when missing (the test suite never needs
# it). It runs with its own config, root, state, socket and plugin dir
# under DIR, never the system's, and is stopped by its pid.
#
#   source scripts/bench-containerd.sh
#   containerd_start DIR      # sets containerd_pid and ctr_address; false when unavailable
#   ctr_cmd -n NS ...         # ctr against that instance
#   containerd_stop

containerd_pid='' ctr_address=''

containerd_install() {
  command -v containerd >/dev/null && command -v ctr >/dev/null && return 0
  echo "installing containerd (the peer of the benchmarks)..." >&2
  (export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq containerd) >&2 || return 1
  # The package may start a system-wide instance; the benchmarks run their own.
  if command -v systemctl >/dev/null && systemctl is-active -q containerd 2>/dev/null; then
    systemctl disable --now containerd >&2 || true
  fi
  command -v containerd >/dev/null
}

containerd_start() {
  local dir=$1
  containerd_install || { echo "containerd unavailable: its rows are skipped" >&2; return 1; }
  mkdir -p "$dir"
  ctr_address=$dir/containerd.sock
  cat >"$dir/config.toml" <<CONF
version = 2
root = "$dir/root"
state = "$dir/state"
[grpc]
  address = "$ctr_address"
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"
CONF
  containerd --config "$dir/config.toml" >"$dir/containerd.log" 2>&1 &
  containerd_pid=$!
  local tries
  for ((tries = 0; tries < 100; tries++)); do
    ctr --address "$ctr_address" version >/dev/null 2>&1 && return 0
    kill -0 "$containerd_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "containerd did not start (see $dir/containerd.log): its rows are skipped" >&2
  containerd_stop
  return 1
}

ctr_cmd() {
  ctr --address "$ctr_address" "$@"
}

containerd_stop() {
  [[ -n $containerd_pid ]] || return 0
  kill -TERM "$containerd_pid" 2>/dev/null || true
  local tries
  for ((tries = 0; tries < 100; tries++)); do
    kill -0 "$containerd_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$containerd_pid" 2>/dev/null || true
  containerd_pid=''
  # containerd makes a cgroup per namespace (the benches use berth-bench)
  # and leaves it behind, empty: rmdir removes only an empty one.
  local dir
  for dir in /sys/fs/cgroup/berth-bench /sys/fs/cgroup/*/berth-bench; do
    [[ -d $dir ]] && rmdir "$dir" 2>/dev/null
  done
  return 0
}

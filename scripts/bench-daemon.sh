#!/usr/bin/env bash
# Daemon benchmark, one run: `berth daemon --watch DIR` following a
# manifest tree of 50 idle containers and one probe. Prints the daemon's idle
# memory (VmRSS, Pss) against an idle containerd of this run, and, over
# BENCH_ROUNDS edits of the probe (temp file + rename, as editors and git
# write), the latency from the rename to the replaced container running,
# split into detection (rename -> generation read, debounce included) and
# runtime work (read -> replaced), against kubelet's 20 s file check. Root.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh

count=${BENCH_CONTAINERS:-50}
rounds=${BENCH_ROUNDS:-10}
debounce=200ms
work=${BENCH_DIR:-/var/tmp/berth-bench-daemon}

cargo build --release --locked --quiet
berth=${CARGO_TARGET_DIR:-$PWD/target}/release/berth
# The daemon watches DIR's parent too (to see DIR swapped), so DIR sits in
# a quiet directory of its own: this script's files do not wake it.
manifests=$work/tree/manifests
rm -rf "$work" && mkdir -p "$manifests"
# The runtime state lives on tmpfs, as /run/berth does in production.
state=$(mktemp -d /run/berth-bench-daemon.XXXXXX)
export BERTH_ROOT=$work/root BERTH_STATE=$state

daemon_pid='' containerd_pid=''
terminate() { # PID: SIGTERM a process this script started; its exit code
  local rc=0
  kill -TERM "$1" 2>/dev/null || return 0
  wait "$1" || rc=$?
  return "$rc"
}
cleanup() {
  set +e
  # The daemon first, or it would bring the containers back.
  [[ -n $daemon_pid ]] && terminate "$daemon_pid"
  [[ -n $containerd_pid ]] && terminate "$containerd_pid"
  for name in $("$berth" ps -a -o json 2>/dev/null | awk -F'"' '$2 == "id" {print $4}'); do
    "$berth" rm -f "$name" >/dev/null 2>&1
  done
  rm -rf "$state" "$work"
}
trap cleanup EXIT

scripts/make-busybox-image.sh "$work/busybox" >/dev/null
image="oci-layout:$work/busybox"
"$berth" image import "$image" >/dev/null

container() { # NAME COMMAND
  printf 'apiVersion: berth/v1\nkind: Container\nmetadata:\n  name: %s\nspec:\n  image: %s\n' "$1" "$image"
  printf '  networkMode: none\n  command: %s\n' "$2"
}
# The probe leaves at once on its stop signal, so that a graceful stop of
# the old container takes no grace period.
probe() { # ROUND
  container probe "[sh, -c, 'trap \"exit 0\" TERM; sleep 86400 & wait']"
  printf '  env:\n    ROUND: "%s"\n' "$1"
}
for ((i = 1; i <= count; i++)); do
  container "idle-$i" "[sleep, '86400']" >"$manifests/idle-$i.yaml"
done
probe 0 >"$manifests/probe.yaml"

now_ms() { date +%s%3N; }
stats() { printf '%s\n' "$@" | sort -n | awk 'NR == 1 {min = $1} {max = $1} END {print min, max}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%.2f MiB", k / 1024}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3fx", a / b}'; }
running() { "$berth" ps -o json | grep -c '"state": "running"' || true; }
json_number() { # FIELD: the first "FIELD": N on stdin (read to its end: no SIGPIPE upstream)
  awk -F': ' -v f="\"$1\"" '!found && $1 ~ f"$" {gsub(/[ ,]/, "", $2); print $2; found = 1}'
}

"$berth" --log-level info daemon --watch "$manifests" --debounce "$debounce" --resync 30s \
  --allow-untrusted-manifests 2>"$work/daemon.log" &
daemon_pid=$!
deadline=$((SECONDS + 180))
until (($(running) >= count + 1)); do
  ((SECONDS < deadline)) || { echo "not all $((count + 1)) containers came up" >&2; tail "$work/daemon.log" >&2; exit 1; }
  sleep 0.2
done
up=$(running)

# containerd, idle beside it: installed when missing, and run with its own
# config (never /etc/containerd's), root, state, sockets and plugin dir
# under the bench dir, never the system's.
if ! command -v containerd >/dev/null; then
  (export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && apt-get install -y -qq containerd) >&2 || true
  # The package may start a system-wide instance; this bench runs its own.
  if command -v systemctl >/dev/null && systemctl is-active -q containerd 2>/dev/null; then
    systemctl disable --now containerd || true
  fi
fi
if command -v containerd >/dev/null; then
  mkdir -p "$work/containerd"
  cat >"$work/containerd/config.toml" <<EOF
version = 2
root = "$work/containerd/root"
state = "$work/containerd/state"
[grpc]
  address = "$work/containerd/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$work/containerd/opt"
EOF
  containerd --config "$work/containerd/config.toml" --root "$work/containerd/root" \
    --state "$work/containerd/state" --address "$work/containerd/containerd.sock" \
    >"$work/containerd.log" 2>&1 &
  containerd_pid=$!
fi

# Idle: nothing changes for 10 s (the resync is 30 s away).
sleep 10
d_rss=$(rss_kib "$daemon_pid") d_pss=$(pss_kib "$daemon_pid")
d_split=$(awk '/^Rss(Anon|File):/ {printf "%s%s %s KiB", sep, $1, $2; sep = " + "}' "/proc/$daemon_pid/status")
c_rss='' c_pss=''
if [[ -n $containerd_pid ]] && kill -0 "$containerd_pid" 2>/dev/null; then
  c_rss=$(rss_kib "$containerd_pid") c_pss=$(pss_kib "$containerd_pid")
  c_version=$(containerd --version | awk '{print $3}')
  terminate "$containerd_pid" || true
fi
containerd_pid=''

# Latency: each round writes the probe with a new ROUND and waits until it
# runs with it.
detect=() to_replaced=() to_started=() total_replaced=() total=() seen=()
generations_before=$("$berth" status -o json | json_number generationsRead)
for ((r = 1; r <= rounds; r++)); do
  probe "$r" >"$manifests/.probe.yaml.tmp"
  t0=$(now_ms)
  mv -f "$manifests/.probe.yaml.tmp" "$manifests/probe.yaml"
  deadline=$((SECONDS + 60))
  until "$berth" inspect probe --show-env >"$work/inspect.json" 2>/dev/null &&
    awk -v want="\"ROUND\": \"$r\"" 'index($0, want) {env = 1} /^  "state": "running"/ {up = 1}
      END {exit !(env && up)}' "$work/inspect.json"; do
    ((SECONDS < deadline)) || { echo "round $r: the probe did not come back" >&2; tail "$work/daemon.log" >&2; exit 1; }
    sleep 0.01
  done
  t_seen=$(now_ms)
  # The shim's record of when `runc run` returned: the container runs.
  started_ms=$(awk '/^  "status": \{/ {s = 1} s' "$work/inspect.json" | json_number startedUnixMs)
  read_ms=$("$berth" status -o json | awk '/"generation": \{/ {g = 1} g' | json_number readUnixMs)
  replaced_ms=$("$berth" events -o json --name probe --kind replaced --since "$t0" |
    tail -1 | grep -o '"unixMs": *[0-9]*' | grep -o '[0-9]*$')
  detect+=("$((read_ms - t0))") to_replaced+=("$((replaced_ms - read_ms))")
  to_started+=("$((started_ms - read_ms))") total_replaced+=("$((replaced_ms - t0))")
  total+=("$((started_ms - t0))") seen+=("$((t_seen - t0))")
  sleep 1 # let the daemon's pass settle before the next write
done
generations=$(($("$berth" status -o json | json_number generationsRead) - generations_before))

# Teardown: SIGTERM leaves the containers running and exits 0.
daemon_rc=0
terminate "$daemon_pid" || daemon_rc=$?
daemon_pid=''

printf '\nberth daemon --watch, %s idle containers + 1 probe (%s running), debounce %s, one run\n\n' \
  "$count" "$up" "$debounce"
printf '%-46s %12s %-28s %s\n' "idle memory after 10 s" "berth daemon" "containerd (empty), same run" "ratio"
if [[ -n $c_rss ]]; then
  printf '%-46s %12s %-28s %s\n' "VmRSS" "$(mib "$d_rss")" "$(mib "$c_rss") ($c_version)" "$(ratio "$d_rss" "$c_rss")"
  printf '%-46s %12s %-28s %s\n' "Pss" "$(mib "$d_pss")" "$(mib "$c_pss")" "$(ratio "$d_pss" "$c_pss")"
else
  printf '%-46s %12s %-28s\n' "VmRSS" "$(mib "$d_rss")" "n/a (containerd not available)"
  printf '%-46s %12s %-28s\n' "Pss" "$(mib "$d_pss")" "n/a"
fi
printf '(target: under 15 MiB; berth daemon VmRSS = %s)\n\n' "$d_split"
printf '%s rounds, ms: %-38s %8s %8s %8s\n' "$rounds" "" "min" "median" "max"
row() { # LABEL VALUES...
  local label=$1 && shift
  read -r lo hi < <(stats "$@")
  printf '%-52s %8s %8s %8s\n' "$label" "$lo" "$(median "$@")" "$hi"
}
row "detection: rename -> generation read" "${detect[@]}"
row "runtime work: read -> replaced (new shim started)" "${to_replaced[@]}"
row "runtime work: read -> running (shim's startedUnixMs)" "${to_started[@]}"
row "total: rename -> replaced" "${total_replaced[@]}"
row "total: rename -> running" "${total[@]}"
row "total as polled: rename -> inspect shows it running" "${seen[@]}"
printf '(detection target: under 250 ms with the %s debounce; %s generations read in %s rounds)\n' \
  "$debounce" "$generations" "$rounds"
m_total=$(median "${total[@]}")
printf '\nkubelet static pods check the files every 20 s: a change is seen after 10 s on average, 20 s at worst\n'
printf 'berth median total (rename -> running) %s ms: %s of 10 s, %s of 20 s\n' "$m_total" \
  "$(ratio "$m_total" 10000)" "$(ratio "$m_total" 20000)"
printf '\ndaemon after SIGTERM: exit %s (want 0)\n' "$daemon_rc"
((daemon_rc == 0))

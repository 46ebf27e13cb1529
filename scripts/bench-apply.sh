#!/usr/bin/env bash
# Apply benchmark, one run: the wall time of `berth apply` bringing up 50
# containers from manifests (networkMode none, then on a bridge network)
# against 50 sequential bare `runc run -d` of equivalent pre-made bundles
# (and `ctr run -d` of a private containerd, installed when missing), and the time of a no-op apply
# over 200 objects (150 containers, 50 volumes): wall time and berth's own
# CPU time (user + system; a no-op apply starts no other process). The
# containers declare `stopSignal: SIGKILL` (`sleep` as PID 1 ignores
# SIGTERM: a graceful delete would wait out each grace period). Each row
# also shows the whole host's busy CPU while it ran (containers' inits
# included), and the table ends with the floor that runc's own CPU puts
# on any parallel run on this host. Root.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh

count=${BENCH_CONTAINERS:-50}
noop_containers=${BENCH_NOOP_CONTAINERS:-150}
noop_volumes=${BENCH_NOOP_VOLUMES:-50}
noop_runs=${BENCH_NOOP_RUNS:-7}
work=${BENCH_DIR:-/var/tmp/berth-bench-apply}
bridge=berth-bench0
subnet=10.239.0.0/22

cargo build --release --locked --quiet
berth=${CARGO_TARGET_DIR:-$PWD/target}/release/berth
rm -rf "$work" && mkdir -p "$work"
# The runtime state lives on tmpfs, as /run/berth does in production.
state=$(mktemp -d /run/berth-bench-apply.XXXXXX)
export BERTH_ROOT=$work/root BERTH_STATE=$state
runc_root=$work/runc

cleanup() {
  set +e
  for name in $("$berth" ps -a -o json 2>/dev/null | awk -F'"' '$2 == "id" {print $4}'); do
    "$berth" rm -f "$name" >/dev/null 2>&1
  done
  "$berth" network rm benchnet >/dev/null 2>&1
  for id in $(runc --root "$runc_root" list -q 2>/dev/null); do
    runc --root "$runc_root" delete -f "$id" >/dev/null 2>&1
  done
  ip link del "$bridge" >/dev/null 2>&1
  if $have_ctr; then
    for id in $(ctr_cmd -n berth-bench containers ls -q 2>/dev/null); do
      ctr_cmd -n berth-bench tasks kill -s KILL "$id" >/dev/null 2>&1
      ctr_cmd -n berth-bench tasks delete -f "$id" >/dev/null 2>&1
      ctr_cmd -n berth-bench containers delete "$id" >/dev/null 2>&1
    done
  fi
  containerd_stop
  rm -rf "$state" "$work"
}
have_ctr=false
source scripts/bench-containerd.sh
trap cleanup EXIT

scripts/make-busybox-image.sh "$work/busybox" >/dev/null
image="oci-layout:$work/busybox"
"$berth" image import "$image" >/dev/null

# Bare-runc bundles: the busybox rootfs and the very config.json berth
# generates (seccomp profile, masks, mounts), each with its own rootfs copy
# and cgroup, and a fresh network namespace from runc (berth's pinned one
# goes with the template).
mkdir -p "$work/rootfs" "$work/etc"
layer=$(ls "$work/root/snapshots/layers" | head -1)
cp -a "$work/root/snapshots/layers/$layer/fs/." "$work/rootfs/"
"$berth" run -d --name "bench-template-$$" "$image" sleep 3600 >/dev/null
template=$state/containers/bench-template-$$
cp "$template/etc/"* "$work/etc/"
sed -e "s#$template/etc#$work/etc#g" \
  -e '/"type": "network",/{N;s/,\n *"path": "[^"]*"//}' \
  "$template/bundle/config.json" >"$work/config.template.json"
"$berth" rm -f "bench-template-$$" >/dev/null
for ((i = 1; i <= count; i++)); do
  bundle=$work/bundles/r$i
  mkdir -p "$bundle/rootfs"
  cp -a "$work/rootfs/." "$bundle/rootfs/"
  sed -e "s#\"/berth[^\"]*bench-template-$$\"#\"/berth-bench-apply-$$-$i\"#" \
    "$work/config.template.json" >"$bundle/config.json"
done

# Manifests: one file per object.
container() { # NAME [EXTRA-SPEC-LINES]
  cat <<EOF
apiVersion: berth/v1
kind: Container
metadata:
  name: $1
spec:
  image: $image
  command: ["sleep", "3600"]
  stopSignal: SIGKILL
${2:-}
EOF
}
mkdir -p "$work/none" "$work/bridge" "$work/noop"
for ((i = 1; i <= count; i++)); do
  container "none-$i" "  networkMode: none" >"$work/none/none-$i.yaml"
  container "bridged-$i" "  networks: [benchnet]" >"$work/bridge/bridged-$i.yaml"
done
cat >"$work/bridge/network.yaml" <<EOF
apiVersion: berth/v1
kind: Network
metadata:
  name: benchnet
spec:
  driver: bridge
  bridge: $bridge
  subnet: $subnet
EOF
for ((i = 1; i <= noop_containers; i++)); do
  container "noop-$i" "  networkMode: none" >"$work/noop/noop-$i.yaml"
done
for ((i = 1; i <= noop_volumes; i++)); do
  printf 'apiVersion: berth/v1\nkind: Volume\nmetadata:\n  name: vol-%s\n' "$i" >"$work/noop/vol-$i.yaml"
done

running() { "$berth" ps -o json | grep -c '"state": "running"' || true; }
apply() { "$berth" apply --allow-untrusted-manifests -f "$1" >>"$work/apply.log"; }
# apply returns once every container is created (its runtime may still be
# starting it); `runc run -d` returns once the container runs. So berth's
# time is taken when `berth ps` shows them all running.
wait_running() { # COUNT
  local deadline=$((SECONDS + 120))
  until (($(running) >= $1)); do
    ((SECONDS < deadline)) || { echo "not all $1 containers came up" >&2; exit 1; }
    sleep 0.02
  done
}
remove_all() { # PREFIX COUNT
  for ((i = 1; i <= $2; i++)); do "$berth" rm -f "$1-$i" >/dev/null; done
}

c0=$(busy_ticks) t0=$(now)
for ((i = 1; i <= count; i++)); do
  runc --root "$runc_root" run -d --bundle "$work/bundles/r$i" "bench-runc-$$-$i" >/dev/null
done
t1=$(now) c1=$(busy_ticks)
runc_time=$(elapsed "$t0" "$t1") runc_cpu=$(cpu_seconds "$c0" "$c1")
runc_up=$(runc --root "$runc_root" list -q | wc -l)
for id in $(runc --root "$runc_root" list -q); do runc --root "$runc_root" delete -f "$id"; done

if containerd_start "$work/containerd"; then
  have_ctr=true
  (cd "$work/busybox" && tar -cf "$work/busybox.tar" .)
  ctr_cmd -n berth-bench image import --index-name berth-bench/busybox "$work/busybox.tar" >/dev/null
  t0=$(now)
  for ((i = 1; i <= count; i++)); do
    ctr_cmd -n berth-bench run -d berth-bench/busybox "bench-ctr-$$-$i" sleep 3600 >/dev/null
  done
  t1=$(now)
  ctr_time=$(elapsed "$t0" "$t1")
  for ((i = 1; i <= count; i++)); do
    ctr_cmd -n berth-bench tasks kill -s KILL "bench-ctr-$$-$i" >/dev/null 2>&1
    ctr_cmd -n berth-bench tasks delete -f "bench-ctr-$$-$i" >/dev/null 2>&1
    ctr_cmd -n berth-bench containers delete "bench-ctr-$$-$i" >/dev/null 2>&1
  done
fi

c0=$(busy_ticks) t0=$(now); apply "$work/none"; t1=$(now); wait_running "$count"; t2=$(now) c1=$(busy_ticks)
none_applied=$(elapsed "$t0" "$t1") none_time=$(elapsed "$t0" "$t2") none_cpu=$(cpu_seconds "$c0" "$c1")
none_up=$(running)
remove_all none "$count"

c0=$(busy_ticks) t0=$(now); apply "$work/bridge"; t1=$(now); wait_running "$count"; t2=$(now) c1=$(busy_ticks)
bridge_applied=$(elapsed "$t0" "$t1") bridge_time=$(elapsed "$t0" "$t2") bridge_cpu=$(cpu_seconds "$c0" "$c1")
bridge_up=$(running)
t0=$(now); "$berth" delete --allow-untrusted-manifests -f "$work/bridge" >>"$work/apply.log"; t1=$(now)
bridge_delete=$(elapsed "$t0" "$t1")

# The no-op apply: everything exists and runs as declared.
t0=$(now); apply "$work/noop"; wait_running "$noop_containers"; t1=$(now)
noop_first=$(elapsed "$t0" "$t1")
noop_up=$(running)
noop_wall=() noop_cpu=()
for ((r = 1; r <= noop_runs; r++)); do
  # In a subshell whose only child is berth: `times` then reports berth's
  # user and system CPU time (children of berth would count too; a no-op
  # apply starts none).
  t0=$(now)
  ( "$berth" apply --allow-untrusted-manifests -f "$work/noop" >"$work/noop.log"
    times >"$work/times" )
  t1=$(now)
  if [[ $(cat "$work/noop.log") != "nothing to do: the host matches the manifests" ]]; then
    echo "the no-op apply changed something:" >&2 && cat "$work/noop.log" >&2 && exit 1
  fi
  read -r user sys < <(tail -1 "$work/times")
  noop_wall+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", (b - a) * 1000}')")
  noop_cpu+=("$(awk -v u="$(seconds "$user")" -v s="$(seconds "$sys")" 'BEGIN {printf "%.0f", (u + s) * 1000}')")
done

printf '\n%s containers each, one run\n\n' "$count"
printf '%-52s %9s %8s %8s %9s\n' "what" "seconds" "ratio" "running" "host CPU"
printf '%-52s %9.3f %8s %8s %8ss\n' "$count x runc run -d (same config.json, no network)" "$runc_time" "1.00x" "$runc_up" "$runc_cpu"
if $have_ctr; then
  printf '%-52s %9.3f %8s\n' "$count x ctr run -d (no CNI)" "$ctr_time" "$(ratio "$ctr_time" "$runc_time")"
else
  printf '%-52s %9s %8s\n' "$count x ctr run -d (no CNI)" "n/a" "(containerd unavailable)"
fi
printf '%-52s %9.3f %8s %8s %8ss\n' "berth apply: $count containers, networkMode none" "$none_time" "$(ratio "$none_time" "$runc_time")" "$none_up" "$none_cpu"
printf '%-52s %9.3f %8s %8s %8ss\n' "berth apply: $count containers, bridge network" "$bridge_time" "$(ratio "$bridge_time" "$runc_time")" "$bridge_up" "$bridge_cpu"
printf '(berth: until all run; apply itself returned after %s s and %s s)\n' "$none_applied" "$bridge_applied"
printf '%-52s %9.3f\n' "berth delete: $count containers and their network" "$bridge_delete"
printf '\nThe floor: the runc runs alone took %s s of CPU; spread over all %s cores\n' "$runc_cpu" "$(nproc)"
printf 'they still take %s of their sequential time, for any runner that starts\n' "$(cpu_floor "$runc_cpu" "$runc_time")"
printf 'each container with runc (berth included: its own share is the rest of its CPU).\n'
if $have_ctr; then
  printf '\nberth apply against ctr run -d: none %s, bridge %s (target <= 0.25x)\n' \
    "$(ratio "$none_time" "$ctr_time")" "$(ratio "$bridge_time" "$ctr_time")"
fi
printf '\nno-op apply over %s objects (%s containers running, %s volumes), %s runs:\n' \
  "$((noop_containers + noop_volumes))" "$noop_up" "$noop_volumes" "$noop_runs"
printf '  wall median %s ms (runs: %s); berth CPU (user+sys) median %s ms (runs: %s)\n' \
  "$(median "${noop_wall[@]}")" "${noop_wall[*]}" "$(median "${noop_cpu[@]}")" "${noop_cpu[*]}"
printf '  (the first apply, creating them all: %s s)\n' "$noop_first"

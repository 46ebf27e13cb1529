#!/usr/bin/env bash
# Scale benchmark, one run: 1000 idle containers on one host.
#
# - berth apply of 1000 containers (networkMode none): time until all run,
#   against 1000 sequential bare `runc run -d` of the same config.json
#   (sharing one read-only rootfs: the floor) and against `ctr run -d` of a
#   private containerd (installed from Debian when missing), measured on a
#   sample and extrapolated;
# - berth's overhead for them (the sum of the shims' Pss, and the RSS of a
#   `berth daemon` following the set) against containerd's shims (Pss of the
#   sample's shims, extrapolated) and containerd itself;
# - the time of `ps`, `plan`, a no-op apply (wall and berth's own CPU) at
#   200, 1000 and 2000 objects (1000 containers + 1000 volumes), and of the
#   delete;
# - 250 containers on one bridge network: apply and delete;
# - the host's busy CPU during the runc runs, berth's apply and delete, and
#   the floor runc's own CPU puts on any parallel run on this host.
#
# The containers declare `stopSignal: SIGKILL`: `sleep` as PID 1 ignores
# SIGTERM, so a graceful stop would wait out each grace period. Root; takes
# several minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh

count=${BENCH_SCALE_COUNT:-1000}
small=${BENCH_SCALE_SMALL:-200}
volumes=${BENCH_SCALE_VOLUMES:-1000}
bridged=${BENCH_SCALE_BRIDGED:-250}
ctr_sample=${BENCH_SCALE_CTR_SAMPLE:-50}
noop_runs=${BENCH_NOOP_RUNS:-5}
work=${BENCH_DIR:-/var/tmp/berth-bench-scale}
bridge=berth-scale0
subnet=10.238.0.0/22

cargo build --release --locked --quiet
berth=${CARGO_TARGET_DIR:-$PWD/target}/release/berth
rm -rf "$work" && mkdir -p "$work"
# Runtime state on tmpfs, as /run/berth is in production.
states=$(mktemp -d /run/berth-bench-scale.XXXXXX)
runc_root=$work/runc
daemon_pid=''
source scripts/bench-containerd.sh
have_ctr=false

use_root() { # NAME: the state root berth works on from now on
  export BERTH_ROOT=$work/root-$1 BERTH_STATE=$states/$1
}

cleanup() {
  set +e
  [[ -n $daemon_pid ]] && kill -TERM "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  for name in small big bridge; do
    use_root "$name"
    [[ -d $BERTH_ROOT ]] || continue
    for dir in "$work"/manifests-*; do
      "$berth" delete --allow-untrusted-manifests --volumes -f "$dir" >/dev/null 2>&1
    done
    for id in $("$berth" ps -a -o json 2>/dev/null | awk -F'"' '$2 == "id" {print $4}'); do
      "$berth" rm -f "$id" >/dev/null 2>&1
    done
  done
  for id in $(runc --root "$runc_root" list -q 2>/dev/null); do
    runc --root "$runc_root" delete -f "$id" >/dev/null 2>&1
  done
  if $have_ctr; then
    for id in $(ctr_cmd -n berth-bench containers ls -q 2>/dev/null); do
      ctr_cmd -n berth-bench tasks kill -s KILL "$id" >/dev/null 2>&1
      ctr_cmd -n berth-bench tasks delete -f "$id" >/dev/null 2>&1
      ctr_cmd -n berth-bench containers delete "$id" >/dev/null 2>&1
    done
  fi
  containerd_stop
  ip link del "$bridge" >/dev/null 2>&1
  rm -rf "$states" "$work"
}
trap cleanup EXIT

mib() { awk -v k="$1" 'BEGIN {printf "%.1f MiB", k / 1024}'; }
running() { "$berth" ps -o json | grep -c '"state": "running"' || true; }
apply() { "$berth" apply --allow-untrusted-manifests --timeout 30m -f "$1" >>"$work/apply.log"; }
delete() { "$berth" delete --allow-untrusted-manifests --volumes -f "$1" >>"$work/apply.log"; }
# apply returns once every container is created (its shim may still be
# starting it); `runc run -d` returns once it runs: berth's time is taken
# when `berth ps` shows them all running.
wait_running() { # COUNT
  local deadline=$((SECONDS + 1800))
  until (($(running) >= $1)); do
    ((SECONDS < deadline)) || { echo "not all $1 containers came up" >&2; exit 1; }
    sleep 0.2
  done
}
shims_pss_kib() {
  local total=0 pid
  for file in "$BERTH_STATE"/containers/*/shim.pid; do
    read -r pid _ <"$file" || continue
    total=$((total + $(pss_kib "$pid")))
  done
  echo "$total"
}
# Wall ms and berth's own CPU ms (user + system) of `berth ARGS...`, run in
# a subshell whose only child is berth, so that `times` reports berth.
measure() { # OUT-PREFIX ARGS...: sets ${prefix}_wall and ${prefix}_cpu (medians over noop_runs)
  local prefix=$1; shift
  local walls=() cpus=() r t0 t1 user sys
  for ((r = 1; r <= noop_runs; r++)); do
    t0=$(now)
    ( "$berth" "$@" >"$work/measure.out" 2>&1 || true
      times >"$work/times" )
    t1=$(now)
    read -r user sys < <(tail -1 "$work/times")
    walls+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", (b - a) * 1000}')")
    cpus+=("$(awk -v u="$(seconds "$user")" -v s="$(seconds "$sys")" 'BEGIN {printf "%.0f", (u + s) * 1000}')")
  done
  printf -v "${prefix}_wall" '%s' "$(median "${walls[@]}")"
  printf -v "${prefix}_cpu" '%s' "$(median "${cpus[@]}")"
}
noop() { # PREFIX DIR: a no-op apply, checked to be one
  measure "$1" apply --allow-untrusted-manifests -f "$2"
  if [[ $(cat "$work/measure.out") != "nothing to do: the host matches the manifests" ]]; then
    echo "the no-op apply over $2 changed something:" >&2 && cat "$work/measure.out" >&2 && exit 1
  fi
}

# The image, and manifests: one file per object.
use_root big
scripts/make-busybox-image.sh "$work/busybox" >/dev/null
image="oci-layout:$work/busybox"
container() { # NAME [EXTRA-SPEC-LINES]
  printf 'apiVersion: berth/v1\nkind: Container\nmetadata:\n  name: %s\nspec:\n  image: %s\n  command: ["sleep", "36000"]\n  stopSignal: SIGKILL\n%s\n' \
    "$1" "$image" "${2:-}"
}
mkdir -p "$work/manifests-small" "$work/manifests-big" "$work/manifests-bridge"
for ((i = 1; i <= small; i++)); do
  container "s-$i" "  networkMode: none" >"$work/manifests-small/s-$i.yaml"
done
for ((i = 1; i <= count; i++)); do
  container "c-$i" "  networkMode: none" >"$work/manifests-big/c-$i.yaml"
done
for ((i = 1; i <= bridged; i++)); do
  container "b-$i" "  networks: [scalenet]" >"$work/manifests-bridge/b-$i.yaml"
done
printf 'apiVersion: berth/v1\nkind: Network\nmetadata:\n  name: scalenet\nspec:\n  driver: bridge\n  bridge: %s\n  subnet: %s\n' \
  "$bridge" "$subnet" >"$work/manifests-bridge/network.yaml"
mkdir -p "$work/volumes"
for ((i = 1; i <= volumes; i++)); do
  printf 'apiVersion: berth/v1\nkind: Volume\nmetadata:\n  name: v-%s\n' "$i" >"$work/volumes/v-$i.yaml"
done
"$berth" image import "$image" >/dev/null

# The floor: bare runc, one read-only rootfs for all, berth's own
# config.json (seccomp profile, masks, mounts) with a cgroup each.
echo "runc: $count x runc run -d..." >&2
layer=$(ls "$BERTH_ROOT/snapshots/layers" | head -1)
mkdir -p "$work/rootfs" "$work/etc"
cp -a "$BERTH_ROOT/snapshots/layers/$layer/fs/." "$work/rootfs/"
"$berth" run -d --name "scale-template-$$" "$image" sleep 3600 >/dev/null
template=$BERTH_STATE/containers/scale-template-$$
cp "$template/etc/"* "$work/etc/"
sed -e "s#$template/etc#$work/etc#g" \
  -e '/"type": "network",/{N;s/,\n *"path": "[^"]*"//}' \
  -e "s#\"path\": \"rootfs\"#\"path\": \"$work/rootfs\"#" \
  -e 's#"readonly": false#"readonly": true#' \
  "$template/bundle/config.json" >"$work/config.template.json"
"$berth" rm -f "scale-template-$$" >/dev/null
for ((i = 1; i <= count; i++)); do
  mkdir -p "$work/bundles/r$i"
  sed -e "s#\"/berth[^\"]*scale-template-$$\"#\"/berth-bench-scale-$$-$i\"#" \
    "$work/config.template.json" >"$work/bundles/r$i/config.json"
done
c0=$(busy_ticks) t0=$(now)
for ((i = 1; i <= count; i++)); do
  runc --root "$runc_root" run -d --bundle "$work/bundles/r$i" "scale-runc-$$-$i" >/dev/null
done
t1=$(now) c1=$(busy_ticks)
runc_time=$(elapsed "$t0" "$t1") runc_cpu=$(cpu_seconds "$c0" "$c1")
runc_up=$(runc --root "$runc_root" list -q | wc -l)
for id in $(runc --root "$runc_root" list -q); do runc --root "$runc_root" delete -f "$id"; done

# containerd on a sample, extrapolated.
if containerd_start "$work/containerd"; then
  have_ctr=true
  echo "containerd: $ctr_sample x ctr run -d..." >&2
  (cd "$work/busybox" && tar -cf "$work/busybox.tar" .)
  ctr_cmd -n berth-bench image import --index-name berth-bench/busybox "$work/busybox.tar" >/dev/null
  t0=$(now)
  for ((i = 1; i <= ctr_sample; i++)); do
    ctr_cmd -n berth-bench run -d berth-bench/busybox "scale-ctr-$$-$i" sleep 36000 >/dev/null
  done
  t1=$(now)
  ctr_sample_time=$(elapsed "$t0" "$t1")
  ctr_shims_kib=0
  for task_pid in $(ctr_cmd -n berth-bench tasks ls | awk 'NR > 1 {print $2}'); do
    shim=$(awk '{print $4}' "/proc/$task_pid/stat")
    echo "$shim"
  done | sort -u >"$work/ctr-shims"
  ctr_shims=$(wc -l <"$work/ctr-shims")
  while read -r shim; do ctr_shims_kib=$((ctr_shims_kib + $(pss_kib "$shim"))); done <"$work/ctr-shims"
  containerd_rss=$(rss_kib "$containerd_pid")
  for ((i = 1; i <= ctr_sample; i++)); do
    ctr_cmd -n berth-bench tasks kill -s KILL "scale-ctr-$$-$i" >/dev/null 2>&1 || true
    ctr_cmd -n berth-bench tasks delete -f "scale-ctr-$$-$i" >/dev/null 2>&1 || true
    ctr_cmd -n berth-bench containers delete "scale-ctr-$$-$i" >/dev/null 2>&1 || true
  done
  containerd_stop
fi

# 200 objects, in a state root of their own.
echo "berth: $small containers..." >&2
use_root small
"$berth" image import "$image" >/dev/null
apply "$work/manifests-small"
wait_running "$small"
noop noop200 "$work/manifests-small"
measure ps200 ps
measure plan200 plan --allow-untrusted-manifests -f "$work/manifests-small"
delete "$work/manifests-small"

# 1000 containers.
echo "berth: $count containers..." >&2
use_root big
c0=$(busy_ticks) t0=$(now); apply "$work/manifests-big"; t1=$(now); wait_running "$count"; t2=$(now) c1=$(busy_ticks)
big_applied=$(elapsed "$t0" "$t1") big_time=$(elapsed "$t0" "$t2") big_cpu=$(cpu_seconds "$c0" "$c1")
big_up=$(running)
big_shims_kib=$(shims_pss_kib)
noop noop1000 "$work/manifests-big"
measure ps1000 ps
measure plan1000 plan --allow-untrusted-manifests -f "$work/manifests-big"

# The daemon following the 1000: its RSS once it has converged and idles.
"$berth" daemon --watch "$work/manifests-big" --allow-untrusted-manifests 2>"$work/daemon.log" &
daemon_pid=$!
deadline=$((SECONDS + 600))
until "$berth" status -o json 2>/dev/null | grep -q '"lastPass": {'; do
  ((SECONDS < deadline)) || { echo "the daemon never finished a pass (see $work/daemon.log)" >&2; exit 1; }
  kill -0 "$daemon_pid" || { echo "the daemon died (see $work/daemon.log)" >&2; exit 1; }
  sleep 0.5
done
sleep 5
daemon_rss=$(rss_kib "$daemon_pid")
kill -TERM "$daemon_pid"; wait "$daemon_pid" || true; daemon_pid=''

# 2000 objects: the 1000 containers and 1000 volumes.
cp "$work"/volumes/*.yaml "$work/manifests-big/"
apply "$work/manifests-big"
noop noop2000 "$work/manifests-big"
measure ps2000 ps
measure plan2000 plan --allow-untrusted-manifests -f "$work/manifests-big"

c0=$(busy_ticks) t0=$(now); delete "$work/manifests-big"; t1=$(now) c1=$(busy_ticks)
big_delete=$(elapsed "$t0" "$t1") big_delete_cpu=$(cpu_seconds "$c0" "$c1")

# 250 on one bridge network.
echo "berth: $bridged containers on a bridge..." >&2
use_root bridge
"$berth" image import "$image" >/dev/null
t0=$(now); apply "$work/manifests-bridge"; t1=$(now); wait_running "$bridged"; t2=$(now)
bridge_time=$(elapsed "$t0" "$t2")
bridge_up=$(running)
t0=$(now); delete "$work/manifests-bridge"; t1=$(now)
bridge_delete=$(elapsed "$t0" "$t1")

overhead_kib=$((big_shims_kib + daemon_rss))
printf '\n%s idle containers on one host, one run (%s CPUs)\n\n' "$count" "$(nproc)"
printf '%-58s %10s %8s %9s\n' "time to running" "seconds" "ratio" "host CPU"
printf '%-58s %10.2f %8s %8ss\n' "$count x runc run -d (shared read-only rootfs; $runc_up ran)" "$runc_time" "1.00x" "$runc_cpu"
if $have_ctr; then
  ctr_time=$(awk -v t="$ctr_sample_time" -v n="$ctr_sample" -v c="$count" 'BEGIN {printf "%.2f", t / n * c}')
  printf '%-58s %10.2f %8s\n' "$count x ctr run -d (extrapolated from $ctr_sample)" "$ctr_time" "$(ratio "$ctr_time" "$runc_time")"
fi
printf '%-58s %10.2f %8s %8ss\n' "berth apply, $count containers, none ($big_up ran)" "$big_time" "$(ratio "$big_time" "$runc_time")" "$big_cpu"
printf '%-58s %10.2f\n' "  (apply itself returned after)" "$big_applied"
printf '%-58s %10.2f %8s %8ss\n' "berth delete, $count containers (and $volumes volumes)" "$big_delete" "" "$big_delete_cpu"
printf '%-58s %10.2f\n' "berth apply, $bridged containers on a bridge ($bridge_up ran)" "$bridge_time"
printf '%-58s %10.2f\n' "berth delete, $bridged containers and their network" "$bridge_delete"
printf '(the runc runs alone, spread over all %s cores, take at least %s of their\n' "$(nproc)" "$(cpu_floor "$runc_cpu" "$runc_time")"
printf ' sequential time: the floor of any runner that starts each container with runc)\n'
printf '\n%-58s %14s\n' "overhead for $count containers" "memory"
printf '%-58s %14s\n' "berth shims, sum of Pss" "$(mib "$big_shims_kib")"
printf '%-58s %14s\n' "berth daemon following the set, VmRSS" "$(mib "$daemon_rss")"
printf '%-58s %14s\n' "berth total" "$(mib "$overhead_kib")"
if $have_ctr; then
  per_shim=$(awk -v k="$ctr_shims_kib" -v n="$ctr_shims" 'BEGIN {printf "%.0f", n ? k / n : 0}')
  ctr_total=$(awk -v p="$per_shim" -v c="$count" -v d="$containerd_rss" 'BEGIN {printf "%.0f", p * c + d}')
  printf '%-58s %14s\n' "containerd shims, Pss $(mib "$per_shim") each x $count (sample: $ctr_shims)" "$(mib $((per_shim * count)))"
  printf '%-58s %14s\n' "containerd + its shims" "$(mib "$ctr_total")"
  printf '%-58s %14s\n' "ratio berth / containerd" "$(ratio "$overhead_kib" "$ctr_total")"
fi
printf '\n%-30s %12s %12s %12s\n' "objects" "$small" "$count" "$((count + volumes))"
printf '%-30s %12s %12s %12s\n' "no-op apply, wall ms" "$noop200_wall" "$noop1000_wall" "$noop2000_wall"
printf '%-30s %12s %12s %12s\n' "no-op apply, berth CPU ms" "$noop200_cpu" "$noop1000_cpu" "$noop2000_cpu"
printf '%-30s %12s %12s %12s\n' "plan, wall ms" "$plan200_wall" "$plan1000_wall" "$plan2000_wall"
printf '%-30s %12s %12s %12s\n' "ps, wall ms" "$ps200_wall" "$ps1000_wall" "$ps2000_wall"
printf '(medians of %s runs; the 2000 are the %s containers and %s volumes)\n' "$noop_runs" "$count" "$volumes"

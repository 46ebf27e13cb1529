#!/usr/bin/env bash
# Job throughput benchmark, one run: a Job of BENCH_COMPLETIONS (200)
# completions of /bin/true at parallelism 2, brought to Complete by `berth
# apply --wait`, against the same number of sequential bare `runc run` of
# an equivalent pre-made bundle (berth's own config.json). Prints runs per
# second for both and the ratio. Root.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh

completions=${BENCH_COMPLETIONS:-200}
parallelism=${BENCH_PARALLELISM:-2}
work=${BENCH_DIR:-/var/tmp/berth-bench-jobs}
rm -rf "$work" && mkdir -p "$work/manifests"
cargo build --release --locked --quiet
berth=${CARGO_TARGET_DIR:-$PWD/target}/release/berth
# The runtime state lives on tmpfs, as /run/berth does in production.
state=$(mktemp -d /run/berth-bench-jobs.XXXXXX)
export BERTH_ROOT=$work/root BERTH_STATE=$state
cleanup() {
  set +e
  "$berth" delete --allow-untrusted-manifests -f "$work/manifests" >/dev/null 2>&1
  for id in $(runc --root "$work/runc" list -q 2>/dev/null); do
    runc --root "$work/runc" delete -f "$id" >/dev/null 2>&1
  done
  rm -rf "$state" "$work"
}
trap cleanup EXIT

scripts/make-busybox-image.sh "$work/busybox" >/dev/null
image="oci-layout:$work/busybox"
"$berth" image import "$image" >/dev/null

# The bare-runc bundle: the busybox rootfs and berth's own config.json.
bundle=$work/bundle
scripts/bench-bundle.sh "$berth" "$image" "$bundle" "/berth-bench-jobs-$$"

cat >"$work/manifests/job.yaml" <<YAML
apiVersion: berth/v1
kind: Job
metadata:
  name: bench
spec:
  completions: $completions
  parallelism: $parallelism
  template:
    image: $image
    networkMode: none
    command: [/bin/true]
YAML


t0=$(now)
for ((i = 1; i <= completions; i++)); do
  runc --root "$work/runc" run --bundle "$bundle" "bench-runc-$$-$i" >/dev/null
done
t1=$(now)
runc_time=$(elapsed "$t0" "$t1")

t0=$(now)
"$berth" apply --allow-untrusted-manifests -f "$work/manifests" --wait --timeout 30m >"$work/apply.log"
t1=$(now)
berth_time=$(elapsed "$t0" "$t1")
summary=$(grep 'Job bench' "$work/apply.log" | tail -1)

rate() { awk -v n="$completions" -v t="$1" 'BEGIN {printf "%.1f", n / t}'; }
printf '\n%s completions of /bin/true, one run each\n\n' "$completions"
printf '%-58s %9s %10s %8s\n' "what" "seconds" "runs/s" "ratio"
printf '%-58s %9.3f %10s %8s\n' "$completions sequential runc run (same config.json)" "$runc_time" "$(rate "$runc_time")" "1.00x"
printf '%-58s %9.3f %10s %8s\n' "berth apply --wait, Job parallelism $parallelism" "$berth_time" "$(rate "$berth_time")" \
  "$(awk -v a="$berth_time" -v b="$runc_time" 'BEGIN {printf "%.2fx", a / b}')"
printf '\n%s\n' "$summary"

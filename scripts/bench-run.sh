#!/usr/bin/env bash
# Container start benchmark: the median wall time of `berth run --rm IMAGE
# /bin/true` against bare `runc run` of an equivalent pre-made bundle (and
# `ctr run --rm` of a private containerd, installed when missing), plus the RSS of one shim. Root.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh

runs=${BENCH_RUNS:-20}
work=${BENCH_DIR:-/var/tmp/berth-bench-run}
rm -rf "$work" && mkdir -p "$work"
cargo build --release --locked --quiet
berth=${CARGO_TARGET_DIR:-$PWD/target}/release/berth
# The runtime state lives on tmpfs, as /run/berth does in production.
state=$(mktemp -d /run/berth-bench-state.XXXXXX)
cleanup() {
  set +e
  # Containers first: a mounted rootfs or a pinned netns cannot be rm -rf'd.
  for name in $("$berth" ps -a -o json 2>/dev/null | awk -F'"' '$2 == "id" {print $4}'); do
    "$berth" rm -f "$name" >/dev/null 2>&1
  done
  containerd_stop
  rm -rf "$state"
}
source scripts/bench-containerd.sh
trap cleanup EXIT
export BERTH_ROOT=$work/root BERTH_STATE=$state

scripts/make-busybox-image.sh "$work/busybox" >/dev/null
image="oci-layout:$work/busybox"
"$berth" image import "$image" >/dev/null

# The bare-runc bundle: the same busybox rootfs and berth's own config.json.
bundle=$work/bundle
scripts/bench-bundle.sh "$berth" "$image" "$bundle" "/berth-bench-run-$$"


runc_times=() berth_times=() ctr_times=()
for ((i = 1; i <= runs; i++)); do
  t0=$(now); runc --root "$work/runc" run --bundle "$bundle" "bench-runc-$$-$i" >/dev/null; t1=$(now)
  runc_times+=("$(elapsed "$t0" "$t1")")
  t0=$(now); "$berth" run --rm --name "bench-$$-$i" "$image" /bin/true >/dev/null; t1=$(now)
  berth_times+=("$(elapsed "$t0" "$t1")")
done
have_ctr=false
if containerd_start "$work/containerd"; then
  have_ctr=true
  (cd "$work/busybox" && tar -cf "$work/busybox.tar" .)
  ctr_cmd -n berth-bench image import --index-name berth-bench/busybox "$work/busybox.tar" >/dev/null
  for ((i = 1; i <= runs; i++)); do
    t0=$(now); ctr_cmd -n berth-bench run --rm berth-bench/busybox "bench-ctr-$$-$i" /bin/true >/dev/null; t1=$(now)
    ctr_times+=("$(elapsed "$t0" "$t1")")
  done
fi

# One shim's resident memory.
"$berth" run -d --name "bench-rss-$$" "$image" sleep 60 >/dev/null
# shim.pid holds `PID START_TIME`.
shim_pid=$(awk '{print $1}' "$state/containers/bench-rss-$$/shim.pid")
sleep 0.5
shim_exe=$(readlink "/proc/$shim_pid/exe")
rss_kib=$(awk '/VmRSS/ {print $2}' "/proc/$shim_pid/status")
anon_kib=$(awk '/RssAnon/ {print $2}' "/proc/$shim_pid/status")
file_kib=$(awk '/RssFile/ {print $2}' "/proc/$shim_pid/status")
pss_kib=$(awk '/^Pss:/ {print $2}' "/proc/$shim_pid/smaps_rollup")
"$berth" rm -f "bench-rss-$$" >/dev/null

m_runc=$(median "${runc_times[@]}")
m_berth=$(median "${berth_times[@]}")
printf '\n%s runs each, median wall time\n\n' "$runs"
printf '%-40s %10s %10s\n' "what" "seconds" "ratio"
printf '%-40s %10.4f %10s\n' "runc run (same config.json)" "$m_runc" "1.00x"
printf '%-40s %10.4f %10s\n' "berth run --rm IMAGE /bin/true" "$m_berth" "$(ratio "$m_berth" "$m_runc")"
if $have_ctr; then
  m_ctr=$(median "${ctr_times[@]}")
  printf '%-40s %10.4f %10s\n' "ctr run --rm IMAGE /bin/true" "$m_ctr" "$(ratio "$m_ctr" "$m_runc")"
else
  printf '%-40s %10s %10s\n' "ctr run --rm" "n/a" "(containerd unavailable)"
fi
printf '\nshim RSS (%s): %s KiB (%s MiB) = private (RssAnon) %s KiB + file-backed (RssFile) %s KiB; proportional (Pss): %s KiB\n' \
  "$(basename "$shim_exe")" "$rss_kib" "$(awk -v k="$rss_kib" 'BEGIN {printf "%.2f", k / 1024}')" \
  "$anon_kib" "$file_kib" "$pss_kib"

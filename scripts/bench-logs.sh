#!/usr/bin/env bash
# `berth logs --tail 10` benchmark: a container with a 50 MiB CRI log, the
# median wall time of `berth logs --tail 10 NAME` against `tail -n 10` of the
# same file (the peer, measured in the same run). With hyperfine (installed
# with apt-get when missing, where that works), else a timed loop. Root.
#
#   scripts/bench-logs.sh
#   BENCH_BERTH=target/debug/berth scripts/bench-logs.sh   # no release build
#   BENCH_LOG_MIB=200 scripts/bench-logs.sh                # a bigger log
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh

runs=${BENCH_RUNS:-50}
log_mib=${BENCH_LOG_MIB:-50}
work=${BENCH_DIR:-/var/tmp/berth-bench-logs}
rm -rf "$work" && mkdir -p "$work"
if [[ -n "${BENCH_BERTH:-}" ]]; then
  berth=$(realpath "$BENCH_BERTH")
else
  cargo build --release --locked --quiet
  berth=${CARGO_TARGET_DIR:-$PWD/target}/release/berth
fi
# The runtime state lives on tmpfs, as /run/berth does in production; the
# logs live under the root, on disk.
state=$(mktemp -d /run/berth-bench-logs.XXXXXX)
name=bench-logs-$$
trap '"$berth" rm -f "$name" >/dev/null 2>&1 || true; rm -rf "$state"' EXIT
export BERTH_ROOT=$work/root BERTH_STATE=$state

scripts/make-busybox-image.sh "$work/busybox" >/dev/null
image="oci-layout:$work/busybox"
"$berth" run -d --name "$name" --log-max-size 64Mi --log-max-files 2 "$image" /bin/true >/dev/null
for _ in $(seq 100); do
  [[ $("$berth" inspect "$name" | grep -c '"phase": "exited"') -gt 0 ]] && break
  sleep 0.1
done
log=$("$berth" inspect "$name" | sed -n 's/.*"logs": "\(.*\)".*/\1/p')
[[ -n $log ]] || { echo "no log path in berth inspect $name" >&2; exit 1; }

# The container has exited and its shim is gone: the log is ours to fill,
# with CRI records as the shim writes them, stdout and stderr mixed.
echo "writing a ${log_mib} MiB CRI log (once)..." >&2
awk -v bytes=$((log_mib << 20)) 'BEGIN {
  n = 0; size = 0
  while (size < bytes) {
    stream = (n % 7 == 0) ? "stderr" : "stdout"
    line = sprintf("2026-12-01T10:%02d:%02d.%09dZ %s F request %d served in %d ms from cache shard %d", \
      (n / 60000) % 60, (n / 1000) % 60, n % 1000000000, stream, n, n % 97, n % 13)
    print line
    size += length(line) + 1; n++
  }
}' >"$log"
bytes=$(stat -c %s "$log")
lines=$(wc -l <"$log")
# Both sides read a warm page cache.
cat "$log" >/dev/null

if ! command -v hyperfine >/dev/null && command -v apt-get >/dev/null; then
  echo "installing hyperfine..." >&2
  apt-get install -y -qq hyperfine >/dev/null 2>&1 || true
fi

berth_cmd="$berth logs --tail 10 $name"
tail_cmd="tail -n 10 $log"

if command -v hyperfine >/dev/null; then
  how="hyperfine, $runs runs each after 3 warm-ups"
  hyperfine -N --style none --warmup 3 --runs "$runs" --export-csv "$work/times.csv" \
    -n berth "$berth_cmd" -n tail "$tail_cmd" >/dev/null
  # command,mean,stddev,median,user,system,min,max (seconds)
  m_berth=$(awk -F, '$1 == "berth" {print $4}' "$work/times.csv")
  m_tail=$(awk -F, '$1 == "tail" {print $4}' "$work/times.csv")
else
  how="a timed loop, $runs runs each (no hyperfine)"
  berth_times=() tail_times=()
  for ((i = 1; i <= runs; i++)); do
    t0=$(now); $berth_cmd >/dev/null 2>&1; t1=$(now)
    berth_times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')")
    t0=$(now); $tail_cmd >/dev/null; t1=$(now)
    tail_times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')")
  done
  m_berth=$(median "${berth_times[@]}")
  m_tail=$(median "${tail_times[@]}")
fi

# The same 10 lines on both sides (berth prints the text after the tag).
diff <($berth_cmd 2>&1 | sort) <(tail -n 10 "$log" | cut -d' ' -f4- | sort) >/dev/null ||
  { echo "berth logs --tail 10 and tail -n 10 disagree" >&2; exit 1; }

printf '\n%s: %s bytes, %s records; %s, median wall time\n\n' "$log" "$bytes" "$lines" "$how"
printf '%-36s %10s %10s\n' "what" "ms" "ratio"
printf '%-36s %10.2f %10s\n' "tail -n 10 FILE" "$(awk -v s="$m_tail" 'BEGIN {print s * 1000}')" "1.00x"
printf '%-36s %10.2f %10s\n' "berth logs --tail 10 NAME" "$(awk -v s="$m_berth" 'BEGIN {print s * 1000}')" "$(ratio "$m_berth" "$m_tail")"

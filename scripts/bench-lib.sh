#!/usr/bin/env bash
# Sourced by the bench scripts: timing, medians and /proc memory readings,
# said once.

now() { date +%s.%N; }
# Seconds from $1 to $2 (both from `now`).
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.4f", b - a}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2fx", a / b}'; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
minimum() { printf '%s\n' "$@" | sort -n | head -1; }
maximum() { printf '%s\n' "$@" | sort -n | tail -1; }
# bash's `times` output (`1m2.345s`) in seconds.
seconds() { awk -v t="$1" 'BEGIN {split(t, a, "m"); sub("s", "", a[2]); print a[1] * 60 + a[2]}'; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
pss_kib() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }

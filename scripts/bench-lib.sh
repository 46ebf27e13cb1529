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
# The whole host's busy CPU time so far (user, nice, system, irq, softirq,
# steal over all CPUs), in clock ticks: it counts every process a step
# starts, a container's init too, which `times` misses once it is reparented.
busy_ticks() { awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8 + $9; exit}' /proc/stat; }
# Seconds of CPU between two busy_ticks readings.
cpu_seconds() { awk -v a="$1" -v b="$2" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", (b - a) / hz}'; }
# The least wall time work of CPU seconds $1 can take on all cores, as a
# ratio of $2 seconds: the floor of any parallel run of that same work.
cpu_floor() { awk -v c="$1" -v w="$2" -v n="$(nproc)" 'BEGIN {printf "%.2fx", c / n / w}'; }

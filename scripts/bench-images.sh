#!/usr/bin/env bash
# Image import + unpack benchmark: berth against `zcat LAYER | tar -x` of the
# same single-layer image, and against `ctr image import` where containerd
# runs. Prints a table with medians and ratios. Root; takes a few minutes.
#
#   scripts/bench-images.sh            # a ~230 MB rootfs-like layer from this host's /usr
#   BENCH_ROOTFS=/path scripts/bench-images.sh   # any directory, e.g. a debootstrap minbase
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${BENCH_RUNS:-5}
work=${BENCH_DIR:-/var/tmp/berth-bench-images}
mkdir -p "$work"
cargo build --release --locked --quiet
berth=$PWD/target/release/berth

layer=$work/layer.tar.gz
if [[ ! -s $layer ]]; then
  echo "building the layer (once)..." >&2
  if [[ -n "${BENCH_ROOTFS:-}" ]]; then
    tar -C "$BENCH_ROOTFS" -cf - . | gzip -6 >"$layer.tmp"
  else
    tar -C / -cf - usr/include usr/lib/python3.11 usr/lib/python3 | gzip -6 >"$layer.tmp"
  fi
  mv "$layer.tmp" "$layer"
fi

# A one-layer OCI image layout around the layer.
layout=$work/layout
if [[ ! -s $layout/index.json ]]; then
  rm -rf "$layout" && mkdir -p "$layout/blobs/sha256"
  layer_hex=$(sha256sum "$layer" | cut -d' ' -f1)
  diff_hex=$(zcat "$layer" | sha256sum | cut -d' ' -f1)
  cp "$layer" "$layout/blobs/sha256/$layer_hex"
  config='{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:'$diff_hex'"]}}'
  printf '%s' "$config" >"$layout/config.json"
  config_hex=$(sha256sum "$layout/config.json" | cut -d' ' -f1)
  mv "$layout/config.json" "$layout/blobs/sha256/$config_hex"
  manifest='{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:'$config_hex'","size":'${#config}'},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:'$layer_hex'","size":'$(stat -c %s "$layer")'}]}'
  printf '%s' "$manifest" >"$layout/manifest.json"
  manifest_hex=$(sha256sum "$layout/manifest.json" | cut -d' ' -f1)
  mv "$layout/manifest.json" "$layout/blobs/sha256/$manifest_hex"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' \
    "$manifest_hex" "${#manifest}" >"$layout/index.json"
fi

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.4f", b - a}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2fx", a / b}'; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

zcat_times=() berth_times=() ctr_times=()
have_ctr=false
if command -v ctr >/dev/null && ctr version >/dev/null 2>&1; then have_ctr=true; fi

for ((i = 1; i <= runs; i++)); do
  rm -rf "$work/zcat-out" "$work/root" && mkdir -p "$work/zcat-out" && sync
  t0=$(now); zcat "$layer" | tar -x -C "$work/zcat-out"; t1=$(now)
  zcat_times+=("$(elapsed "$t0" "$t1")")
  rm -rf "$work/zcat-out" && sync

  t0=$(now); "$berth" --root "$work/root" --state "$work/state" image import "oci-layout:$layout" >/dev/null 2>&1; t1=$(now)
  berth_times+=("$(elapsed "$t0" "$t1")")
  rm -rf "$work/root" && sync

  if $have_ctr; then
    (cd "$layout" && tar -cf "$work/layout.tar" .)
    t0=$(now); ctr -n berth-bench image import "$work/layout.tar" >/dev/null; t1=$(now)
    ctr_times+=("$(elapsed "$t0" "$t1")")
    ctr -n berth-bench image rm "$(ctr -n berth-bench image ls -q | head -1)" >/dev/null 2>&1 || true
  fi
done

size_c=$(stat -c %s "$layer")
size_u=$(zcat "$layer" | wc -c)
m_zcat=$(median "${zcat_times[@]}")
m_berth=$(median "${berth_times[@]}")
printf '\nlayer: %s MiB gzip, %s MiB uncompressed; %s runs, medians\n\n' $((size_c >> 20)) $((size_u >> 20)) "$runs"
printf '%-44s %10s %10s\n' "what" "seconds" "ratio"
printf '%-44s %10.3f %10s\n' "zcat LAYER | tar -x (the floor)" "$m_zcat" "1.00x"
printf '%-44s %10.3f %10s\n' "berth image import (verify + store + unpack)" "$m_berth" "$(ratio "$m_berth" "$m_zcat")"
if $have_ctr; then
  m_ctr=$(median "${ctr_times[@]}")
  printf '%-44s %10.3f %10s\n' "ctr image import" "$m_ctr" "$(ratio "$m_ctr" "$m_zcat")"
else
  printf '%-44s %10s %10s\n' "ctr image import" "n/a" "(containerd not running)"
fi

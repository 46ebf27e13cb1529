#!/usr/bin/env bash
# Image import + unpack benchmark: berth against `zcat LAYER | tar -x` of the
# same single-layer image, and against `ctr image import` of a private
# containerd (installed from Debian when missing). Each round starts from a
# synced, cache-dropped state; prints min/median/max and the ratio of
# medians. Root; takes a few minutes.
#
#   scripts/bench-images.sh            # a ~230 MB rootfs-like layer from this host's /usr
#   BENCH_ROOTFS=/path scripts/bench-images.sh   # any directory, e.g. a debootstrap minbase
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-lib.sh

runs=${BENCH_RUNS:-5}
work=${BENCH_DIR:-/var/tmp/berth-bench-images}
mkdir -p "$work"
cargo build --release --locked --quiet
berth=${CARGO_TARGET_DIR:-$PWD/target}/release/berth

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


# Every round starts from the same place: what the last one wrote is gone
# and on disk (an `rm -rf` of 200 MiB on a disk mounted with `discard` goes
# on in the background otherwise), and the page cache is empty, so each
# side reads its input from disk as a first import would.
clean_slate() {
  sync
  echo 3 >/proc/sys/vm/drop_caches
  sleep 1
}

source scripts/bench-containerd.sh
have_ctr=false
cleanup() {
  set +e
  if $have_ctr; then
    ctr_cmd -n berth-bench image rm --sync "$ctr_image" >/dev/null 2>&1
  fi
  containerd_stop
  rm -rf "$work/zcat-out" "$work/root" "$work/state" "$work/containerd"
}
trap cleanup EXIT
ctr_image=berth-bench/images:latest
if containerd_start "$work/containerd"; then
  have_ctr=true
  (cd "$layout" && tar -cf "$work/layout.tar" .)
fi

# What containerd keeps of an image once it is removed: nothing, when its
# garbage collection (run by `rm --sync`) is done.
ctr_leftovers() {
  local snapshots content
  snapshots=$(ctr_cmd -n berth-bench snapshots ls 2>/dev/null | tail -n +2 | wc -l)
  content=$(ctr_cmd -n berth-bench content ls 2>/dev/null | tail -n +2 | wc -l)
  echo $((snapshots + content))
}

zcat_times=() berth_times=() ctr_times=()
for ((i = 1; i <= runs; i++)); do
  rm -rf "$work/zcat-out" && mkdir -p "$work/zcat-out" && clean_slate
  t0=$(now); zcat "$layer" | tar -x -C "$work/zcat-out"; t1=$(now)
  zcat_times+=("$(elapsed "$t0" "$t1")")
  rm -rf "$work/zcat-out"

  rm -rf "$work/root" "$work/state" && clean_slate
  t0=$(now); "$berth" --root "$work/root" --state "$work/state" image import "oci-layout:$layout" >/dev/null 2>&1; t1=$(now)
  berth_times+=("$(elapsed "$t0" "$t1")")
  rm -rf "$work/root" "$work/state"

  if $have_ctr; then
    clean_slate
    t0=$(now); ctr_cmd -n berth-bench image import --index-name "$ctr_image" "$work/layout.tar" >/dev/null; t1=$(now)
    ctr_times+=("$(elapsed "$t0" "$t1")")
    ctr_cmd -n berth-bench image rm --sync "$ctr_image" >/dev/null
    left=$(ctr_leftovers)
    if [[ $left != 0 ]]; then
      echo "containerd kept $left snapshots or blobs after rm --sync: its next round would not start clean" >&2
      exit 1
    fi
  fi
done

size_c=$(stat -c %s "$layer")
size_u=$(zcat "$layer" | wc -c)
printf '\nlayer: %s MiB gzip, %s MiB uncompressed; %s runs, each from a synced, cache-dropped start\n\n' \
  $((size_c >> 20)) $((size_u >> 20)) "$runs"
printf '%-44s %8s %8s %8s %8s\n' "what (seconds)" "min" "median" "max" "ratio"
row() {
  local what=$1 floor=$2; shift 2
  local m; m=$(median "$@")
  printf '%-44s %8.3f %8.3f %8.3f %8s\n' "$what" "$(minimum "$@")" "$m" "$(maximum "$@")" "$(ratio "$m" "$floor")"
}
m_zcat=$(median "${zcat_times[@]}")
row "zcat LAYER | tar -x (the floor)" "$m_zcat" "${zcat_times[@]}"
row "berth image import (verify + store + unpack)" "$m_zcat" "${berth_times[@]}"
if $have_ctr; then
  row "ctr image import ($(containerd --version | awk '{print $3}'))" "$m_zcat" "${ctr_times[@]}"
else
  printf '%-44s %8s\n' "ctr image import" "n/a (containerd unavailable)"
fi
echo "ratio: median against the floor's median"

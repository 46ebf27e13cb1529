#!/usr/bin/env bash
# make-busybox-image.sh OUTDIR [TAG]
#
# Builds a small OCI image layout (https://github.com/opencontainers/image-spec)
# at OUTDIR from the host's /bin/busybox (Debian package busybox-static):
#
#   OUTDIR/oci-layout        {"imageLayoutVersion":"1.0.0"}
#   OUTDIR/index.json        one manifest, annotated org.opencontainers.image.ref.name=TAG
#   OUTDIR/blobs/sha256/...  manifest, config and one gzip layer
#
# The layer holds /bin/busybox, a /bin symlink per applet (including /bin/sh),
# /etc/passwd and /etc/group (root, nobody/nogroup 65534, app 1000), and the
# directories /tmp (1777), /root, /var/www, /proc, /sys, /dev, /home/app (1000:1000).
#
# Needs only bash, coreutils, GNU tar, gzip and /bin/busybox; no root.
# Reproducible: fixed mtimes, sorted entries, numeric owners, gzip -n, so the
# same busybox binary always gives the same digests.
# Idempotent: builds in a temp dir next to OUTDIR, then swaps it into place.
# Prints the manifest digest (sha256:...) on stdout.
set -euo pipefail

usage() { echo "usage: $0 OUTDIR [TAG]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
[[ -n $1 ]] || usage

out=${1%/}
tag=${2:-latest}
busybox=${BUSYBOX:-/bin/busybox}
mtime=@0                          # 1970-01-01T00:00:00Z, for reproducibility
created=1970-01-01T00:00:00Z

if [[ ! $tag =~ ^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$ ]]; then
  echo "$0: invalid tag: $tag" >&2
  exit 2
fi
if [[ ! -x $busybox ]]; then
  echo "$0: $busybox not found; run scripts/install-deps.sh (package busybox-static)" >&2
  exit 1
fi
for tool in tar gzip sha256sum stat mktemp; do
  command -v "$tool" >/dev/null || { echo "$0: $tool is required" >&2; exit 1; }
done

case "$(uname -m)" in
  x86_64) arch=amd64 ;;
  aarch64) arch=arm64 ;;
  armv7l) arch=arm ;;
  ppc64le) arch=ppc64le ;;
  s390x) arch=s390x ;;
  riscv64) arch=riscv64 ;;
  *) echo "$0: unsupported machine $(uname -m)" >&2; exit 1 ;;
esac

umask 022
export LC_ALL=C

parent=$(dirname -- "$out")
mkdir -p -- "$parent"
work=$(mktemp -d "$parent/.$(basename -- "$out").tmp.XXXXXX")
trap 'rm -rf -- "$work"' EXIT

# ---- root filesystem ---------------------------------------------------------
rootfs=$work/rootfs
mkdir -p "$rootfs"/{bin,etc,tmp,root,var/www,proc,sys,dev,home/app}
chmod 1777 "$rootfs/tmp"
chmod 0700 "$rootfs/root"

cp -- "$busybox" "$rootfs/bin/busybox"
chmod 0755 "$rootfs/bin/busybox"

# One symlink per applet. Debian's busybox-static lists bare names; all go in /bin.
while IFS= read -r applet; do
  applet=${applet##*/}
  [[ -n $applet && $applet != busybox ]] || continue
  ln -sf busybox "$rootfs/bin/$applet"
done < <("$busybox" --list)
ln -sf busybox "$rootfs/bin/sh"

cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
app:x:1000:
nogroup:x:65534:
EOF
chmod 0644 "$rootfs/etc/passwd" "$rootfs/etc/group"

# ---- layer -------------------------------------------------------------------
# Everything is owned by 0:0 except /home/app (1000:1000). GNU tar cannot set
# per-file owners, so the tar is written in two passes from sorted file lists:
# all root-owned entries, then /home/app appended with --owner=1000.
(cd "$rootfs" && find . -mindepth 1 | sed 's|^\./||' | sort) >"$work/all.list"
grep -vxE 'home/app(/.*)?' "$work/all.list" >"$work/root.list"
grep -xE 'home/app(/.*)?' "$work/all.list" >"$work/app.list"

tar_common=(--format=gnu --no-recursion --sort=name --mtime="$mtime" --numeric-owner
            -C "$rootfs")
tar --create --file "$work/layer.tar" "${tar_common[@]}" \
    --owner=0 --group=0 -T "$work/root.list"
tar --append --file "$work/layer.tar" "${tar_common[@]}" \
    --owner=1000 --group=1000 -T "$work/app.list"

diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
gzip -n -9 -c "$work/layer.tar" >"$work/layer.tar.gz"

# ---- blobs -------------------------------------------------------------------
layout=$work/layout
mkdir -p "$layout/blobs/sha256"

# put_blob FILE -> moves FILE into blobs/, sets blob_digest and blob_size
put_blob() {
  local hex
  hex=$(sha256sum "$1" | cut -d' ' -f1)
  blob_size=$(stat -c %s "$1")
  blob_digest=sha256:$hex
  mv -f -- "$1" "$layout/blobs/sha256/$hex"
  chmod 0644 "$layout/blobs/sha256/$hex"
}

put_blob "$work/layer.tar.gz"
layer_digest=$blob_digest layer_size=$blob_size

busybox_version=$("$busybox" 2>&1 | head -n1 | sed 's/ multi-call binary.*//; s/"/\\"/g') || true
printf '%s' "{\"created\":\"$created\",\"architecture\":\"$arch\",\"os\":\"linux\",\
\"config\":{\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"],\
\"Cmd\":[\"sh\"],\"WorkingDir\":\"/\"},\
\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$diff_id\"]},\
\"history\":[{\"created\":\"$created\",\"created_by\":\"scripts/make-busybox-image.sh ($busybox_version)\"}]}" \
  >"$work/config.json"
put_blob "$work/config.json"
config_digest=$blob_digest config_size=$blob_size

printf '%s' "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"$config_digest\",\"size\":$config_size},\
\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"$layer_digest\",\"size\":$layer_size}]}" \
  >"$work/manifest.json"
put_blob "$work/manifest.json"
manifest_digest=$blob_digest manifest_size=$blob_size

printf '%s' "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\
\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"$manifest_digest\",\"size\":$manifest_size,\
\"platform\":{\"architecture\":\"$arch\",\"os\":\"linux\"},\
\"annotations\":{\"org.opencontainers.image.ref.name\":\"$tag\"}}]}" \
  >"$layout/index.json"
printf '%s' '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
chmod 0644 "$layout/index.json" "$layout/oci-layout"

# ---- swap into place ---------------------------------------------------------
if [[ -e $out ]]; then
  mv -- "$out" "$work/old"
fi
mv -- "$layout" "$out"

echo "$manifest_digest"

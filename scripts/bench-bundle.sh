#!/usr/bin/env bash
# bench-bundle.sh BERTH IMAGE BUNDLE CGROUP: the bare-runc peer of a berth
# container, for the bench scripts. BUNDLE gets the image's rootfs (its
# first unpacked layer, from $BERTH_ROOT) and the very config.json berth
# generates for a container of IMAGE (seccomp profile, masks, mounts), with
# /etc files of its own beside it (BUNDLE.etc), the cgroup path CGROUP, and
# a fresh network namespace from runc (berth's pinned one goes with the
# template container). Both sides then start an equivalent container.
set -euo pipefail
berth=$1 image=$2 bundle=$3 cgroup=$4
template_name=bench-template-$$
mkdir -p "$bundle/rootfs" "$bundle.etc"
layer=$(ls "$BERTH_ROOT/snapshots/layers" | head -1)
cp -a "$BERTH_ROOT/snapshots/layers/$layer/fs/." "$bundle/rootfs/"
"$berth" run -d --name "$template_name" "$image" /bin/true >/dev/null
template=$BERTH_STATE/containers/$template_name
cp "$template/etc/"* "$bundle.etc/"
sed -e "s#$template/etc#$bundle.etc#g" -e "s#\"/berth[^\"]*$template_name\"#\"$cgroup\"#" \
  -e '/"type": "network",/{N;s/,\n *"path": "[^"]*"//}' \
  "$template/bundle/config.json" >"$bundle/config.json"
"$berth" rm -f "$template_name" >/dev/null

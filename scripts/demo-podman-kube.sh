#!/usr/bin/env bash
# Exports the busybox quickstart with `berth export kubernetes` and runs it
# with `podman kube play`, then tears it down. A demonstration, not part of
# the test suite. Runs as root; installs podman from Debian when missing.
#
#   scripts/demo-podman-kube.sh
#
# What it shows: the exported Deployment of `web` runs under podman as it
# did under berth (busybox httpd serving examples/quickstart/site through
# the hostPath the bind mount became). `client` waits in its init container
# for the name `web`, which resolves through a Kubernetes Service; podman
# has no Services (and its default network no DNS), so the script gives
# that wait a bounded time and says what happened.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "$(id -u)" != "0" ]]; then
  echo "error: run as root (podman kube play of hostPath volumes and the image import)" >&2
  exit 1
fi
# catatonit: the init of podman's pause container, which a pod needs.
if ! command -v podman >/dev/null || ! command -v catatonit >/dev/null; then
  echo "installing podman"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman catatonit >/dev/null
fi
for tool in skopeo; do
  command -v "$tool" >/dev/null || { echo "error: $tool is missing (scripts/install-deps.sh installs it)" >&2; exit 1; }
done

# podman raises a container's open-files and process limits to maxima;
# where this process's own hard limit is lower (a sandbox, a container),
# runc may not, so ask for what this shell has.
conf="$(mktemp /tmp/berth-kube-demo-containers.XXXXXX.conf)"
printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n' \
  "$(ulimit -Sn)" "$(ulimit -Hn)" "$(ulimit -Su)" "$(ulimit -Hu)" >"$conf"
export CONTAINERS_CONF="$conf"

cargo build --quiet --locked
berth=target/debug/berth
image=localhost/busybox:latest
[[ -d examples/images/busybox ]] || scripts/make-busybox-image.sh examples/images/busybox >/dev/null

out="$(mktemp -d /tmp/berth-kube-demo.XXXXXX)"
cleanup() {
  for file in "$out"/deployment-*.yaml; do
    [[ -e "$file" ]] && podman kube down "$file" >/dev/null 2>&1 || true
  done
  podman rmi -f "$image" >/dev/null 2>&1 || true
  rm -rf "$out" "$conf"
}
trap cleanup EXIT

echo "== the quickstart's image into podman's store as $image"
skopeo copy --quiet oci:examples/images/busybox:latest "containers-storage:$image"

echo "== berth export kubernetes -f examples/quickstart -o $out"
"$berth" export kubernetes -f examples/quickstart -o "$out" --wait-image "$image"
ls "$out"

echo "== podman kube play deployment-web.yaml"
podman kube play "$out/deployment-web.yaml"
web_container="$(podman ps --filter label=berth/container=web --format '{{.Names}}' | grep -v infra | head -n 1 || true)"
[[ -n "$web_container" ]] || web_container="$(podman ps --format '{{.Names}}' | grep -- '-web$' | head -n 1)"
echo "web runs as podman container $web_container"
for _ in $(seq 1 20); do
  if page="$(podman exec "$web_container" wget -q -O - http://127.0.0.1:8080/ 2>/dev/null)"; then
    break
  fi
  sleep 1
done
echo "web serves: ${page:-nothing}"
[[ "$page" == *"berth"* ]] || { echo "error: web did not serve the quickstart page" >&2; exit 1; }

echo "== podman kube play deployment-client.yaml (its init container waits for web:8080, 60s at most)"
if timeout 60 podman kube play "$out/deployment-client.yaml"; then
  echo "client started: the wait for web:8080 succeeded"
  podman ps --format '{{.Names}} {{.Status}}'
else
  echo "client did not start within 60s: its init container waits for the Service name web," \
    "which podman does not provide (a Kubernetes cluster does)"
fi

echo "== podman kube down"

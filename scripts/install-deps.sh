#!/usr/bin/env bash
# Installs the system packages berth and its tests need, when missing.
# Safe to rerun: packages already present are left alone.
set -euo pipefail

packages=(
  runc                          # the default OCI runtime
  containernetworking-plugins   # bridge, host-local, portmap, loopback, firewall
  busybox-static                # /bin/busybox for the example and test images
  iproute2                      # ip netns / link inspection in network tests
  iptables                      # portmap and ipMasq need it
  skopeo                        # pushes test images into the local registry
  docker-registry               # the real OCI distribution registry for pull tests
  apache2-utils                 # htpasswd, for the registry auth tests
  man-db                        # man -l, to render the generated pages in tests/install.rs
  groff-base                    # the formatter man runs
  python3-venv                  # a venv for kubernetes-validate (scripts/kube-validate-env.sh)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # The registry package starts a system-wide instance; tests start their own.
  if command -v systemctl >/dev/null && systemctl is-active -q docker-registry 2>/dev/null; then
    systemctl disable --now docker-registry || true
  fi
fi

#!/usr/bin/env bash
# Install the Debian packages the real test node (tests/cluster/real_node.py) and the test images need.
#
# Why a script: these machines start fresh, and the real node runs containers through the host's containerd, runc
# and CNI plugins, with iptables rules for kube-proxy; the test images are built with podman/buildah/mmdebstrap. The
# Go tools are built from sources (build.sh); these come from Debian (bookworm: containerd 1.6.20, runc 1.1.5,
# CNI plugins 1.1.1), the only other registry these machines reach.
#
# Idempotent: does nothing (and needs no network) when every package is installed. Installing needs root; it runs
# "apt-get update" first, and --no-install-recommends keeps it small. Debian's containerd package ships no init
# script, so no host-wide containerd is started (real_node.py runs its own, with private paths).
#
# Usage:
#   tests/cluster/install-packages.sh          install what is missing
#   tests/cluster/install-packages.sh --check  exit 1 (listing them) if any is missing; install nothing
set -euo pipefail

PACKAGES=(
  # the real node
  containerd runc containernetworking-plugins iptables conntrack iproute2 util-linux procps openssl
  # the test images (tests/cluster/images/)
  podman buildah skopeo mmdebstrap uidmap slirp4netns ca-certificates
)

log() { printf '[install-packages.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

missing() {
  local package status
  for package in "${PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)"
    [[ "$status" == "install ok installed" ]] || echo "$package"
  done
}

main() {
  command -v dpkg-query >/dev/null || { log "not a Debian system: install ${PACKAGES[*]} by other means"; exit 1; }
  local todo
  todo="$(missing | tr '\n' ' ')"
  if [[ -z "${todo// /}" ]]; then
    log "all ${#PACKAGES[@]} packages installed"
    return
  fi
  if [[ "${1:-}" == "--check" ]]; then
    log "missing: ${todo}"
    exit 1
  fi
  [[ "$(id -u)" == 0 ]] || { log "missing: ${todo}; run this script as root to install them"; exit 1; }
  local start=$SECONDS
  log "installing: ${todo}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086 # one word per package
  apt-get install -y -qq --no-install-recommends $todo
  log "installed in $((SECONDS - start))s"
}

main "$@"

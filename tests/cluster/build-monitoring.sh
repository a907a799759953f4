#!/usr/bin/env bash
# Build what the tests of the stores' monitoring need, pinned and cached under ${VENTA_CACHE_DIR:-~/.cache/venta}:
#
#   tests/cluster/build-monitoring.sh exporters   postgres_exporter and redis_exporter at the versions the operator's
#                                                 default images pin (operator/venta_operator/spec_schema.py), for
#                                                 tests/integration/observability/test_store_exporters.py, which runs
#                                                 them against real servers; prints the two binaries' paths
#   tests/cluster/build-monitoring.sh crds        the Prometheus Operator's ServiceMonitor and PrometheusRule CRDs,
#                                                 for tests/e2e/operator/test_operator_store_monitoring.py (KWOK);
#                                                 prints their directory
#
# Why from source: the tests run without a container engine and reach only package registries. `go install
# module@version` fails for both exporters (the module proxy refuses their version lists, which `go install` reads for
# deprecation notices), so, as tests/cluster/build.sh does for Prometheus, each module's source is copied out of the
# module cache, its hash checked against the pinned one, and built there as the main module. The CRDs: the module
# proxy serves the Prometheus Operator's API types (pkg/apis/monitoring) but not its root module, where the published
# CRD files live; they are generated from those types by controller-gen, as upstream generates them.
#
# Idempotent: each result goes to <cache>/<tool>-<version>/ and is built only when missing there; a build happens in a
# temporary directory moved into place at the end. The NATS exporter (github.com/nats-io/prometheus-nats-exporter)
# is not here: the module proxy serves none of its versions to this machine.
set -euo pipefail

POSTGRES_EXPORTER_VERSION="v0.17.1"
POSTGRES_EXPORTER_SUM="h1:+gByb2KEhVoQ9Klf+JQHua9ff6+aT5YtkGJB2p65/iE="
REDIS_EXPORTER_VERSION="v1.74.0"
REDIS_EXPORTER_SUM="h1:/ESQZa3xqpQxiQmk4tpo90Y8gPWLpYVF6E5SR262KtM="
# The newest version of the Prometheus Operator's API module the module proxy serves; controller-gen at a version
# whose Go requirements the toolchain meets.
PROMETHEUS_OPERATOR_VERSION="v0.95.2"
PROMETHEUS_OPERATOR_SUM="h1:DQKGQhE39ua9V+ZCro38z32jP8nAtIZ27f3qdAorXHg="
CONTROLLER_TOOLS_VERSION="v0.20.1"
CONTROLLER_TOOLS_SUM="h1:gkfMt9YodI0K85oT8rVi80NTXO/kDmabKR5Ajn5GYxs="

CACHE="${VENTA_CACHE_DIR:-${HOME}/.cache/venta}"

log() { echo "build-exporters: $*" >&2; }

# module_source <module@version> <pinned h1: sum> <dest>: a writable copy of a module's source, its hash checked.
# The pinned hash is the check, so the module itself is not looked up in the checksum database (GONOSUMDB), whose
# answers the module proxy does not give for every version (redis_exporter v1.74.0 failed a cold CI run that way);
# the dependencies a build then fetches are still checked against the module's go.sum.
module_source() {
  local info src got
  info="$(cd "$(dirname "$3")" && GONOSUMDB="${1%@*}" go mod download -json "$1")" ||
    { log "go mod download $1: ${info}"; return 1; }
  src="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$info")"
  got="$(sed -n 's/^[[:space:]]*"Sum": "\(.*\)",$/\1/p' <<<"$info")"
  if [[ "$got" != "$2" ]]; then
    log "$1: the module's hash is ${got}, not the pinned $2"
    return 1
  fi
  cp -r "$src" "$3"
  chmod -R u+w "$3" # the module cache is read-only
}

# build <name> <module> <version> <sum> <package in the module>
build() {
  local name="$1" module="$2" version="$3" sum="$4" package="$5"
  local dir="${CACHE}/${name}-${version}"
  if [[ -x "${dir}/bin/${name}" ]]; then
    echo "${dir}/bin/${name}"
    return
  fi
  mkdir -p "$CACHE"
  local tmp
  tmp="$(mktemp -d "${dir}.tmp.XXXXXX")"
  module_source "${module}@${version}" "$sum" "$tmp/src" || { rm -rf "$tmp"; exit 1; }
  log "building ${name} ${version}"
  (cd "$tmp/src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/bin/${name}" "$package")
  rm -rf "$tmp/src"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  echo "${dir}/bin/${name}"
}

exporters() {
  build postgres_exporter github.com/prometheus-community/postgres_exporter "$POSTGRES_EXPORTER_VERSION" \
    "$POSTGRES_EXPORTER_SUM" ./cmd/postgres_exporter
  build redis_exporter github.com/oliver006/redis_exporter "$REDIS_EXPORTER_VERSION" "$REDIS_EXPORTER_SUM" .
}

crds() {
  local dir="${CACHE}/prometheus-operator-crds-${PROMETHEUS_OPERATOR_VERSION}"
  if [[ -f "${dir}/monitoring.coreos.com_servicemonitors.yaml" ]]; then
    echo "$dir"
    return
  fi
  mkdir -p "$CACHE"
  local tmp
  tmp="$(mktemp -d "${dir}.tmp.XXXXXX")"
  module_source "sigs.k8s.io/controller-tools@${CONTROLLER_TOOLS_VERSION}" "$CONTROLLER_TOOLS_SUM" "$tmp/tools" &&
    module_source "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring@${PROMETHEUS_OPERATOR_VERSION}" \
      "$PROMETHEUS_OPERATOR_SUM" "$tmp/monitoring" || { rm -rf "$tmp"; exit 1; }
  log "building controller-gen ${CONTROLLER_TOOLS_VERSION}, generating the monitoring.coreos.com CRDs"
  (cd "$tmp/tools" && go build -o "$tmp/controller-gen" ./cmd/controller-gen)
  # maxDescLen=0: no descriptions, so that the CRDs fit client-side apply's last-applied annotation
  (cd "$tmp/monitoring" && "$tmp/controller-gen" crd:crdVersions=v1,maxDescLen=0 paths=./v1 output:crd:dir="$tmp/crds")
  mkdir -p "$tmp/out"
  cp "$tmp/crds/monitoring.coreos.com_servicemonitors.yaml" "$tmp/crds/monitoring.coreos.com_prometheusrules.yaml" \
    "$tmp/out/"
  rm -rf "$dir"
  mv "$tmp/out" "$dir"
  rm -rf "$tmp"
  echo "$dir"
}

case "${1:-}" in
  exporters) exporters ;;
  crds) crds ;;
  *)
    echo "usage: $0 exporters|crds" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# Build the tools of the test cluster (a real control plane, run by kwokctl with fake nodes) from Go sources, and
# those of the real node (kubelet, kube-proxy, CoreDNS, the pause and test images; tests/cluster/real_node.py).
#
# Why: this project's tests need a real kube-apiserver (CEL validation, admission, the real controllers), but the
# machines they run on have no container engine (kind/k3d/minikube are out) and reach only package registries, so
# every binary is compiled from the Go module proxy with nothing but a Go toolchain. See docs/test-cluster.md.
#
# Idempotent: each tool goes to ${VENTA_CACHE_DIR:-~/.cache/venta}/<tool>-<version>/bin/ and is built only when its
# binary is missing there. A build happens in a temporary directory that is moved into place at the end, so an
# interrupted build never looks finished. Binaries are never committed.
#
# Usage:
#   tests/cluster/build.sh              build what is missing, then write <cache>/cluster-tools.env
#   tests/cluster/build.sh --print-env  only print the env file's content (paths; nothing is built)
#   tests/cluster/build.sh --no-packages
#                                       do not check/install the real node's Debian packages (install-packages.sh)
#   tests/cluster/build.sh --regen-kube-gomod
#                                       rewrite tests/cluster/go/kube/go.mod and go.sum for KUBE_VERSION
#                                       (run after changing KUBE_VERSION below, then commit both files)
#   tests/cluster/build.sh --regen-otelcol-gomod
#                                       rewrite tests/cluster/go/otelcol/go.mod and go.sum from its builder manifest
#                                       (run after changing OTELCOL_VERSION and the manifest, then commit both files)
# Environment: VENTA_CACHE_DIR (default ~/.cache/venta).
set -euo pipefail

# ---- pinned versions -------------------------------------------------------------------------------------------------
# Kubernetes 1.36 is the newest minor kwok v0.8.0 supports (its supported_releases.txt and default KubeVersion),
# and k8s.io/kubernetes v1.36 requires go 1.26.
KUBE_VERSION="v1.36.3"
# kwokctl picks etcd 3.6.x for Kubernetes 1.34-1.36; this is the newest 3.6 patch.
ETCD_VERSION="v3.6.16"
KWOK_VERSION="v0.8.0"
HELM_VERSION="v4.3.1"
# The manifest linter: kube-linter cannot be had here (the module proxy answers 403 for every version of
# golang.stackrox.io/kube-linter); kube-score checks the same security and reliability properties.
KUBE_SCORE_VERSION="v1.20.0"
# Prometheus server and promtool for tests/integration/observability. v3.15.0 (module v0.315.0) is the newest release
# whose dependencies the module proxy serves: v3.16.0 needs pseudo-versions of google/pprof, client_golang/exp and
# pb33f/go-yaml that it answers 403 for. Tags and module versions differ: Prometheus 3.x.y is module v0.3xx.y.
PROMETHEUS_VERSION="v3.15.0"
# CoreDNS for the real node's cluster DNS (only a few plugins are compiled in: go/coredns/main.go). Newest release;
# it uses client-go v0.37, within the supported skew of the 1.36 API server.
COREDNS_VERSION="v1.15.0"
# The inner loop on a local cluster (tests/e2e/real/test_tilt.py). The module proxy serves only some exact versions of
# Tilt (v0.34.0 is the newest it answers), and the checksum database does not know them: the module's hash is pinned
# here instead and checked before the build.
TILT_VERSION="v0.34.0"
TILT_SUM="h1:oJAAkIiV34TEdlNqjDWkKG29hsAln7Ao28F+RTEZN24="
# The distribution registry: what kind's local-registry set-up runs in a container, here a process on the host.
REGISTRY_VERSION="v3.1.2"
# kind's own config loading, validation and containerd patching, for deploy/kind/cluster.yaml (go/kindcheck).
KIND_VERSION="v0.33.0"
# The OpenTelemetry Collector that validates (and runs) observability/logs/otel-collector.yaml, built by the
# OpenTelemetry Collector Builder (ocb, go.opentelemetry.io/collector/cmd/builder, the same version) with exactly the
# components of that config (go/otelcol/builder-config.yaml, whose versions must be this one). The chart's
# logs.collector.image.tag is the contrib image of the same version.
OTELCOL_VERSION="v0.165.0"
# CloudNativePG's CRDs (not a binary): the KWOK tests install them to check the operator's spec.postgres.cloudNativePG
# against CloudNativePG's own schema (tests/e2e/operator/test_operator_cloudnativepg.py). Taken from its Go module,
# whose hash is pinned here (the module proxy does not list its versions; it serves this one).
CNPG_VERSION="v1.28.1"
CNPG_SUM="h1:HdOUWgFhta558uHfXeO/199qCApxaj5yi05x6nWNmgs="
# cert-manager's and Gateway API's CRDs (not binaries): the KWOK tests install them to check spec.ingress's Certificate
# and HTTPRoute against their own schemas (tests/e2e/operator/test_operator_ingress.py). From their Go modules, whose
# hashes are pinned here (gateway-api v1.7 needs a newer Go than ours to be downloaded as a module).
CERT_MANAGER_VERSION="v1.21.2"
CERT_MANAGER_SUM="h1:UWgoYM+KLNtRlqmoWOKjKBOBUPVHeepQ6/ac3ERJW68="
GATEWAY_API_VERSION="v1.6.3"
GATEWAY_API_SUM="h1:lKpJa5bGlraC/QeACvCpsHLdmO6y0iKfzVl6gzaFEYc="

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${VENTA_CACHE_DIR:-${HOME}/.cache/venta}"
ENV_FILE="${CACHE}/cluster-tools.env"

KUBE_DIR="${CACHE}/kube-${KUBE_VERSION}"
ETCD_DIR="${CACHE}/etcd-${ETCD_VERSION}"
KWOK_DIR="${CACHE}/kwok-${KWOK_VERSION}"
HELM_DIR="${CACHE}/helm-${HELM_VERSION}"
KUBE_SCORE_DIR="${CACHE}/kube-score-${KUBE_SCORE_VERSION}"
PROMETHEUS_DIR="${CACHE}/prometheus-${PROMETHEUS_VERSION}"
COREDNS_DIR="${CACHE}/coredns-${COREDNS_VERSION}"
TILT_DIR="${CACHE}/tilt-${TILT_VERSION}"
REGISTRY_DIR="${CACHE}/registry-${REGISTRY_VERSION}"
KINDCHECK_TAG="${KIND_VERSION}-$(sha256sum "$HERE/go/kindcheck/main.go" | cut -c1-8)"
KINDCHECK_DIR="${CACHE}/kindcheck-${KINDCHECK_TAG}"
# Named after the manifest's hash too: a component added to it is a new build.
OTELCOL_TAG="${OTELCOL_VERSION}-$(sha256sum "$HERE/go/otelcol/builder-config.yaml" | cut -c1-8)"
OTELCOL_DIR="${CACHE}/otelcol-${OTELCOL_TAG}"
CNPG_DIR="${CACHE}/cloudnative-pg-${CNPG_VERSION}"
EDGE_CRDS_DIR="${CACHE}/edge-crds-cert-manager-${CERT_MANAGER_VERSION}-gateway-api-${GATEWAY_API_VERSION}"
# The pause and testbox images have no upstream version: they are named after a hash of their sources, so an edited
# source is a new directory and a new image tag (containerd never runs a stale image under the old name).
NODE_IMAGES_TAG="$(cat "$HERE/go/pause/main.go" "$HERE/go/testbox/main.go" "$HERE/image_archive.py" | sha256sum | cut -c1-12)"
NODE_IMAGES_DIR="${CACHE}/node-images-${NODE_IMAGES_TAG}"

# The module cache and GOPATH stay at Go's defaults so that every build (and other Go work) shares one module cache.
export GOFLAGS="-mod=mod"
export CGO_ENABLED=0

LOG_NAME=build.sh
# shellcheck source=tests/cluster/cached_build.sh
source "$HERE/cached_build.sh"

# gomod_of <module@version>: path of that module's go.mod in the module cache (downloads it if needed).
gomod_of() {
  local dir
  dir="$(mktemp -d)" # outside any module, so that "go mod download" takes a module@version
  (cd "$dir" && go mod download -json "$1" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  rmdir "$dir"
}

# write_kube_gomod <dir>: write the wrapper module's go.mod for KUBE_VERSION into <dir> and tidy it.
# k8s.io/kubernetes cannot be required as is: its go.mod replaces every staging module k8s.io/<m> with a local
# ./staging/src/k8s.io/<m> path, which does not exist for a dependency. The wrapper replaces each of them with the
# published k8s.io/<m> v0.<minor>.<patch> instead; the list is read from k8s.io/kubernetes's own replace block.
write_kube_gomod() {
  local dir="$1" upstream staging_version
  upstream="$(gomod_of "k8s.io/kubernetes@${KUBE_VERSION}")"
  [[ -f "$upstream" ]] || die "could not download k8s.io/kubernetes@${KUBE_VERSION}"
  staging_version="v0${KUBE_VERSION#v1}" # v1.36.3 -> v0.36.3
  {
    echo "// Wrapper module that builds kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy and kubectl ${KUBE_VERSION}."
    echo "// Generated by tests/cluster/build.sh --regen-kube-gomod: edit KUBE_VERSION there, not this file."
    echo "module venta-test-cluster/kube"
    echo
    awk '/^go /' "$upstream"
    echo
    awk '/^godebug /' "$upstream"
    echo
    echo "require k8s.io/kubernetes ${KUBE_VERSION}"
    echo
    echo "replace ("
    awk -v v="$staging_version" '$2 == "=>" && $3 ~ /^\.\/staging\// { printf "\t%s => %s %s\n", $1, $1, v }' "$upstream"
    echo ")"
  } >"$dir/go.mod"
  rm -f "$dir/go.sum"
  (cd "$dir" && go mod tidy)
}

# ---- kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl: one multi-call binary --------
KUBE_COMMANDS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl cri-reset)

build_kube() {
  local bin="${KUBE_DIR}/bin" c cached=1
  for c in "${KUBE_COMMANDS[@]}"; do
    [[ -x "$bin/$c" ]] || cached=0 # a binary built before kubelet/kube-proxy were added lacks their symlinks
  done
  if ((cached)); then
    log "kube ${KUBE_VERSION}: cached in ${KUBE_DIR}"
    return
  fi
  local start=$SECONDS tmp src minor
  log "kube ${KUBE_VERSION}: building ${KUBE_COMMANDS[*]} (10-20 min cold)..."
  tmp="$(mk_tmp "$KUBE_DIR")"
  # Build from a copy so that go (with -mod=mod) never rewrites the files kept in the repo.
  src="$tmp/src"
  mkdir -p "$src"
  cp "$HERE"/go/kube/*.go "$src/"
  if grep -qE "^(require)?[[:space:]]+k8s.io/kubernetes ${KUBE_VERSION}\$" "$HERE/go/kube/go.mod" 2>/dev/null; then
    cp "$HERE/go/kube/go.mod" "$HERE/go/kube/go.sum" "$src/"
  else
    log "kube ${KUBE_VERSION}: tests/cluster/go/kube/go.mod is for another version; generating one"
    write_kube_gomod "$src"
  fi
  minor="${KUBE_VERSION#v1.}"
  minor="${minor%%.*}"
  # kwokctl runs "<binary> --version" to choose the flags it passes: the version must be the real one.
  local ldflags="-s -w" pkg key val
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    for key in gitVersion=${KUBE_VERSION} gitMajor=1 gitMinor=${minor} gitTreeState=clean buildDate=1970-01-01T00:00:00Z; do
      val="${key#*=}"
      key="${key%%=*}"
      ldflags+=" -X ${pkg}.${key}=${val}"
    done
  done
  (cd "$src" && go build -trimpath -ldflags "$ldflags" -o "$tmp/bin/kube" .)
  for c in "${KUBE_COMMANDS[@]}"; do
    ln -s kube "$tmp/bin/$c"
  done
  rm -rf "$src"
  "$tmp/bin/kube-apiserver" --version >&2
  finish "$tmp" "$KUBE_DIR"
  log "kube ${KUBE_VERSION}: built in $(elapsed $start)"
}

# ---- etcd and CoreDNS: wrapper modules (go/<tool>/: main.go, go.mod, go.sum) -----------------------------------------
# Neither "go install"s (replace directives in their own go.mod), so a small main module requires the upstream one
# and calls its entry point: etcd's etcdmain.Main, and CoreDNS's coremain.Run with only the plugins the real node
# needs (the cloud plugins would triple the build; see go/coredns/main.go).
# build_wrapper <tool> <version> <final dir> <upstream module> <version flag>
build_wrapper() {
  local tool="$1" version="$2" dir="$3" module="$4" version_flag="$5"
  if [[ -x "${dir}/bin/${tool}" ]]; then
    log "${tool} ${version}: cached in ${dir}"
    return
  fi
  local start=$SECONDS tmp src here="$HERE/go/${tool}"
  log "${tool} ${version}: building (a few minutes cold)..."
  tmp="$(mk_tmp "$dir")"
  src="$tmp/src"
  mkdir -p "$src"
  cp "$here/main.go" "$src/"
  if grep -qE "^(require)?[[:space:]]+${module} ${version}\$" "$here/go.mod" 2>/dev/null; then
    cp "$here/go.mod" "$here/go.sum" "$src/"
  else
    log "${tool} ${version}: tests/cluster/go/${tool}/go.mod is for another version; generating one"
    (cd "$src" && go mod init "venta-test-cluster/${tool}" && go get "${module}@${version}" && go mod tidy)
  fi
  (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$tmp/bin/${tool}" .)
  rm -rf "$src"
  "$tmp/bin/${tool}" "$version_flag" >&2
  finish "$tmp" "$dir"
  log "${tool} ${version}: built in $(elapsed $start)"
}

build_etcd() { build_wrapper etcd "$ETCD_VERSION" "$ETCD_DIR" go.etcd.io/etcd/server/v3 --version; }
build_coredns() { build_wrapper coredns "$COREDNS_VERSION" "$COREDNS_DIR" github.com/coredns/coredns -version; }

# ---- tools that "go install" as they are ------------------------------------------------------------------------------
# go_install <final dir> <ldflags> <package@version>...
go_install() {
  local dir="$1" ldflags="$2" tmp
  shift 2
  tmp="$(mk_tmp "$dir")"
  # "|| ..." explicitly: set -e does not apply inside a function called as an if condition (see kube-linter).
  if ! (cd "$tmp" && GOBIN="$tmp/bin" go install -trimpath -ldflags "$ldflags" "$@"); then
    rm -rf "$tmp"
    return 1
  fi
  finish "$tmp" "$dir"
}

# installed_tool <name> <version> <dir> <ldflags> <package@version>...: "go install" the packages into <dir>/bin unless
# every one's binary (named after the package's last path element) is there already.
installed_tool() {
  local name="$1" version="$2" dir="$3" ldflags="$4" pkg missing=0
  shift 4
  for pkg in "$@"; do
    pkg="${pkg%@*}"
    [[ -x "${dir}/bin/${pkg##*/}" ]] || missing=1
  done
  if ((!missing)); then
    log "${name} ${version}: cached in ${dir}"
    return
  fi
  local start=$SECONDS
  log "${name} ${version}: building..."
  go_install "$dir" "$ldflags" "$@"
  log "${name} ${version}: built in $(elapsed $start)"
}

build_kwok() {
  installed_tool kwok "$KWOK_VERSION" "$KWOK_DIR" "-s -w" \
    "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}" "sigs.k8s.io/kwok/cmd/kwokctl@${KWOK_VERSION}"
}

build_helm() {
  # Without the -X flags, "helm version" reports only the major.minor written in the source.
  installed_tool helm "$HELM_VERSION" "$HELM_DIR" \
    "-s -w -X helm.sh/helm/v4/internal/version.version=${HELM_VERSION} -X helm.sh/helm/v4/internal/version.gitTreeState=clean" \
    "helm.sh/helm/v4/cmd/helm@${HELM_VERSION}"
}

build_kube_score() {
  installed_tool kube-score "$KUBE_SCORE_VERSION" "$KUBE_SCORE_DIR" "-s -w -X main.version=${KUBE_SCORE_VERSION#v}" \
    "github.com/zegl/kube-score/cmd/kube-score@${KUBE_SCORE_VERSION}"
}

# module_source <module@version> <dest> [expected h1: sum]: a writable copy of a module's source, for modules that do
# not "go install" (a replace directive in their go.mod, which Go refuses in a module installed by version) or whose
# internal packages a program of ours must import. With an expected sum, the module's hash must be that one.
module_source() {
  local info dir sum
  info="$(cd "$(dirname "$2")" && go mod download -json "$1")" || { log "go mod download $1: ${info}"; return 1; }
  dir="$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p' <<<"$info")"
  sum="$(sed -n 's/^[[:space:]]*"Sum": "\(.*\)",$/\1/p' <<<"$info")"
  if [[ -n "${3:-}" && "$sum" != "$3" ]]; then
    log "$1: the module's hash is ${sum}, not the pinned $3"
    return 1
  fi
  cp -r "$dir" "$2"
  chmod -R u+w "$2" # the module cache is read-only
}

# ---- prometheus, promtool ---------------------------------------------------------------------------------------------
# Neither "go install"s: prometheus's go.mod has a replace directive, which Go refuses in a module installed by version.
# So the module's source is copied out of the module cache and built there as the main module (the replace applies).
# -tags remove_all_sd leaves out the cloud service discoveries (static and file discovery remain): a third of the
# build, and the only users of some dependencies. Without the builtinassets tag the web UI is absent; the HTTP API,
# all the tests use, is complete.
build_prometheus() {
  local bin="${PROMETHEUS_DIR}/bin"
  if [[ -x "$bin/prometheus" && -x "$bin/promtool" ]]; then
    log "prometheus ${PROMETHEUS_VERSION}: cached in ${PROMETHEUS_DIR}"
    return
  fi
  local start=$SECONDS tmp src major minor patch module
  IFS=. read -r major minor patch <<<"${PROMETHEUS_VERSION#v}"
  module="v0.${major}$(printf '%02d' "$minor").${patch}" # v3.15.0 -> v0.315.0
  log "prometheus ${PROMETHEUS_VERSION}: building prometheus and promtool (module ${module}; 5-10 min cold)..."
  tmp="$(mk_tmp "$PROMETHEUS_DIR")"
  src="$tmp/src"
  module_source "github.com/prometheus/prometheus@${module}" "$src" || { rm -rf "$tmp"; die "could not download prometheus"; }
  [[ "$(cat "$src/VERSION")" == "${major}.${minor}.${patch}" ]] || die "module ${module} is not Prometheus ${PROMETHEUS_VERSION}"
  # "prometheus --version" / "promtool --version" print these (otherwise an empty version). The module proxy does
  # not give the commit, so the revision is the module version (which names the source exactly).
  local pkg=github.com/prometheus/common/version
  local ldflags="-s -w -X ${pkg}.Version=${PROMETHEUS_VERSION#v} -X ${pkg}.Revision=${module}"
  ldflags+=" -X ${pkg}.Branch=HEAD -X ${pkg}.BuildUser=venta-build.sh -X ${pkg}.BuildDate=19700101-00:00:00"
  # GOWORK=off: the source has a go.work (for its other modules), which -mod=mod refuses.
  if ! (cd "$src" && GOWORK=off go build -trimpath -tags remove_all_sd -ldflags "$ldflags" -o "$tmp/bin/" ./cmd/prometheus ./cmd/promtool); then
    rm -rf "$tmp"
    die "prometheus ${PROMETHEUS_VERSION}: go build failed (see above)"
  fi
  rm -rf "$src"
  "$tmp/bin/promtool" --version >&2
  finish "$tmp" "$PROMETHEUS_DIR"
  log "prometheus ${PROMETHEUS_VERSION}: built in $(elapsed $start)"
}

# ---- tilt, the registry, kind's config check: the developers' inner loop on a local cluster ------------------------------
# Tilt's go.mod has replace directives: built from a copy of the module (without vendor/modules.txt, all a module zip
# keeps of vendor/; the dependencies come from the module proxy, checked against the module's go.sum). With cgo: its
# Tiltfile language server parses with tree-sitter, a C library.
# Tilt's web UI is a JavaScript application that its release process builds into pkg/assets/build; the module has only
# robots.txt there, and a Tilt without index.html refuses to start ("JS/CSS files are not available"). The tests need
# the API and the CLI (`tilt ci`, `tilt wait`), not the UI: this page stands in for it and says so.
write_tilt_placeholder_ui() {
  cat >"$1" <<'HTML'
<!doctype html>
<title>Tilt (built from source for the Venta tests)</title>
<p>This Tilt was built from its Go module by tests/cluster/build.sh, without its web UI.
Use the command line: <code>tilt get uiresources</code>, <code>tilt logs</code>, <code>tilt wait</code>.
HTML
}

build_tilt() {
  if [[ -x "${TILT_DIR}/bin/tilt" ]]; then
    log "tilt ${TILT_VERSION}: cached in ${TILT_DIR}"
    return
  fi
  local start=$SECONDS tmp
  log "tilt ${TILT_VERSION}: building (5-10 min cold)..."
  tmp="$(mk_tmp "$TILT_DIR")"
  if ! GONOSUMDB=github.com/tilt-dev/tilt module_source "github.com/tilt-dev/tilt@${TILT_VERSION}" "$tmp/src" "$TILT_SUM" ||
    ! write_tilt_placeholder_ui "$tmp/src/pkg/assets/build/index.html" ||
    ! (cd "$tmp/src" && rm -rf vendor && CGO_ENABLED=1 go build -trimpath \
      -ldflags "-s -w -X main.version=${TILT_VERSION#v} -X main.date=1970-01-01" -o "$tmp/bin/tilt" ./cmd/tilt); then
    rm -rf "$tmp"
    die "tilt ${TILT_VERSION}: could not build (see above)"
  fi
  rm -rf "$tmp/src"
  "$tmp/bin/tilt" version >&2
  finish "$tmp" "$TILT_DIR"
  log "tilt ${TILT_VERSION}: built in $(elapsed $start)"
}

build_registry() {
  installed_tool registry "$REGISTRY_VERSION" "$REGISTRY_DIR" \
    "-s -w -X github.com/distribution/distribution/v3/version.version=${REGISTRY_VERSION}" \
    "github.com/distribution/distribution/v3/cmd/registry@${REGISTRY_VERSION}"
}

# go/kindcheck/main.go imports kind's internal config packages, which only a package inside kind's module may do: it is
# built as sigs.k8s.io/kind/pkg/kindcheck in a copy of the module. kind's node image's containerd config goes beside it.
build_kindcheck() {
  if [[ -x "${KINDCHECK_DIR}/bin/kindcheck" ]]; then
    log "kindcheck ${KINDCHECK_TAG}: cached in ${KINDCHECK_DIR}"
    return
  fi
  local start=$SECONDS tmp
  log "kindcheck ${KINDCHECK_TAG}: building kind's config loader..."
  tmp="$(mk_tmp "$KINDCHECK_DIR")"
  if ! module_source "sigs.k8s.io/kind@${KIND_VERSION}" "$tmp/src" ||
    ! mkdir -p "$tmp/src/pkg/kindcheck" || ! cp "$HERE/go/kindcheck/main.go" "$tmp/src/pkg/kindcheck/" ||
    ! (cd "$tmp/src" && go build -trimpath -ldflags "-s -w" -o "$tmp/bin/kindcheck" ./pkg/kindcheck); then
    rm -rf "$tmp"
    die "kindcheck: could not build (see above)"
  fi
  cp "$tmp/src/images/base/files/etc/containerd/config.toml" "$tmp/containerd-config.toml"
  rm -rf "$tmp/src"
  finish "$tmp" "$KINDCHECK_DIR"
  log "kindcheck ${KINDCHECK_TAG}: built in $(elapsed $start)"
}

# ---- otelcol: the log-shipping collector with only the components its config uses ---------------------------------------
# ocb generates the collector's main package from go/otelcol/builder-config.yaml; the committed go.mod and go.sum then
# pin every dependency (ocb alone would resolve them anew). About 3 minutes on 2 cores once the modules are downloaded.
# otelcol_generate <work dir> [ocb flag...]: install ocb into <work dir>/ocb and generate into <work dir>/build.
otelcol_generate() {
  local work="$1"
  shift
  grep -qE "^[[:space:]]+version: ${OTELCOL_VERSION#v}\$" "$HERE/go/otelcol/builder-config.yaml" ||
    { log "go/otelcol/builder-config.yaml is not for ${OTELCOL_VERSION}"; return 1; }
  (cd "$work" && GOBIN="$work/ocb" go install -trimpath -ldflags "-s -w" "go.opentelemetry.io/collector/cmd/builder@${OTELCOL_VERSION}") &&
    cp "$HERE/go/otelcol/builder-config.yaml" "$work/" &&
    (cd "$work" && ./ocb/builder --config builder-config.yaml --skip-compilation "$@" >&2)
}

build_otelcol() {
  if [[ -x "${OTELCOL_DIR}/bin/otelcol" ]]; then
    log "otelcol ${OTELCOL_TAG}: cached in ${OTELCOL_DIR}"
    return
  fi
  local start=$SECONDS tmp
  log "otelcol ${OTELCOL_TAG}: building the collector with ocb (3-10 min cold)..."
  tmp="$(mk_tmp "$OTELCOL_DIR")"
  if ! otelcol_generate "$tmp" --skip-get-modules ||
    ! cp "$HERE/go/otelcol/go.mod" "$HERE/go/otelcol/go.sum" "$tmp/build/" ||
    ! (cd "$tmp/build" && go build -trimpath -ldflags "-s -w" -o "$tmp/bin/otelcol" .); then
    rm -rf "$tmp"
    die "otelcol ${OTELCOL_TAG}: could not build (see above)"
  fi
  rm -rf "$tmp/build" "$tmp/ocb" "$tmp/builder-config.yaml"
  "$tmp/bin/otelcol" --version >&2
  finish "$tmp" "$OTELCOL_DIR"
  log "otelcol ${OTELCOL_TAG}: built in $(elapsed $start)"
}

# ---- the pause image (pods' sandboxes) and the testbox image (smoke tests) of the real node ---------------------------
# Each is one static binary (go/pause, go/testbox: standard library only) in an image archive for "ctr images import".
build_node_images() {
  if [[ -f "${NODE_IMAGES_DIR}/pause.tar" && -f "${NODE_IMAGES_DIR}/testbox.tar" ]]; then
    log "node images ${NODE_IMAGES_TAG}: cached in ${NODE_IMAGES_DIR}"
    return
  fi
  local start=$SECONDS tmp name user
  log "node images ${NODE_IMAGES_TAG}: building pause and testbox..."
  tmp="$(mk_tmp "$NODE_IMAGES_DIR")"
  for name in pause testbox; do
    mkdir -p "$tmp/src/$name"
    cp "$HERE/go/$name/main.go" "$HERE/go/$name/go.mod" "$tmp/src/$name/"
    (cd "$tmp/src/$name" && go build -trimpath -ldflags "-s -w" -o "$tmp/bin/$name" .)
    user="" # the pause container runs as root, as upstream's; testbox as nobody unless a pod says otherwise
    [[ "$name" == testbox ]] && user=65534
    python3 "$HERE/image_archive.py" --name "localhost/venta-test/${name}:${NODE_IMAGES_TAG}" --out "$tmp/${name}.tar" \
      --entrypoint "/${name}" --user "$user" "$tmp/bin/${name}:/${name}"
  done
  rm -rf "$tmp/src"
  finish "$tmp" "$NODE_IMAGES_DIR"
  log "node images ${NODE_IMAGES_TAG}: built in $(elapsed $start)"
}

# ---- Debian packages of the real node (containerd, runc, CNI plugins, iptables, ...) -----------------------------------
# Not fatal: the kwok cluster needs none of them. real_node.py says what is missing when it cannot start.
ensure_packages() {
  if "$HERE/install-packages.sh" --check 2>/dev/null; then
    log "packages: all installed"
  elif [[ "$(id -u)" != 0 ]]; then
    log "WARNING: the real node's Debian packages are missing; as root, run $HERE/install-packages.sh"
  elif ! "$HERE/install-packages.sh"; then
    log "WARNING: could not install the real node's Debian packages (see above); the kwok cluster does not need them"
  fi
}

# ---- CloudNativePG's CRDs ---------------------------------------------------------------------------------------------
# The CustomResourceDefinitions CloudNativePG publishes (config/crd/bases of its module), copied out of the module cache.
fetch_cnpg_crds() {
  local crds="${CNPG_DIR}/crds"
  if [[ -f "$crds/postgresql.cnpg.io_clusters.yaml" ]]; then
    log "cloudnative-pg ${CNPG_VERSION} CRDs: cached in ${CNPG_DIR}"
    return
  fi
  local tmp
  tmp="$(mk_tmp "$CNPG_DIR")"
  module_source "github.com/cloudnative-pg/cloudnative-pg@${CNPG_VERSION}" "$tmp/src" "$CNPG_SUM" ||
    { rm -rf "$tmp"; die "could not download cloudnative-pg ${CNPG_VERSION}"; }
  mkdir -p "$tmp/crds"
  cp "$tmp/src/config/crd/bases/"*.yaml "$tmp/crds/"
  rm -rf "$tmp/src"
  finish "$tmp" "$CNPG_DIR"
  log "cloudnative-pg ${CNPG_VERSION} CRDs: in ${CNPG_DIR}/crds"
}

# ---- cert-manager's and Gateway API's CRDs -----------------------------------------------------------------------------
# cert-manager publishes its CRDs in deploy/crds, Gateway API its standard channel in config/crd/standard: only the
# kinds the operator creates or refers to are kept (Certificate and the issuers; HTTPRoute, Gateway, GatewayClass).
fetch_edge_crds() {
  local crds="${EDGE_CRDS_DIR}/crds"
  if [[ -f "$crds/cert-manager.io_certificates.yaml" && -f "$crds/gateway.networking.k8s.io_httproutes.yaml" ]]; then
    log "cert-manager ${CERT_MANAGER_VERSION} and gateway-api ${GATEWAY_API_VERSION} CRDs: cached in ${EDGE_CRDS_DIR}"
    return
  fi
  local tmp kind
  tmp="$(mk_tmp "$EDGE_CRDS_DIR")"
  module_source "github.com/cert-manager/cert-manager@${CERT_MANAGER_VERSION}" "$tmp/cert-manager" "$CERT_MANAGER_SUM" ||
    { rm -rf "$tmp"; die "could not download cert-manager ${CERT_MANAGER_VERSION}"; }
  module_source "sigs.k8s.io/gateway-api@${GATEWAY_API_VERSION}" "$tmp/gateway-api" "$GATEWAY_API_SUM" ||
    { rm -rf "$tmp"; die "could not download gateway-api ${GATEWAY_API_VERSION}"; }
  mkdir -p "$tmp/crds"
  for kind in certificates issuers clusterissuers; do
    cp "$tmp/cert-manager/deploy/crds/cert-manager.io_${kind}.yaml" "$tmp/crds/"
  done
  for kind in httproutes gateways gatewayclasses; do
    cp "$tmp/gateway-api/config/crd/standard/gateway.networking.k8s.io_${kind}.yaml" "$tmp/crds/"
  done
  rm -rf "$tmp/cert-manager" "$tmp/gateway-api"
  finish "$tmp" "$EDGE_CRDS_DIR"
  log "cert-manager and gateway-api CRDs: in ${EDGE_CRDS_DIR}/crds"
}

# ---- output ------------------------------------------------------------------------------------------------------------
# Names follow kwokctl's own environment variables (KWOK_<FLAG>), so the file can also be sourced before kwokctl.
print_env() {
  cat <<EOF
# Written by tests/cluster/build.sh; read by tests/cluster/cluster_tools.py.
KWOK_KUBE_VERSION=${KUBE_VERSION}
KWOK_ETCD_VERSION=${ETCD_VERSION#v}
KWOK_RUNTIME=binary
KWOK_KUBE_APISERVER_BINARY=${KUBE_DIR}/bin/kube-apiserver
KWOK_KUBE_CONTROLLER_MANAGER_BINARY=${KUBE_DIR}/bin/kube-controller-manager
KWOK_KUBE_SCHEDULER_BINARY=${KUBE_DIR}/bin/kube-scheduler
KWOK_ETCD_BINARY=${ETCD_DIR}/bin/etcd
KWOK_KWOK_CONTROLLER_BINARY=${KWOK_DIR}/bin/kwok
KWOKCTL=${KWOK_DIR}/bin/kwokctl
KUBECTL=${KUBE_DIR}/bin/kubectl
HELM=${HELM_DIR}/bin/helm
KUBE_SCORE=${KUBE_SCORE_DIR}/bin/kube-score
PROMETHEUS=${PROMETHEUS_DIR}/bin/prometheus
PROMTOOL=${PROMETHEUS_DIR}/bin/promtool
KUBELET=${KUBE_DIR}/bin/kubelet
KUBE_PROXY=${KUBE_DIR}/bin/kube-proxy
COREDNS=${COREDNS_DIR}/bin/coredns
PAUSE_IMAGE=localhost/venta-test/pause:${NODE_IMAGES_TAG}
PAUSE_ARCHIVE=${NODE_IMAGES_DIR}/pause.tar
TESTBOX_IMAGE=localhost/venta-test/testbox:${NODE_IMAGES_TAG}
TESTBOX_ARCHIVE=${NODE_IMAGES_DIR}/testbox.tar
TILT=${TILT_DIR}/bin/tilt
REGISTRY=${REGISTRY_DIR}/bin/registry
KINDCHECK=${KINDCHECK_DIR}/bin/kindcheck
KIND_CONTAINERD_CONFIG=${KINDCHECK_DIR}/containerd-config.toml
OTELCOL=${OTELCOL_DIR}/bin/otelcol
CNPG_CRDS=${CNPG_DIR}/crds
EDGE_CRDS=${EDGE_CRDS_DIR}/crds
EOF
}

main() {
  local packages=1
  case "${1:-}" in
  --print-env)
    print_env
    return
    ;;
  --regen-kube-gomod)
    write_kube_gomod "$HERE/go/kube"
    log "wrote $HERE/go/kube/go.mod and go.sum for ${KUBE_VERSION}"
    return
    ;;
  --regen-otelcol-gomod)
    local work
    work="$(mktemp -d)"
    otelcol_generate "$work" || die "could not generate the collector's sources"
    cp "$work/build/go.mod" "$work/build/go.sum" "$HERE/go/otelcol/"
    rm -rf "$work"
    log "wrote $HERE/go/otelcol/go.mod and go.sum for ${OTELCOL_VERSION}"
    return
    ;;
  --no-packages) packages=0 ;;
  "") ;;
  *) die "unknown argument: $1 (see the header of $0)" ;;
  esac
  command -v go >/dev/null || die "go is not on PATH (Go >= 1.26 is needed)"
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.build.lock"
  flock 9 # one build at a time per cache: a second one waits, then finds everything cached
  local start=$SECONDS
  ((packages)) && ensure_packages
  build_kwok
  build_helm
  build_etcd
  build_kube
  build_kube_score
  build_prometheus
  build_coredns
  build_node_images
  build_tilt
  build_registry
  build_kindcheck
  build_otelcol
  fetch_cnpg_crds
  fetch_edge_crds
  print_env >"${ENV_FILE}.tmp"
  mv "${ENV_FILE}.tmp" "$ENV_FILE"
  log "all tools ready in $(elapsed $start); paths written to ${ENV_FILE}"
  cat "$ENV_FILE"
}

# On one line: bash reads a script while running it, so a script edited during a long build must not go on reading.
main "$@"; exit $?

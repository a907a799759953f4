#!/usr/bin/env bash
# Build the benchmarks' load generators from source, both with Go from the module proxy: ghz (gRPC) and vegeta (HTTP);
# and install socket.io-client (npm) for the Socket.IO fan-out's Node.js clients.
# vegeta replaced oha (Rust): the same closed-loop measurement, but a cold cargo build of oha took 452-627 s of a
# cold CI run, vegeta's go install about 35 s.
#
# Why: a load generator written in Python on the same 2 cores measures itself as much as the server (issue 13: the
# "bare FastAPI + asyncpg" baseline reached ~200 req/s under httpx). Native generators cost the server little CPU, and
# bench/ pins them to their own core. These machines reach only package registries, so both are compiled here.
#
# Same contract as tests/cluster/build.sh: each tool goes to ${VENTA_CACHE_DIR:-~/.cache/venta}/<tool>-<version>/bin/
# and is built only when its binary is missing there; a build happens in a temporary sibling directory moved into
# place at the end, so an interrupted build never looks finished. Builds run under `nice -n 19` (the machines are
# shared). Binaries are never committed.
#
# Usage:
#   bench/install-tools.sh              build what is missing, then write <cache>/bench-tools.env
#   bench/install-tools.sh --print-env  only print the env file's content (paths; nothing is built)
# Environment: VENTA_CACHE_DIR (default ~/.cache/venta).
set -euo pipefail

# ---- pinned versions -------------------------------------------------------------------------------------------------
# ghz's newest release. Its go.mod has no replace directive, so it "go install"s by version.
GHZ_VERSION="v0.121.0"
# vegeta's newest release; "vegeta attack -lazy" reads one target per request from a file and stops when it ends,
# which gives a fixed number of requests over a fixed number of workers.
VEGETA_VERSION="v12.13.0"

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${VENTA_CACHE_DIR:-${HOME}/.cache/venta}"
ENV_FILE="${CACHE}/bench-tools.env"

GHZ_DIR="${CACHE}/ghz-${GHZ_VERSION}"
VEGETA_DIR="${CACHE}/vegeta-${VEGETA_VERSION}"

export GOFLAGS="-mod=mod"
export CGO_ENABLED=0

LOG_NAME=install-tools.sh
# shellcheck source=tests/cluster/cached_build.sh
source "$HERE/../tests/cluster/cached_build.sh"

build_ghz() {
  if [[ -x "${GHZ_DIR}/bin/ghz" ]]; then
    log "ghz ${GHZ_VERSION}: cached in ${GHZ_DIR}"
    return
  fi
  command -v go >/dev/null || die "go is not on PATH (Go >= 1.23 builds ghz)"
  local start=$SECONDS tmp
  log "ghz ${GHZ_VERSION}: building..."
  tmp="$(mk_tmp "$GHZ_DIR")"
  # "ghz --version" prints main.version (goreleaser sets it; "dev" otherwise).
  if ! (cd "$tmp" && GOBIN="$tmp/bin" nice -n 19 go install -trimpath \
    -ldflags "-s -w -X main.version=${GHZ_VERSION#v}" "github.com/bojand/ghz/cmd/ghz@${GHZ_VERSION}"); then
    rm -rf "$tmp"
    die "ghz ${GHZ_VERSION}: go install failed (see above)"
  fi
  "$tmp/bin/ghz" --version >&2
  finish "$tmp" "$GHZ_DIR"
  log "ghz ${GHZ_VERSION}: built in $(elapsed $start)"
}

build_vegeta() {
  if [[ -x "${VEGETA_DIR}/bin/vegeta" ]]; then
    log "vegeta ${VEGETA_VERSION}: cached in ${VEGETA_DIR}"
    return
  fi
  command -v go >/dev/null || die "go is not on PATH (Go >= 1.22 builds vegeta)"
  local start=$SECONDS tmp
  log "vegeta ${VEGETA_VERSION}: building..."
  tmp="$(mk_tmp "$VEGETA_DIR")"
  if ! (cd "$tmp" && GOBIN="$tmp/bin" nice -n 19 go install -trimpath \
    -ldflags "-s -w -X main.Version=${VEGETA_VERSION}" "github.com/tsenart/vegeta/v12@${VEGETA_VERSION}"); then
    rm -rf "$tmp"
    die "vegeta ${VEGETA_VERSION}: go install failed (see above)"
  fi
  "$tmp/bin/vegeta" -version >&2
  finish "$tmp" "$VEGETA_DIR"
  log "vegeta ${VEGETA_VERSION}: built in $(elapsed $start)"
}

# socket.io-client for websocket_fanout's watchers (bench/js/fanout.mjs: one Node.js process, many connections),
# installed from bench/js/package-lock.json into bench/js/node_modules (not the cache: Node resolves a script's
# imports from its own directory up); again only when the lock file changed.
install_socket_clients() {
  local dir="$HERE/js" stamp want start=$SECONDS
  stamp="$dir/node_modules/.venta-installed"
  want="$(sha256sum "$dir/package-lock.json" | cut -c1-16)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    log "socket.io-client (bench/js): installed"
    return
  fi
  command -v npm >/dev/null || die "npm is not on PATH (bench/js needs Node.js and npm)"
  (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci in bench/js failed (see above)"
  echo "$want" >"$stamp"
  log "socket.io-client (bench/js): installed in $(elapsed $start)"
}

print_env() {
  cat <<EOF
# Written by bench/install-tools.sh; read by bench/loadgen.py.
GHZ=${GHZ_DIR}/bin/ghz
GHZ_VERSION=${GHZ_VERSION}
VEGETA=${VEGETA_DIR}/bin/vegeta
VEGETA_VERSION=${VEGETA_VERSION}
EOF
}

main() {
  case "${1:-}" in
  --print-env)
    print_env
    return
    ;;
  "") ;;
  *) die "unknown argument: $1 (see the header of $0)" ;;
  esac
  mkdir -p "$CACHE"
  # Its own lock, not build.sh's: the two build disjoint directories, and a cluster build holds its lock for up to
  # 20 minutes. A second run of this script waits here, then finds everything cached.
  exec 9>"$CACHE/.bench-tools.lock"
  flock 9
  local start=$SECONDS
  build_ghz
  build_vegeta
  install_socket_clients
  print_env >"${ENV_FILE}.tmp"
  mv "${ENV_FILE}.tmp" "$ENV_FILE"
  log "load generators ready in $(elapsed $start); paths written to ${ENV_FILE}"
  cat "$ENV_FILE"
}

# On one line: bash reads a script while running it, so a script edited during a long build must not go on reading.
main "$@"; exit $?

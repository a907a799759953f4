# Shared by the scripts that build pinned tools into ~/.cache/venta/<tool>-<version>/ (tests/cluster/build.sh,
# bench/install-tools.sh): logging, and building into a temporary sibling that is moved into place only when complete.
# Source it after setting LOG_NAME (the prefix of log lines).

log() { printf '[%s %s] %s\n' "${LOG_NAME:-build}" "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Print the seconds elapsed since $1 (a value of $SECONDS).
elapsed() { echo "$((SECONDS - $1))s"; }

# mk_tmp <final dir>: a fresh temporary sibling of the final directory, with a bin/ inside.
mk_tmp() {
  local tmp="$1.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp/bin"
  echo "$tmp"
}

# finish <tmp dir> <final dir>: move a completed build into place (atomically replaces a half-done one).
finish() {
  rm -rf "$2"
  mv "$1" "$2"
}

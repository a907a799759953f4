#!/usr/bin/env bash
# The start-up contract of the official postgres image, for Debian's PostgreSQL 15 in the local test image.
#
# Kept from upstream's docker-entrypoint.sh: POSTGRES_PASSWORD (required unless POSTGRES_HOST_AUTH_METHOD=trust),
# POSTGRES_USER (default postgres), POSTGRES_DB (default the user), their *_FILE variants, POSTGRES_INITDB_ARGS,
# POSTGRES_HOST_AUTH_METHOD; PGDATA created if missing (a subdirectory of a mounted volume works); an empty data
# directory is initialised by initdb, with `host all all all scram-sha-256` appended to pg_hba.conf; then, on a
# server listening on the Unix socket only, POSTGRES_DB is created and /docker-entrypoint-initdb.d/* run in order
# (*.sh sourced, or run when executable; *.sql, *.sql.gz and *.sql.xz through psql); then PostgreSQL in the
# foreground with the given arguments. Started as root, it hands the directories to postgres and drops to it.
# A first argument starting with "-" means postgres; any other command is run as given.
#
# Not kept: nss_wrapper (a UID without a passwd entry is refused with a message: run as 999), POSTGRES_INITDB_WALDIR.
# Added: SIGTERM means a fast shutdown. PostgreSQL takes SIGTERM as a "smart" shutdown, which waits for every
# client to disconnect, so connection pools keep it up until SIGKILL; upstream relies on STOPSIGNAL SIGINT, which
# only some runtimes honour. Here this script stays the parent of the server and turns SIGTERM into SIGINT.
set -Eeo pipefail

INITDB_DIR=/docker-entrypoint-initdb.d

# file_env VAR [DEFAULT]: VAR from the environment, or read from the file named by VAR_FILE (mounted secrets).
file_env() {
  local var="$1" file_var="${1}_FILE" value="${2:-}"
  if [[ -n "${!var:-}" && -n "${!file_var:-}" ]]; then
    echo >&2 "error: both $var and $file_var are set (but are exclusive)"
    exit 1
  fi
  if [[ -n "${!var:-}" ]]; then
    value="${!var}"
  elif [[ -n "${!file_var:-}" ]]; then
    value="$(<"${!file_var}")"
  fi
  export "$var"="$value"
  unset "$file_var"
}

setup_env() {
  file_env POSTGRES_PASSWORD
  file_env POSTGRES_USER postgres
  file_env POSTGRES_DB "$POSTGRES_USER"
  file_env POSTGRES_INITDB_ARGS
  : "${POSTGRES_HOST_AUTH_METHOD:=}"
  DATABASE_ALREADY_EXISTS=
  if [[ -s "$PGDATA/PG_VERSION" ]]; then DATABASE_ALREADY_EXISTS=true; fi
}

# What may fail here is fine (a read-only or foreign-owned mount): initdb says clearly what it cannot do.
create_directories() {
  mkdir -p "$PGDATA"
  chmod 00700 "$PGDATA" 2>/dev/null || :
  mkdir -p /var/run/postgresql 2>/dev/null || :
  chmod 03775 /var/run/postgresql 2>/dev/null || :
  if [[ "$(id -u)" == 0 ]]; then
    find "$PGDATA" /var/run/postgresql \! -user postgres -exec chown postgres '{}' +
  fi
}

verify_minimum_env() {
  if [[ -z "$POSTGRES_PASSWORD" && "$POSTGRES_HOST_AUTH_METHOD" != trust ]]; then
    cat >&2 <<'EOE'
Error: Database is uninitialized and superuser password is not specified.
       You must specify POSTGRES_PASSWORD to a non-empty value for the
       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".

       You may also use "POSTGRES_HOST_AUTH_METHOD=trust" to allow all
       connections without a password. This is *not* recommended.
EOE
    exit 1
  fi
  if [[ "$POSTGRES_HOST_AUTH_METHOD" == trust ]]; then
    echo >&2 'WARNING: POSTGRES_HOST_AUTH_METHOD=trust: anyone reaching the port connects without a password.'
  fi
  if ! getent passwd "$(id -u)" >/dev/null; then
    echo >&2 "error: UID $(id -u) has no passwd entry, which initdb needs; run as 999 (postgres)"
    exit 1
  fi
}

init_database_dir() {
  # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of arguments, as upstream
  eval 'initdb --username="$POSTGRES_USER" --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD") '"$POSTGRES_INITDB_ARGS"
}

# setup_hba_conf <server arguments>...: password authentication for every non-local connection.
setup_hba_conf() {
  local auth="$POSTGRES_HOST_AUTH_METHOD"
  [[ -n "$auth" ]] || auth="$(postgres -C password_encryption "$@")" # scram-sha-256 unless configured
  {
    printf '\n'
    [[ "$auth" != trust ]] || printf '# warning trust is enabled for all connections\n'
    printf 'host all all all %s\n' "$auth"
  } >>"$PGDATA/pg_hba.conf"
}

process_sql() {
  local runner=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
  [[ -z "$POSTGRES_DB" ]] || runner+=(--dbname "$POSTGRES_DB")
  PGHOST='' PGHOSTADDR='' "${runner[@]}" "$@" # the Unix socket
}

# POSTGRES_DB, unless it exists (it is "postgres" by default).
setup_db() {
  local db="$POSTGRES_DB" exists
  exists="$(POSTGRES_DB='' process_sql --dbname postgres --set db="$db" --tuples-only \
    <<<"SELECT 1 FROM pg_database WHERE datname = :'db' ;")"
  if [[ -z "$exists" ]]; then
    POSTGRES_DB='' process_sql --dbname postgres --set db="$db" <<<'CREATE DATABASE :"db" ;'
  fi
}

process_init_files() {
  local f
  for f; do
    case "$f" in
    *.sh)
      if [[ -x "$f" ]]; then
        echo "$0: running $f"
        "$f"
      else
        echo "$0: sourcing $f"
        # shellcheck disable=SC1090
        . "$f"
      fi
      ;;
    *.sql) echo "$0: running $f" && process_sql -f "$f" ;;
    *.sql.gz) echo "$0: running $f" && gunzip -c "$f" | process_sql ;;
    *.sql.xz) echo "$0: running $f" && xzcat "$f" | process_sql ;;
    *) echo "$0: ignoring $f" ;;
    esac
  done
}

# initialise <server arguments>...: initdb, then POSTGRES_DB and the init scripts on a socket-only server.
initialise() {
  verify_minimum_env
  ls "$INITDB_DIR/" >/dev/null # an unreadable directory fails here, before initdb
  init_database_dir
  setup_hba_conf "$@"
  export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
  PGUSER="${PGUSER:-$POSTGRES_USER}" \
    pg_ctl -D "$PGDATA" -o "$(printf '%q ' "$@" -c listen_addresses='' -p "${PGPORT:-5432}")" -w start
  setup_db
  process_init_files "$INITDB_DIR"/*
  PGUSER="${PGUSER:-postgres}" pg_ctl -D "$PGDATA" -m fast -w stop
  unset PGPASSWORD
  echo 'PostgreSQL init process complete; ready for start up.'
}

# serve <command>...: the server as a child; TERM and INT become INT (fast shutdown), HUP and QUIT are passed on.
serve() {
  "$@" &
  local pid=$! status
  trap 'kill -INT "$pid" 2>/dev/null || :' TERM INT
  trap 'kill -HUP "$pid" 2>/dev/null || :' HUP
  trap 'kill -QUIT "$pid" 2>/dev/null || :' QUIT
  while :; do
    status=0
    wait "$pid" || status=$?
    kill -0 "$pid" 2>/dev/null || exit "$status" # else wait was interrupted by a signal: the server still runs
  done
}

wants_help() {
  local arg
  for arg; do
    case "$arg" in -'?' | --help | --describe-config | -V | --version) return 0 ;; esac
  done
  return 1
}

main() {
  if [[ "${1:0:1}" == - ]]; then set -- postgres "$@"; fi
  if [[ "$1" == postgres ]] && ! wants_help "$@"; then
    setup_env
    create_directories
    if [[ "$(id -u)" == 0 ]]; then
      exec setpriv --reuid=postgres --regid=postgres --init-groups "${BASH_SOURCE[0]}" "$@"
    fi
    if [[ -z "$DATABASE_ALREADY_EXISTS" ]]; then
      initialise "${@:2}"
    else
      echo 'PostgreSQL Database directory appears to contain a database; Skipping initialization'
    fi
    serve "$@"
  fi
  exec "$@"
}

main "$@"

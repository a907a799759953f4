#!/bin/sh
# The official Redis image's entrypoint: flags (or a config file) as first argument mean redis-server; started as
# root, it hands /data to redis and drops to that user (setpriv here, gosu upstream); a restrictive umask.
set -e
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi
if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
  find . \! -user redis -exec chown redis '{}' +
  exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
fi
if [ "$(umask)" = 0022 ]; then
  umask 0077
fi
exec "$@"

#!/bin/sh
# The official NATS image's entrypoint: with no arguments, or a first argument that is a flag, run nats-server with
# them; otherwise run the command given (e.g. sh).
set -e
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
  set -- nats-server "$@"
fi
exec "$@"

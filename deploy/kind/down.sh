#!/usr/bin/env bash
# Removes what deploy/kind/up.sh created: the kind cluster and the registry container.
set -euo pipefail
kind delete cluster --name venta
docker rm -f venta-registry >/dev/null 2>&1 || true

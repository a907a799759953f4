#!/usr/bin/env bash
# Creates the local cluster for `tilt up` on a laptop with Docker and kind: the registry container (venta-registry,
# published on localhost:5001), the kind cluster of deploy/kind/cluster.yaml, the registry joined to kind's network,
# and the KEP-1755 ConfigMap that tells Tilt where to push. Idempotent. `deploy/kind/down.sh` removes both.
# The steps are those of kind's documentation on local registries.
set -euo pipefail
cd "$(dirname "$0")/../.."

REGISTRY=venta-registry
CLUSTER=venta
PORT=5001

if [[ "$(docker inspect -f '{{.State.Running}}' "$REGISTRY" 2>/dev/null || true)" != true ]]; then
  docker run -d --restart=always -p "127.0.0.1:${PORT}:5000" --network bridge --name "$REGISTRY" registry:2
fi
if ! kind get clusters | grep -qx "$CLUSTER"; then
  kind create cluster --config deploy/kind/cluster.yaml
fi
if [[ "$(docker inspect -f '{{json .NetworkSettings.Networks.kind}}' "$REGISTRY")" == null ]]; then
  docker network connect kind "$REGISTRY"
fi
kubectl --context "kind-${CLUSTER}" apply -f deploy/kind/local-registry-hosting.yaml
echo "kind-${CLUSTER} is ready: run 'tilt up'"

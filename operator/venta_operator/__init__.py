"""The Venta operator: reconciles one `VentaPlatform` custom resource into a running platform.

Layers, from pure to impure: a module imports only from the layers listed before its own, never from one listed
after it nor from a sibling of its own line. Two import-linter contracts in pyproject.toml hold this: `layers`
(which also fails on a module it does not place) and a `forbidden` one that keeps everything up to `plan`, `drift`,
`status` and `render` free of the API client, Kopf, HTTP, metrics, settings, the clock and randomness.

- `openapi`, `components`, `naming`, `promql`: leaves (schema building blocks, the services' runtime contract, names
  and labels, PromQL lexing).
- `spec_schema`, then `spec` and `crd`: what a platform is (its fields and rules; the typed spec; the CRD).
- `endpoints`: the addresses a spec implies.
- `builders`, `readiness`: per child, pure functions `Platform -> manifest dicts`, one module per kind (no I/O, no
  clock, no randomness), and readings of a live child's status.
- `plan`, `drift`, `status`: pure decisions (what to apply, whether a child drifted, what the status says).
- `metrics`, `config`, `logs`: the process's plumbing.
- `kube`: the only code that talks to the API server.
- `reconciler`: one pass; `render`: the same plan offline, pure.
- `handlers`: thin Kopf wiring (events -> reconciler).
"""

API_GROUP = "venta.io"
API_VERSION = "v1alpha1"
KIND = "VentaPlatform"
PLURAL = "ventaplatforms"

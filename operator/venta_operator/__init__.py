"""The Venta operator: reconciles one `VentaPlatform` custom resource into a running platform.

Layers, from pure to impure (a module may import only from the layers above it):

- `crd`, `spec`, `components`, `naming`: what a platform is (schema, typed spec, the runtime contract of the services).
- `builders`: pure functions `Platform -> manifest dicts`, one module per child kind; no I/O, no clock, no randomness.
- `plan`, `drift`, `status`: pure decisions (what to apply, whether a child drifted, what the status says).
- `kube`, `reconciler`: the only code that talks to the API server.
- `handlers`: thin Kopf wiring (events -> reconciler), plus `metrics` and `config` for the process.
"""

API_GROUP = "venta.io"
API_VERSION = "v1alpha1"
KIND = "VentaPlatform"
PLURAL = "ventaplatforms"

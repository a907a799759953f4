"""Venta's services and the kit they share. Each subpackage is one deployable service, except `kit`
(shared infrastructure), `contracts` (generated protobuf stubs) and `cli` (the `venta` command)."""

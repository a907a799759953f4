"""The shared kit: configuration, logging, telemetry, errors, gRPC skeleton, database, events, test servers.

Every service imports it; it never imports a service (checked by import-linter).
"""

"""Pytest fixtures that start real servers (PostgreSQL, NATS JetStream, Redis) on random ports.

Enable with `pytest_plugins = ["services.kit.testing.fixtures"]`. Nothing here is a mock: every fixture is a real
server process, stopped when the session (or, for the `fresh_*` variants, the test) ends. `otlp` is a real OTLP/gRPC
trace receiver, for tests that check the spans the services export.
"""

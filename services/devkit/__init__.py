"""The developer's kit: real servers for a laptop and for tests, never part of a deployed service.

- `servers`: real PostgreSQL, NATS (JetStream) and Redis processes on chosen or random ports (`venta up`, tests, bench);
- `pytest_plugin`: fixtures built on them (`pytest_plugins = ["services.devkit.pytest_plugin"]`); nothing there is a
  mock: every fixture is a real server process, stopped when the session (or, for `fresh_*`, the test) ends;
- `otlp_sink`: a real OTLP/gRPC receiver that counts spans, for the tracing tests and the observability benchmark.

Only the CLI, the tests and the benchmarks import it (an import-linter contract): the image's services do not.
"""

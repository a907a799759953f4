"""The platform's event bus: envelope, versioned schemas, JetStream transport, outbox and relay.

Why it exists: the system we replace published on core NATS (events sent while a consumer was down were lost) and
its consumer listened on a subject that matched nothing. Everything that publishes or consumes an event goes through
this package, so the guarantees (persistence, de-duplication, retries, dead letters, trace context) hold everywhere.
It never imports a service: services describe their events with the schemas in `catalog` and hand rows to `outbox`.
"""

"""The platform's event bus: envelope, versioned schemas, JetStream or Redis Streams transport, outbox and relay.

Why it exists: the system we replace published on core NATS (events sent while a consumer was down were lost) and
its consumer listened on a subject that matched nothing. Everything that publishes or consumes an event goes through
this package, so the guarantees (persistence, de-duplication, retries, dead letters, trace context) hold everywhere.
It never imports a service and knows no event type: the bus, the outbox and the compatibility check take a `Catalog`
(the platform's is `services.event_catalog`); services hand their events to `outbox`.
"""

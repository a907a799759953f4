"""The Socket.IO gateway's metric families (SPEC section 10: "its connections and deliveries").

Labels are bounded: the Socket.IO namespace (`sio_namespace`: `/user`, `/vendor`; not `namespace`, which Kubernetes
target labels own), the event name (a fixed set: unknown events are counted as
`other`), the error code and the presence state; never a socket, user or vendor id. Rate-limit refusals use the
kit's `venta_rate_limit_rejections_total` with the event as the route.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from services.kit.metrics import LATENCY_BUCKETS

CONNECTIONS = Gauge("venta_websocket_connections", "Open Socket.IO connections", ["sio_namespace"])
CONNECTS = Counter("venta_websocket_connects_total", "Socket.IO connections accepted", ["sio_namespace"])
EVENTS_RECEIVED = Counter(
    "venta_websocket_events_received_total", "Events received from clients", ["sio_namespace", "event"]
)
EVENT_DURATION = Histogram(
    "venta_websocket_event_duration_seconds",
    "Time to handle one client event, including the gRPC calls it makes",
    ["sio_namespace", "event"],
    buckets=LATENCY_BUCKETS,
)
DELIVERIES = Counter(
    "venta_websocket_deliveries_total", "Events emitted by this replica to clients or rooms", ["event"]
)
ERRORS = Counter("venta_websocket_errors_total", "`error` events sent to clients", ["sio_namespace", "code"])
VENDOR_PRESENCE = Gauge("venta_websocket_vendor_presence", "Vendors by presence state (whole platform)", ["state"])
PRESENCE_TRANSITIONS = Counter(
    "venta_websocket_presence_transitions_total", "Vendor presence changes made by this replica", ["state"]
)

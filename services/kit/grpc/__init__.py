"""The gRPC skeleton every service shares: server host, interceptors, breaker-wrapped clients."""

from typing import Any

import grpc

Context = grpc.aio.ServicerContext[Any, Any]
"""The servicer context type every handler receives."""

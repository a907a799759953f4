"""The public HTTP API (FastAPI): authentication, rate limits, routing to the gRPC services, webhooks, uploads."""

"""What every HTTP (ASGI) service of the platform shares: the error envelope, middleware, probes, the uvicorn host."""

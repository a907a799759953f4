"""The location service (gRPC :5001): current vendor/user positions and bounding-box queries over them."""

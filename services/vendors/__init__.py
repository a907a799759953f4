"""The vendor service (gRPC :5005): vendors and their ownership."""

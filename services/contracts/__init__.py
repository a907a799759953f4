"""Generated protobuf/gRPC stubs (protos/generate.py). Never edit."""

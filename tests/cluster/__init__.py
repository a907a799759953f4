"""The test clusters: the API server with KWOK nodes, the real node, their tools (build.sh) and images."""

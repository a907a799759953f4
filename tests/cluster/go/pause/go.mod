// The pause program of the real test node (see main.go). Standard library only.
module venta-test-cluster/pause

go 1.26.0

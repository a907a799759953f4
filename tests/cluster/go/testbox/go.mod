// The test program of the real test node's smoke tests (see main.go). Standard library only.
module venta-test-cluster/testbox

go 1.26.0

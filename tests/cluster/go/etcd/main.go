// Command etcd is the etcd server, built from the Go module proxy.
//
// Why a wrapper: "go install go.etcd.io/etcd/server/v3@..." is refused because etcd's go.mod files carry
// replace directives; a module of our own that depends on go.etcd.io/etcd/server/v3 builds the same
// main function (etcdmain.Main is what etcd's own main.go calls).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}

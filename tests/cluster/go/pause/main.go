// Command pause is the sandbox ("pause") container of the real test node's pods: it holds the pod's namespaces
// open and does nothing else.
//
// Why our own: the usual pause image comes from a container registry, which these machines cannot reach. This is
// what upstream's pause.c does: sleep until SIGINT or SIGTERM (then exit 0), and reap the zombies it inherits as
// PID 1 of a pod that shares its process namespace. tests/cluster/build.sh builds it statically (CGO_ENABLED=0)
// and packs it as the only file of an image (tests/cluster/image_archive.py); nothing else goes into that image.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "-v" || os.Args[1] == "--version") {
		fmt.Println("pause (venta test node)")
		return
	}
	signals := make(chan os.Signal, 16)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}

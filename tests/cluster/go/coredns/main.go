// Command coredns is CoreDNS with only the plugins the test cluster's real node needs.
//
// Why not "go install github.com/coredns/coredns": that main imports every plugin (core/plugin), and the cloud ones
// (route53, azure, clouddns) pull the AWS, Azure and Google SDKs, which would be most of the compile time on 2
// cores. CoreDNS supports custom builds: import the wanted plugin packages (each registers itself with Caddy), set the
// directives (the plugin chain, in execution order), and hand over to coremain, which is all upstream's main does.
// tests/cluster/real_node.py runs it on the node, serving cluster.local from the API (kubernetes plugin) and
// forwarding other names to the host's resolver.
package main

import (
	"fmt"
	"os"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/hosts"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
)

// directives is the subset of upstream's plugin.cfg for the plugins imported above, in plugin.cfg's order (which
// is the order a query passes through them, whatever their order in the Corefile).
var directives = []string{
	"reload",
	"bind",
	"ready",
	"health",
	"errors",
	"log",
	"loadbalance",
	"cache",
	"hosts",
	"kubernetes",
	"loop",
	"forward",
}

func main() {
	if err := dnsserver.SetDirectives(directives); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	coremain.Run()
}

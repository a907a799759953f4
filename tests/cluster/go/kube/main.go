// Command kube is kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy (and kubectl) in one
// binary.
//
// Why one binary: the components share almost all of their dependencies, so building them together costs about as
// much as building one of them (the slow part of a cold build is compiling k8s.io/*). kubelet and kube-proxy (for
// the real node, tests/cluster/real_node.py) add about 125 packages; kubectl costs almost nothing more and gives the
// tests a client of exactly the server's version (the kubectl found on a machine may be several minors older,
// outside the supported skew of one minor).
// tests/cluster/build.sh installs it once and adds one symlink per command; the command to run is chosen from the
// name the binary was started with (filepath.Base(os.Args[0])), which is what kwokctl uses when it
// runs "<path>/kube-apiserver ...". "kube <component> [flags]" works too, for manual use.
//
// Each branch mirrors the upstream cmd/<component>/<component>.go main function of k8s.io/kubernetes, except
// cri-reset (crireset.go), a helper for tearing down the real test node.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	_ "time/tzdata" // for CronJob time zone support, as in upstream kube-apiserver and kube-controller-manager

	"github.com/spf13/cobra"
	_ "k8s.io/client-go/plugin/pkg/client/auth" // kubectl: client auth plugins, as in upstream cmd/kubectl
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	_ "k8s.io/component-base/logs/json/register"          // JSON log format registration
	_ "k8s.io/component-base/metrics/prometheus/clientgo" // client-go metrics
	_ "k8s.io/component-base/metrics/prometheus/version"  // version metric registration
	kubectl "k8s.io/kubectl/pkg/cmd"
	kubectlutil "k8s.io/kubectl/pkg/cmd/util"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

var components = map[string]func() *cobra.Command{
	"kube-apiserver":          apiserver.NewAPIServerCommand,
	"kube-controller-manager": controllermanager.NewControllerManagerCommand,
	"kube-scheduler":          func() *cobra.Command { return scheduler.NewSchedulerCommand() }, // variadic options
	"kubelet":                 func() *cobra.Command { return kubelet.NewKubeletCommand(context.Background()) },
	"kube-proxy":              proxy.NewProxyCommand,
	"cri-reset":               newCRIResetCommand, // not upstream: see crireset.go
	"kubectl":                 nil,                // see runKubectl
}

func main() {
	name := strings.TrimSuffix(filepath.Base(os.Args[0]), ".exe")
	newCommand, ok := components[name]
	if !ok && len(os.Args) > 1 {
		// "kube kube-apiserver --flag ...": drop the dispatcher's own name from the arguments.
		if newCommand, ok = components[os.Args[1]]; ok {
			os.Args = os.Args[1:]
		}
	}
	if !ok {
		fmt.Fprintf(os.Stderr, "usage: run as kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, "+
			"kube-proxy, kubectl or cri-reset (a symlink to this binary), or as %s <component> [flags]\n", name)
		os.Exit(2)
	}
	if newCommand == nil {
		runKubectl()
		return
	}
	command := newCommand()
	// cobra reads os.Args[1:] itself; cli.Run parses them.
	os.Exit(cli.Run(command))
}

// runKubectl mirrors upstream cmd/kubectl/kubectl.go, whose error handling differs from the servers'.
func runKubectl() {
	// Set the log verbosity before the command is built (it reads plugins and .kuberc).
	logs.GlogSetter(kubectl.GetLogVerbosity(os.Args)) // nolint:errcheck
	command := kubectl.NewDefaultKubectlCommand()
	if err := cli.RunNoErrOutput(command); err != nil {
		kubectlutil.CheckErr(err)
	}
}

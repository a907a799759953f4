package main

// cri-reset: stop and remove every pod sandbox of a CRI runtime, for tearing down the real test node.
//
// Why here: tests/cluster/real_node.py must remove its pods through the runtime, so that containerd runs the CNI
// DEL of each sandbox (releasing the pod's veth, IP and iptables rules) and unmounts its shm and rootfs, before it
// stops containerd. kubeadm reset does this with crictl; the CRI client is already compiled into this binary for
// the kubelet, so a few lines here spare building crictl.

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	criclient "k8s.io/cri-client/pkg"
)

func newCRIResetCommand() *cobra.Command {
	var endpoint string
	var timeout time.Duration
	command := &cobra.Command{
		Use:   "cri-reset --runtime-endpoint unix:///path/to/containerd.sock",
		Short: "Stop and remove all pod sandboxes (and so their containers) of a CRI runtime",
		Args:  cobra.NoArgs,
		RunE: func(command *cobra.Command, _ []string) error {
			ctx := context.Background()
			runtime, err := criclient.NewRemoteRuntimeService(ctx, endpoint, timeout, nil, false)
			if err != nil {
				return err
			}
			sandboxes, err := runtime.ListPodSandbox(ctx, nil)
			if err != nil {
				return err
			}
			var failed error
			for _, sandbox := range sandboxes {
				name := sandbox.Metadata.Namespace + "/" + sandbox.Metadata.Name
				if err := runtime.StopPodSandbox(ctx, sandbox.Id); err != nil {
					failed = fmt.Errorf("stop pod sandbox %s: %w", name, err)
					continue
				}
				if err := runtime.RemovePodSandbox(ctx, sandbox.Id); err != nil {
					failed = fmt.Errorf("remove pod sandbox %s: %w", name, err)
					continue
				}
				fmt.Fprintf(command.OutOrStdout(), "removed pod sandbox %s (%s)\n", name, sandbox.Id)
			}
			return failed
		},
	}
	command.Flags().StringVar(&endpoint, "runtime-endpoint", "", "the CRI runtime's endpoint (unix:///...)")
	command.Flags().DurationVar(&timeout, "timeout", time.Minute, "timeout of each CRI call")
	_ = command.MarkFlagRequired("runtime-endpoint")
	return command
}

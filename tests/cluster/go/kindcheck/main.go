// kindcheck loads a kind cluster configuration exactly as `kind create cluster --config <file>` does before it
// creates any node: kind's own decoder (strict: an unknown field is an error), defaulting, validation, and the merge
// of the containerd patches into kind's node image configuration. It needs no container engine, so the repository's
// kind configuration is checked on machines that have none (tests/integration/test_kind_config.py).
//
// It is built inside a copy of kind's module (tests/cluster/build.sh) because the packages it calls are internal.
//
// Usage: kindcheck <cluster config.yaml> <kind node image's containerd config.toml>
// Prints the nodes' roles and the patched containerd configuration; exits 1 with kind's error when kind would refuse.
package main

import (
	"fmt"
	"os"

	"sigs.k8s.io/kind/pkg/internal/apis/config"
	"sigs.k8s.io/kind/pkg/internal/apis/config/encoding"
	"sigs.k8s.io/kind/pkg/internal/patch"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: kindcheck <cluster config.yaml> <containerd config.toml>")
		os.Exit(2)
	}
	if err := check(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintf(os.Stderr, "ERROR: %v\n", err)
		os.Exit(1)
	}
}

func check(configPath, containerdPath string) error {
	cfg, err := encoding.Load(configPath)
	if err != nil {
		return err
	}
	// What `kind create cluster` does next (create.fixupOptions), e.g. the name "kind" when the file gives none.
	config.SetDefaultsCluster(cfg)
	if err := cfg.Validate(); err != nil {
		return err
	}
	base, err := os.ReadFile(containerdPath)
	if err != nil {
		return err
	}
	patched, err := patch.ContainerdTOML(string(base), cfg.ContainerdConfigPatches, cfg.ContainerdConfigPatchesJSON6902)
	if err != nil {
		return fmt.Errorf("containerdConfigPatches: %w", err)
	}
	fmt.Printf("name: %s\n", cfg.Name)
	for _, node := range cfg.Nodes {
		fmt.Printf("node: %s %d extra port mappings\n", node.Role, len(node.ExtraPortMappings))
	}
	fmt.Printf("---- containerd config.toml\n%s", patched)
	return nil
}

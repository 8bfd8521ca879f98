//go:build lab

// The lab's subcommands run envtest's control plane, so they are compiled
// into the lab's own build only (`make lab`: go build -tags lab), never into
// the binary that ships: envtest's package init needs a writable folder,
// which a read-only root filesystem does not have.

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/herald-lb/herald/internal/lab"
)

func labCommands() map[string]command {
	return map[string]command{
		"lab": {
			summary: "run Herald on a LAN of network namespaces and show a failover (root; make lab)",
			run:     runLab,
		},
		"lab-cluster": {
			summary: "run Herald from its Helm chart as Pods on real Kubernetes nodes in the lab (root; make lab-cluster)",
			run:     runLabCluster,
		},
		"lab-cloud": {
			summary: "run Herald's cloud floating IPs against a Hetzner API stand-in in a routed lab, and show a failover (root; make lab-cloud)",
			run:     runLabCloud,
		},
		"lab-down": {
			summary: "remove what a killed `herald lab` left behind (namespaces, processes, files)",
			run:     runLabDown,
		},
	}
}

func runLab(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runDemo(ctx, "lab", lab.Demo, args, stdout, stderr)
}

func runLabCloud(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runDemo(ctx, "lab-cloud", lab.CloudDemo, args, stdout, stderr)
}

// runDemo parses a namespace lab demo's flags and runs it.
func runDemo(ctx context.Context, name string, demo func(context.Context, lab.DemoOptions, io.Writer) error, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		assets = fs.String("assets", os.Getenv("KUBEBUILDER_ASSETS"), "folder with kube-apiserver, etcd and kubectl ($KUBEBUILDER_ASSETS; make lab sets it)")
		crds   = fs.String("crds", "config/crd/bases", "folder of Herald's CRDs")
		nodes  = fs.Int("nodes", 3, "number of nodes (1-9)")
		hold   = fs.Bool("hold", false, "keep the lab running after the demo, until Ctrl-C")
		logs   = fs.String("logs", "", "keep the controller's and speakers' logs in this folder")
		herald = fs.String("herald", "", "herald binary for the controller and speakers (make lab passes bin/herald, the one that ships; default: this one)")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *assets == "" {
		return errors.New("no control plane: run `make lab`, or pass --assets $(hack/testenv.sh)")
	}
	if *herald == "" {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find the herald binary: %w", err)
		}
		*herald = self
	}
	// envtest logs through controller-runtime's global logger, and complains
	// when none is set; the lab's own output is the demo's steps.
	ctrllog.SetLogger(logr.Discard())
	return demo(ctx, lab.DemoOptions{
		Options: lab.Options{Herald: *herald, Assets: *assets, CRDs: *crds, Nodes: *nodes, LogDir: *logs},
		Hold:    *hold,
	}, stdout)
}

func runLabDown(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lab-down", flag.ContinueOnError)
	fs.SetOutput(stderr)
	all := fs.Bool("all", false, "also stop labs that are still running")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rep, err := lab.Down(ctx, lab.DefaultStateDir, *all)
	for _, id := range rep.Labs {
		fmt.Fprintf(stdout, "removed lab %s\n", id)
	}
	if len(rep.Namespaces) > 0 {
		fmt.Fprintf(stdout, "deleted namespaces: %s\n", strings.Join(rep.Namespaces, " "))
	}
	if len(rep.Killed) > 0 {
		fmt.Fprintf(stdout, "killed %d processes\n", len(rep.Killed))
	}
	for _, id := range rep.Live {
		fmt.Fprintf(stdout, "lab %s is still running: left alone (--all stops it)\n", id)
	}
	if err == nil && len(rep.Labs)+len(rep.Namespaces)+len(rep.Killed)+len(rep.Live) == 0 {
		fmt.Fprintln(stdout, "nothing to clean up")
	}
	return err
}

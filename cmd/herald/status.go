package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/internal/scheme"
	"github.com/herald-lb/herald/internal/statusreport"
)

func statusCommand() command {
	return command{
		summary: "show the configuration's state, the pools, each Service's addresses and announcer, failed BGP sessions",
		run:     runStatus,
	}
}

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		kubeconfig = fs.String("kubeconfig", "", "kubeconfig file; empty means $KUBECONFIG or ~/.kube/config (or in-cluster)")
		namespace  = fs.String("namespace", defaultNamespace(), "namespace Herald runs in ($POD_NAMESPACE, else metallb-system)")
		lbClass    = fs.String("lb-class", "", "the loadBalancerClass Herald handles; empty for Services without one")
	)
	fs.StringVar(namespace, "n", *namespace, "short for --namespace")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, _, err := restConfig(*kubeconfig)
	if err != nil {
		return err
	}
	sch, err := scheme.New()
	if err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Scheme: sch})
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	r, err := statusreport.Gather(ctx, c, *namespace, *lbClass, time.Now())
	if err != nil {
		return err
	}
	return r.Write(stdout)
}

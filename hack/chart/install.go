package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/getter"
	"k8s.io/cli-runtime/pkg/genericclioptions"
)

// release installs or upgrades a real release with Helm's own actions, as
// `helm install --wait` and `helm upgrade --wait` do: the lab's cluster
// tests install Herald the way users do, without the helm CLI.
//
//	chart install|upgrade -kubeconfig FILE [-f values.yaml]... [-set k=v]... [-namespace ns] [-release name] [-timeout 5m] [chart]
func release(ctx context.Context, cmd string, args []string, out io.Writer) error {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	var files, sets fileList
	fs.Var(&files, "f", "values file (repeatable)")
	fs.Var(&sets, "set", "a value, key=value (repeatable)")
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig of the cluster")
	namespace := fs.String("namespace", "metallb-system", "release namespace (created by install when missing)")
	name := fs.String("release", "herald", "release name")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long --wait waits for the release's resources to be ready")
	wait := fs.Bool("wait", true, "wait for the release's resources to be ready (false: a cluster without nodes)")
	kindOrder := fs.String("kind-order", "helm3", "create the objects in the kind order of helm3 or helm4 (order.go)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *kubeconfig == "" {
		return errors.New("-kubeconfig is required")
	}
	if err := setKindOrder(*kindOrder); err != nil {
		return err
	}
	chartDir := filepath.Join("..", "..", "charts", "herald") // from hack/chart
	if fs.NArg() > 0 {
		chartDir = fs.Arg(0)
	}
	vals, err := (&values.Options{ValueFiles: files, Values: sets}).MergeValues(getter.Providers{})
	if err != nil {
		return fmt.Errorf("values: %w", err)
	}
	ch, err := loader.Load(chartDir)
	if err != nil {
		return fmt.Errorf("load chart %s: %w", chartDir, err)
	}
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig, flags.Namespace = kubeconfig, namespace
	cfg := &action.Configuration{}
	logf := func(format string, v ...any) { fmt.Fprintf(out, format+"\n", v...) }
	if err := cfg.Init(flags, *namespace, "secret", logf); err != nil {
		return fmt.Errorf("helm configuration: %w", err)
	}
	start := time.Now()
	switch cmd {
	case "install":
		in := action.NewInstall(cfg)
		in.ReleaseName, in.Namespace, in.CreateNamespace = *name, *namespace, true
		in.Wait, in.Timeout = *wait, *timeout
		_, err = in.RunWithContext(ctx, ch, vals)
	case "upgrade":
		up := action.NewUpgrade(cfg)
		up.Namespace = *namespace
		up.Wait, up.Timeout = *wait, *timeout
		_, err = up.RunWithContext(ctx, *name, ch, vals)
	}
	if err != nil {
		return fmt.Errorf("%s %s from %s: %w", cmd, *name, chartDir, err)
	}
	fmt.Fprintf(out, "%s: release %s in %s ready in %s\n", cmd, *name, *namespace, time.Since(start).Round(time.Millisecond))
	return nil
}

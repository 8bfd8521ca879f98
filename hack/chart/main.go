// Command chart renders and lints charts/herald with Helm's own libraries, so
// neither `make manifests` nor the tests need the helm CLI. It lives in its
// own module: Herald's binary must not depend on Helm.
//
//	go -C hack/chart run . template [-f values.yaml]... [-namespace ns] [-release name] [-namespace-object] [chart]
//	go -C hack/chart run . lint [-f values.yaml]... [chart]
//	go -C hack/chart run . install|upgrade -kubeconfig FILE [-f values.yaml]... [chart]   (install.go)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/cli/values"
	"helm.sh/helm/v3/pkg/getter"
	"helm.sh/helm/v3/pkg/lint/support"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}
}

// fileList collects repeated -f flags, in order: later files win, as in helm.
type fileList []string

func (f *fileList) String() string     { return strings.Join(*f, ",") }
func (f *fileList) Set(v string) error { *f = append(*f, v); return nil }

func run(args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: chart template|lint|install|upgrade [flags] [chart folder]")
	}
	cmd := args[0]
	if cmd == "install" || cmd == "upgrade" {
		return release(context.Background(), cmd, args[1:], out)
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	var files fileList
	fs.Var(&files, "f", "values file (repeatable)")
	namespace := fs.String("namespace", "metallb-system", "release namespace")
	release := fs.String("release", "herald", "release name")
	nsObject := fs.Bool("namespace-object", false, "start the output with the Namespace, labelled for Pod Security (privileged)")
	kubeVersion := fs.String("kube-version", "v1.33.0", "Kubernetes version the chart is rendered for")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	chartDir := filepath.Join("..", "..", "charts", "herald") // from hack/chart
	if fs.NArg() > 0 {
		chartDir = fs.Arg(0)
	}
	for i, f := range files {
		// go -C changes the working folder; relative paths stay relative
		// to where the user typed them when PWD says so.
		if !filepath.IsAbs(f) {
			if wd := os.Getenv("PWD"); wd != "" {
				files[i] = filepath.Join(wd, f)
			}
		}
	}
	vals, err := (&values.Options{ValueFiles: files}).MergeValues(getter.Providers{})
	if err != nil {
		return fmt.Errorf("values: %w", err)
	}
	switch cmd {
	case "template":
		return template(out, chartDir, *release, *namespace, *kubeVersion, *nsObject, vals)
	case "lint":
		return lint(out, chartDir, *namespace, vals)
	default:
		return fmt.Errorf("unknown command %q (template or lint)", cmd)
	}
}

func template(out io.Writer, chartDir, release, namespace, kubeVersion string, nsObject bool, vals map[string]any) error {
	ch, err := loader.Load(chartDir)
	if err != nil {
		return fmt.Errorf("load chart %s: %w", chartDir, err)
	}
	kv, err := chartutil.ParseKubeVersion(kubeVersion)
	if err != nil {
		return fmt.Errorf("kube version %q: %w", kubeVersion, err)
	}
	install := action.NewInstall(&action.Configuration{})
	install.DryRun = true
	install.ClientOnly = true
	install.Replace = true
	install.IncludeCRDs = true
	install.ReleaseName = release
	install.Namespace = namespace
	install.KubeVersion = kv
	install.DisableHooks = true
	rel, err := install.Run(ch, vals)
	if err != nil {
		return fmt.Errorf("render %s: %w", chartDir, err)
	}
	if nsObject {
		// The privileged level is for the speaker: hostNetwork and NET_RAW
		// are refused by the baseline and restricted levels.
		fmt.Fprintf(out, `---
apiVersion: v1
kind: Namespace
metadata:
  name: %s
  labels:
    pod-security.kubernetes.io/enforce: privileged
    pod-security.kubernetes.io/audit: privileged
    pod-security.kubernetes.io/warn: privileged
`, namespace)
	}
	_, err = io.WriteString(out, strings.TrimLeft(rel.Manifest, "\n"))
	return err
}

func lint(out io.Writer, chartDir, namespace string, vals map[string]any) error {
	l := action.NewLint()
	l.Namespace = namespace
	l.Strict = true
	res := l.Run([]string{chartDir}, vals)
	bad := 0
	for _, m := range res.Messages {
		fmt.Fprintln(out, m)
		if m.Severity >= support.WarningSev {
			bad++
		}
	}
	for _, e := range res.Errors {
		if !containsErr(res.Messages, e) {
			fmt.Fprintln(out, "error:", e)
			bad++
		}
	}
	if bad > 0 {
		return fmt.Errorf("lint %s: %d warnings or errors", chartDir, bad)
	}
	fmt.Fprintf(out, "%s: %d chart(s) linted, no warnings\n", chartDir, res.TotalChartsLinted)
	return nil
}

func containsErr(msgs []support.Message, e error) bool {
	for _, m := range msgs {
		if m.Err == e {
			return true
		}
	}
	return false
}

//go:build lab

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

// valueList collects repeated --set flags.
type valueList []string

func (v *valueList) String() string     { return strings.Join(*v, ",") }
func (v *valueList) Set(s string) error { *v = append(*v, s); return nil }

func runLabCluster(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lab-cluster", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		assets     = fs.String("assets", os.Getenv("KUBEBUILDER_ASSETS"), "folder with kube-apiserver, etcd and kubectl ($KUBEBUILDER_ASSETS; make lab-cluster sets it)")
		nodeAssets = fs.String("node-assets", os.Getenv("HERALD_NODE_ASSETS"), "folder with kubelet, kube-proxy, kube-scheduler and kube-controller-manager ($HERALD_NODE_ASSETS, hack/testenv.sh nodes)")
		crds       = fs.String("crds", "config/crd/bases", "folder of Herald's CRDs")
		nodes      = fs.Int("nodes", 3, "number of nodes (1-9)")
		image      = fs.String("image", "", "Herald's image archive (make image), imported into every node")
		labpod     = fs.String("labpod", "", "the static labpod binary (test/labpod): sandbox image and backends")
		chartTool  = fs.String("chart-tool", "", "hack/chart's program, for Helm's install action")
		chart      = fs.String("chart", "charts/herald", "the chart folder")
		hold       = fs.Bool("hold", false, "keep the cluster running after the demo, until Ctrl-C")
		logs       = fs.String("logs", "", "keep the nodes' and control plane's logs in this folder")
		sets       valueList
	)
	fs.Var(&sets, "set", "a chart value, key=value (repeatable), e.g. image.tag=...")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *assets == "" || *image == "" || *labpod == "" || *chartTool == "" {
		return errors.New("missing --assets, --image, --labpod or --chart-tool: run `make lab-cluster`")
	}
	ctrllog.SetLogger(logr.Discard())
	return lab.ClusterDemo(ctx, lab.ClusterDemoOptions{
		Options: lab.Options{Assets: *assets, CRDs: *crds, Nodes: *nodes, LogDir: *logs, Cluster: &lab.ClusterOptions{
			NodeAssets: *nodeAssets, PodBinary: *labpod, Images: []string{*image},
		}},
		ChartTool: *chartTool, Chart: *chart, Values: sets, Hold: *hold,
	}, stdout)
}

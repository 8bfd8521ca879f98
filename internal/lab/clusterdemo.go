package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// ClusterDemoOptions configure ClusterDemo.
type ClusterDemoOptions struct {
	Options // Options.Cluster must be set
	// ChartTool is hack/chart's program (Helm's install action) and Chart
	// the chart folder.
	ChartTool, Chart string
	// Values are chart values on top of L2Values (say image.tag=...), as
	// helm's --set takes them.
	Values []string
	// Hold keeps the lab up after the demo until ctx ends.
	Hold bool
}

// ClusterDemo is `herald lab-cluster`: real nodes, Herald installed from its
// chart as Pods with one Helm release, a LoadBalancer Service in front of a
// backend Pod on every node, reached from the client through kube-proxy.
func ClusterDemo(ctx context.Context, opts ClusterDemoOptions, out io.Writer) (err error) {
	if opts.Cluster == nil {
		return errors.New("cluster demo: no Options.Cluster")
	}
	t0 := time.Now()
	step := func(what, format string, args ...any) {
		fmt.Fprintf(out, "%5.1fs  %-15s %s\n", time.Since(t0).Seconds(), what, fmt.Sprintf(format, args...))
	}
	step("start", "kube-apiserver, etcd, controller-manager, scheduler; %d nodes with containerd, kubelet and kube-proxy", opts.Nodes)
	l, err := Start(ctx, opts.Options)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := l.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
		} else {
			step("cleanup", "nodes, containers, namespaces and control plane removed")
		}
	}()
	var names []string
	for _, n := range l.Nodes() {
		names = append(names, fmt.Sprintf("%s %s (Pods %s)", n.Name, n.IPv4, PodCIDR(len(names)+1)))
	}
	step("nodes", "Ready: %s", strings.Join(names, ", "))
	step("kubeconfig", "%s (lab %s; Ctrl-C stops it and removes everything)", l.Kubeconfig(), l.ID())

	var extra []string
	for _, v := range opts.Values {
		extra = append(extra, "-set", v)
	}
	if _, err := l.Helm(ctx, opts.ChartTool, "install", opts.Chart, L2Values, extra...); err != nil {
		return err
	}
	pods, err := l.Kubectl(ctx, "", "get", "pods", "-n", HeraldNamespace, "-o", "wide")
	if err != nil {
		return err
	}
	step("helm install", "release herald in %s, pool %s in config.* values; Pods Ready:\n%s", HeraldNamespace, Pool4, indent(strings.TrimSpace(pods)))

	if err := l.CreateBackends(ctx, "web", corev1.ServiceExternalTrafficPolicyCluster); err != nil {
		return err
	}
	addr, err := l.WaitBackends(ctx, "web")
	if err != nil {
		return err
	}
	if err := l.WaitKubeProxy(ctx, addr); err != nil {
		return err
	}
	owner, err := l.WaitAnnouncer(ctx, addr)
	if err != nil {
		return err
	}
	answer, err := l.Curl(ctx, addr, 80)
	if err != nil {
		return err
	}
	step("default/web", "%s announced by %s's speaker Pod; curl from the client answered by %q (node, backend Pod)", addr, owner, answer)
	if !opts.Hold {
		return nil
	}
	step("hold", "try: KUBECONFIG=%s %s/kubectl get pods -A -o wide", l.Kubeconfig(), opts.Assets)
	step("hold", "     ip netns exec %s curl -s http://%s/", l.ClientNode().Namespace, addr)
	<-ctx.Done()
	return nil
}

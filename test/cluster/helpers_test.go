package cluster

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/internal/lab"
	"github.com/herald-lb/herald/internal/testcluster"
)

// helm runs Helm's install or upgrade action (with --wait) against the lab,
// with the given values on top of the chart's defaults.
func helm(t *testing.T, l *lab.Lab, action, values string, extra ...string) {
	t.Helper()
	start := time.Now()
	chart := filepath.Join(testcluster.RepoRoot(), "charts", "herald")
	if _, err := l.Helm(ctxT(t, 4*time.Minute), testEnv.art.chart, action, chart, values, extra...); err != nil {
		t.Fatal(err)
	}
	t.Logf("helm %s: release ready in %s", action, time.Since(start).Round(time.Millisecond))
}

// backends runs the labpod backend on every node behind a LoadBalancer
// Service and returns the Service's address once Herald has given it one
// and every node's kube-proxy forwards it.
func backends(t *testing.T, l *lab.Lab, name string, policy corev1.ServiceExternalTrafficPolicy) netip.Addr {
	t.Helper()
	ctx := ctxT(t, 3*time.Minute)
	if err := l.CreateBackends(ctx, name, policy); err != nil {
		t.Fatal(err)
	}
	addr, err := l.WaitBackends(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.WaitKubeProxy(ctx, addr); err != nil {
		t.Fatal(err)
	}
	return addr
}

// answer is a backend's reply: the node and the Pod that served it.
type answer struct{ node, pod string }

func parseAnswer(s string) (answer, bool) {
	node, pod, ok := strings.Cut(strings.TrimSpace(s), " ")
	return answer{node, pod}, ok && node != "" && pod != ""
}

// curlUntil runs curl from the client until it is answered by a backend.
func curlUntil(t *testing.T, l *lab.Lab, addr netip.Addr, d time.Duration) answer {
	t.Helper()
	ctx := ctxT(t, d)
	var last error
	for ctx.Err() == nil {
		out, err := l.Curl(ctx, addr, 80)
		if a, ok := parseAnswer(out); err == nil && ok {
			return a
		}
		last = fmt.Errorf("%q: %v", out, err)
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("curl %s: %v", addr, last)
	return answer{}
}

func eventually(t *testing.T, ctx context.Context, what string, cond func() (bool, string)) {
	t.Helper()
	var state string
	for {
		ok, s := cond()
		if ok {
			return
		}
		state = s
		select {
		case <-ctx.Done():
			t.Fatalf("%s: still %s", what, state)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// speakerPod is the name of the speaker Pod on node.
func speakerPod(t *testing.T, l *lab.Lab, node string) string {
	t.Helper()
	pods, err := l.Client().CoreV1().Pods(lab.HeraldNamespace).List(ctxT(t, 30*time.Second), metav1.ListOptions{
		LabelSelector: "app.kubernetes.io/component=speaker", FieldSelector: "spec.nodeName=" + node,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			return p.Name
		}
	}
	t.Fatalf("no speaker Pod on %s", node)
	return ""
}

// failed returns the first failed sample, if any.
func failed(samples []lab.Sample) (lab.Sample, bool) {
	for _, s := range samples {
		if s.Err != nil {
			return s, true
		}
	}
	return lab.Sample{}, false
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatalf("address %q: %v", s, err)
	}
	return a
}

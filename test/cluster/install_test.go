package cluster

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/internal/lab"
	"github.com/herald-lb/herald/internal/testcluster"
)

// TestChartPodSecurity: on a namespace held to the Pod Security baseline
// level (Talos enforces it by default), the speaker's Pods are refused
// (hostNetwork, NET_RAW); the labels docs/install.md gives make the same
// helm install finish, speakers Ready.
func TestChartPodSecurity(t *testing.T) {
	l := startCluster(t, 1)
	ctx := ctxT(t, 5*time.Minute)
	if _, err := l.Kubectl(ctx, "", "create", "namespace", lab.HeraldNamespace); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Kubectl(ctx, "", "label", "namespace", lab.HeraldNamespace, "pod-security.kubernetes.io/enforce=baseline"); err != nil {
		t.Fatal(err)
	}
	installed := make(chan error, 1)
	go func() {
		_, err := l.Helm(ctx, testEnv.art.chart, "install", filepath.Join(testcluster.RepoRoot(), "charts", "herald"), lab.L2Values)
		installed <- err
	}()
	var refusal string
	eventually(t, ctx, "the speaker's Pods refused at baseline", func() (bool, string) {
		ev, err := l.Client().CoreV1().Events(lab.HeraldNamespace).List(ctx, metav1.ListOptions{FieldSelector: "reason=FailedCreate"})
		if err != nil {
			return false, err.Error()
		}
		for _, e := range ev.Items {
			if e.InvolvedObject.Kind == "DaemonSet" && strings.Contains(e.Message, `violates PodSecurity "baseline`) {
				refusal = e.Message
				return true, ""
			}
		}
		return false, "no FailedCreate event yet"
	})
	t.Logf("refused: %s", refusal)
	if _, err := l.Kubectl(ctx, "", "label", "namespace", lab.HeraldNamespace, "--overwrite",
		"pod-security.kubernetes.io/enforce=privileged", "pod-security.kubernetes.io/audit=privileged",
		"pod-security.kubernetes.io/warn=privileged"); err != nil {
		t.Fatal(err)
	}
	if err := <-installed; err != nil {
		t.Fatalf("helm install after the docs' labels: %v", err)
	}
	addr := backends(t, l, "web", corev1.ServiceExternalTrafficPolicyCluster)
	curlUntil(t, l, addr, time.Minute)
}

// TestChartUpgrade: helm upgrade that changes the speakers' Pod template
// rolls every speaker (the DaemonSet's rolling update, one node at a time)
// with no failed request and without moving the Service's address.
func TestChartUpgrade(t *testing.T) {
	l := startCluster(t, 3)
	helm(t, l, "install", lab.L2Values)
	addr := backends(t, l, "web", corev1.ServiceExternalTrafficPolicyCluster)
	curlUntil(t, l, addr, time.Minute)
	ctx := ctxT(t, 5*time.Minute)
	before := speakerPods(ctx, t, l)

	probe := l.Probe(ctx, addr, 80, 20*time.Millisecond)
	time.Sleep(time.Second)
	start := time.Now()
	helm(t, l, "upgrade", lab.L2Values, "-set", "speaker.logLevel=debug")
	// --wait returned once the DaemonSet's rollout finished.
	time.Sleep(2 * time.Second)
	samples := probe.Stop()
	after := speakerPods(ctx, t, l)
	for p := range before {
		if after[p] {
			t.Errorf("speaker Pod %s survived the upgrade: the rolling update did not happen", p)
		}
	}
	// Each rolled speaker moves the address at most twice: away, and back
	// once its successor Pod wins it.
	s, inFlight, bad := lab.FailedBeyondMoves(samples, 2*len(before))
	if bad {
		t.Fatalf("request at +%s failed during the speakers' rolling update: %v (of %d)", s.Start.Sub(start).Round(time.Millisecond), s.Err, len(samples))
	}
	for _, s := range inFlight {
		t.Logf("in flight at a move, reset at +%s: %v", s.Start.Sub(start).Round(time.Millisecond), s.Err)
	}
	svc, err := l.Client().CoreV1().Services("default").Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(svc.Status.LoadBalancer.Ingress) != 1 || svc.Status.LoadBalancer.Ingress[0].IP != addr.String() {
		t.Fatalf("the Service's address moved: %v, was %s", svc.Status.LoadBalancer.Ingress, addr)
	}
	t.Logf("upgrade rolled %d speakers: %d requests, none failed, %s kept", len(before), len(samples), addr)
}

func speakerPods(ctx context.Context, t *testing.T, l *lab.Lab) map[string]bool {
	t.Helper()
	pods, err := l.Client().CoreV1().Pods(lab.HeraldNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=speaker"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, p := range pods.Items {
		out[p.Name] = true
	}
	return out
}

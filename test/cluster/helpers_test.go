package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

// waitNewSpeakerPod waits until a speaker Pod other than old is Ready on
// node: the DaemonSet has replaced old.
func waitNewSpeakerPod(ctx context.Context, t *testing.T, l *lab.Lab, node, old string) {
	t.Helper()
	eventually(t, ctx, "a new speaker Pod Ready on "+node, func() (bool, string) {
		pods, err := l.Client().CoreV1().Pods(lab.HeraldNamespace).List(ctx, metav1.ListOptions{
			LabelSelector: "app.kubernetes.io/component=speaker", FieldSelector: "spec.nodeName=" + node,
		})
		if err != nil {
			return false, err.Error()
		}
		for _, p := range pods.Items {
			if p.Name != old && podReady(&p) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d speaker Pods on %s", len(pods.Items), node)
	})
}

func mustAddr(t *testing.T, s string) netip.Addr {
	t.Helper()
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatalf("address %q: %v", s, err)
	}
	return a
}

// speakerPodDrill samples ARP answers and requests to addr, runs before
// (if any) after a second of them, deletes node's speaker Pod with del,
// waits until it is gone and a new speaker Pod there is Ready (the whole
// rolling-update window, the address won back included), and judges the
// handover with checkHandover.
func speakerPodDrill(ctx context.Context, t *testing.T, l *lab.Lab, addr netip.Addr, node string, before func(), del func(pod string)) {
	t.Helper()
	answers, err := l.SampleAnswers(ctx, addr, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	probe := l.Probe(ctx, addr, 80, 20*time.Millisecond)
	time.Sleep(time.Second) // answers before the handover
	if before != nil {
		before()
	}
	pod := speakerPod(t, l, node)
	deleted := time.Now()
	del(pod)
	eventually(t, ctx, "speaker Pod "+pod+" gone", func() (bool, string) {
		_, err := l.Client().CoreV1().Pods(lab.HeraldNamespace).Get(ctx, pod, metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	gone := time.Now()
	waitNewSpeakerPod(ctx, t, l, node, pod)
	time.Sleep(2 * time.Second)
	samples := probe.Stop()
	rounds, err := answers.Stop()
	var double *lab.DoubleAnswerError
	if err != nil && !errors.As(err, &double) {
		t.Fatal(err)
	}
	checkHandover(t, l, node, deleted, gone, samples, rounds)
}

// checkHandover judges a speaker Pod deleted on node from at deleted (gone
// from the API at gone), from the client's requests and ARP rounds over the
// whole drill. By design the stopping speaker keeps answering for its
// handover delay beside its successor: two MACs may answer, those two only,
// and only until the old Pod is gone. Some node other than from must have
// answered. No request may fail but, at each move of the address (to the
// successor, and back when the new speaker on from wins it), the one
// connection in flight at that instant, which the other node resets (see
// failed): Herald gives the address back to the node rendezvous hashing
// elects.
func checkHandover(t *testing.T, l *lab.Lab, from string, deleted, gone time.Time, samples []lab.Sample, rounds []lab.Round) {
	t.Helper()
	var winBack time.Time // the first round from answers alone again
	seen := map[string]bool{}
	for _, r := range rounds {
		var nodes []string
		for _, mac := range r.MACs {
			nodes = append(nodes, l.NodeByMAC(mac))
		}
		if len(nodes) > 1 && (r.Sent.Before(deleted) || r.Sent.After(gone) || len(nodes) != 2 || !slices.Contains(nodes, from)) {
			t.Fatalf("ARP request at +%s answered by %v (speaker Pod deleted at 0, gone at +%s)",
				r.Sent.Sub(deleted).Round(time.Millisecond), nodes, gone.Sub(deleted).Round(time.Millisecond))
		}
		for _, n := range nodes {
			if n != from {
				seen[n] = true
			}
		}
		if len(seen) > 0 && winBack.IsZero() && len(nodes) == 1 && nodes[0] == from {
			winBack = r.Sent
		}
	}
	if len(seen) == 0 {
		t.Fatalf("no node but %s answered ARP in %d rounds: the deleted speaker handed over to nobody", from, len(rounds))
	}
	// Two moves at most: to the successor, and back to from when its new
	// speaker wins the address back.
	moves := 1
	if !winBack.IsZero() {
		moves = 2
	}
	s, reset, bad := lab.FailedBeyondMoves(samples, moves)
	if bad {
		t.Fatalf("request at +%s failed during the handover: %v (of %d requests; in flight at a move before it: %d)",
			s.Start.Sub(deleted).Round(time.Millisecond), s.Err, len(samples), len(reset))
	}
	back := "kept the address"
	if !winBack.IsZero() {
		back = fmt.Sprintf("won it back at +%s", winBack.Sub(deleted).Round(time.Millisecond))
	}
	t.Logf("%d requests, none failed in the handover; %s handed over to %v; its new speaker %s; %d request(s) in flight at a move reset",
		len(samples), from, keys(seen), back, len(reset))
	for _, s := range reset {
		t.Logf("  reset at +%s: %v", s.Start.Sub(deleted).Round(time.Millisecond), s.Err)
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

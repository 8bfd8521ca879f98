package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/lab"
)

// TestPreferred: preferredNodeSelectors move the address to the node whose
// preferences weigh the most, even where the hash elects another. When that
// node dies (speaker killed, link cut), the next one by weight takes over;
// when it comes back, the address returns to it. From the moment the
// preference is in force to the end, two nodes never answer one ARP
// request.
func TestPreferred(t *testing.T) {
	l := startLab(t)
	ctx := ctxT(t, 4*time.Minute)
	addrs := service(t, l, lab.Service{Name: "pref"})
	addr := addrs[0]
	hashed := announcedBy(t, l, "pref", addr)

	// first and second are the two nodes the hash did not elect: first is
	// preferred most, second next, the hash's choice last.
	var others []string
	for _, n := range l.Nodes() {
		if n.Name != hashed {
			others = append(others, n.Name)
		}
	}
	first, second := others[0], others[1]
	for node, tier := range map[string]string{first: "first", second: "second"} {
		if _, err := l.Kubectl(ctx, "", "label", "node", node, "tier="+tier, "--overwrite"); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Apply(ctx, fmt.Sprintf(`apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: lab, namespace: %s}
spec:
  ipAddressPools: [lab]
  preferredNodeSelectors:
  - {weight: 50, preference: {matchLabels: {tier: first}}}
  - {weight: 10, preference: {matchLabels: {tier: second}}}
`, lab.HeraldNamespace)); err != nil {
		t.Fatal(err)
	}
	if got := announcedBy(t, l, "pref", addr); got != first {
		t.Fatalf("announced by %s, want %s, the preferred node (the hash alone elects %s)", got, first, hashed)
	}

	answers := watchAnswers(t, l, addr)
	killed := killNode(t, l, first)
	// Not announcedBy: the killed speaker could not remove its
	// ServiceL2Status; ARP and curl say who announces.
	waitAnsweredBy(t, l, answers, second, killed, hardFailoverBound+5*time.Second)
	if got := curlUntil(t, l, addr); got != second {
		t.Fatalf("curl answered by %s after %s died, want %s, the next preferred node", got, first, second)
	}

	waitAnsweredBy(t, l, answers, first, reviveNode(t, l, first), 45*time.Second)
	if got := announcedBy(t, l, "pref", addr); got != first {
		t.Fatalf("announced by %s after %s came back, want it back on %s", got, first, first)
	}
	stopAnswers(t, answers)
}

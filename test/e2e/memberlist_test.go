package e2e

import (
	"bytes"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/kubeconfig"
	"github.com/herald-lb/herald/internal/lab"
)

// keylessRBAC is what a speaker needs, for a ServiceAccount of its own,
// except the memberlist Secret: it may list and watch Secrets (a speaker
// before issue 11 needed that to start at all) but not get one.
const keylessRBAC = `
apiVersion: v1
kind: ServiceAccount
metadata:
  name: keyless
  namespace: ` + lab.HeraldNamespace + `
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: herald-e2e-keyless
rules:
- apiGroups: [""]
  resources: [services, nodes, namespaces]
  verbs: [get, list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [metallb.io]
  resources: ["*"]
  verbs: ["*"]
- apiGroups: [herald-lb.io]
  resources: [cloudadvertisements]
  verbs: [get, list, watch]
- apiGroups: [herald-lb.io]
  resources: [servicecloudstatuses, servicecloudstatuses/status]
  verbs: ["*"]
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, create, update]
- apiGroups: [""]
  resources: [secrets]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: herald-e2e-keyless
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: herald-e2e-keyless
subjects:
- kind: ServiceAccount
  name: keyless
  namespace: ` + lab.HeraldNamespace + `
`

// grantKey lets the keyless ServiceAccount read the memberlist Secret, as
// the chart's speaker Role does.
const grantKey = `
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: keyless-memberlist
  namespace: ` + lab.HeraldNamespace + `
rules:
- apiGroups: [""]
  resources: [secrets]
  resourceNames: [memberlist]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: keyless-memberlist
  namespace: ` + lab.HeraldNamespace + `
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: keyless-memberlist
subjects:
- kind: ServiceAccount
  name: keyless
  namespace: ` + lab.HeraldNamespace + `
`

// TestSpeakerWithoutKeyStaysSilent: node2's speaker may not read the
// memberlist Secret. It cannot join node1's encrypted memberlist, so were it
// to announce it would be alone in a cluster of its own, elect itself for
// every address and answer ARP beside node1 (a split brain). It must answer
// nothing, say why, and join once it may read the key.
func TestSpeakerWithoutKeyStaysSilent(t *testing.T) {
	var keylessKC string
	l := startBareLab(t, func(o *lab.Options) {
		o.Nodes = 2
		o.NoSpeakers = true
		o.SpeakerArgs = func(kc string, n lab.Node) []string {
			if n.Name == "node2" {
				kc = keylessKC
			}
			return lab.DefaultSpeakerArgs(kc, n)
		}
	})
	ctx := ctxT(t, 3*time.Minute)
	if err := l.Apply(ctx, keylessRBAC); err != nil {
		t.Fatal(err)
	}
	cfg := l.Config()
	cfg.Impersonate.UserName = "system:serviceaccount:" + lab.HeraldNamespace + ":keyless"
	keylessKC = filepath.Join(t.TempDir(), "keyless.kubeconfig")
	if err := kubeconfig.Write(cfg, keylessKC); err != nil {
		t.Fatal(err)
	}
	if err := l.Apply(ctx, lab.Config()); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"node1", "node2"} {
		if err := l.StartSpeaker(n); err != nil {
			t.Fatal(err)
		}
	}
	var addrs []netip.Addr
	for i := range 6 {
		addrs = append(addrs, service(t, l, lab.Service{Name: fmt.Sprintf("key-%d", i)})[0])
	}
	mac1, err := l.NodeMAC("node1")
	if err != nil {
		t.Fatal(err)
	}
	mac2, err := l.NodeMAC("node2")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if node, err := l.WaitAnnouncer(ctx, a); err != nil || node != "node1" {
			t.Fatalf("%s announced by %q (%v), want node1, the only member", a, node, err)
		}
	}

	// Sample every address for longer than the old speaker waited for the
	// key (10 s) plus the membership's join timeout (3 s): only node1 may
	// ever answer.
	var mu sync.Mutex
	var bad []string
	var wg sync.WaitGroup
	until := time.Now().Add(20 * time.Second)
	for _, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(until) {
				macs, err := l.Neighbors(ctx, a)
				if err != nil {
					mu.Lock()
					bad = append(bad, fmt.Sprintf("%s: %v", a, err))
					mu.Unlock()
					return
				}
				if len(macs) != 1 || !bytes.Equal(macs[0], mac1) {
					mu.Lock()
					bad = append(bad, fmt.Sprintf("%s at %s answered by %v (node1 %s, node2 %s)",
						a, time.Now().Format("15:04:05.000"), macs, mac1, mac2))
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(bad) > 0 {
		t.Fatalf("the speaker without the key answered:\n%s", strings.Join(bad, "\n"))
	}

	// It says why: an Event on its Node, and the metric.
	out, err := l.Kubectl(ctx, "", "get", "events", "-A", "--field-selector", "involvedObject.name=node2,reason=MemberlistKeyUnavailable",
		"-o", "jsonpath={.items[*].message}")
	if err != nil || !strings.Contains(out, "forbidden") {
		t.Errorf("no MemberlistKeyUnavailable Event on node2 naming the refusal: %q %v", out, err)
	}
	if m := speakerMetric(t, l, "node2", "herald_speaker_memberlist_key_unavailable"); m != "1" {
		t.Errorf("node2: herald_speaker_memberlist_key_unavailable = %q, want 1", m)
	}

	// Once it may read the key, it joins and takes its share.
	if err := l.Apply(ctx, grantKey); err != nil {
		t.Fatal(err)
	}
	eventually(t, "node2 announcing some address after joining", 60*time.Second, func() (bool, string) {
		var owners []string
		for _, a := range addrs {
			node, _ := l.Announcer(ctx, a)
			owners = append(owners, node)
		}
		return slices.Contains(owners, "node2"), fmt.Sprint(owners)
	})
	if m := speakerMetric(t, l, "node2", "herald_speaker_memberlist_key_unavailable"); m != "0" {
		t.Errorf("node2 after joining: herald_speaker_memberlist_key_unavailable = %q, want 0", m)
	}
}

// speakerMetric returns the value of an unlabelled metric of a lab speaker,
// or "" when it has none.
func speakerMetric(t *testing.T, l *lab.Lab, node, name string) string {
	t.Helper()
	var ip netip.Addr
	for _, n := range l.Nodes() {
		if n.Name == node {
			ip = n.IPv4
		}
	}
	text, err := scrape(ctxT(t, 10*time.Second), l, ip)
	if err != nil {
		t.Fatalf("%s metrics: %v", node, err)
	}
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

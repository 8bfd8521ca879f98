package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/lab"
)

// bgpAnnounced checks what a BGP Service says about its advertising nodes:
// metallb_speaker_announced{protocol="bgp"} on every node that advertises
// it and on no other, a nodeAssigned Event from each, and both gone when a
// node stops advertising it or the Service goes.
func bgpAnnounced(ctx context.Context, t *testing.T, l *lab.Lab) {
	nodes := l.Nodes()
	// Local policy with one endpoint: only node2 advertises.
	addrs := service(t, l, lab.Service{Name: "bgp-seen", Local: true, EndpointNodes: []string{"node2"}})
	addr := addrs[0]
	expectAnnounced(ctx, t, l, "default/bgp-seen", addr, map[string]bool{"node2": true})
	expectEvent(ctx, t, l, "bgp-seen", "nodeAssigned", `announcing from node "node2" with protocol "bgp"`)
	// Every node gets an endpoint: all three advertise, and say so.
	if err := l.SetEndpoints(ctx, "default", "bgp-seen", "node1", "node2", "node3"); err != nil {
		t.Fatal(err)
	}
	all := map[string]bool{}
	for _, n := range nodes {
		all[n.Name] = true
	}
	expectAnnounced(ctx, t, l, "default/bgp-seen", addr, all)
	for _, n := range nodes {
		expectEvent(ctx, t, l, "bgp-seen", "nodeAssigned", fmt.Sprintf("announcing from node %q with protocol \"bgp\"", n.Name))
	}
	// node1 loses its endpoint: it stops advertising, and says so.
	if err := l.SetEndpoints(ctx, "default", "bgp-seen", "node2", "node3"); err != nil {
		t.Fatal(err)
	}
	expectAnnounced(ctx, t, l, "default/bgp-seen", addr, map[string]bool{"node2": true, "node3": true})
	expectEvent(ctx, t, l, "bgp-seen", "nodeUnassigned", `no longer announcing from node "node1" with protocol "bgp"`)
	// The Service goes: no series is left behind.
	if _, err := l.Kubectl(ctx, "", "delete", "service", "bgp-seen", "-n", "default"); err != nil {
		t.Fatal(err)
	}
	expectAnnounced(ctx, t, l, "default/bgp-seen", addr, nil)
}

// expectAnnounced waits until exactly the nodes in want export
// metallb_speaker_announced{protocol="bgp"} for svc and addr.
func expectAnnounced(ctx context.Context, t *testing.T, l *lab.Lab, svc string, addr netip.Addr, want map[string]bool) {
	t.Helper()
	series := fmt.Sprintf(`metallb_speaker_announced{ip=%q,node=%%q,protocol="bgp",service=%q} 1`, addr.String(), svc)
	eventually(t, fmt.Sprintf("metallb_speaker_announced{protocol=\"bgp\"} for %s %s on exactly %v", svc, addr, want), 30*time.Second, func() (bool, string) {
		for _, n := range l.Nodes() {
			text, err := scrape(ctx, l, n.IPv4)
			if err != nil {
				return false, err.Error()
			}
			if has := strings.Contains(text, fmt.Sprintf(series, n.Name)); has != want[n.Name] {
				return false, fmt.Sprintf("%s exports it: %v", n.Name, has)
			}
		}
		return true, ""
	})
}

// expectEvent waits for an Event with reason and message on the Service.
func expectEvent(ctx context.Context, t *testing.T, l *lab.Lab, svc, reason, msg string) {
	t.Helper()
	want := reason + ": " + msg
	eventually(t, "Event "+want, 30*time.Second, func() (bool, string) {
		out, err := l.Kubectl(ctx, "", "get", "events", "-n", "default", "--field-selector", "involvedObject.name="+svc,
			"-o", "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}")
		return err == nil && strings.Contains(out, want), out
	})
}

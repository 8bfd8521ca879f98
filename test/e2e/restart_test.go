package e2e

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/herald-lb/herald/internal/lab"
)

// TestRestartWithProblemObject: a BGPPeer that the webhook admits while it
// waits for its password Secret must not take the rest of the
// configuration down when the components restart. Every speaker and the
// controller are restarted with it present: each Service is answered again
// by exactly one node (a restarted speaker with no configuration once
// announced nothing while the others still elected it), and a new Service
// gets an address and an answer.
func TestRestartWithProblemObject(t *testing.T) {
	l := startLab(t)
	var addrs []netip.Addr
	for i := range 4 {
		a := service(t, l, lab.Service{Name: fmt.Sprintf("r%d", i)})
		curlUntil(t, l, a[0])
		addrs = append(addrs, a[0])
	}
	peer := `apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: waits-for-secret, namespace: ` + lab.HeraldNamespace + `}
spec:
  myASN: 64500
  peerASN: 64501
  peerAddress: 192.0.2.250
  passwordSecret: {name: not-yet-created}
`
	if err := l.Apply(ctxT(t, time.Minute), peer); err != nil {
		t.Fatal(err)
	}

	if err := l.StopController(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	for _, n := range l.Nodes() {
		if err := l.StopSpeaker(n.Name, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.StartController(); err != nil {
		t.Fatal(err)
	}
	for _, n := range l.Nodes() {
		if err := l.StartSpeaker(n.Name); err != nil {
			t.Fatal(err)
		}
	}

	for _, a := range addrs {
		// The client's neighbour cache may still hold the old owner: ask
		// the LAN again until a node answers, then check it is only one.
		if _, err := l.WaitAnnouncer(ctxT(t, 30*time.Second), a); err != nil {
			t.Errorf("%s: no node answers after the restart: %v", a, err)
			continue
		}
		curlUntil(t, l, a)
		macs, err := l.Neighbors(ctxT(t, 10*time.Second), a)
		if err != nil || len(macs) != 1 {
			t.Errorf("%s answered by %v (%v), want exactly one node", a, macs, err)
		}
	}
	a := service(t, l, lab.Service{Name: "after-restart"})
	curlUntil(t, l, a[0])
}

package bgp

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestFRRSessionErrors: the reasons Peers reports for sessions that
// cannot be established, against a real router: the router presents
// another AS than the configured peerASN, the router expects another AS
// from the node, and nothing listens on the port.
func TestFRRSessionErrors(t *testing.T) {
	l := newLab(t, frrBgpd, "vtysh")
	startFRR(t, l, frrConfig(routerASN, frrNeighbors([]netip.Addr{nodeV4}, []netip.Addr{nodeV6})), false)
	sp := l.startSpeaker(t, speakerConfig())
	sp.setPeers(
		Peer{Name: "wrong-peer-as", Address: routerV4, ASN: 64999, SourceAddress: nodeV4, ConnectTime: time.Second},
		Peer{Name: "wrong-local-as", Address: routerV6, ASN: routerASN, LocalASN: 64998, SourceAddress: nodeV6, ConnectTime: time.Second},
	)
	wantError := func(name, want string) {
		t.Helper()
		eventually(t, 20*time.Second, name+" reports "+want, func() string {
			p, _ := sp.peer(name)
			if p.Up || !strings.Contains(p.LastError, want) {
				return p.State + " " + p.LastError
			}
			return ""
		})
	}
	wantError("wrong-peer-as", "the peer's OPEN carries another AS than peerASN")
	wantError("wrong-local-as", "expects another AS from this node")
	sp.setPeers(Peer{Name: "no-listener", Address: routerV6, Port: 1179, ASN: routerASN, SourceAddress: nodeV6, ConnectTime: time.Second})
	wantError("no-listener", "connection refused")
}

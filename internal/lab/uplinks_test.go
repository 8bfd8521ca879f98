package lab

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
)

// TestPointToPoint: in the cloud topology the router shares no layer 2
// with the nodes, and an address reaches a node exactly while the router's
// route (RouteVia) names that node; the node answers no ARP for it on its
// uplink, and a cut link cuts the uplink too.
func TestPointToPoint(t *testing.T) {
	assets := requireLab(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	l, err := Start(ctx, Options{Assets: assets, CRDs: crdDir(), Nodes: 2, NoController: true, NoSpeakers: true,
		Router: true, PointToPoint: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	links, err := l.router.nl.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, link := range links {
		names = append(names, link.Attrs().Name)
	}
	addrs, err := l.router.nl.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	lan := netip.MustParsePrefix("192.0.2.0/24")
	for _, a := range addrs {
		if ip, _ := netip.AddrFromSlice(a.IP); lan.Contains(ip.Unmap()) {
			t.Errorf("the router has %s, on the nodes' LAN (links %v)", ip, names)
		}
	}

	// The floating IP is local on every node, on lo (the lab's kube-proxy
	// keeps kube-ipvs0 to the Services' addresses), for which strict ARP
	// answers nothing on eth1; each node answers HTTP on it with its name.
	fip := netip.MustParsePrefix("203.0.113.77/32")
	for _, n := range l.nodes {
		if err := addrsUp(n.nl, "lo", fip); err != nil {
			t.Fatal(err)
		}
		var ln net.Listener
		if err := inNetns(n.ns, func() (err error) {
			ln, err = net.Listen("tcp", netip.AddrPortFrom(fip.Addr(), 18080).String())
			return err
		}); err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, n.Name) })}
		go srv.Serve(ln)
		defer srv.Close()
	}
	answer := func() string {
		got, err := l.CurlFromRemote(ctx, fip.Addr(), 18080)
		if err != nil {
			return "nobody"
		}
		return got
	}
	steps := []struct {
		what string
		do   func() error
		want string
	}{
		{"no route yet", func() error { return nil }, "nobody"},
		{"routed via node2", func() error { return l.RouteVia(fip, "node2") }, "node2"},
		{"routed via node1", func() error { return l.RouteVia(fip, "node1") }, "node1"},
		{"node1's link cut", func() error { return l.CutLink("node1") }, "nobody"},
		{"node1's link back", func() error { return l.RestoreLink("node1") }, "node1"},
		{"unrouted", func() error { return l.RouteVia(fip, "") }, "nobody"},
	}
	for _, st := range steps {
		start := time.Now()
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.what, err)
		}
		t.Logf("%s: done in %v", st.what, time.Since(start).Round(time.Millisecond))
		if got := answer(); got != st.want {
			t.Errorf("%s: %s answered by %s, want %s", st.what, fip.Addr(), got, st.want)
		}
	}
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", l.router.Namespace,
		"arping", "-c", "2", "-w", "2", "-I", uplinkOf("node2"), fip.Addr().String()).CombinedOutput()
	if err == nil || len(parseMACs(string(out))) > 0 {
		t.Errorf("node2 answered ARP for %s on its uplink (%v):\n%s", fip.Addr(), err, out)
	}
}

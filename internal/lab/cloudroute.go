package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"

	"github.com/vishvananda/netlink"
)

// RouteVia makes the lab's router send prefix to node, as a cloud's network
// delivers a floating IP to the server its API has it assigned to; an empty
// node removes the route (an unassigned IP reaches no one). The cloud
// announcer's e2e points its API stand-in's assignments here.
func (l *Lab) RouteVia(prefix netip.Prefix, node string) error {
	if l.router == nil || l.router.ns == 0 {
		return errNoRouter
	}
	h, err := netlink.NewHandleAt(l.router.ns)
	if err != nil {
		return fmt.Errorf("router netlink: %w", err)
	}
	defer h.Close()
	route := &netlink.Route{Dst: prefixNet(prefix)}
	if node == "" {
		if err := h.RouteDel(route); err != nil {
			return fmt.Errorf("router: delete route %s: %w", prefix, err)
		}
		return nil
	}
	n, err := l.node(node)
	if err != nil {
		return err
	}
	gw := ofFamily([2]netip.Addr{n.IPv4, n.IPv6}, prefix.Addr())
	if l.opts.PointToPoint {
		gw = n.uplinkFor(prefix.Addr())
	}
	route.Gw = gw.AsSlice()
	if err := h.RouteReplace(route); err != nil {
		return fmt.Errorf("router: route %s via %s (%s): %w", prefix, gw, node, err)
	}
	return nil
}

// PartitionMemberlist cuts (or, with cut false, restores) the node's
// memberlist traffic, TCP and UDP on port 7946 both ways, with iptables in
// the node's namespace: the node and the others each see the other side
// dead, while the client, the router and the API server still reach every
// node. It is the partition that two owners of one address come from.
func (l *Lab) PartitionMemberlist(ctx context.Context, node string, cut bool) error {
	n, err := l.node(node)
	if err != nil {
		return err
	}
	op := "-A"
	if !cut {
		op = "-D"
	}
	for _, chain := range []string{"INPUT", "OUTPUT"} {
		for _, proto := range []string{"udp", "tcp"} {
			out, err := exec.CommandContext(ctx, "nsenter", "--net="+namespacePath(n.Namespace), "--",
				"iptables", "-w", op, chain, "-p", proto, "--dport", "7946", "-j", "DROP").CombinedOutput()
			if err != nil {
				return fmt.Errorf("%s: iptables %s %s %s: %w: %s", node, op, chain, proto, err, out)
			}
		}
	}
	return nil
}

package lab

// The router (Options.Router) puts a BGP router between the LAN and a
// client on another subnet:
//
//	hl<id>-router   eth0 on the LAN bridge 192.0.2.1/24, 2001:db8::1/64;
//	                eth1 198.51.100.1/24, 2001:db8:100::1/64; forwarding and
//	                ECMP with L4 hashing; FRR (zebra, bgpd, bfdd) peering with
//	                every node, multipath on
//	hl<id>-remote   eth0 198.51.100.10/24, 2001:db8:100::10/64, default
//	                routes via the router; curl
//
// Every node gets routes to the remote subnet via the router, so replies
// from Service addresses find their way back.
//
// FRR runs from the Debian package (apt-get install frr) with its own
// folder inside the lab's working folder for configuration, pid files and
// sockets, so it shares nothing with a system FRR or another lab.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
)

// Default AS numbers of the router and of the nodes (Herald's speakers),
// as in seed 002.
const (
	DefaultRouterASN = 64501
	DefaultNodeASN   = 64500
)

// Address plan of the router. BGPPool4 and BGPPool6 hold the addresses
// BGPConfig gives Services; they overlap neither the LAN nor the remote
// subnet.
const (
	RemoteSubnet4 = "198.51.100.0/24"
	RemoteSubnet6 = "2001:db8:100::/64"
	BGPPool4      = "203.0.113.0/24"
	BGPPool6      = "2001:db8:203::/120"
)

var (
	routerIPv4     = netip.MustParseAddr("192.0.2.1")
	routerIPv6     = netip.MustParseAddr("2001:db8::1")
	routerOutIPv4  = netip.MustParseAddr("198.51.100.1")
	routerOutIPv6  = netip.MustParseAddr("2001:db8:100::1")
	remoteIPv4     = netip.MustParseAddr("198.51.100.10")
	remoteIPv6     = netip.MustParseAddr("2001:db8:100::10")
	remoteSubnets  = []netip.Prefix{netip.MustParsePrefix(RemoteSubnet4), netip.MustParsePrefix(RemoteSubnet6)}
	frrDaemonNames = []string{"zebra", "bgpd", "bfdd"}
)

// frrBin is where Debian's frr package installs the daemons.
const frrBin = "/usr/lib/frr"

// planRouter names the router's and the remote's namespaces; nothing is
// created yet.
func (l *Lab) planRouter() {
	prefix := "hl" + l.id + "-"
	l.router = &member{
		Node: Node{Name: "router", Namespace: prefix + "router", IPv4: routerIPv4, IPv6: routerIPv6, MAC: labMAC(0x01)},
		port: "router",
	}
	l.remote = &member{
		Node: Node{Name: "remote", Namespace: prefix + "remote", IPv4: remoteIPv4, IPv6: remoteIPv6,
			MAC: net.HardwareAddr{0x02, 0x4c, 0x41, 0x42, 0x01, 0x0a}},
	}
	l.frrDir = filepath.Join(l.dir, "frr")
}

// routerPreflight checks for FRR's daemons and vtysh.
func routerPreflight() error {
	for _, d := range frrDaemonNames {
		if _, err := os.Stat(filepath.Join(frrBin, d)); err != nil {
			return fmt.Errorf("FRR: %w (Debian: apt-get install frr)", err)
		}
	}
	if _, err := exec.LookPath("vtysh"); err != nil {
		return fmt.Errorf("FRR: %w (Debian: apt-get install frr)", err)
	}
	return nil
}

// startRouter builds the router and the remote, routes the nodes to the
// remote subnet and starts FRR; with Options.PointToPoint it links the
// nodes to the router instead (uplinks.go). The LAN must be up.
func (l *Lab) startRouter(ctx context.Context) error {
	for _, m := range []*member{l.router, l.remote} {
		if err := l.addMemberNamespace(ctx, m); err != nil {
			return err
		}
	}
	noDAD := []string{"net.ipv6.conf.all.accept_dad", "0", "net.ipv6.conf.default.accept_dad", "0"}
	// Forwarding and L4 hashing here only: the other namespaces (and the
	// root one) keep their defaults.
	if err := writeSysctls(l.router.ns, append(noDAD,
		"net.ipv4.ip_forward", "1",
		"net.ipv6.conf.all.forwarding", "1",
		"net.ipv4.fib_multipath_hash_policy", "1",
		"net.ipv6.fib_multipath_hash_policy", "1")...); err != nil {
		return fmt.Errorf("%s: %w", l.router.Namespace, err)
	}
	if err := writeSysctls(l.remote.ns, noDAD...); err != nil {
		return fmt.Errorf("%s: %w", l.remote.Namespace, err)
	}
	if err := l.linkRemote(); err != nil {
		return fmt.Errorf("%s: %w", l.remote.Namespace, err)
	}
	if l.opts.PointToPoint {
		return l.linkUplinks()
	}
	if err := l.attachRouter(); err != nil {
		return fmt.Errorf("%s: %w", l.router.Namespace, err)
	}
	for _, n := range l.nodes {
		n.remoteVia = [2]netip.Addr{l.router.IPv4, l.router.IPv6}
		if err := n.routeRemote(); err != nil {
			return err
		}
	}
	return l.startFRR(ctx)
}

// addMemberNamespace creates m's namespace (removed again by Close) with
// lo up.
func (l *Lab) addMemberNamespace(ctx context.Context, m *member) error {
	ns, err := addNamespace(ctx, m.Namespace)
	if err != nil {
		return err
	}
	m.ns = ns
	name := m.Namespace
	l.onClose(func() error {
		ns.Close()
		return deleteNamespace(name)
	})
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", name, err)
	}
	m.nl = h
	l.onClose(func() error { h.Close(); return nil })
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("%s: lo up: %w", name, err)
	}
	return nil
}

// attachRouter gives the router its eth0 on the LAN bridge.
func (l *Lab) attachRouter() error {
	r := l.router
	br, err := l.lan.nl.LinkByName("br0")
	if err != nil {
		return fmt.Errorf("bridge: %w", err)
	}
	veth := &netlink.Veth{
		LinkAttrs: netlink.LinkAttrs{Name: "eth0", HardwareAddr: r.MAC, Namespace: netlink.NsFd(int(r.ns))},
		PeerName:  r.port,
	}
	if err := l.lan.nl.LinkAdd(veth); err != nil {
		return fmt.Errorf("veth: %w", err)
	}
	port, err := l.lan.nl.LinkByName(r.port)
	if err == nil {
		err = l.lan.nl.LinkSetMaster(port, br)
	}
	if err == nil {
		err = l.lan.nl.LinkSetUp(port)
	}
	if err != nil {
		return fmt.Errorf("bridge port %s: %w", r.port, err)
	}
	return addrsUp(r.nl, "eth0", netip.PrefixFrom(r.IPv4, 24), netip.PrefixFrom(r.IPv6, 64))
}

// linkRemote joins the router's eth1 and the remote's eth0 and gives the
// remote its default routes.
func (l *Lab) linkRemote() error {
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: "eth1", HardwareAddr: net.HardwareAddr{0x02, 0x4c, 0x41, 0x42, 0x01, 0x01}},
		PeerName:         "eth0",
		PeerHardwareAddr: l.remote.MAC,
		PeerNamespace:    netlink.NsFd(int(l.remote.ns)),
	}
	if err := l.router.nl.LinkAdd(veth); err != nil {
		return fmt.Errorf("veth: %w", err)
	}
	if err := addrsUp(l.router.nl, "eth1", netip.PrefixFrom(routerOutIPv4, 24), netip.PrefixFrom(routerOutIPv6, 64)); err != nil {
		return err
	}
	if err := addrsUp(l.remote.nl, "eth0", netip.PrefixFrom(l.remote.IPv4, 24), netip.PrefixFrom(l.remote.IPv6, 64)); err != nil {
		return err
	}
	for _, via := range []netip.Addr{routerOutIPv4, routerOutIPv6} {
		if err := l.remote.nl.RouteAdd(&netlink.Route{Gw: via.AsSlice()}); err != nil {
			return fmt.Errorf("default route via %s: %w", via, err)
		}
	}
	return nil
}

// addrsUp puts the addresses on link dev and brings it up.
func addrsUp(h *netlink.Handle, dev string, addrs ...netip.Prefix) error {
	link, err := h.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("%s: %w", dev, err)
	}
	for _, p := range addrs {
		if err := h.AddrAdd(link, addrOf(p)); err != nil {
			return fmt.Errorf("%s %s: %w", dev, p, err)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("%s up: %w", dev, err)
	}
	return nil
}

func prefixNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Masked().Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// frrConfig is the configuration of the router's bgpd.
func (l *Lab) frrConfig() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("hostname %s", l.router.Namespace)
	w("!")
	w("router bgp %d", l.opts.RouterASN)
	w(" bgp router-id %s", l.router.IPv4)
	w(" no bgp ebgp-requires-policy")
	w(" no bgp default ipv4-unicast")
	w(" bgp bestpath as-path multipath-relax")
	for _, n := range l.nodes {
		for _, a := range []netip.Addr{n.IPv4, n.IPv6} {
			w(" neighbor %s remote-as %d", a, l.opts.NodeASN)
			if l.opts.RouterBFD {
				w(" neighbor %s bfd", a)
			}
			if l.opts.RouterPassword != "" {
				w(" neighbor %s password %s", a, l.opts.RouterPassword)
			}
		}
	}
	for _, af := range []string{"ipv4", "ipv6"} {
		w(" address-family %s unicast", af)
		for _, n := range l.nodes {
			a := n.IPv4
			if af == "ipv6" {
				a = n.IPv6
			}
			w("  neighbor %s activate", a)
		}
		w("  maximum-paths 8")
		w(" exit-address-family")
	}
	w("exit")
	w("!")
	return b.String()
}

// startFRR writes the router's FRR configuration and runs zebra, bgpd and
// bfdd in the router's namespace, then waits until vtysh reaches all
// three.
func (l *Lab) startFRR(ctx context.Context) error {
	dir := l.frrDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	hostname := "hostname " + l.router.Namespace + "\n"
	files := map[string]string{
		"zebra.conf": hostname,
		"bgpd.conf":  l.frrConfig(),
		"bfdd.conf":  hostname,
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			return fmt.Errorf("FRR configuration: %w", err)
		}
	}
	zserv := filepath.Join(dir, "zserv.api")
	for _, d := range frrDaemonNames {
		argv := []string{filepath.Join(frrBin, d),
			"-f", filepath.Join(dir, d+".conf"),
			"-i", filepath.Join(dir, d+".pid"),
			"-z", zserv,
			"--vty_socket", dir,
			// No TCP vty: vtysh talks to the sockets in dir.
			"-P", "0",
			// As root: the frr user could not reach the lab's folder.
			"-u", "root", "-g", frrGroup(),
			"--log", "stdout", "--log-level", "info",
		}
		switch d {
		case "bgpd":
			// Short keepalive, hold and connect-retry timers.
			argv = append(argv, "-F", "datacenter")
		case "bfdd":
			argv = append(argv, "--bfdctl", filepath.Join(dir, "bfdd.sock"))
		}
		if err := l.startProcess(frrProcess(d), l.router.Namespace, argv); err != nil {
			return err
		}
		if d == "zebra" {
			// bgpd and bfdd retry zebra, but a quick start is quieter.
			if err := l.waitFRR(ctx, func() bool { _, err := os.Stat(zserv); return err == nil }); err != nil {
				return fmt.Errorf("zebra's socket %s: %w", zserv, err)
			}
		}
	}
	err := l.waitFRR(ctx, func() bool {
		out, err := l.Vtysh(ctx, "show daemons")
		if err != nil || !slices.Equal(strings.Fields(out), frrDaemonNames) {
			return false
		}
		out, err = l.Vtysh(ctx, "show bgp summary json")
		return err == nil && json.Valid([]byte(out))
	})
	if err != nil {
		return fmt.Errorf("FRR did not come up: %w", err)
	}
	l.opts.Log.Info("router up", "namespace", l.router.Namespace, "frr", dir)
	return nil
}

// frrGroup is the group the daemons run as. FRR insists that its user be
// in the vty group (frrvty in Debian), and root is not; running as that
// group satisfies the check without touching /etc/group.
func frrGroup() string {
	if _, err := user.LookupGroup("frrvty"); err == nil {
		return "frrvty"
	}
	return "root"
}

// frrProcess is the lab's name for an FRR daemon of the router, and its
// log's (LogPath).
func frrProcess(daemon string) string { return "router-" + daemon }

// waitFRR polls ok for up to 30 seconds; it fails early, with the
// daemons' logs, if one of them exits.
func (l *Lab) waitFRR(ctx context.Context, ok func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for !ok() {
		if err := l.frrExited(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w\n%s", ctx.Err(), l.RouterLogs(20))
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

func (l *Lab) frrExited() error {
	for _, d := range frrDaemonNames {
		p, err := l.proc(frrProcess(d))
		if err == nil && p.exited() {
			return fmt.Errorf("%s exited (%v)\n%s", d, p.err, l.RouterLogs(20))
		}
	}
	return nil
}

// RouterLogs is the end of each FRR daemon's log, at most n lines each.
func (l *Lab) RouterLogs(n int) string {
	var b strings.Builder
	for _, d := range frrDaemonNames {
		name := frrProcess(d)
		fmt.Fprintf(&b, "end of %s:\n%s\n", l.LogPath(name), indent(l.LogTail(name, n)))
	}
	return b.String()
}

var errNoRouter = errors.New("the lab has no router (Options.Router)")

// RouterNode is the router's side on the LAN (192.0.2.1, 2001:db8::1);
// zero without Options.Router.
func (l *Lab) RouterNode() Node {
	if l.router == nil {
		return Node{}
	}
	return l.router.Node
}

// RemoteNode is the client behind the router (198.51.100.10,
// 2001:db8:100::10); zero without Options.Router.
func (l *Lab) RemoteNode() Node {
	if l.remote == nil {
		return Node{}
	}
	return l.remote.Node
}

// Vtysh runs one vtysh command against the router's FRR and returns its
// output, e.g. "show bgp ipv4 unicast json", "show bgp summary json",
// "show bfd peers json".
func (l *Lab) Vtysh(ctx context.Context, cmd string) (string, error) {
	if l.router == nil {
		return "", errNoRouter
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, "vtysh", "--vty_socket", l.frrDir, "-c", cmd)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String() + " " + stdout.String())
		return stdout.String(), fmt.Errorf("vtysh -c %q: %w: %s", cmd, err, msg)
	}
	return stdout.String(), nil
}

// RouterSessions maps each of the router's BGP neighbours to its session
// state ("Established", "Active", ...).
func (l *Lab) RouterSessions(ctx context.Context) (map[netip.Addr]string, error) {
	out, err := l.Vtysh(ctx, "show bgp neighbors json")
	if err != nil {
		return nil, err
	}
	var neighbors map[string]struct {
		State string `json:"bgpState"`
	}
	if err := json.Unmarshal([]byte(out), &neighbors); err != nil {
		return nil, fmt.Errorf("show bgp neighbors json: %w", err)
	}
	states := map[netip.Addr]string{}
	for k, v := range neighbors {
		if a, err := netip.ParseAddr(k); err == nil {
			states[a] = v.State
		}
	}
	return states, nil
}

// RouterRoutes lists the next hops of prefix in the router's kernel
// routing table: one per node that advertises it, when multipath works.
// No route is no error: the list is empty.
func (l *Lab) RouterRoutes(ctx context.Context, prefix netip.Prefix) ([]netip.Addr, error) {
	if l.router == nil {
		return nil, errNoRouter
	}
	fam := "-4"
	if prefix.Addr().Is6() {
		fam = "-6"
	}
	out, err := l.routerIP(ctx, fam, "-j", "route", "show", "exact", prefix.Masked().String())
	if err != nil {
		return nil, err
	}
	var routes []struct {
		Gateway  string `json:"gateway"`
		NHID     int    `json:"nhid"`
		Nexthops []struct {
			Gateway string `json:"gateway"`
		} `json:"nexthops"`
	}
	if strings.TrimSpace(out) != "" {
		if err := json.Unmarshal([]byte(out), &routes); err != nil {
			return nil, fmt.Errorf("ip route show %s: %w: %s", prefix, err, out)
		}
	}
	var hops []netip.Addr
	add := func(s string) {
		if a, err := netip.ParseAddr(s); err == nil && !slices.Contains(hops, a) {
			hops = append(hops, a)
		}
	}
	for _, r := range routes {
		add(r.Gateway)
		for _, h := range r.Nexthops {
			add(h.Gateway)
		}
		if r.Gateway == "" && len(r.Nexthops) == 0 && r.NHID != 0 {
			// A kernel without nexthop compat mode shows only the group id.
			more, err := l.nexthopGroup(ctx, r.NHID)
			if err != nil {
				return nil, err
			}
			for _, a := range more {
				add(a.String())
			}
		}
	}
	slices.SortFunc(hops, netip.Addr.Compare)
	return hops, nil
}

// nexthopGroup resolves a kernel nexthop object to its gateways.
func (l *Lab) nexthopGroup(ctx context.Context, id int) ([]netip.Addr, error) {
	out, err := l.routerIP(ctx, "-j", "nexthop", "show", "id", strconv.Itoa(id))
	if err != nil {
		return nil, err
	}
	var nhs []struct {
		Gateway string `json:"gateway"`
		Group   []struct {
			ID int `json:"id"`
		} `json:"group"`
	}
	if err := json.Unmarshal([]byte(out), &nhs); err != nil {
		// One object rather than a list, as some iproute2 versions print.
		var one struct {
			Gateway string `json:"gateway"`
			Group   []struct {
				ID int `json:"id"`
			} `json:"group"`
		}
		if err2 := json.Unmarshal([]byte(out), &one); err2 != nil {
			return nil, fmt.Errorf("ip nexthop show id %d: %w: %s", id, err, out)
		}
		nhs = append(nhs, one)
	}
	var addrs []netip.Addr
	for _, nh := range nhs {
		if a, err := netip.ParseAddr(nh.Gateway); err == nil {
			addrs = append(addrs, a)
		}
		for _, g := range nh.Group {
			if g.ID == id {
				continue
			}
			more, err := l.nexthopGroup(ctx, g.ID)
			if err != nil {
				return nil, err
			}
			addrs = append(addrs, more...)
		}
	}
	return addrs, nil
}

func (l *Lab) routerIP(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	argv := append([]string{"-n", l.router.Namespace}, args...)
	var stdout, stderr bytes.Buffer
	c := exec.CommandContext(ctx, "ip", argv...)
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		return "", fmt.Errorf("ip %s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// WaitRouterRoutes waits until prefix has exactly n next hops in the
// router's kernel table and returns them. On timeout the error tells the
// sessions' states and ends with the FRR logs.
func (l *Lab) WaitRouterRoutes(ctx context.Context, prefix netip.Prefix, n int) ([]netip.Addr, error) {
	for {
		hops, err := l.RouterRoutes(ctx, prefix)
		if err == nil && len(hops) == n {
			return hops, nil
		}
		if ferr := l.frrExited(); ferr != nil {
			return hops, ferr
		}
		select {
		case <-ctx.Done():
			sessions, serr := l.RouterSessions(context.Background())
			return hops, fmt.Errorf("route %s: next hops %v (%v), want %d; BGP sessions %v (%v)\n%s",
				prefix, hops, err, n, sessions, serr, l.RouterLogs(20))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// CurlFromRemote fetches http://addr:port/ with the real curl from the
// remote client, through the router, and returns the node that answered.
// Each call is a new connection from a new source port, so the router's
// ECMP hash may pick a different node each time.
func (l *Lab) CurlFromRemote(ctx context.Context, addr netip.Addr, port int) (string, error) {
	if l.remote == nil {
		return "", errNoRouter
	}
	u := "http://" + net.JoinHostPort(addr.String(), strconv.Itoa(port)) + "/"
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, "ip", "netns", "exec", l.remote.Namespace,
		"curl", "-sS", "-g", "--noproxy", "*", "--connect-timeout", "1", "--max-time", "2", u)
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		return "", fmt.Errorf("curl %s from %s: %w: %s", u, l.remote.Namespace, err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// SpreadFromRemote makes n requests with CurlFromRemote and counts the
// answers per node. It stops at the first error.
func (l *Lab) SpreadFromRemote(ctx context.Context, addr netip.Addr, port, n int) (map[string]int, error) {
	counts := map[string]int{}
	for range n {
		node, err := l.CurlFromRemote(ctx, addr, port)
		if err != nil {
			return counts, err
		}
		counts[node]++
	}
	return counts, nil
}

// BGPConfig is the seed-002-style configuration for a lab with a router
// and default options: a pool of BGPPool4 and BGPPool6, a BGPAdvertisement
// of /32 (and /128) with LOCAL_PREF 100 and community 65535:65282, and a
// BGPPeer per family for the router (AS DefaultNodeASN to
// DefaultRouterASN). Apply it with Apply.
func BGPConfig() string {
	return bgpConfig(DefaultNodeASN, DefaultRouterASN, "", false)
}

// RouterBGPConfig is BGPConfig matching this lab's router options: its AS
// numbers, password and BFD (a BFDProfile named "router").
func (l *Lab) RouterBGPConfig() string {
	return bgpConfig(l.opts.NodeASN, l.opts.RouterASN, l.opts.RouterPassword, l.opts.RouterBFD)
}

func bgpConfig(nodeASN, routerASN uint32, password string, bfd bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: bgp
  namespace: %[1]s
spec:
  addresses:
  - %[2]s
  - %[3]s
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata:
  name: bgp
  namespace: %[1]s
spec:
  ipAddressPools:
  - bgp
  aggregationLength: 32
  localPref: 100
  communities:
  - 65535:65282
`, HeraldNamespace, BGPPool4, BGPPool6)
	if bfd {
		fmt.Fprintf(&b, `---
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata:
  name: router
  namespace: %s
`, HeraldNamespace)
	}
	bfdProfile := ""
	if bfd {
		bfdProfile = "router"
	}
	b.WriteString(BGPPeers(BGPPeerOptions{NodeASN: nodeASN, RouterASN: routerASN, Password: password, BFDProfile: bfdProfile}))
	return b.String()
}

// BGPPeerOptions are the settings of the lab's two BGPPeers.
type BGPPeerOptions struct {
	NodeASN, RouterASN uint32
	Password           string        // "" for none
	BFDProfile         string        // "" for none
	HoldTime           time.Duration // 0 leaves holdTime unset
}

// BGPPeers renders the BGPPeers "router" and "router6", to the lab
// router's IPv4 and IPv6 addresses, each document after a "---" line.
func BGPPeers(o BGPPeerOptions) string {
	var b strings.Builder
	for _, p := range []struct {
		name string
		addr netip.Addr
	}{{"router", routerIPv4}, {"router6", routerIPv6}} {
		fmt.Fprintf(&b, `---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata:
  name: %s
  namespace: %s
spec:
  myASN: %d
  peerASN: %d
  peerAddress: %s
`, p.name, HeraldNamespace, o.NodeASN, o.RouterASN, p.addr)
		if o.HoldTime > 0 {
			fmt.Fprintf(&b, "  holdTime: %s\n", o.HoldTime)
		}
		if o.Password != "" {
			fmt.Fprintf(&b, "  password: %q\n", o.Password)
		}
		if o.BFDProfile != "" {
			fmt.Fprintf(&b, "  bfdProfile: %s\n", o.BFDProfile)
		}
	}
	return b.String()
}

// RouterPath is one path of a prefix in the router's BGP table.
type RouterPath struct {
	// Community is FRR's rendering of the path's communities
	// ("no-advertise" for 65535:65282).
	Community string
	NextHops  []string
	// Stale: kept through its peer's graceful restart, not yet refreshed.
	Stale bool
}

// RouterPaths reads the router's BGP paths for prefix from FRR, and FRR's
// JSON for the messages of tests that fail on it.
func (l *Lab) RouterPaths(ctx context.Context, prefix netip.Prefix) ([]RouterPath, string, error) {
	family := "ipv4"
	if prefix.Addr().Is6() {
		family = "ipv6"
	}
	out, err := l.Vtysh(ctx, "show bgp "+family+" unicast "+prefix.String()+" json")
	if err != nil {
		return nil, out, err
	}
	var r struct {
		Paths []struct {
			Community struct {
				String string `json:"string"`
			} `json:"community"`
			Nexthops []struct {
				IP string `json:"ip"`
			} `json:"nexthops"`
			Stale bool `json:"stale"`
		} `json:"paths"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		return nil, out, fmt.Errorf("router BGP paths for %s: %w", prefix, err)
	}
	paths := make([]RouterPath, len(r.Paths))
	for i, p := range r.Paths {
		paths[i].Community, paths[i].Stale = p.Community.String, p.Stale
		for _, nh := range p.Nexthops {
			paths[i].NextHops = append(paths[i].NextHops, nh.IP)
		}
	}
	return paths, out, nil
}

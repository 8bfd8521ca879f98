package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"path/filepath"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// DemoOptions configure Demo.
type DemoOptions struct {
	Options
	// Hold keeps the lab up after the demo, whole again, until ctx ends.
	Hold bool
	// ProbeEvery is the failover probe interval; default 10ms.
	ProbeEvery time.Duration
}

// demoService is one Service the demo creates.
type demoService struct {
	name   string
	family corev1.IPFamily
	addr   netip.Addr
	owner  string
}

// Demo is `herald lab`: it builds a lab, configures Herald as a MetalLB
// user would, shows two Services reachable from the client through the node
// that announces them, kills that node and measures the failover, then
// removes everything (also when ctx is cancelled by Ctrl-C).
func Demo(ctx context.Context, opts DemoOptions, out io.Writer) (err error) {
	if opts.ProbeEvery == 0 {
		opts.ProbeEvery = 10 * time.Millisecond
	}
	t0 := time.Now()
	step := func(what, format string, args ...any) {
		fmt.Fprintf(out, "%5.1fs  %-15s %s\n", time.Since(t0).Seconds(), what, fmt.Sprintf(format, args...))
	}

	noSpeaker := false
	if !opts.NoSpeakers && opts.SpeakerArgs == nil && opts.Herald != "" {
		ok, err := HasSpeaker(ctx, opts.Herald)
		if err != nil {
			return err
		}
		noSpeaker = !ok
		opts.NoSpeakers = noSpeaker
	}

	// The demo shows BGP too, through a router running FRR with BFD.
	opts.Router, opts.RouterBFD = true, true
	step("start", "kube-apiserver and etcd; a LAN of network namespaces; a router with FRR")
	l, err := Start(ctx, opts.Options)
	if err != nil {
		if ctx.Err() != nil {
			return errors.New("interrupted")
		}
		return err
	}
	step("lab", "%s (Ctrl-C stops it and removes everything)", l.ID())
	defer func() {
		if err != nil && ctx.Err() != nil && !opts.Hold {
			err = errors.New("interrupted")
		}
		if err != nil && ctx.Err() == nil {
			if perr := l.CheckProcesses(); perr != nil {
				err = fmt.Errorf("%w\n%w", err, perr)
			}
		}
		cerr := l.Close()
		if cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
		} else {
			step("cleanup", "namespaces, processes and control plane removed")
		}
	}()

	step("control plane", "https://%s, kubeconfig %s", l.APIServer(), l.Kubeconfig())
	var nodes []string
	for _, n := range l.Nodes() {
		nodes = append(nodes, fmt.Sprintf("%s %s", n.Name, n.IPv4))
	}
	c := l.ClientNode()
	step("LAN", "bridge in %s: %s, client %s (and 2001:db8::/64)", l.LANNamespace(), strings.Join(nodes, ", "), c.IPv4)
	speakers := "speakers on " + strings.Join(l.nodeNames(), ", ")
	if noSpeaker {
		speakers = "no speakers: " + opts.Herald + " has no speaker command yet"
	}
	step("herald", "controller; %s", speakers)

	if err := l.Apply(ctx, Config()); err != nil {
		return err
	}
	step("configuration", "IPAddressPool lab (%s, %s), L2Advertisement lab, in %s", Pool4, Pool6, HeraldNamespace)

	svcs := []*demoService{{name: "web", family: corev1.IPv4Protocol}, {name: "web6", family: corev1.IPv6Protocol}}
	for _, s := range svcs {
		if _, err := l.CreateService(ctx, Service{Name: s.name, Families: []corev1.IPFamily{s.family}}); err != nil {
			return err
		}
	}
	for _, s := range svcs {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		addrs, err := l.WaitAddresses(wctx, "default", s.name)
		cancel()
		if err != nil {
			return err
		}
		s.addr = addrs[0]
	}

	if noSpeaker {
		for _, s := range svcs {
			step("default/"+s.name, "%s (on every node's %s, but no node answers ARP/NDP for it)", s.addr, kubeIPVS)
		}
		n := l.Nodes()[0]
		who, err := l.Curl(ctx, n.IPv4, 80)
		if err != nil {
			return err
		}
		step("curl", "http://%s/ (a node's own address) answered by %s", n.IPv4, who)
		return fmt.Errorf("%s: %w yet, so the demo stops before anything is announced; rebuild (make build) once it exists", opts.Herald, ErrNoSpeaker)
	}

	for _, s := range svcs {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		s.owner, err = l.WaitAnnouncer(wctx, s.addr)
		cancel()
		if err != nil {
			return err
		}
		who, err := l.Curl(ctx, s.addr, 80)
		if err != nil {
			return fmt.Errorf("curl from the client: %w", err)
		}
		mac, _ := l.NodeMAC(s.owner)
		step("default/"+s.name, "%-14s announced by %s (%s); curl from the client answered by %s", s.addr, s.owner, mac, who)
	}

	// BGP: one more Service from a pool advertised to the router, which
	// installs one next hop per node (ECMP).
	if err := l.Apply(ctx, l.RouterBGPConfig()); err != nil {
		return err
	}
	r := l.RouterNode()
	step("BGP", "router %s runs FRR (AS %d, BFD on), peers with every node (AS %d); pool bgp %s", r.IPv4, l.opts.RouterASN, l.opts.NodeASN, BGPPool4)
	if _, err := l.CreateService(ctx, Service{Name: "web-bgp", Annotations: map[string]string{"metallb.io/address-pool": "bgp"}}); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	bgpAddrs, err := l.WaitAddresses(wctx, "default", "web-bgp")
	cancel()
	if err != nil {
		return err
	}
	host := netip.PrefixFrom(bgpAddrs[0], 32)
	wctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	hops, err := l.WaitRouterRoutes(wctx, host, len(l.Nodes()))
	cancel()
	if err != nil {
		return err
	}
	step("default/web-bgp", "%s: the router's kernel route has %d next hops %v", bgpAddrs[0], len(hops), hops)
	spread, err := l.SpreadFromRemote(ctx, bgpAddrs[0], 80, 30)
	if err != nil {
		return err
	}
	step("ECMP", "30 requests from %s (another subnet) answered by %s", l.RemoteNode().IPv4, formatSpread(spread))

	victim := svcs[0].owner
	probes := map[*demoService]*Probe{}
	for _, s := range svcs {
		probes[s] = l.Probe(ctx, s.addr, 80, opts.ProbeEvery)
	}
	time.Sleep(200 * time.Millisecond) // a baseline of answers
	step("failover", "kill -9 %s's speaker and cut its link; curl every %s from the client", victim, opts.ProbeEvery)
	since := time.Now()
	if err := l.KillSpeaker(victim); err != nil {
		return err
	}
	if err := l.CutLink(victim); err != nil {
		return err
	}
	for _, s := range svcs {
		if s.owner != victim {
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		_, werr := probes[s].Wait(wctx, func(x Sample) bool {
			return x.Err == nil && x.Node != victim && !x.Start.Before(since)
		})
		cancel()
		if werr != nil {
			return fmt.Errorf("default/%s: no other node answered within a minute of the failure: %w", s.name, werr)
		}
	}
	time.Sleep(100 * time.Millisecond)
	// The router drops the victim's next hop when BFD declares it down.
	victimIP := l.Nodes()[0].IPv4
	for _, n := range l.Nodes() {
		if n.Name == victim {
			victimIP = n.IPv4
		}
	}
	for wait := time.Now().Add(30 * time.Second); time.Now().Before(wait); time.Sleep(10 * time.Millisecond) {
		hops, err := l.RouterRoutes(ctx, host)
		if err == nil && !containsAddr(hops, victimIP) {
			step("default/web-bgp", "router withdrew %s's next hop %s after the failure; %d left", victim, time.Since(since).Round(10*time.Millisecond), len(hops))
			break
		}
	}
	for _, s := range svcs {
		samples := probes[s].Stop()
		if s.owner != victim {
			step("default/"+s.name, "announced by %s, unaffected: longest gap between answers %s", s.owner, LongestOutage(samples).Round(10*time.Millisecond))
			continue
		}
		d, to, ok := Failover(samples, since, victim)
		if !ok {
			return fmt.Errorf("default/%s: no answer from another node", s.name)
		}
		step("default/"+s.name, "answered by %s %s after the failure", to, d.Round(10*time.Millisecond))
	}

	if !opts.Hold {
		return nil
	}
	if err := l.RestoreLink(victim); err != nil {
		return err
	}
	if err := l.StartSpeaker(victim); err != nil {
		return err
	}
	step("restored", "%s's link and speaker are back", victim)
	client := l.ClientNode().Namespace
	fmt.Fprintf(out, `
The lab stays up until Ctrl-C. Try:
  ip netns exec %[1]s curl http://%[2]s/
  ip netns exec %[1]s arping -c 1 -I eth0 %[2]s
  ip netns exec %[1]s ndisc6 %[3]s eth0
  %[4]s --kubeconfig %[5]s get svc,nodes -A
  %[7]s status --kubeconfig %[5]s -n %[8]s
  logs: %[6]s
`, client, svcs[0].addr, svcs[1].addr, filepath.Join(opts.Assets, "kubectl"), l.Kubeconfig(), filepath.Dir(l.LogPath("controller")),
		opts.Herald, HeraldNamespace)
	<-ctx.Done()
	return nil
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}

// formatSpread prints "node1 10, node2 12, node3 8".
func formatSpread(m map[string]int) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %d", n, m[n])
	}
	return strings.Join(parts, ", ")
}

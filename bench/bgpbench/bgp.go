package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/internal/lab"
)

// The bulk pool: big enough for -services, outside the lab's other
// subnets (the lab's IPv4 ClusterIPs are 198.18.0.0/24); only the router
// learns it, by BGP.
const (
	bulkPool     = "198.18.4.0/22"
	bulkPoolSize = 1024
	bulkPoolName = "bulk"
	bfdProfile   = "fast"
)

// heraldConfig is the lab's BGP configuration: the pool "bgp" for the
// measured Service, the pool "bulk" (no auto-assignment) for the scale
// test, /32 advertisements of both, and a BGPPeer per family for the
// lab's router; with bfd, the peers use a 100 ms x 3 BFDProfile; a non-zero hold
// sets holdTime.
func heraldConfig(bfd bool, hold time.Duration) string {
	ns := lab.HeraldNamespace
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
kind: IPAddressPool
metadata:
  name: %[4]s
  namespace: %[1]s
spec:
  autoAssign: false
  addresses:
  - %[5]s
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata:
  name: bgp
  namespace: %[1]s
spec:
  ipAddressPools:
  - bgp
  - %[4]s
  aggregationLength: 32
---
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata:
  name: %[6]s
  namespace: %[1]s
spec:
  receiveInterval: 100
  transmitInterval: 100
  detectMultiplier: 3
`, ns, lab.BGPPool4, lab.BGPPool6, bulkPoolName, bulkPool, bfdProfile)
	peers := lab.BGPPeerOptions{NodeASN: lab.DefaultNodeASN, RouterASN: lab.DefaultRouterASN, HoldTime: hold}
	if bfd {
		peers.BFDProfile = bfdProfile
	}
	b.WriteString(lab.BGPPeers(peers))
	return b.String()
}

// configure applies Herald's configuration and sets the router's side to
// match: BFD with the same 100 ms x 3 timers on every neighbour, or none.
// FRR's default (300 ms) would otherwise set its detection time: each side
// detects after the peer's multiplier times the slower of its own receive
// and the peer's transmit interval.
func (b *bench) configure(ctx context.Context, bfd bool, hold time.Duration) error {
	b.log.Info("configuring", "bfd", bfd, "holdTime", hold)
	if err := b.lab.Apply(ctx, heraldConfig(bfd, hold)); err != nil {
		return err
	}
	cmds := []string{"configure terminal"}
	if bfd {
		cmds = append(cmds, "bfd", "profile "+bfdProfile, "detect-multiplier 3",
			"receive-interval 100", "transmit-interval 100", "exit", "exit")
	}
	cmds = append(cmds, fmt.Sprintf("router bgp %d", lab.DefaultRouterASN))
	for _, n := range b.lab.Nodes() {
		for _, a := range []netip.Addr{n.IPv4, n.IPv6} {
			if bfd {
				cmds = append(cmds, fmt.Sprintf("neighbor %s bfd profile %s", a, bfdProfile))
			} else {
				cmds = append(cmds, fmt.Sprintf("no neighbor %s bfd", a))
			}
		}
	}
	cmds = append(cmds, "exit", "exit")
	if out, err := b.lab.Vtysh(ctx, strings.Join(cmds, "\n")); err != nil {
		return fmt.Errorf("FRR configuration: %w", err)
	} else if strings.TrimSpace(out) != "" {
		b.log.Warn("vtysh said", "out", out)
	}
	return nil
}

// webService creates the measured Service (IPv4, pool bgp) and waits for
// its three next hops on the router.
func (b *bench) webService(ctx context.Context) (netip.Prefix, error) {
	if _, err := b.lab.CreateService(ctx, lab.Service{Name: "web", Families: []corev1.IPFamily{corev1.IPv4Protocol}}); err != nil {
		return netip.Prefix{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	addrs, err := b.lab.WaitAddresses(wctx, "default", "web")
	cancel()
	if err != nil {
		return netip.Prefix{}, err
	}
	p := netip.PrefixFrom(addrs[0], 32)
	if _, err := b.waitHops(ctx, p, 3); err != nil {
		return p, err
	}
	return p, nil
}

// waitHops waits until p has n next hops in the router's kernel table.
func (b *bench) waitHops(ctx context.Context, p netip.Prefix, n int) ([]netip.Addr, error) {
	wctx, cancel := context.WithTimeout(ctx, b.o.settleTimeout)
	defer cancel()
	return b.lab.WaitRouterRoutes(wctx, p, n)
}

type bfdPeer struct {
	Peer          string `json:"peer"`
	Status        string `json:"status"`
	RxInterval    int    `json:"receive-interval"`
	TxInterval    int    `json:"transmit-interval"`
	Mult          int    `json:"detect-multiplier"`
	RemoteRx      int    `json:"remote-receive-interval"`
	RemoteTx      int    `json:"remote-transmit-interval"`
	RemoteMult    int    `json:"remote-detect-multiplier"`
	RemoteDiscrim uint32 `json:"remote-id"`
}

func (b *bench) bfdPeers(ctx context.Context) ([]bfdPeer, error) {
	out, err := b.lab.Vtysh(ctx, "show bfd peers json")
	if err != nil {
		return nil, err
	}
	var peers []bfdPeer
	if err := json.Unmarshal([]byte(out), &peers); err != nil {
		return nil, fmt.Errorf("show bfd peers json: %w: %s", err, out)
	}
	return peers, nil
}

// waitBFDUp waits until the router's BFD sessions with every node's IPv4
// address are up and says what the router sees of them. If they never
// come up the hard-loss runs with BFD would measure the hold timer, so
// that is an error.
func (b *bench) waitBFDUp(ctx context.Context) (string, error) {
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var last []bfdPeer
	for {
		peers, err := b.bfdPeers(wctx)
		if err == nil {
			last = peers
			up := 0
			for _, p := range peers {
				if a, err := netip.ParseAddr(p.Peer); err == nil && a.Is4() && p.Status == "up" {
					up++
				}
			}
			if up == len(b.lab.Nodes()) {
				return describeBFD(peers), nil
			}
		}
		if err := lab.Sleep(wctx, 200*time.Millisecond); err != nil {
			return "", fmt.Errorf("BFD sessions not up: %s", describeBFD(last))
		}
	}
}

func describeBFD(peers []bfdPeer) string {
	var parts []string
	for _, p := range peers {
		parts = append(parts, fmt.Sprintf("%s %s (router rx/tx %d/%d ms x%d, node rx/tx %d/%d ms x%d)",
			p.Peer, p.Status, p.RxInterval, p.TxInterval, p.Mult, p.RemoteRx, p.RemoteTx, p.RemoteMult))
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}

type neighbor struct {
	State     string `json:"bgpState"`
	HoldMs    int    `json:"bgpTimerHoldTimeMsecs"`
	KeepAlive int    `json:"bgpTimerKeepAliveIntervalMsecs"`
}

func (b *bench) neighbors(ctx context.Context) (map[string]neighbor, error) {
	out, err := b.lab.Vtysh(ctx, "show bgp neighbors json")
	if err != nil {
		return nil, err
	}
	var ns map[string]neighbor
	if err := json.Unmarshal([]byte(out), &ns); err != nil {
		return nil, fmt.Errorf("show bgp neighbors json: %w", err)
	}
	return ns, nil
}

// sessionTimers describes the negotiated timers of the router's sessions.
func (b *bench) sessionTimers(ctx context.Context) (string, error) {
	ns, err := b.neighbors(ctx)
	if err != nil {
		return "", err
	}
	var parts []string
	for a, n := range ns {
		parts = append(parts, fmt.Sprintf("%s %s hold %d ms keepalive %d ms", a, n.State, n.HoldMs, n.KeepAlive))
	}
	slices.Sort(parts)
	return strings.Join(parts, "; "), nil
}

// waitHold waits until every session is established with the given
// negotiated hold time.
func (b *bench) waitHold(ctx context.Context, hold time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, b.o.settleTimeout)
	defer cancel()
	for {
		ns, err := b.neighbors(wctx)
		ok := err == nil && len(ns) == 2*len(b.lab.Nodes())
		for _, n := range ns {
			ok = ok && n.State == "Established" && time.Duration(n.HoldMs)*time.Millisecond == hold
		}
		if ok {
			return nil
		}
		if err := lab.Sleep(wctx, 200*time.Millisecond); err != nil {
			s, _ := b.sessionTimers(ctx)
			return fmt.Errorf("sessions not established with hold time %s: %s", hold, s)
		}
	}
}

// sessionPrefixes tells how many prefixes the router has received on each
// session, per address family.
func (b *bench) sessionPrefixes(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	for _, af := range []string{"ipv4", "ipv6"} {
		js, err := b.lab.Vtysh(ctx, "show bgp "+af+" unicast summary json")
		if err != nil {
			return nil, err
		}
		var s struct {
			Peers map[string]struct {
				PfxRcd int `json:"pfxRcd"`
			} `json:"peers"`
		}
		if err := json.Unmarshal([]byte(js), &s); err != nil {
			return nil, fmt.Errorf("show bgp %s unicast summary json: %w", af, err)
		}
		for peer, p := range s.Peers {
			out[af+" from "+peer] = p.PfxRcd
		}
	}
	return out, nil
}

// routerIP runs ip in the router's namespace.
func (b *bench) routerIP(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	argv := append([]string{"-n", b.lab.RouterNode().Namespace}, args...)
	var stdout, stderr bytes.Buffer
	c := exec.CommandContext(ctx, "ip", argv...)
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		return nil, fmt.Errorf("ip %s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// hopCounts maps each IPv4 route of the router's kernel table inside
// within to its number of next hops, resolving nexthop objects when the
// kernel lists only their ids.
func (b *bench) hopCounts(ctx context.Context, within netip.Prefix) (map[netip.Prefix]int, error) {
	out, err := b.routerIP(ctx, "-4", "-j", "route", "show")
	if err != nil {
		return nil, err
	}
	var routes []struct {
		Dst      string `json:"dst"`
		Gateway  string `json:"gateway"`
		NHID     int    `json:"nhid"`
		Nexthops []struct {
			Gateway string `json:"gateway"`
		} `json:"nexthops"`
	}
	if err := json.Unmarshal(out, &routes); err != nil {
		return nil, fmt.Errorf("ip route show: %w", err)
	}
	var groups map[int]int
	counts := map[netip.Prefix]int{}
	for _, r := range routes {
		p, err := netip.ParsePrefix(r.Dst)
		if err != nil {
			a, aerr := netip.ParseAddr(r.Dst)
			if aerr != nil {
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if !within.Contains(p.Addr()) {
			continue
		}
		n := len(r.Nexthops)
		if r.Gateway != "" {
			n = max(n, 1)
		}
		if n == 0 && r.NHID != 0 {
			if groups == nil {
				if groups, err = b.nexthopGroups(ctx); err != nil {
					return nil, err
				}
			}
			n = groups[r.NHID]
		}
		counts[p] = n
	}
	return counts, nil
}

// nexthopGroups maps every kernel nexthop object to its number of gateways.
func (b *bench) nexthopGroups(ctx context.Context) (map[int]int, error) {
	out, err := b.routerIP(ctx, "-j", "nexthop", "show")
	if err != nil {
		return nil, err
	}
	var nhs []struct {
		ID      int    `json:"id"`
		Gateway string `json:"gateway"`
		Group   []struct {
			ID int `json:"id"`
		} `json:"group"`
	}
	if err := json.Unmarshal(out, &nhs); err != nil {
		return nil, fmt.Errorf("ip nexthop show: %w", err)
	}
	counts := map[int]int{}
	for _, nh := range nhs {
		if len(nh.Group) > 0 {
			counts[nh.ID] = len(nh.Group)
		} else if nh.Gateway != "" {
			counts[nh.ID] = 1
		}
	}
	return counts, nil
}

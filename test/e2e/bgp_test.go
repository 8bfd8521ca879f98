package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/internal/chaos"
	"github.com/herald-lb/herald/internal/lab"
)

// TestBGP runs the three node speakers against FRR in the router namespace,
// with the seed-002-style configuration (eBGP 64500 to 64501, /32 with
// community 65535:65282): every node advertises, the router installs an
// ECMP route, and requests from the remote subnet land on several nodes.
func TestBGP(t *testing.T) {
	l := startLab(t, func(o *lab.Options) { o.Router, o.RouterBFD = true, true })
	ctx := ctxT(t, 4*time.Minute)

	addrs := service(t, l, lab.Service{Name: "bgp-web"})
	addr := addrs[0]
	host := netip.PrefixFrom(addr, addr.BitLen())

	t.Run("ECMP over every node", func(t *testing.T) {
		hops, err := l.WaitRouterRoutes(ctx, host, 3)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s via %v", host, hops)
		spread, err := l.SpreadFromRemote(ctx, addr, 80, 60)
		if err != nil {
			t.Fatal(err)
		}
		if len(spread) < 2 {
			t.Errorf("60 requests from the remote subnet all landed on %v", spread)
		}
		t.Logf("spread: %v", spread)
	})
	t.Run("IPv6 over the IPv6 sessions", func(t *testing.T) {
		v6 := service(t, l, lab.Service{Name: "bgp-web6", Families: []corev1.IPFamily{corev1.IPv6Protocol}})
		p := netip.PrefixFrom(v6[0], 128)
		hops, err := l.WaitRouterRoutes(ctx, p, 3)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s via %v", p, hops)
		spread, err := l.SpreadFromRemote(ctx, v6[0], 80, 30)
		if err != nil {
			t.Fatal(err)
		}
		if len(spread) < 2 {
			t.Errorf("30 requests from the remote subnet all landed on %v", spread)
		}
		t.Logf("spread: %v", spread)
	})
	// BFD comes up on all six sessions without resetting any of them (GoBGP
	// resets a session on the AdminDown that FRR sends when it re-registers
	// its BFD session after BGP is up; Herald starts BFD after that).
	t.Run("BFD up, no session reset", func(t *testing.T) {
		eventually(t, "6 BFD sessions up at the router", 30*time.Second, func() (bool, string) {
			out, err := l.Vtysh(ctx, "show bfd peers json")
			if err != nil {
				return false, err.Error()
			}
			var peers []struct {
				Peer   string `json:"peer"`
				Status string `json:"status"`
			}
			if err := json.Unmarshal([]byte(out), &peers); err != nil {
				return false, err.Error()
			}
			up := 0
			for _, p := range peers {
				if p.Status == "up" {
					up++
				}
			}
			return up == 6, out
		})
		out, err := l.Vtysh(ctx, "show bgp neighbors json")
		if err != nil {
			t.Fatal(err)
		}
		var nbrs map[string]struct {
			State       string `json:"bgpState"`
			Established int    `json:"connectionsEstablished"`
			Dropped     int    `json:"connectionsDropped"`
		}
		if err := json.Unmarshal([]byte(out), &nbrs); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if len(nbrs) != 6 {
			t.Errorf("%d neighbours at the router, want 6", len(nbrs))
		}
		for addr, n := range nbrs {
			if n.State != "Established" || n.Established != 1 || n.Dropped != 0 {
				t.Errorf("neighbour %s: %s, established %d times, dropped %d; want Established once, never dropped",
					addr, n.State, n.Established, n.Dropped)
			}
		}
	})
	// MetalLB's BGP and BFD metric names, read from node2's speaker over
	// the LAN: its sessions to the router are up and have exchanged
	// messages and BFD packets.
	t.Run("metrics", func(t *testing.T) {
		node2 := l.Nodes()[1]
		router := l.RouterNode().IPv4.String()
		eventually(t, "node2's BGP and BFD metrics", 20*time.Second, func() (bool, string) {
			text, err := scrape(ctx, l, node2.IPv4)
			if err != nil {
				return false, err.Error()
			}
			for name, min := range map[string]float64{
				"metallb_bgp_session_up": 1, "metallb_bgp_opens_sent": 1, "metallb_bgp_opens_received": 1,
				"metallb_bgp_updates_total": 1, "metallb_bgp_keepalives_received": 1, "metallb_bgp_total_sent": 2,
				"metallb_bgp_announced_prefixes_total": 1, "metallb_bfd_session_up": 1,
				"metallb_bfd_control_packet_input": 1, "metallb_bfd_control_packet_output": 1,
			} {
				v, ok := sample(text, name, router)
				if !ok || v < min {
					return false, fmt.Sprintf("%s{peer=%q} = %v (present %v), want at least %v", name, router, v, ok, min)
				}
			}
			return true, ""
		})
	})
	t.Run("attributes arrive as configured", func(t *testing.T) {
		paths, out, err := l.RouterPaths(ctx, host)
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if len(paths) != 3 {
			t.Errorf("%d paths, want one from each node: %s", len(paths), out)
		}
		for _, p := range paths {
			if p.Community != "no-advertise" {
				t.Errorf("path via %v has community %q, want no-advertise (65535:65282)", p.NextHops, p.Community)
			}
		}
	})
	t.Run("ServiceBGPStatus per node", func(t *testing.T) {
		eventually(t, "3 ServiceBGPStatus objects", 20*time.Second, func() (bool, string) {
			out, err := l.Kubectl(ctx, "", "get", "servicebgpstatuses", "-n", lab.HeraldNamespace,
				"-l", "metallb.io/service-name=bgp-web", "-o", "jsonpath={range .items[*]}{.status.node}:{.status.peers}{\" \"}{end}")
			if err != nil {
				return false, err.Error()
			}
			return len(strings.Fields(out)) == 3, out
		})
	})
	t.Run("announced metric and Events", func(t *testing.T) { bgpAnnounced(ctx, t, l) })
	t.Run("Local policy: only nodes with an endpoint", func(t *testing.T) {
		local := service(t, l, lab.Service{Name: "bgp-local", Local: true, EndpointNodes: []string{"node2"}})
		p := netip.PrefixFrom(local[0], local[0].BitLen())
		eventually(t, "route only via node2", 30*time.Second, func() (bool, string) {
			hops, err := l.RouterRoutes(ctx, p)
			return err == nil && len(hops) == 1 && hops[0] == l.Nodes()[1].IPv4, fmt.Sprintf("%v %v", hops, err)
		})
		// The last local endpoint goes: the route is withdrawn.
		if err := l.SetEndpoints(ctx, "default", "bgp-local"); err != nil {
			t.Fatal(err)
		}
		eventually(t, "route withdrawn", 30*time.Second, func() (bool, string) {
			hops, err := l.RouterRoutes(ctx, p)
			return err == nil && len(hops) == 0, fmt.Sprintf("%v %v", hops, err)
		})
	})
	// The Kubernetes path of dynamicASN: the BGPPeer changes from
	// peerASN to dynamicASN external; the sessions are re-created with the
	// router's AS learned from its OPEN, and the routes come back.
	t.Run("dynamicASN external", func(t *testing.T) {
		if _, err := l.Kubectl(ctx, "", "patch", "bgppeer", "router", "-n", lab.HeraldNamespace, "--type=merge",
			"-p", `{"spec":{"peerASN":null,"dynamicASN":"external"}}`); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the IPv4 sessions re-established", 30*time.Second, func() (bool, string) {
			out, err := l.Vtysh(ctx, "show bgp neighbors json")
			if err != nil {
				return false, err.Error()
			}
			var nbrs map[string]struct {
				State       string `json:"bgpState"`
				Established int    `json:"connectionsEstablished"`
			}
			if err := json.Unmarshal([]byte(out), &nbrs); err != nil {
				return false, err.Error()
			}
			for _, n := range l.Nodes() {
				if st := nbrs[n.IPv4.String()]; st.State != "Established" || st.Established != 2 {
					return false, fmt.Sprintf("%s: %+v", n.IPv4, st)
				}
			}
			return true, ""
		})
		if _, err := l.WaitRouterRoutes(ctx, host, 3); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("graceful stop withdraws at once", func(t *testing.T) {
		if _, err := l.WaitRouterRoutes(ctx, host, 3); err != nil {
			t.Fatal(err)
		}
		// The speaker sends a Cease first thing on SIGTERM (the benchmark
		// measures about 80 ms), before its Layer 2 handover delay: the
		// route is sampled while the speaker is still shutting down.
		node1 := l.Nodes()[0]
		termed := time.Now()
		stopped := make(chan error, 1)
		go func() { stopped <- l.StopSpeaker(node1.Name, 10*time.Second) }()
		took, hops := nextHopGone(ctx, t, l, host, node1.IPv4, termed)
		if err := <-stopped; err != nil {
			t.Fatal(err)
		}
		t.Logf("node1 withdrawn %s after SIGTERM; left: %v", took.Round(time.Millisecond), hops)
		if took > gracefulWithdrawalBound {
			t.Errorf("node1's next hop withdrawn %s after SIGTERM, want within %s", took, gracefulWithdrawalBound)
		}
	})
}

// nextHopGone samples the router's kernel route to host every few
// milliseconds until hop is no longer one of its next hops (or 15 s have
// passed, far more than any bound here), and returns how long after since
// that was, and the next hops left.
func nextHopGone(ctx context.Context, t *testing.T, l *lab.Lab, host netip.Prefix, hop netip.Addr, since time.Time) (time.Duration, []netip.Addr) {
	t.Helper()
	for {
		hops, err := l.RouterRoutes(ctx, host)
		took := time.Since(since)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(hops, hop) || took > 15*time.Second {
			return took, hops
		}
		time.Sleep(5 * time.Millisecond)
	}
}

const (
	// gracefulWithdrawalBound: SIGTERM to the router's kernel route losing
	// the node's next hop; the hold timer (9 s with FRR's datacenter
	// profile) would take far longer.
	gracefulWithdrawalBound = 2 * time.Second
	// bfdWithdrawalBound: a dead node's next hop must go within this of
	// the failure with BFD at 100 ms x 3 (0.3 s to detect); the hold timer
	// (9 s) would take far longer.
	bfdWithdrawalBound = 1500 * time.Millisecond
)

// TestBFDWithdrawal: a node is lost (its link cut, then its speaker killed
// with SIGKILL, so it says nothing on the way out). With BFD at 100 ms x 3
// on both sides, the router must remove that node's next hop from its
// kernel route within bfdWithdrawalBound of the failure, sampled every few
// milliseconds; the other next hops stay.
func TestBFDWithdrawal(t *testing.T) {
	l := startBareLab(t, func(o *lab.Options) { o.Router, o.RouterBFD = true, true })
	ctx := ctxT(t, 3*time.Minute)
	nodes := l.Nodes()
	// FRR: a 100 ms profile on every session to the nodes.
	conf := []string{"configure terminal", "bfd", "profile fast", "receive-interval 100", "transmit-interval 100",
		"detect-multiplier 3", "exit", "exit", fmt.Sprintf("router bgp %d", lab.DefaultRouterASN)}
	for _, n := range nodes {
		conf = append(conf, fmt.Sprintf("neighbor %s bfd profile fast", n.IPv4), fmt.Sprintf("neighbor %s bfd profile fast", n.IPv6))
	}
	if out, err := l.Vtysh(ctx, strings.Join(conf, "\n")); err != nil {
		t.Fatalf("router BFD profile: %v\n%s", err, out)
	}
	// Herald: the same in the BFDProfile the lab's BGPPeers name.
	profile := "kind: BFDProfile\nmetadata:\n  name: router\n  namespace: " + lab.HeraldNamespace + "\n"
	cfg := l.RouterBGPConfig()
	if !strings.Contains(cfg, profile) {
		t.Fatalf("no BFDProfile router in:\n%s", cfg)
	}
	cfg = strings.Replace(cfg, profile, profile+"spec: {receiveInterval: 100, transmitInterval: 100, detectMultiplier: 3}\n", 1)
	if err := l.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	addrs := service(t, l, lab.Service{Name: "bfd"})
	host := netip.PrefixFrom(addrs[0], 32)
	if _, err := l.WaitRouterRoutes(ctx, host, 3); err != nil {
		t.Fatal(err)
	}
	victim := nodes[0]
	eventually(t, "BFD up at 100 ms x 3 both ways with "+victim.Name, 30*time.Second, func() (bool, string) {
		out, err := l.Vtysh(ctx, "show bfd peers json")
		if err != nil {
			return false, err.Error()
		}
		var peers []struct {
			Peer             string `json:"peer"`
			Status           string `json:"status"`
			Multiplier       int    `json:"detect-multiplier"`
			RemoteMultiplier int    `json:"remote-detect-multiplier"`
			Receive          int    `json:"receive-interval"`
			Transmit         int    `json:"transmit-interval"`
			RemoteReceive    int    `json:"remote-receive-interval"`
			RemoteTransmit   int    `json:"remote-transmit-interval"`
		}
		if err := json.Unmarshal([]byte(out), &peers); err != nil {
			return false, err.Error()
		}
		for _, p := range peers {
			if p.Peer == victim.IPv4.String() {
				ok := p.Status == "up" && p.Multiplier == 3 && p.RemoteMultiplier == 3 && p.Receive == 100 && p.Transmit == 100 &&
					p.RemoteReceive == 100 && p.RemoteTransmit == 100
				return ok, fmt.Sprintf("%+v", p)
			}
		}
		return false, out
	})

	failed := time.Now()
	if err := l.CutLink(victim.Name); err != nil {
		t.Fatal(err)
	}
	if err := l.KillSpeaker(victim.Name); err != nil {
		t.Fatal(err)
	}
	took, hops := nextHopGone(ctx, t, l, host, victim.IPv4, failed)
	t.Logf("%s's next hop withdrawn %s after the failure; left: %v", victim.Name, took.Round(time.Millisecond), hops)
	if took > bfdWithdrawalBound {
		t.Errorf("%s's next hop withdrawn %s after the failure, want within %s (BFD 100 ms x 3)", victim.Name, took, bfdWithdrawalBound)
	}
	if len(hops) != 2 {
		t.Errorf("next hops after the failure: %v, want the other two nodes'", hops)
	}
}

// TestSeed002 applies seed 002's manifests as written, with only the
// addresses moved into the lab (peer addresses 192.168.33.2 and .4 become the lab
// router's 192.0.2.1 and 2001:db8::1; the pool 192.168.32.0/24 becomes
// 203.0.113.0/24): sessions come up, and the first Service is advertised
// from every node as a /32 with community 65535:65282, as the file says.
func TestSeed002(t *testing.T) {
	l := startBareLab(t, func(o *lab.Options) { o.Router = true })
	ctx := ctxT(t, 3*time.Minute)
	f := seedFile(t, "002-bgp-flux-helm.yaml")
	yaml := strings.NewReplacer(
		"peerAddress: 192.168.33.2", "peerAddress: 192.0.2.1",
		"peerAddress: 192.168.33.4", "peerAddress: 2001:db8::1",
		"192.168.32.0/24", "203.0.113.0/24",
	).Replace(f.Raw)
	if err := l.Apply(ctx, yaml); err != nil {
		t.Fatal(err)
	}
	addrs := service(t, l, lab.Service{Name: "first"})
	if addrs[0] != netip.MustParseAddr("203.0.113.0") {
		t.Errorf("first Service got %s, want the pool's first address (the seed's 192.168.32.0)", addrs[0])
	}
	eventually(t, "both sessions from every node established", 60*time.Second, func() (bool, string) {
		st, err := l.RouterSessions(ctx)
		if err != nil {
			return false, err.Error()
		}
		up := 0
		for _, s := range st {
			if s == "Established" {
				up++
			}
		}
		return up == 6, fmt.Sprint(st)
	})
	host := netip.PrefixFrom(addrs[0], 32)
	if _, err := l.WaitRouterRoutes(ctx, host, 3); err != nil {
		t.Fatal(err)
	}
	out, err := l.Vtysh(ctx, "show bgp ipv4 unicast "+host.String()+" json")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(out, `"no-advertise"`) != 3 {
		t.Errorf("want 3 paths with community 65535:65282 (no-advertise):\n%s", out)
	}
}

// TestGracefulRestart: with enableGracefulRestart on the peers, a speaker
// restart keeps its routes at the router (as stale, then refreshed) and the
// traffic flowing; without it the route would be withdrawn at once.
func TestGracefulRestart(t *testing.T) {
	l := startBareLab(t, func(o *lab.Options) { o.Router = true })
	ctx := ctxT(t, 3*time.Minute)
	cfg := chaos.GracefulRestartConfig(l)
	if !strings.Contains(cfg, "enableGracefulRestart: true") {
		t.Fatalf("could not enable graceful restart in:\n%s", cfg)
	}
	if err := l.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	addrs := service(t, l, lab.Service{Name: "gr"})
	host := netip.PrefixFrom(addrs[0], 32)
	if _, err := l.WaitRouterRoutes(ctx, host, 3); err != nil {
		t.Fatal(err)
	}
	node1 := l.Nodes()[0]
	if err := l.StopSpeaker(node1.Name, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	// While the speaker is down, the router keeps node1's next hop.
	time.Sleep(2 * time.Second)
	hops, err := l.RouterRoutes(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	if len(hops) != 3 {
		t.Errorf("during the restart the route has %v; with graceful restart node1 (%s) must stay", hops, node1.IPv4)
	}
	spread, err := l.SpreadFromRemote(ctx, addrs[0], 80, 30)
	if err != nil {
		t.Errorf("traffic during the restart: %v", err)
	}
	t.Logf("during the restart: next hops %v, requests %v", hops, spread)
	if err := l.StartSpeaker(node1.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := l.WaitRouterRoutes(ctx, host, 3); err != nil {
		t.Fatal(err)
	}
}

// TestMD5: with the router expecting a TCP-MD5 password, the right one
// brings the sessions up; a wrong one is refused (the routes go), and the
// failure is reported on the BGPPeer.
func TestMD5(t *testing.T) {
	l := startLab(t, func(o *lab.Options) { o.Router = true; o.RouterPassword = "s3cret-md5" })
	ctx := ctxT(t, 3*time.Minute)
	addrs := service(t, l, lab.Service{Name: "md5"})
	host := netip.PrefixFrom(addrs[0], 32)
	if _, err := l.WaitRouterRoutes(ctx, host, 3); err != nil {
		t.Fatalf("with the right password: %v", err)
	}
	if _, err := l.Kubectl(ctx, "", "patch", "bgppeer", "router", "-n", lab.HeraldNamespace, "--type=merge",
		"-p", `{"spec":{"password":"wrong"}}`); err != nil {
		t.Fatal(err)
	}
	eventually(t, "IPv4 sessions down with a wrong password", 60*time.Second, func() (bool, string) {
		hops, err := l.RouterRoutes(ctx, host)
		return err == nil && len(hops) == 0, fmt.Sprintf("%v %v", hops, err)
	})
	eventually(t, "SessionDown event on the BGPPeer naming TCP-MD5", 60*time.Second, func() (bool, string) {
		out, err := l.Kubectl(ctx, "", "get", "events", "-n", lab.HeraldNamespace,
			"--field-selector", "involvedObject.name=router", "-o", "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}")
		return err == nil && strings.Contains(out, "SessionDown") && strings.Contains(out, "TCP-MD5 authentication likely failed"), out
	})
}

// scrape reads a speaker's /metrics (port 7472 on its node address) from
// the client's namespace.
func scrape(ctx context.Context, l *lab.Lab, node netip.Addr) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(node.String(), strconv.Itoa(lab.SpeakerMetricsPort))+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := l.HTTPClient(5 * time.Second).Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// sample returns the value of name{peer="peer"} in a Prometheus text page.
func sample(text, name, peer string) (float64, bool) {
	prefix := name + `{peer="` + peer + `"} `
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f, err == nil
		}
	}
	return 0, false
}

package chaos

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/herald-lb/herald/internal/lab"
)

// RollingBGP restarts every speaker in turn, as a DaemonSet update does,
// while the router peers with every node with graceful restart on
// (enableGracefulRestart on the BGPPeers, which the caller applies). The
// router keeps a restarting node's route as stale until it is refreshed,
// so a client behind the router, requesting t.Addr every o.ProbeEvery on a
// new connection, sees no failure. In strict mode the first failed request
// fails the scenario, as does a next hop missing at the router at any of
// its samples (every 100 ms).
func RollingBGP(ctx context.Context, l *lab.Lab, t Target, o Options) (r Result, err error) {
	o = o.withDefaults()
	r.Scenario = "rolling restart of every speaker, BGP with graceful restart"
	host := netip.PrefixFrom(t.Addr, t.Addr.BitLen())
	nodes := l.Nodes()
	if _, err := l.WaitRouterRoutes(ctx, host, len(nodes)); err != nil {
		return r, err
	}
	probe, err := l.ProbeFromRemote(ctx, t.Addr, 80, o.ProbeEvery)
	if err != nil {
		return r, err
	}
	start := time.Now()
	defer func() {
		samples := probe.Stop()
		r.Duration = time.Since(start).Round(time.Millisecond)
		r.Requests = len(samples)
		r.Failed = len(lab.Failed(samples))
		r.LongestGap = lab.LongestOutage(samples)
	}()
	fewest := len(nodes)
	var worst time.Duration
	for _, n := range nodes {
		t0 := time.Now()
		if err := l.StopSpeaker(n.Name, 10*time.Second); err != nil {
			return r, err
		}
		if err := l.StartSpeaker(n.Name); err != nil {
			return r, err
		}
		// Back when the router has the node's route fresh again; meanwhile
		// every next hop must stay (stale for the restarting node).
		for {
			hops, err := l.RouterRoutes(ctx, host)
			if err != nil {
				return r, err
			}
			fewest = min(fewest, len(hops))
			if o.Strict && len(hops) < len(nodes) {
				return r, fmt.Errorf("the router had %d next hops for %s while %s restarted (%v), want %d: graceful restart did not keep its route", len(hops), host, n.Name, hops, len(nodes))
			}
			if o.Strict {
				if bad := lab.Failed(probe.Samples()); len(bad) > 0 {
					return r, fmt.Errorf("request at %s failed while %s restarted: %v", bad[0].Start.Format("15:04:05.000"), n.Name, bad[0].Err)
				}
			}
			if fresh, err := freshPath(ctx, l, host, n.IPv4.String()); err != nil {
				return r, err
			} else if fresh && time.Since(t0) > time.Second {
				break
			}
			if time.Since(t0) > time.Minute {
				return r, fmt.Errorf("%s's route not refreshed at the router a minute after its speaker restarted", n.Name)
			}
			if err := lab.Sleep(ctx, 100*time.Millisecond); err != nil {
				return r, err
			}
		}
		worst = max(worst, time.Since(t0))
		o.Log.Info("speaker restarted, route refreshed", "node", n.Name, "after", time.Since(t0))
		if err := lab.Sleep(ctx, 2*time.Second); err != nil {
			return r, err
		}
	}
	r.figure("slowest restart to route refreshed ms", ms(worst))
	r.figure("fewest next hops during the rollout", float64(fewest))
	return r, nil
}

// freshPath reports whether the router has a path for host through
// nextHop that is not stale.
func freshPath(ctx context.Context, l *lab.Lab, host netip.Prefix, nextHop string) (bool, error) {
	paths, _, err := l.RouterPaths(ctx, host)
	if err != nil {
		return false, err
	}
	for _, p := range paths {
		if !p.Stale && slices.Contains(p.NextHops, nextHop) {
			return true, nil
		}
	}
	return false, nil
}

// GracefulRestartConfig is the lab's BGP configuration (a BGPPeer per node
// to the router, the pool advertised) with enableGracefulRestart on every
// peer.
func GracefulRestartConfig(l *lab.Lab) string {
	return strings.ReplaceAll(l.RouterBGPConfig(), "  myASN:", "  enableGracefulRestart: true\n  myASN:")
}

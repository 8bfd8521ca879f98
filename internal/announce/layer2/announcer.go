// Package layer2 is the Layer 2 mode: the elected node answers ARP and NDP
// for a Service's addresses on the interfaces chosen for them, and keeps a
// ServiceL2Status per Service it announces (MetalLB's kind).
package layer2

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/internal/announce"
)

// Protocol is the mode's name in metrics and Events, MetalLB's.
const Protocol = "layer2"

// Options configure the Layer 2 mode.
type Options struct {
	Node, Namespace string
	// Client reads and writes this node's ServiceL2Status objects.
	Client client.Client
	Log    logr.Logger
	Event  announce.EventFunc
	// Resync asks the speaker for a sync now (a conflict was seen).
	Resync func()
	// HandoverDelay is how long a stopping speaker keeps answering after
	// it has left the membership, while the next owners take over.
	HandoverDelay time.Duration
	Registry      prometheus.Registerer
}

// Announcer is the Layer 2 mode.
type Announcer struct {
	Elector
	opts       Options
	metrics    *metrics
	responders *responders

	mu    sync.Mutex
	owned []announce.Announcement // what this node answers for
	// failed: Services this node should announce but cannot (no usable
	// interface); the Event goes out once per failure. Only Announce
	// touches it, as it does answering.
	failed    map[string]bool
	answering map[netip.Addr]bool
	// live: the members of the last sync; nil before the first.
	live map[string]bool
}

// New starts the Layer 2 mode; ctx lives until the speaker has stopped.
func New(ctx context.Context, o Options) *Announcer {
	a := &Announcer{opts: o, metrics: newMetrics(o.Registry), answering: map[netip.Addr]bool{}}
	a.responders = newResponders(ctx, slog.New(logr.ToSlogHandler(o.Log)), hooks{
		conflict:   a.onConflict,
		request:    func(ip netip.Addr) { a.metrics.requests.WithLabelValues(ip.String()).Inc() },
		reply:      func(ip netip.Addr) { a.metrics.responses.WithLabelValues(ip.String()).Inc() },
		gratuitous: func(ip netip.Addr) { a.metrics.gratuitous.WithLabelValues(ip.String()).Inc() },
	})
	return a
}

// Protocol implements announce.Announcer.
func (a *Announcer) Protocol() string { return Protocol }

// Announce makes this node answer for exactly the addresses it owns, on the
// interfaces chosen for each, and keeps the ServiceL2Status objects in line.
func (a *Announcer) Announce(ctx context.Context, d announce.Desired) (announce.Announced, error) {
	want := map[string][]netip.Addr{}
	var owned []announce.Announcement
	used := map[string][]string{} // Service -> interfaces
	failed := map[string]bool{}
	groups := map[string][]announce.Service{}
	for _, s := range d.Inputs.Services {
		if len(s.Addrs) > 0 {
			k := a.ElectionKey(s)
			groups[k] = append(groups[k], s)
		}
	}
	for _, o := range d.Owned {
		named := interfaces(d.Inputs, groups[o.Key])
		for _, ip := range o.Addrs {
			for _, i := range announce.SelectInterfaces(ip, d.Ifaces, named) {
				want[i.Name] = append(want[i.Name], ip)
				used[o.Service] = append(used[o.Service], i.Name)
			}
		}
		if len(used[o.Service]) == 0 {
			if !a.failed[o.Service] {
				a.opts.Event(o.Service, announce.EventWarning, "announceFailed",
					fmt.Sprintf("the interfaces specified by LB IP %q don't exist or are down on assigned node %q with protocol \"layer2\"", o.Addrs[0], a.opts.Node))
			}
			failed[o.Service] = true
			continue
		}
		owned = append(owned, o)
	}
	a.failed = failed
	err := a.responders.set(want)
	if err != nil {
		err = fmt.Errorf("responders: %w", err)
	}
	if joined := newMembers(a.live, d.Inputs.Live); len(joined) > 0 && len(owned) > 0 {
		// A member appeared: a partition healed, or a node came back. A
		// node that elected itself for some of this node's addresses while
		// the two could not see each other has stopped answering for them,
		// but its neighbours' caches still point at it (MetalLB #584): a
		// fresh burst points them back here.
		a.opts.Log.Info("members joined: re-announcing the addresses this node answers for", "members", joined)
		a.responders.announceAll()
	}
	a.live = maps.Clone(d.Inputs.Live)
	a.mu.Lock()
	a.owned = owned
	a.mu.Unlock()

	out := announce.Announced{}
	answering := map[netip.Addr]bool{}
	for _, o := range owned {
		out[o.Service] = o.Addrs
		for _, ip := range o.Addrs {
			answering[ip] = true
		}
		ifs := slices.Compact(slices.Sorted(slices.Values(used[o.Service])))
		if err := a.writeStatus(ctx, o.Service, ifs); err != nil {
			a.opts.Log.Error(err, "write ServiceL2Status", "service", o.Service)
		}
	}
	// Counters of an address this node no longer answers for go (MetalLB
	// leaves them stale, #1972, #1342).
	for ip := range a.answering {
		if !answering[ip] {
			a.metrics.forget(ip)
		}
	}
	a.answering = answering
	a.deleteStatuses(ctx, out)
	return out, err
}

// Shutdown keeps answering for the handover delay, while the next owners,
// who saw this node leave the membership, take the addresses over, then
// stops answering and removes this node's ServiceL2Status objects.
func (a *Announcer) Shutdown(ctx context.Context) {
	a.opts.Log.Info("stopping: handing addresses over", "delay", a.opts.HandoverDelay.String())
	select {
	case <-time.After(a.opts.HandoverDelay):
	case <-ctx.Done():
	}
	a.responders.close()
	cleanup, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	a.deleteStatuses(cleanup, nil)
}

// onConflict: another MAC answers for an address this node owns: a
// duplicate address on the LAN, or two speakers that both think they own
// it. During a handover the next owner announces a moment before this node
// has seen the change, so the conflict counts only if the address is still
// this node's after a fresh sync and a grace period. Then it is reported,
// and the address announced afresh, so the neighbours that the other host
// drew away come back to this node.
func (a *Announcer) onConflict(iface string, ip netip.Addr, mac net.HardwareAddr) {
	a.opts.Resync()
	go func() {
		time.Sleep(conflictGrace)
		if svc := a.ownedService(ip); svc != "" {
			a.reportConflict(svc, iface, ip, mac)
			a.responders.announce(iface, ip)
		}
	}()
}

// newMembers returns the members of now that were not in before, sorted;
// none when before is nil (the first sync).
func newMembers(before, now map[string]bool) []string {
	if before == nil {
		return nil
	}
	var out []string
	for m, ok := range now {
		if ok && !before[m] {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return out
}

// conflictGrace is longer than a sync takes, shorter than a human notices.
const conflictGrace = 2 * time.Second

func (a *Announcer) ownedService(ip netip.Addr) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, o := range a.owned {
		if slices.Contains(o.Addrs, ip) {
			return o.Service
		}
	}
	return ""
}

func (a *Announcer) reportConflict(svc, iface string, ip netip.Addr, mac net.HardwareAddr) {
	a.metrics.conflicts.WithLabelValues(ip.String()).Inc()
	a.opts.Log.Info("address conflict: another host answers for an address this node announces",
		"address", ip.String(), "interface", iface, "otherMAC", mac.String())
	a.opts.Event(svc, announce.EventWarning, "AddressConflict",
		fmt.Sprintf("another host (MAC %s) answers for %s on %s, which node %q announces: a duplicate address on the LAN, or a split brain", mac, ip, iface, a.opts.Node))
}

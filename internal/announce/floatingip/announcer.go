// Package floatingip is the cloud mode: the node elected for a floating IP
// assigns it to its own server through the cloud's API (Hetzner Cloud
// first), and a Lease per floating IP keeps two nodes that both believe they
// own it from moving it back and forth. ARP, NDP and BGP reach no one on
// such clouds: the provider delivers an address only to the server its API
// has it assigned to.
package floatingip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	heraldv1alpha1 "github.com/herald-lb/herald/api/v1alpha1"
	"github.com/herald-lb/herald/internal/announce"
	"github.com/herald-lb/herald/internal/cloud"
	"github.com/herald-lb/herald/internal/config"
)

// Protocol is the mode's name in metrics and Events.
const Protocol = "cloud"

// TokenFunc reads the API token from the Secret name, key key, in Herald's
// namespace.
type TokenFunc func(ctx context.Context, name, key string) (string, error)

// ProviderFunc builds a provider's client for a token.
type ProviderFunc func(provider, token string, budget *cloud.Budget) (cloud.Provider, error)

// Options configure the cloud mode.
type Options struct {
	Node string
	// Namespace and Client: where this node's ServiceCloudStatus objects
	// are written; none are when Client is nil.
	Namespace string
	Client    client.Client
	// Token reads a CloudAdvertisement's token Secret.
	Token       TokenFunc
	NewProvider ProviderFunc
	Arbiter     cloud.Arbiter
	Event       announce.EventFunc
	// Resync asks the speaker for a sync now (an IP's state changed).
	Resync   func()
	Log      logr.Logger
	Registry prometheus.Registerer
	// ListEvery bounds how often the project's floating IPs are listed to
	// find an address that none of the known ones holds.
	ListEvery time.Duration
	// CheckEvery overrides the budget's check interval (tests).
	CheckEvery time.Duration
	// NamesEvery and NamesRefresh space the lists of the project's
	// servers that find nodes without spec.providerID by name. Zero:
	// DefaultNamesEvery, DefaultNamesRefresh.
	NamesEvery, NamesRefresh time.Duration
	// NodeReport, when set, is told once per change whether this node can
	// hold floating IPs, and why not.
	NodeReport func(NodeReport)
	// Holder is the node holding the lease of a floating IP, by its
	// election key ("" when none does), read from the speaker's cache. The
	// election leaves an IP with its holder while the holder is a
	// candidate, so a node that joins or comes back moves nothing. Nil:
	// the plain election.
	Holder func(key string) string
	// LeaseDuration is the Arbiter's lease (renewed three times per lease);
	// HoldDown, how long an IP this node moved is not moved back when
	// something takes it away. Zero: cloudlease's and cloud's defaults.
	LeaseDuration, HoldDown time.Duration
}

// Announcer is the cloud mode.
type Announcer struct {
	opts    Options
	metrics *metrics
	ctx     context.Context // lives until the speaker has stopped

	mu       sync.Mutex
	accounts map[accountKey]*account
	workers  map[workerKey]*worker
	reported map[string]string // Service -> last problem Event, once per reason
	names    map[accountKey]*serverNames
	// clusterIPs is how many floating IPs the whole cluster announces: the
	// check interval is spaced for all of them, whichever node owns each.
	clusterIPs int
	// nodeReport is the last NodeReport sent.
	nodeReport NodeReport
}

// New returns the cloud mode; ctx lives until the speaker has stopped.
func New(ctx context.Context, o Options) *Announcer {
	if o.ListEvery == 0 {
		o.ListEvery = 30 * time.Second
	}
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = 15 * time.Second
	}
	if o.NamesEvery <= 0 {
		o.NamesEvery = DefaultNamesEvery
	}
	if o.NamesRefresh <= 0 {
		o.NamesRefresh = DefaultNamesRefresh
	}
	return &Announcer{opts: o, ctx: ctx, metrics: newMetrics(o.Registry),
		accounts: map[accountKey]*account{}, workers: map[workerKey]*worker{}, reported: map[string]string{}, names: map[accountKey]*serverNames{}}
}

// Protocol implements announce.Announcer.
func (a *Announcer) Protocol() string { return Protocol }

// ElectionKey: a floating IPv6 is a whole /64 that moves as one, so every
// address in it has one owner; an IPv4 floating IP is its address.
func (a *Announcer) ElectionKey(s announce.Service) string {
	ip := s.Addrs[0]
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// Candidates are the nodes eligible for every Service of group: alive,
// network-available, not excluded from load balancers, selected by a
// CloudAdvertisement of the Service's pool, holding a ready endpoint for
// Local policy, and with a cloud server: spec.providerID names one. The
// incumbent is the node holding the IP's lease: every move costs an API
// call and the connections through the old server, so an IP moves only
// when its holder can no longer have it.
func (a *Announcer) Candidates(in announce.Inputs, group []announce.Service) announce.Candidates {
	nodes, why := announce.EligibleForAll(group, func(s announce.Service) (map[string]bool, string) { return a.eligible(in, s) })
	out := announce.Candidates{Nodes: nodes, Why: why}
	if a.opts.Holder != nil && len(group) > 0 {
		out.Incumbent = a.opts.Holder(a.ElectionKey(group[0]))
	}
	if len(out.Nodes) == 0 && why == "" {
		out.Why = "no eligible node: none is alive, selected by a CloudAdvertisement, with a cloud server (spec.providerID, or a server of the node's name) and, for Local policy, holding a ready endpoint"
	}
	return out
}

// advertisement is the CloudAdvertisement that applies to s, or nil.
func advertisement(in announce.Inputs, s announce.Service) *config.CloudAdvertisement {
	if in.Config == nil {
		return nil
	}
	for _, ad := range in.Config.CloudAdvertisements {
		if ad.HasPool(s.Pool) && ad.MatchesService(s.Labels) {
			return ad
		}
	}
	return nil
}

func (a *Announcer) eligible(in announce.Inputs, s announce.Service) (map[string]bool, string) {
	ad := advertisement(in, s)
	if ad == nil {
		return nil, "no CloudAdvertisement selects pool " + s.Pool + " for this Service"
	}
	if len(s.EndpointNodes) == 0 {
		return nil, announce.ReasonNoEndpoints
	}
	out := map[string]bool{}
	for name, n := range in.Nodes {
		if !in.Live[name] || n.NetworkUnavailable || n.Excluded() || !ad.MatchesNode(n.Labels) {
			continue
		}
		if s.Local && !s.EndpointNodes[name] {
			continue
		}
		if _, err := a.serverOf(ad, n); err != nil {
			continue
		}
		out[name] = true
	}
	return out, ""
}

// Announce runs one worker per floating IP this node owns and stops the
// others; it returns the Services whose floating IP is on this node's
// server now. It never blocks on the cloud's API: assigning takes seconds.
func (a *Announcer) Announce(ctx context.Context, d announce.Desired) (announce.Announced, error) {
	if a.resolveNames(ctx, d.Inputs) {
		// The candidates may have changed: elect again.
		a.opts.Resync()
	}
	a.reportNode(d.Inputs, d.Node)
	want := map[workerKey][]announce.Announcement{}
	prefixes := map[workerKey]string{}
	services := make(map[string]announce.Service, len(d.Inputs.Services))
	fips := map[string]bool{} // the cluster's floating IPs, by election key
	for _, s := range d.Inputs.Services {
		services[s.Key] = s
		if len(s.Addrs) > 0 && advertisement(d.Inputs, s) != nil {
			fips[a.ElectionKey(s)] = true
		}
	}
	a.mu.Lock()
	a.clusterIPs = len(fips)
	a.mu.Unlock()
	var errs []error
	for _, o := range d.Owned {
		svc, ok := services[o.Service]
		if !ok {
			continue
		}
		ad := advertisement(d.Inputs, svc)
		if ad == nil {
			continue
		}
		acct, err := a.account(ctx, ad)
		if err != nil {
			a.problem(o.Service, fmt.Sprintf("cannot use the cloud API of CloudAdvertisement %s: %v", ad.Name, err))
			errs = append(errs, err)
			continue
		}
		server, err := a.serverOf(ad, d.Inputs.Nodes[d.Node])
		if err != nil {
			a.problem(o.Service, err.Error())
			continue
		}
		fip, err := acct.holding(ctx, o.Addrs[0], a.opts.ListEvery)
		if err != nil {
			a.problem(o.Service, fmt.Sprintf("no floating IP of the project holds %s: %v; it stays where it is", o.Addrs[0], err))
			continue
		}
		k := workerKey{account: acct.key, id: fip.ID, server: server, lease: o.Key}
		want[k] = append(want[k], o)
		prefixes[k] = fip.Prefix.String()
	}
	out, statuses, gone := a.apply(want, prefixes)
	// Workers are stopped outside the lock: a running check takes it.
	for _, w := range gone {
		w.stop(true)
	}
	a.writeStatuses(ctx, statuses)
	return out, errors.Join(errs...)
}

// apply starts a worker for each floating IP wanted and hands back the
// others to stop; it returns the Services whose floating IP is on this
// node's server now, and their status.
func (a *Announcer) apply(want map[workerKey][]announce.Announcement, prefixes map[workerKey]string) (announce.Announced, map[string]heraldv1alpha1.ServiceCloudStatusStatus, []*worker) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var gone []*worker
	for k, w := range a.workers {
		if _, ok := want[k]; !ok {
			gone = append(gone, w)
			delete(a.workers, k)
		}
	}
	out := announce.Announced{}
	statuses := map[string]heraldv1alpha1.ServiceCloudStatusStatus{}
	for k, owned := range want {
		w := a.workers[k]
		if w == nil {
			w = a.startWorker(k, a.accounts[k.account])
			a.workers[k] = w
		} else if acct := a.accounts[k.account]; acct != w.given {
			w.given = acct
			w.rotate(acct)
		}
		w.setServices(owned)
		p, ok := w.placement()
		if !ok {
			continue
		}
		for _, o := range owned {
			out[o.Service] = o.Addrs
			ns, name, _ := strings.Cut(o.Service, "/")
			addrs := make([]string, len(o.Addrs))
			for i, ip := range o.Addrs {
				addrs[i] = ip.String()
			}
			statuses[o.Service] = heraldv1alpha1.ServiceCloudStatusStatus{
				Node: a.opts.Node, ServiceName: name, ServiceNamespace: ns,
				Provider: heraldv1alpha1.CloudProvider(k.account.provider), Server: k.server, FloatingIP: k.id,
				Prefix: prefixes[k], Addresses: addrs, Since: metav1.NewTime(p.since), LastMove: p.move,
			}
		}
	}
	return out, statuses, gone
}

// problem raises a Warning on the Service, once per reason.
func (a *Announcer) problem(svc, msg string) {
	a.mu.Lock()
	same := a.reported[svc] == msg
	a.reported[svc] = msg
	a.mu.Unlock()
	if same {
		return
	}
	a.opts.Log.Error(errors.New(msg), "cloud floating IP", "service", svc)
	a.opts.Event(svc, announce.EventWarning, "FloatingIPFailed", msg)
}

// Shutdown stops every worker and gives up this node's leases, so the next
// owners take the IPs at once. The IPs stay assigned: they keep working
// until the next owner moves them.
func (a *Announcer) Shutdown(context.Context) {
	a.mu.Lock()
	workers := a.workers
	a.workers = map[workerKey]*worker{}
	a.mu.Unlock()
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() { w.stop(true) })
	}
	wg.Wait()
}

// slogger is the cloud package's logger for this mode.
func slogger(l logr.Logger) *slog.Logger { return slog.New(logr.ToSlogHandler(l)) }

// prefixOf is the floating IP holding addr among fips.
func prefixOf(fips []cloud.FloatingIP, addr netip.Addr) (cloud.FloatingIP, bool) {
	for _, f := range fips {
		if f.Prefix.Contains(addr) {
			return f, true
		}
	}
	return cloud.FloatingIP{}, false
}

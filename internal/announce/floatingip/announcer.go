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
}

// New returns the cloud mode; ctx lives until the speaker has stopped.
func New(ctx context.Context, o Options) *Announcer {
	if o.ListEvery == 0 {
		o.ListEvery = 30 * time.Second
	}
	if o.LeaseDuration <= 0 {
		o.LeaseDuration = 15 * time.Second
	}
	return &Announcer{opts: o, ctx: ctx, metrics: newMetrics(o.Registry),
		accounts: map[accountKey]*account{}, workers: map[workerKey]*worker{}, reported: map[string]string{}}
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
// Local policy, and with a cloud server: spec.providerID names one.
func (a *Announcer) Candidates(in announce.Inputs, group []announce.Service) announce.Candidates {
	nodes, why := announce.EligibleForAll(group, func(s announce.Service) (map[string]bool, string) { return eligible(in, s) })
	out := announce.Candidates{Nodes: nodes, Why: why}
	if len(out.Nodes) == 0 && why == "" {
		out.Why = "no eligible node: none is alive, selected by a CloudAdvertisement, with a cloud server (spec.providerID) and, for Local policy, holding a ready endpoint"
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

func eligible(in announce.Inputs, s announce.Service) (map[string]bool, string) {
	ad := advertisement(in, s)
	if ad == nil {
		return nil, "no CloudAdvertisement selects pool " + s.Pool + " for this Service"
	}
	if len(s.EndpointNodes) == 0 {
		return nil, "the Service has no ready or serving endpoint"
	}
	out := map[string]bool{}
	for name, n := range in.Nodes {
		if !in.Live[name] || n.NetworkUnavailable || n.Excluded() || !ad.MatchesNode(n.Labels) {
			continue
		}
		if s.Local && !s.EndpointNodes[name] {
			continue
		}
		if _, err := serverID(ad.Provider, n); err != nil {
			continue
		}
		out[name] = true
	}
	return out, ""
}

// serverID is the node's server in the provider's cloud, from its
// spec.providerID ("hcloud://<id>" on Hetzner). A node without one is not
// eligible: every speaker must agree on the candidates without asking the
// API.
func serverID(provider string, n announce.Node) (string, error) {
	prefix := ""
	switch provider {
	case config.ProviderHetzner:
		prefix = "hcloud://"
	default:
		return "", fmt.Errorf("unknown provider %q", provider)
	}
	id, ok := strings.CutPrefix(n.ProviderID, prefix)
	if !ok || id == "" || strings.TrimLeft(id, "0123456789") != "" {
		return "", fmt.Errorf("node %s: spec.providerID %q is not a %s server (%sID): %w", n.Name, n.ProviderID, provider, prefix, cloud.ErrNotEligible)
	}
	return id, nil
}

// Announce runs one worker per floating IP this node owns and stops the
// others; it returns the Services whose floating IP is on this node's
// server now. It never blocks on the cloud's API: assigning takes seconds.
func (a *Announcer) Announce(ctx context.Context, d announce.Desired) (announce.Announced, error) {
	want := map[workerKey][]announce.Announcement{}
	var errs []error
	for _, o := range d.Owned {
		svc := findService(d.Inputs, o.Service)
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
		server, err := serverID(ad.Provider, d.Inputs.Nodes[d.Node])
		if err != nil {
			a.problem(o.Service, err.Error())
			continue
		}
		fip, err := acct.holding(ctx, o.Addrs[0], a.opts.ListEvery)
		if err != nil {
			a.problem(o.Service, fmt.Sprintf("no floating IP of the project holds %s: %v", o.Addrs[0], err))
			continue
		}
		k := workerKey{account: acct.key, id: fip.ID, server: server}
		want[k] = append(want[k], o)
	}
	// Workers are stopped outside the lock: a running check takes it.
	var gone []*worker
	defer func() {
		for _, w := range gone {
			w.stop(true)
		}
	}()
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, w := range a.workers {
		if _, ok := want[k]; !ok {
			gone = append(gone, w)
			delete(a.workers, k)
		}
	}
	out := announce.Announced{}
	for k, owned := range want {
		w := a.workers[k]
		if w == nil {
			w = a.startWorker(k, a.accounts[k.account])
			a.workers[k] = w
		}
		w.setServices(owned)
		if w.inPlace() {
			for _, o := range owned {
				out[o.Service] = o.Addrs
			}
		}
	}
	return out, errors.Join(errs...)
}

func findService(in announce.Inputs, key string) announce.Service {
	for _, s := range in.Services {
		if s.Key == key {
			return s
		}
	}
	return announce.Service{Key: key}
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

package controller

import (
	"context"
	"sort"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/internal/config"
	"github.com/herald-lb/herald/internal/configsource"
	"github.com/herald-lb/herald/internal/configstate"
	"github.com/herald-lb/herald/internal/ipam"
)

// ConfigurationState values, MetalLB's.
const (
	reasonInvalidConfig = "InvalidConfiguration"
)

// configReconciler loads the configuration CRs as one set and puts in
// force what of it is valid: an object with a problem keeps its last valid
// version, or is left out when there is none (after a restart), and the
// rest works. Each problem goes to ConfigurationState "controller", an
// Event on the offending object, the metrics and the log.
type configReconciler struct {
	client client.Client
	reader client.Reader // uncached, for the restore
	// cloud reads CloudAdvertisements: the cache when it holds them, else
	// the API server (see cachescope.CloudServed).
	cloud     client.Reader
	namespace string
	state     *allocState
	// configState writes ConfigurationState "controller".
	configState *configstate.Writer
	metrics     *metrics
	recorder    events.EventRecorder
	log         logr.Logger
	services    *serviceReconciler
	// enqueueAll re-queues every Service (once, when the controller becomes
	// ready).
	enqueueAll func(ctx context.Context)

	// last is what the configuration in force was built from.
	last         config.Resources
	lastProblems string
	loaded       bool
}

func (r *configReconciler) Reconcile(ctx context.Context, _ ctrl.Request) (ctrl.Result, error) {
	res, objs, err := configsource.Load(ctx, r.client, r.namespace, configsource.WithCloud(r.cloud))
	if err != nil {
		return ctrl.Result{}, err
	}
	r.metrics.updates.Inc()
	u := config.BuildUsable(res, r.last)
	if len(u.Problems) > 0 {
		r.metrics.updateErrs.Inc()
		r.reportProblems(ctx, u, objs)
	} else {
		r.lastProblems = ""
	}
	if u.Config == nil {
		if r.loaded {
			r.metrics.configStale.Set(1)
		}
		return ctrl.Result{}, r.configState.Write(ctx, u)
	}
	r.last = u.From
	left := map[string]bool{}
	for _, o := range u.Left {
		if o.Kind == config.KindIPAddressPool {
			left[o.Name] = true
		}
	}
	r.apply(ctx, u.Config, left)
	r.metrics.configLoaded.Set(1)
	r.metrics.configStale.Set(boolFloat(len(u.Problems) > 0))
	return ctrl.Result{}, r.configState.Write(ctx, u)
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// reportProblems logs and raises Events for objects with problems. Events
// go out only when the set of problems changes, so a resync does not
// repeat them.
func (r *configReconciler) reportProblems(ctx context.Context, u config.Usable, objs map[string]client.Object) {
	summary := u.Problems.Error()
	if summary == r.lastProblems {
		return
	}
	r.lastProblems = summary
	r.log.Error(u.Problems, "objects with problems are not in force as they are; the rest of the configuration is",
		"problems", len(u.Problems), "transient", u.Problems.Transient(),
		"keptLastValid", configstate.Refs(u.Kept), "leftOut", configstate.Refs(u.Left), "applied", u.Config != nil)
	for _, p := range u.Problems {
		obj, ok := objs[p.Kind+"/"+p.Name]
		if !ok {
			continue
		}
		r.recorder.Eventf(obj, nil, corev1.EventTypeWarning, reasonInvalidConfig, "Validate", "%s", p.String())
	}
}

// apply puts a valid configuration in force.
// Pools in left have problems and are not in force: Services holding their
// addresses keep them.
func (r *configReconciler) apply(ctx context.Context, cfg *config.Config, left map[string]bool) {
	ps := &poolSet{byName: map[string]*poolPolicy{}}
	for _, p := range cfg.Pools {
		p := p
		ps.byName[p.Name] = &poolPolicy{Pool: p.Pool, pinned: p.Pinned(), admits: p.Admits}
		ps.names = append(ps.names, p.Name)
	}
	sort.Strings(ps.names)

	s := r.state
	s.mu.Lock()
	displaced, err := s.alloc.SetPools(ps.ipamPools())
	if err != nil {
		// config.Validate runs the same checks; reaching this is a bug.
		s.mu.Unlock()
		r.log.Error(err, "allocator refused a validated configuration")
		return
	}
	if s.pools != nil {
		for _, n := range s.pools.names {
			s.dirtyPools[n] = struct{}{}
		}
	}
	for _, n := range ps.names {
		s.dirtyPools[n] = struct{}{}
	}
	s.pools = ps
	s.leftPools = left
	// Addresses held outside every pool go into the allocator as soon as a
	// pool in force covers them, before any pending Service is retried.
	var taken []string
	for key, addrs := range s.held {
		if alloc, err := s.alloc.Assign(ipam.Service{Key: key, Families: ipam.FamiliesOf(addrs)}, addrs, nil); err == nil {
			delete(s.held, key)
			s.dirtyPools[alloc.Pool] = struct{}{}
			taken = append(taken, key)
		}
	}
	// Services that lost their addresses, the pending ones, and those in
	// pinned pools (whose admission may have changed) are looked at again;
	// no other Service is touched.
	keys := append(s.takePending(), taken...)
	for _, d := range displaced {
		keys = append(keys, d.Key)
		r.log.Info("service displaced by a pool change", "service", d.Key, "previous", joinAddrs(d.Previous.Addrs), "reason", d.Err)
	}
	for _, a := range s.alloc.Assignments() {
		if p := ps.byName[a.Allocation.Pool]; p != nil && p.pinned {
			keys = append(keys, a.Service.Key)
		}
	}
	first := !s.isReady()
	s.mu.Unlock()
	r.loaded = true

	if first {
		n, err := r.services.restore(ctx, r.reader)
		if err != nil {
			// Without the restore nothing may be served; the next
			// reconcile tries again.
			r.log.Error(err, "restore addresses from Service status")
			return
		}
		r.log.Info("restored addresses from Service status", "services", n)
		s.markReady()
		r.enqueueAll(ctx)
		return
	}
	r.services.retry(keys)
}

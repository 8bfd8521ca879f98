package controller

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metallbv1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/config"
	"github.com/herald-lb/herald/internal/configsource"
	"github.com/herald-lb/herald/internal/ipam"
)

// ConfigurationState values, MetalLB's.
const (
	configStateName      = "controller"
	conditionPoolsValid  = "poolReconcilerValid"
	labelComponentType   = "metallb.io/component-type"
	reasonInvalidConfig  = "InvalidConfiguration"
	conditionReasonOK    = "Reconciled"
	conditionReasonError = "ConfigurationError"
	conditionReasonWait  = "WaitingForObjects"
)

// configReconciler loads the configuration CRs as one set and puts in
// force what of it is valid: an object with a problem keeps its last valid
// version, or is left out when there is none (after a restart), and the
// rest works. Each problem goes to ConfigurationState "controller", an
// Event on the offending object, the metrics and the log.
type configReconciler struct {
	client    client.Client
	reader    client.Reader // uncached, for the restore
	namespace string
	state     *allocState
	metrics   *metrics
	recorder  events.EventRecorder
	log       logr.Logger
	services  *serviceReconciler
	// enqueueAll re-queues every Service (once, when the controller becomes
	// ready).
	enqueueAll func(ctx context.Context)

	// last is what the configuration in force was built from.
	last         config.Resources
	lastProblems string
	loaded       bool
}

func (r *configReconciler) Reconcile(ctx context.Context, _ ctrl.Request) (ctrl.Result, error) {
	res, objs, err := configsource.Load(ctx, r.client, r.namespace)
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
		return ctrl.Result{}, r.writeState(ctx, u)
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
	return ctrl.Result{}, r.writeState(ctx, u)
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
		"keptLastValid", refs(u.Kept), "leftOut", refs(u.Left), "applied", u.Config != nil)
	for _, p := range u.Problems {
		obj, ok := objs[p.Kind+"/"+p.Name]
		if !ok {
			continue
		}
		r.recorder.Eventf(obj, nil, corev1.EventTypeWarning, reasonInvalidConfig, "Validate", "%s", p.String())
	}
}

func refs(list []config.ObjectRef) string {
	s := make([]string, len(list))
	for i, o := range list {
		s[i] = o.String()
	}
	return strings.Join(s, ", ")
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

// writeState records the outcome on ConfigurationState "controller".
func (r *configReconciler) writeState(ctx context.Context, u config.Usable) error {
	var cs metallbv1beta1.ConfigurationState
	key := types.NamespacedName{Namespace: r.namespace, Name: configStateName}
	if err := r.client.Get(ctx, key, &cs); err != nil {
		if !apierrors.IsNotFound(err) {
			return err
		}
		cs = metallbv1beta1.ConfigurationState{ObjectMeta: metav1.ObjectMeta{
			Name: configStateName, Namespace: r.namespace,
			Labels: map[string]string{labelComponentType: "controller"},
		}}
		if err := r.client.Create(ctx, &cs); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create ConfigurationState: %w", err)
		}
		if err := r.client.Get(ctx, key, &cs); err != nil {
			return err
		}
	}
	base := cs.DeepCopy()
	cond := metav1.Condition{Type: conditionPoolsValid, Status: metav1.ConditionTrue, Reason: conditionReasonOK,
		Message: "the configuration is valid and in force", ObservedGeneration: cs.Generation}
	cs.Status.Result, cs.Status.ErrorSummary = metallbv1beta1.ConfigurationResultValid, ""
	if ps := u.Problems; len(ps) > 0 {
		lines := make([]string, len(ps))
		for i, p := range ps {
			lines[i] = p.String()
		}
		cs.Status.Result = metallbv1beta1.ConfigurationResultInvalid
		cs.Status.ErrorSummary = strings.Join(lines, "\n")
		cond.Status, cond.Reason = metav1.ConditionFalse, conditionReasonError
		if ps.Transient() {
			cond.Reason = conditionReasonWait
		}
		cond.Message = inForceMessage(u)
	}
	meta.SetStatusCondition(&cs.Status.Conditions, cond)
	if equalState(base.Status, cs.Status) {
		return nil
	}
	if err := r.client.Status().Patch(ctx, &cs, client.MergeFrom(base)); err != nil {
		return fmt.Errorf("write ConfigurationState: %w", err)
	}
	return nil
}

// inForceMessage says what of a configuration with problems is in force.
func inForceMessage(u config.Usable) string {
	if u.Config == nil {
		return "the configuration was not applied: a problem is not tied to one object; the last configuration in force stays"
	}
	var parts []string
	if len(u.Kept) > 0 {
		parts = append(parts, "last valid version kept for "+refs(u.Kept))
	}
	if len(u.Left) > 0 {
		parts = append(parts, "left out until fixed: "+refs(u.Left))
	}
	return "objects with problems are not in force as they are (" + strings.Join(parts, "; ") + "); the rest of the configuration is"
}

func equalState(a, b metallbv1beta1.ConfigurationStateStatus) bool {
	if a.Result != b.Result || a.ErrorSummary != b.ErrorSummary || len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for i := range a.Conditions {
		x, y := a.Conditions[i], b.Conditions[i]
		if x.Type != y.Type || x.Status != y.Status || x.Reason != y.Reason || x.Message != y.Message {
			return false
		}
	}
	return true
}

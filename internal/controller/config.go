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

// configReconciler loads the configuration CRs as one set. A valid set
// replaces the one in force; an invalid one never takes effect, and the
// error goes to ConfigurationState "controller", an Event on each offending
// object, the metrics and the log.
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

	lastProblems string
	loaded       bool
}

func (r *configReconciler) Reconcile(ctx context.Context, _ ctrl.Request) (ctrl.Result, error) {
	res, objs, err := configsource.Load(ctx, r.client, r.namespace)
	if err != nil {
		return ctrl.Result{}, err
	}
	r.metrics.updates.Inc()
	result := config.Validate(res)
	if len(result.Problems) > 0 {
		r.metrics.updateErrs.Inc()
		r.reportProblems(ctx, result.Problems, objs)
		return ctrl.Result{}, r.writeState(ctx, result.Problems)
	}
	r.lastProblems = ""
	r.apply(ctx, result.Config)
	r.metrics.configLoaded.Set(1)
	r.metrics.configStale.Set(0)
	return ctrl.Result{}, r.writeState(ctx, nil)
}

// reportProblems logs and raises Events for a configuration that was not
// applied. Events go out only when the set of problems changes, so a
// resync does not repeat them.
func (r *configReconciler) reportProblems(ctx context.Context, ps config.Problems, objs map[string]client.Object) {
	summary := ps.Error()
	if r.loaded {
		r.metrics.configStale.Set(1)
	}
	if summary == r.lastProblems {
		return
	}
	r.lastProblems = summary
	r.log.Error(ps, "configuration not applied; the last valid configuration stays in force", "problems", len(ps), "transient", ps.Transient())
	for _, p := range ps {
		obj, ok := objs[p.Kind+"/"+p.Name]
		if !ok {
			continue
		}
		kind := corev1.EventTypeWarning
		r.recorder.Eventf(obj, nil, kind, reasonInvalidConfig, "Validate", "%s", p.String())
	}
}

// apply puts a valid configuration in force.
func (r *configReconciler) apply(ctx context.Context, cfg *config.Config) {
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
	// Services that lost their addresses, the pending ones, and those in
	// pinned pools (whose admission may have changed) are looked at again;
	// no other Service is touched.
	keys := s.takePending()
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
func (r *configReconciler) writeState(ctx context.Context, ps config.Problems) error {
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
	if len(ps) > 0 {
		lines := make([]string, len(ps))
		for i, p := range ps {
			lines[i] = p.String()
		}
		cs.Status.Result = metallbv1beta1.ConfigurationResultInvalid
		cs.Status.ErrorSummary = strings.Join(lines, "\n")
		cond.Status, cond.Reason = metav1.ConditionFalse, conditionReasonError
		cond.Message = "the configuration was not applied; the last valid one stays in force"
		if ps.Transient() {
			cond.Reason = conditionReasonWait
			cond.Message = "the configuration refers to objects that do not exist yet; it applies once they do"
		}
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

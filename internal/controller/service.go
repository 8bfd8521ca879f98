package controller

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/internal/ipam"
	"github.com/herald-lb/herald/internal/lbclass"
)

// ConditionAllocated is the Service status condition Herald writes: True
// with the pool when the Service has its addresses, False with the reason
// and the same message as the AllocationFailed Event when it has not.
// MetalLB writes no condition; GitOps tools and `kubectl get -o yaml` show it.
const ConditionAllocated = "metallb.io/AddressAllocated"

// Event reasons on Services, MetalLB's names.
const (
	reasonIPAllocated       = "IPAllocated"
	reasonAllocationFailed  = "AllocationFailed"
	reasonClearAssignment   = "ClearAssignment"
	reasonDeprecated        = "deprecatedAnnotation"
	reasonAddressConflict   = "AddressConflict"
	reasonPoolNotInForce    = "PoolNotInForce"
	conditionReasonAssigned = "Allocated"
)

// serviceReconciler gives one Service its addresses.
type serviceReconciler struct {
	client   client.Client
	state    *allocState
	recorder events.EventRecorder
	metrics  *metrics
	lbClass  string
	log      logr.Logger
	// retry re-queues Services by key: the pending ones when addresses free
	// up, the displaced ones when the configuration changes.
	retry func(keys []string)
}

// outcome is what allocation decided for a Service.
type outcome struct {
	alloc    ipam.Allocation
	err      error  // allocation failed; the Service gets no address
	reason   string // Event/condition reason for err
	previous []netip.Addr
	released []netip.Addr // addresses freed by this decision, to retry pending Services
	// kept is set when the Service keeps the addresses in its status
	// although no pool in force covers them: its pool has a problem.
	kept string
}

func (r *serviceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	if !r.state.isReady() {
		// The restore from Service status has not finished: serving now
		// could hand out an address a Service already holds.
		return ctrl.Result{RequeueAfter: 200 * time.Millisecond}, nil
	}
	key := req.Namespace + "/" + req.Name
	var svc corev1.Service
	if err := r.client.Get(ctx, req.NamespacedName, &svc); err != nil {
		if apierrors.IsNotFound(err) {
			r.release(key)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if !svc.DeletionTimestamp.IsZero() {
		r.release(key)
		return ctrl.Result{}, nil
	}
	if !lbclass.Handles(&svc, r.lbClass) {
		r.release(key)
		return ctrl.Result{}, r.clearIfOurs(ctx, &svc)
	}
	r.metrics.updates.Inc()

	req2, perr := parseRequest(&svc)
	if perr != nil {
		// Bad input: say so and keep whatever the Service has.
		var re *requestError
		reason := "LoadBalancerFailed"
		if errors.As(perr, &re) {
			reason = re.Reason
		}
		r.recorder.Eventf(&svc, nil, corev1.EventTypeWarning, reason, "Allocate", "%s", perr.Error())
		r.metrics.allocationFailures.WithLabelValues("InvalidRequest").Inc()
		return ctrl.Result{}, r.patchStatus(ctx, &svc, currentIngress(&svc), metav1.ConditionFalse, "InvalidRequest", perr.Error())
	}

	scope, err := r.scope(ctx, &svc)
	if err != nil {
		return ctrl.Result{}, err
	}
	out := r.allocate(&svc, req2, scope)
	if len(out.released) > 0 {
		r.retryPending()
	}
	return ctrl.Result{}, r.write(ctx, &svc, req2, out)
}

// scope reads what pool admission needs: the namespace's labels.
func (r *serviceReconciler) scope(ctx context.Context, svc *corev1.Service) (serviceScope, error) {
	sc := serviceScope{namespace: svc.Namespace, labels: svc.Labels}
	var ns corev1.Namespace
	if err := r.client.Get(ctx, types.NamespacedName{Name: svc.Namespace}, &ns); err != nil {
		if !apierrors.IsNotFound(err) {
			return sc, fmt.Errorf("namespace %q: %w", svc.Namespace, err)
		}
	}
	sc.nsLabels = ns.Labels
	return sc, nil
}

// allocate decides the Service's addresses under the state lock.
func (r *serviceReconciler) allocate(svc *corev1.Service, req request, sc serviceScope) outcome {
	s := r.state
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() { r.metrics.servicesPending.Set(float64(len(s.pending))) }()
	key := req.svc.Key
	var out outcome
	prev, had := s.alloc.Get(key)
	if had {
		out.previous = prev.Addrs
	}
	if addrs, ok := s.held[key]; ok {
		if pool := svc.Annotations[AnnotationAllocatedFrom]; s.leftPools[pool] {
			out.previous = addrs
			out.kept = fmt.Sprintf("pool %q has configuration problems and is not in force (see ConfigurationState \"controller\"); the Service keeps %s until the pool is fixed", pool, joinAddrs(addrs))
			return out
		}
		// Its pool is gone: the Service gets an address as any other.
		delete(s.held, key)
	}
	if s.pools == nil {
		out.err = errors.New("no valid configuration has been loaded yet: create an IPAddressPool (see ConfigurationState \"controller\" for errors)")
		out.reason = reasonAllocationFailed
		s.pending[key] = struct{}{}
		return out
	}
	var (
		alloc ipam.Allocation
		err   error
	)
	switch {
	case len(req.addrs) > 0:
		alloc, err = s.alloc.Assign(req.svc, req.addrs, func(pool string) error {
			if req.pool != "" && pool != req.pool {
				return fmt.Errorf("requested address is in pool %q, not in the requested address pool %q", pool, req.pool)
			}
			return s.pools.admit(pool, sc)
		})
	case req.pool != "":
		if err = s.pools.admit(req.pool, sc); err == nil {
			alloc, err = s.alloc.AllocateFromPool(req.svc, req.pool)
		}
	default:
		alloc, err = s.alloc.Allocate(req.svc, s.pools.candidates(sc))
	}
	if err != nil {
		// The request cannot be met: the Service gives up what it held, so
		// that its status tells the truth, and waits.
		if had {
			s.alloc.Release(key)
			s.dirtyPools[prev.Pool] = struct{}{}
			out.released = prev.Addrs
		}
		s.pending[key] = struct{}{}
		out.err = err
		out.reason = reasonAllocationFailed
		r.metrics.allocationFailures.WithLabelValues(failureReason(err)).Inc()
		return out
	}
	delete(s.pending, key)
	s.dirtyPools[alloc.Pool] = struct{}{}
	if had && prev.Pool != alloc.Pool {
		s.dirtyPools[prev.Pool] = struct{}{}
	}
	if had && !sameAddrs(prev.Addrs, alloc.Addrs) {
		for _, a := range prev.Addrs {
			if !slices.Contains(alloc.Addrs, a) {
				out.released = append(out.released, a)
			}
		}
	}
	out.alloc = alloc
	return out
}

func failureReason(err error) string {
	if r := ipam.ReasonOf(err); r != "" {
		return string(r)
	}
	return "Other"
}

func sameAddrs(a, b []netip.Addr) bool {
	return slices.Equal(a, b)
}

func (r *serviceReconciler) release(key string) {
	s := r.state
	s.mu.Lock()
	delete(s.pending, key)
	delete(s.held, key)
	r.metrics.servicesPending.Set(float64(len(s.pending)))
	alloc, had := s.alloc.Release(key)
	if had {
		s.dirtyPools[alloc.Pool] = struct{}{}
	}
	s.mu.Unlock()
	if had {
		r.retryPending()
	}
}

// retryPending re-queues every Service waiting for an address.
func (r *serviceReconciler) retryPending() {
	s := r.state
	s.mu.Lock()
	keys := s.takePending()
	s.mu.Unlock()
	if len(keys) > 0 && r.retry != nil {
		r.retry(keys)
	}
}

// write brings the Service's status, annotation and condition in line with
// the outcome, and records Events for what changed. Status (addresses and
// condition) goes in one request, the annotation in another, before it.
func (r *serviceReconciler) write(ctx context.Context, svc *corev1.Service, req request, out outcome) error {
	current := currentIngress(svc)
	if out.kept != "" {
		if c := meta.FindStatusCondition(svc.Status.Conditions, ConditionAllocated); c == nil || c.Reason != reasonPoolNotInForce {
			r.recorder.Eventf(svc, nil, corev1.EventTypeWarning, reasonPoolNotInForce, "Allocate", "%s", out.kept)
		}
		return r.patchStatus(ctx, svc, current, metav1.ConditionFalse, reasonPoolNotInForce, out.kept)
	}
	if out.err != nil {
		msg := fmt.Sprintf("Failed to allocate IP for %q: %s", req.svc.Key, out.err.Error())
		r.recorder.Eventf(svc, nil, corev1.EventTypeWarning, out.reason, "Allocate", "%s", msg)
		if err := r.patchStatus(ctx, svc, nil, metav1.ConditionFalse, failureReason(out.err), msg); err != nil {
			return err
		}
		return r.patchPoolAnnotation(ctx, svc, "")
	}
	if !sameAddrs(current, out.alloc.Addrs) {
		if len(current) > 0 && len(out.previous) == 0 {
			// The status named addresses this controller did not hold (a
			// pool changed while it was down, or it lost a conflict at
			// restore).
			r.recorder.Eventf(svc, nil, corev1.EventTypeNormal, reasonClearAssignment, "Allocate",
				"current IP for %q not allowed by config, assigned a new one: %s was replaced by %s",
				req.svc.Key, joinAddrs(current), joinAddrs(out.alloc.Addrs))
		}
		r.recorder.Eventf(svc, nil, corev1.EventTypeNormal, reasonIPAllocated, "Allocate",
			"Assigned IP %s from pool %q", quoteAddrs(out.alloc.Addrs), out.alloc.Pool)
		for _, k := range req.deprecated {
			r.recorder.Eventf(svc, nil, corev1.EventTypeWarning, reasonDeprecated, "Allocate",
				"Service uses deprecated annotation %s; use %s", k, stablePrefix+strings.TrimPrefix(k, legacyPrefix))
		}
	}
	// The annotation goes first, so that whoever sees the address (a
	// watcher, a test, `kubectl wait`) also sees the pool it came from.
	if err := r.patchPoolAnnotation(ctx, svc, out.alloc.Pool); err != nil {
		return err
	}
	msg := fmt.Sprintf("Assigned IP %s from pool %q", quoteAddrs(out.alloc.Addrs), out.alloc.Pool)
	return r.patchStatus(ctx, svc, out.alloc.Addrs, metav1.ConditionTrue, conditionReasonAssigned, msg)
}

// patchStatus sets status.loadBalancer.ingress to exactly addrs and Herald's
// condition, in one request, when either differs.
func (r *serviceReconciler) patchStatus(ctx context.Context, svc *corev1.Service, addrs []netip.Addr, status metav1.ConditionStatus, reason, msg string) error {
	c := meta.FindStatusCondition(svc.Status.Conditions, ConditionAllocated)
	if sameAddrs(currentIngress(svc), addrs) && len(svc.Status.LoadBalancer.Ingress) == len(addrs) &&
		c != nil && c.Status == status && c.Reason == reason && c.Message == msg && c.ObservedGeneration == svc.Generation {
		return nil
	}
	base := svc.DeepCopy()
	var ingress []corev1.LoadBalancerIngress
	for _, a := range addrs {
		ingress = append(ingress, corev1.LoadBalancerIngress{IP: a.String()})
	}
	svc.Status.LoadBalancer.Ingress = ingress
	meta.SetStatusCondition(&svc.Status.Conditions, metav1.Condition{
		Type: ConditionAllocated, Status: status, Reason: reason, Message: msg,
		ObservedGeneration: svc.Generation,
	})
	if err := r.client.Status().Patch(ctx, svc, client.MergeFrom(base)); err != nil {
		r.metrics.updateErrs.Inc()
		return fmt.Errorf("service %s/%s: write status: %w", svc.Namespace, svc.Name, err)
	}
	return nil
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

func quoteAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = fmt.Sprintf("%q", a.String())
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// patchPoolAnnotation writes metallb.io/ip-allocated-from-pool, or removes
// it when pool is empty.
func (r *serviceReconciler) patchPoolAnnotation(ctx context.Context, svc *corev1.Service, pool string) error {
	cur, has := svc.Annotations[AnnotationAllocatedFrom]
	if (pool == "" && !has) || (pool != "" && cur == pool) {
		return nil
	}
	base := svc.DeepCopy()
	if pool == "" {
		delete(svc.Annotations, AnnotationAllocatedFrom)
	} else {
		if svc.Annotations == nil {
			svc.Annotations = map[string]string{}
		}
		svc.Annotations[AnnotationAllocatedFrom] = pool
	}
	if err := r.client.Patch(ctx, svc, client.MergeFrom(base)); err != nil {
		r.metrics.updateErrs.Inc()
		return fmt.Errorf("service %s/%s: write annotation: %w", svc.Namespace, svc.Name, err)
	}
	return nil
}

// clearIfOurs removes what Herald wrote on a Service it no longer handles
// (its type or class changed). A Service Herald never touched is left alone:
// another load balancer may own it.
func (r *serviceReconciler) clearIfOurs(ctx context.Context, svc *corev1.Service) error {
	if _, ours := svc.Annotations[AnnotationAllocatedFrom]; !ours {
		return nil
	}
	if len(svc.Status.LoadBalancer.Ingress) > 0 || meta.FindStatusCondition(svc.Status.Conditions, ConditionAllocated) != nil {
		base := svc.DeepCopy()
		svc.Status.LoadBalancer.Ingress = nil
		meta.RemoveStatusCondition(&svc.Status.Conditions, ConditionAllocated)
		if err := r.client.Status().Patch(ctx, svc, client.MergeFrom(base)); err != nil {
			return fmt.Errorf("service %s/%s: clear status: %w", svc.Namespace, svc.Name, err)
		}
	}
	return r.patchPoolAnnotation(ctx, svc, "")
}

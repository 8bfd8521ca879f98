package controller

import (
	"context"
	"errors"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/herald-lb/herald/internal/ipam"
	"github.com/herald-lb/herald/internal/lbclass"
)

// restore loads every address found in Service status into the allocator,
// before any Service is served, so that a restart never moves an address
// and never hands a live one to a pending Service (MetalLB #1774, #2443,
// #2479). It lists from the API server, not the cache: a new leader's cache
// may not yet hold what the old leader wrote last.
//
// When two Services claim one address and may not share it, the older one
// (by creation time, then namespace/name) keeps it; the other gets an
// AddressConflict Event and a new address when it is reconciled.
func (r *serviceReconciler) restore(ctx context.Context, reader client.Reader) (restored int, err error) {
	var list corev1.ServiceList
	if err := reader.List(ctx, &list); err != nil {
		return 0, fmt.Errorf("list services: %w", err)
	}
	svcs := make([]*corev1.Service, 0, len(list.Items))
	for i := range list.Items {
		svc := &list.Items[i]
		if lbclass.Handles(svc, r.lbClass) && len(svc.Status.LoadBalancer.Ingress) > 0 {
			svcs = append(svcs, svc)
		}
	}
	sort.SliceStable(svcs, func(i, j int) bool {
		a, b := svcs[i], svcs[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	s := r.state
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, svc := range svcs {
		if r.restoreOne(svc) {
			restored++
		}
	}
	return restored, nil
}

// restoreOne accounts for one Service's status addresses, whatever state
// its request is in. Caller holds the state lock.
func (r *serviceReconciler) restoreOne(svc *corev1.Service) bool {
	s := r.state
	addrs := currentIngress(svc)
	key := svc.Namespace + "/" + svc.Name
	// The address is reserved under the Service's own request when it
	// reads; otherwise (a bad annotation, a family policy changed while the
	// controller was down) as an exclusive holding of exactly these
	// addresses, which the Service's reconcile then sorts out.
	holders := []ipam.Service{{Key: key, Families: ipam.FamiliesOf(addrs)}}
	if req, perr := parseRequest(svc); perr == nil {
		holders = append([]ipam.Service{req.svc}, holders...)
	}
	var err error
	for _, h := range holders {
		var alloc ipam.Allocation
		if alloc, err = s.alloc.Assign(h, addrs, nil); err == nil {
			s.dirtyPools[alloc.Pool] = struct{}{}
			return true
		}
		if conflict(err) {
			break
		}
	}
	var ie *ipam.Error
	switch {
	case conflict(err) && errors.As(err, &ie) && ie.Holder != "":
		r.recorder.Eventf(svc, nil, corev1.EventTypeWarning, reasonAddressConflict, "Restore",
			"address %s is also claimed by %s, which is older and keeps it; this Service will get another address",
			ie.Address, ie.Holder)
	case ipam.ReasonOf(err) == ipam.ReasonNotInAnyPool || ipam.ReasonOf(err) == ipam.ReasonPoolMismatch:
		// No pool in force covers it. Held, so that a pool coming back
		// into force cannot hand it to another Service first.
		s.held[key] = addrs
	}
	r.log.Info("address from status not restored", "service", key, "addresses", joinAddrs(addrs), "reason", err.Error())
	return false
}

// conflict reports whether err says another Service holds the address.
func conflict(err error) bool {
	switch ipam.ReasonOf(err) {
	case ipam.ReasonAddressInUse, ipam.ReasonPortConflict, ipam.ReasonSharingKeyConflict, ipam.ReasonBackendConflict:
		return true
	}
	return false
}

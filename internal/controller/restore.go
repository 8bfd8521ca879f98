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
		req, perr := parseRequest(svc)
		if perr != nil {
			continue // its reconcile reports the bad request and keeps its status
		}
		addrs := currentIngress(svc)
		alloc, err := s.alloc.Assign(req.svc, addrs, nil)
		if err != nil {
			var ie *ipam.Error
			if errors.As(err, &ie) && ie.Holder != "" {
				r.recorder.Eventf(svc, nil, corev1.EventTypeWarning, reasonAddressConflict, "Restore",
					"address %s is also claimed by %s, which is older and keeps it; this Service will get another address",
					ie.Address, ie.Holder)
			}
			r.log.Info("address from status not restored", "service", req.svc.Key, "addresses", joinAddrs(addrs), "reason", err.Error())
			continue
		}
		s.dirtyPools[alloc.Pool] = struct{}{}
		restored++
	}
	return restored, nil
}

package controller

import (
	"context"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metallbv1beta1 "github.com/herald-lb/herald/api/v1beta1"
)

// poolStatusWriter publishes pool usage to IPAddressPool.status and the
// allocator metrics. Allocation marks pools dirty; the writer flushes them
// at most every interval, so a burst of a thousand allocations costs one
// status write per pool, not a thousand.
type poolStatusWriter struct {
	client    client.Client
	state     *allocState
	metrics   *metrics
	namespace string
	interval  time.Duration
	log       logr.Logger
}

func (w *poolStatusWriter) NeedLeaderElection() bool { return true }

func (w *poolStatusWriter) Start(ctx context.Context) error {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			w.flush(ctx)
		}
	}
}

func (w *poolStatusWriter) flush(ctx context.Context) {
	s := w.state
	s.mu.Lock()
	dirty := s.takeDirty()
	type item struct {
		name     string
		status   metallbv1beta1.IPAddressPoolStatus
		exists   bool
		services int
	}
	items := make([]item, 0, len(dirty))
	current := map[string]bool{}
	if s.pools != nil {
		for _, n := range s.pools.names {
			current[n] = true
		}
	}
	for _, name := range dirty {
		st, ok := s.alloc.Stats(name)
		it := item{name: name, exists: ok && current[name], services: st.Services}
		if it.exists {
			ps := st.Status()
			it.status = metallbv1beta1.IPAddressPoolStatus{
				AssignedIPv4: ps.AssignedIPv4, AssignedIPv6: ps.AssignedIPv6,
				AvailableIPv4: ps.AvailableIPv4,
			}
			it.status.SetAvailableIPv6(st.IPv6.Free())
			w.metrics.setPool(st, it.services)
		}
		items = append(items, it)
	}
	s.mu.Unlock()

	for _, it := range items {
		if !it.exists {
			w.metrics.deletePool(it.name)
			continue
		}
		var pool metallbv1beta1.IPAddressPool
		if err := w.client.Get(ctx, types.NamespacedName{Namespace: w.namespace, Name: it.name}, &pool); err != nil {
			if !apierrors.IsNotFound(err) {
				w.requeue(it.name)
				w.log.Error(err, "read pool for status", "pool", it.name)
			}
			continue
		}
		if pool.Status == it.status {
			continue
		}
		// An update, not a merge patch: every counter is required, and a
		// patch would leave out the ones that are zero.
		pool.Status = it.status
		if err := w.client.Status().Update(ctx, &pool); err != nil {
			w.requeue(it.name)
			w.log.Error(err, "write pool status", "pool", it.name)
		}
	}
}

func (w *poolStatusWriter) requeue(pool string) {
	w.state.mu.Lock()
	w.state.dirtyPools[pool] = struct{}{}
	w.state.mu.Unlock()
}

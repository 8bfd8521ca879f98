package cloud

import (
	"context"
	"sync"
	"time"
)

// Arbiter settles which node may assign a floating IP when the election
// does not: during a partition, two nodes that each see the other dead both
// elect themselves. Each must hold the IP's lease before it assigns; the
// holder renews it on every check and before each assign, so the other one,
// which still reaches the API, gets no lease and assigns nothing. No
// back-and-forth, however long the partition lasts.
//
// The production Arbiter is a Kubernetes Lease per floating IP in Herald's
// namespace (internal/cloudlease): the API server is what both sides of a
// partition that both reach the cloud API still share. MemoryArbiter is the
// same rules in memory, for tests.
type Arbiter interface {
	// Acquire takes or renews the lease on ip for node. It returns false,
	// and no error, when another node holds it.
	Acquire(ctx context.Context, ip, node string) (bool, error)
	// Release gives up node's lease on ip, if node holds it, so that the
	// next owner need not wait for it to expire: a graceful handover.
	Release(ctx context.Context, ip, node string) error
}

// MemoryArbiter is an Arbiter for one process: a lease per IP that lasts
// Duration after its last renewal, and, once it changes hands, stays with
// its new holder for at least HoldDown even if not renewed. The hold-down
// bounds how often an IP can move, whatever the nodes believe.
type MemoryArbiter struct {
	Duration time.Duration
	HoldDown time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu     sync.Mutex
	leases map[string]lease
}

type lease struct {
	holder   string
	acquired time.Time
	renewed  time.Time
}

// Acquire implements Arbiter.
func (a *MemoryArbiter) Acquire(_ context.Context, ip, node string) (bool, error) {
	now := time.Now()
	if a.Now != nil {
		now = a.Now()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.leases == nil {
		a.leases = map[string]lease{}
	}
	l, held := a.leases[ip]
	switch {
	case held && l.holder == node:
		l.renewed = now
	case !held || (now.Sub(l.renewed) >= a.Duration && now.Sub(l.acquired) >= a.HoldDown):
		l = lease{holder: node, acquired: now, renewed: now}
	default:
		return false, nil
	}
	a.leases[ip] = l
	return true, nil
}

// Release implements Arbiter. A released lease is free at once, hold-down
// included: the holder chose to go, which is not flapping.
func (a *MemoryArbiter) Release(_ context.Context, ip, node string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if l, ok := a.leases[ip]; ok && l.holder == node {
		delete(a.leases, ip)
	}
	return nil
}

// Holder returns the node holding ip's lease, expired or not.
func (a *MemoryArbiter) Holder(ip string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.leases[ip].holder
}

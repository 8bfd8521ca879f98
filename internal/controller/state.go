package controller

import (
	"net/netip"
	"sync"

	"github.com/herald-lb/herald/internal/ipam"
)

// allocState is the controller's memory: the allocator, the configuration in
// force and which Services wait for an address. One mutex serialises every
// allocation, which is what makes duplicates impossible inside one process;
// leader election makes it one process.
type allocState struct {
	mu    sync.Mutex
	alloc *ipam.Allocator
	pools *poolSet // the last valid configuration's pools; nil until one loads
	// ready is closed once the allocator holds every address found in
	// Service status. No Service is served before: that is what keeps a
	// restart from handing a live address to a pending Service.
	ready     chan struct{}
	readyOnce sync.Once
	// pending holds the Services that have no address because allocation
	// failed; they are retried when an address is freed or the
	// configuration changes (MetalLB waits for an unrelated event, #1586).
	pending map[string]struct{}
	// dirtyPools are pools whose counters changed since the last status write.
	dirtyPools map[string]struct{}
	// held maps Services to the addresses found in their status that no
	// pool in force covers: the restore found them so, because their pool
	// has a problem or is gone. No pool can hand them out; each is taken
	// into the allocator when a pool covering it comes into force.
	held map[string][]netip.Addr
	// leftPools are the pools with problems that are not in force. A
	// Service holding an address of one keeps it until the pool is fixed.
	leftPools map[string]bool
}

func newAllocState() *allocState {
	return &allocState{
		alloc:      ipam.New(),
		ready:      make(chan struct{}),
		pending:    map[string]struct{}{},
		dirtyPools: map[string]struct{}{},
		held:       map[string][]netip.Addr{},
		leftPools:  map[string]bool{},
	}
}

func (s *allocState) markReady() { s.readyOnce.Do(func() { close(s.ready) }) }

func (s *allocState) isReady() bool {
	select {
	case <-s.ready:
		return true
	default:
		return false
	}
}

// takePending empties the pending set and returns its keys. Caller holds mu.
func (s *allocState) takePending() []string {
	out := make([]string, 0, len(s.pending))
	for k := range s.pending {
		out = append(out, k)
	}
	clear(s.pending)
	return out
}

// takeDirty empties the dirty pool set. Caller holds mu.
func (s *allocState) takeDirty() []string {
	out := make([]string, 0, len(s.dirtyPools))
	for k := range s.dirtyPools {
		out = append(out, k)
	}
	clear(s.dirtyPools)
	return out
}

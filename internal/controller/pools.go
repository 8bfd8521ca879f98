package controller

import (
	"fmt"

	"github.com/herald-lb/herald/internal/ipam"
)

// poolPolicy is one pool as allocation sees it: its addresses and who may
// use it.
type poolPolicy struct {
	ipam.Pool
	// pinned: the pool has a serviceAllocation, so it is tried first for
	// the Services it admits and never for the others.
	pinned bool
	// admits says whether a Service in namespace ns, with these namespace
	// and Service labels, may take addresses from the pool, and why not.
	admits func(ns string, nsLabels, svcLabels map[string]string) (bool, string)
}

// poolSet is the pools of one valid configuration.
type poolSet struct {
	byName map[string]*poolPolicy
	names  []string // sorted
}

// serviceScope is what pool admission looks at.
type serviceScope struct {
	namespace string
	nsLabels  map[string]string
	labels    map[string]string
}

// admit checks one pool for a Service; the error says why not.
func (ps *poolSet) admit(name string, sc serviceScope) error {
	p, ok := ps.byName[name]
	if !ok {
		return fmt.Errorf("unknown pool %q", name)
	}
	if p.admits == nil {
		return nil
	}
	if ok, why := p.admits(sc.namespace, sc.nsLabels, sc.labels); !ok {
		return fmt.Errorf("pool %q not compatible for ip assignment: %s", name, why)
	}
	return nil
}

// candidates lists the pools automatic allocation may try for a Service:
// the pinned pools that admit it and every unpinned pool (the allocator
// skips autoAssign=false ones and says so in its message).
func (ps *poolSet) candidates(sc serviceScope) []ipam.Candidate {
	var out []ipam.Candidate
	for _, n := range ps.names {
		p := ps.byName[n]
		if p.pinned {
			if ps.admit(n, sc) != nil {
				continue
			}
		}
		out = append(out, ipam.Candidate{Pool: n, Pinned: p.pinned})
	}
	return out
}

func (ps *poolSet) ipamPools() []ipam.Pool {
	out := make([]ipam.Pool, 0, len(ps.names))
	for _, n := range ps.names {
		out = append(out, ps.byName[n].Pool)
	}
	return out
}

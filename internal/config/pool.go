package config

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/internal/ipam"
)

// Pool is a validated IPAddressPool: the allocator's view (ipam.Pool) plus
// what decides which Services may use it.
type Pool struct {
	ipam.Pool
	// Labels are the pool's labels, for ipAddressPoolSelectors.
	Labels map[string]string
	// Allocation is the parsed spec.serviceAllocation; nil when absent.
	Allocation *ServiceAllocation
}

// ServiceAllocation is a parsed spec.serviceAllocation.
type ServiceAllocation struct {
	// Priority orders pools: lower first, 0 means none (tried last).
	Priority int
	// Namespaces is every namespace currently allowed: those listed in
	// spec.serviceAllocation.namespaces and those that namespaceSelectors
	// select among the known namespaces, sorted. For display and status;
	// Admits also follows label changes made since.
	Namespaces []string
	// NamespaceNames are the namespaces listed by name, sorted.
	NamespaceNames []string
	// NamespaceSelectors select namespaces by their labels.
	NamespaceSelectors []labels.Selector
	// ServiceSelectors select Services by their labels; one must match.
	ServiceSelectors []labels.Selector
}

// Pinned reports whether the pool has a serviceAllocation, and so is
// reserved for the Services it admits and ordered by its priority.
func (p *Pool) Pinned() bool { return p.Allocation != nil }

// RestrictsNamespaces reports whether the allocation limits namespaces at
// all. It depends on the spec, not on which namespaces exist: a selector
// that currently matches no namespace admits none, it does not lift the
// restriction (MetalLB lifts it; see docs/configuration.md).
func (a *ServiceAllocation) RestrictsNamespaces() bool {
	return len(a.NamespaceNames) > 0 || len(a.NamespaceSelectors) > 0
}

// Admits reports whether a Service in namespace, with the given namespace
// and Service labels, may take addresses from the pool, and if not, why not.
// nsLabels are the namespace's current labels; pass a non-nil map (empty
// for a namespace without labels). nil means the caller does not know them,
// and the namespaces resolved when the configuration was built are used.
//
// The rules: no serviceAllocation admits every Service; the namespace
// restriction (namespaces ∪ namespaceSelectors) and serviceSelectors, when
// set, must both be satisfied; a serviceAllocation with all three empty
// admits every Service and only sets the priority.
func (p *Pool) Admits(namespace string, nsLabels, svcLabels map[string]string) (bool, string) {
	a := p.Allocation
	if a == nil {
		return true, ""
	}
	if a.RestrictsNamespaces() && !a.admitsNamespace(namespace, nsLabels) {
		return false, fmt.Sprintf("pool %q is reserved for %s, and namespace %q is not one of them",
			p.Name, a.describeNamespaces(), namespace)
	}
	if len(a.ServiceSelectors) > 0 && !matchesAny(a.ServiceSelectors, svcLabels) {
		return false, fmt.Sprintf("pool %q is reserved for Services matching %s, and the Service's labels match none",
			p.Name, selectorKey(a.ServiceSelectors))
	}
	return true, ""
}

func (a *ServiceAllocation) admitsNamespace(ns string, nsLabels map[string]string) bool {
	if _, ok := slices.BinarySearch(a.NamespaceNames, ns); ok {
		return true
	}
	if nsLabels != nil {
		return matchesAny(a.NamespaceSelectors, nsLabels)
	}
	_, ok := slices.BinarySearch(a.Namespaces, ns)
	return ok
}

func (a *ServiceAllocation) describeNamespaces() string {
	var parts []string
	if len(a.NamespaceNames) > 0 {
		parts = append(parts, "namespaces "+strings.Join(a.NamespaceNames, ", "))
	}
	if len(a.NamespaceSelectors) > 0 {
		parts = append(parts, "namespaces labelled "+selectorKey(a.NamespaceSelectors))
	}
	return strings.Join(parts, " and ")
}

func (b *builder) buildPools() []*Pool {
	var pools []*Pool
	src := map[string]*v1beta1.IPAddressPool{}
	for _, o := range objects(b, KindIPAddressPool, b.r.Pools, func(p *v1beta1.IPAddressPool) *metav1.ObjectMeta { return &p.ObjectMeta }) {
		pools = append(pools, b.buildPool(o.ref, o.obj))
		src[o.ref.name] = o.obj
	}
	b.checkOverlaps(pools, src)
	return pools
}

func (b *builder) buildPool(r ref, in *v1beta1.IPAddressPool) *Pool {
	addrs := field.NewPath("spec", "addresses")
	if len(in.Spec.Addresses) == 0 {
		b.fail(r, addrs, "pool has no addresses: list at least one CIDR (192.0.2.0/24) or range (192.0.2.10-192.0.2.20)")
	}
	var ranges []ipam.Range
	for i, e := range in.Spec.Addresses {
		rg, err := ipam.ParseRange(e)
		if err != nil {
			b.fail(r, addrs.Index(i), err.Error())
			continue
		}
		if !b.checkPoolRange(r, addrs.Index(i), rg) {
			continue
		}
		ranges = append(ranges, rg)
	}
	p := &Pool{
		Pool: ipam.Pool{
			Name:          in.Name,
			Ranges:        ranges,
			AutoAssign:    in.Spec.AutoAssign == nil || *in.Spec.AutoAssign,
			AvoidBuggyIPs: in.Spec.AvoidBuggyIPs,
		},
		Labels: maps.Clone(in.Labels),
	}
	if in.Spec.AllocateTo != nil {
		p.Allocation = b.buildAllocation(r, in.Spec.AllocateTo)
		p.Priority = p.Allocation.Priority
	}
	return p
}

func (b *builder) buildAllocation(r ref, in *v1beta1.ServiceAllocation) *ServiceAllocation {
	path := field.NewPath("spec", "serviceAllocation")
	a := &ServiceAllocation{Priority: in.Priority}
	for _, i := range b.uniqueStrings(r, path.Child("namespaces"), in.Namespaces, "namespace") {
		ns := in.Namespaces[i]
		if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
			b.fail(r, path.Child("namespaces").Index(i),
				fmt.Sprintf("%q is not a valid namespace name: %s", ns, strings.Join(msgs, "; ")))
		}
	}
	a.NamespaceNames = slices.Sorted(slices.Values(slices.Clone(in.Namespaces)))
	a.NamespaceSelectors, _ = b.selectors(r, path.Child("namespaceSelectors"), in.NamespaceSelectors, useNamespaces)
	a.ServiceSelectors, _ = b.selectors(r, path.Child("serviceSelectors"), in.ServiceSelectors, useServices)

	set := map[string]bool{}
	for _, ns := range a.NamespaceNames {
		set[ns] = true
	}
	if len(a.NamespaceSelectors) > 0 {
		for name, l := range b.nsLabels {
			if matchesAny(a.NamespaceSelectors, l) {
				set[name] = true
			}
		}
	}
	a.Namespaces = slices.Sorted(maps.Keys(set))
	return a
}

// checkOverlaps runs ipam's whole-set check and ties each overlap to the
// entry of the pool that starts later.
func (b *builder) checkOverlaps(pools []*Pool, src map[string]*v1beta1.IPAddressPool) {
	var in []ipam.Pool
	for _, p := range pools {
		if len(p.Ranges) > 0 {
			in = append(in, p.Pool)
		}
	}
	err := ipam.ValidatePools(in)
	if err == nil {
		return
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	for _, e := range errs {
		var oe *ipam.OverlapError
		if !errors.As(e, &oe) {
			// Names and emptiness were checked before; anything else is
			// still worth showing.
			b.fail(ref{kind: KindIPAddressPool, namespace: b.r.Namespace}, field.NewPath("spec", "addresses"), e.Error())
			continue
		}
		r := ref{kind: KindIPAddressPool, namespace: b.r.Namespace, name: oe.PoolB}
		b.fail(r, field.NewPath("spec", "addresses").Index(entryIndex(src[oe.PoolB], oe)), oe.Error())
	}
}

// entryIndex finds the index in spec.addresses of the entry an overlap
// blames. When a pool lists the same text twice, the later copy is blamed.
func entryIndex(in *v1beta1.IPAddressPool, oe *ipam.OverlapError) int {
	idx := 0
	if in == nil {
		return idx
	}
	for i, e := range in.Spec.Addresses {
		if e == oe.EntryB {
			idx = i
			if oe.PoolA != oe.PoolB || oe.EntryA != oe.EntryB {
				break
			}
		}
	}
	return idx
}

package config

import (
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/herald-lb/herald/api/v1beta1"
)

// L2Advertisement is a validated L2Advertisement with its pools resolved.
type L2Advertisement struct {
	Name string
	// Pools are the names of the existing pools it applies to, sorted.
	Pools []string
	// NodeSelectors limit the announcing nodes; empty means every node.
	NodeSelectors []labels.Selector
	// ServiceSelectors limit the Services; empty means every Service.
	ServiceSelectors []labels.Selector
	// Interfaces to answer on, sorted; empty means every suitable one.
	Interfaces []string
	// PreferredNodes are soft preferences among the allowed nodes.
	PreferredNodes []PreferredNode
}

// PreferredNode is one weighted node preference.
type PreferredNode struct {
	Weight   int32
	Selector labels.Selector
}

// HasPool reports whether the advertisement applies to the pool.
func (a *L2Advertisement) HasPool(name string) bool {
	_, ok := slices.BinarySearch(a.Pools, name)
	return ok
}

// MatchesNode reports whether a node with these labels may announce.
func (a *L2Advertisement) MatchesNode(nodeLabels map[string]string) bool {
	return matchesAll(a.NodeSelectors, nodeLabels)
}

// MatchesService reports whether the advertisement applies to a Service
// with these labels.
func (a *L2Advertisement) MatchesService(svcLabels map[string]string) bool {
	return matchesAll(a.ServiceSelectors, svcLabels)
}

// Preference is the weight of a node with these labels: the sum of the
// weights of the preferences it matches. It says nothing about whether the
// node may announce (MatchesNode does).
func (a *L2Advertisement) Preference(nodeLabels map[string]string) int {
	w := 0
	for _, p := range a.PreferredNodes {
		if p.Selector.Matches(labels.Set(nodeLabels)) {
			w += int(p.Weight)
		}
	}
	return w
}

func (b *builder) buildL2Advertisements(pools []*Pool) []*L2Advertisement {
	var out []*L2Advertisement
	for _, o := range objects(b, KindL2Advertisement, b.r.L2Advertisements, func(a *v1beta1.L2Advertisement) *metav1.ObjectMeta { return &a.ObjectMeta }) {
		s := &o.obj.Spec
		spec := field.NewPath("spec")
		a := &L2Advertisement{Name: o.ref.name}
		a.Pools = b.selectPools(o.ref, s.IPAddressPools, s.IPAddressPoolSelectors, pools)
		a.NodeSelectors, _ = b.selectors(o.ref, spec.Child("nodeSelectors"), s.NodeSelectors, useNodes)
		a.ServiceSelectors, _ = b.selectors(o.ref, spec.Child("serviceSelectors"), s.ServiceSelectors, useServices)
		for _, i := range b.uniqueStrings(o.ref, spec.Child("interfaces"), s.Interfaces, "interface") {
			if msg := interfaceNameProblem(s.Interfaces[i]); msg != "" {
				b.fail(o.ref, spec.Child("interfaces").Index(i), msg)
			}
		}
		a.Interfaces = slices.Sorted(slices.Values(slices.Clone(s.Interfaces)))
		for i, pn := range s.PreferredNodeSelectors {
			p := spec.Child("preferredNodeSelectors").Index(i)
			if pn.Weight < 1 || pn.Weight > 100 {
				b.fail(o.ref, p.Child("weight"), fmt.Sprintf("weight %d must be from 1 to 100", pn.Weight))
			}
			sel, ok := b.selector(o.ref, p.Child("preference"), &pn.Preference, usePreferred)
			if ok {
				a.PreferredNodes = append(a.PreferredNodes, PreferredNode{Weight: pn.Weight, Selector: sel})
			}
		}
		out = append(out, a)
	}
	return out
}

// interfaceNameProblem explains why a name cannot be a Linux network
// interface, or returns "". Such a name could never match, so the object
// would silently do nothing.
func interfaceNameProblem(name string) string {
	if name == "" || len(name) > 15 || strings.ContainsAny(name, "/: \t\n") || name == "." || name == ".." {
		return fmt.Sprintf("%q is not a valid Linux interface name (1 to 15 characters, no slash, colon or spaces)", name)
	}
	return ""
}

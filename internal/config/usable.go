package config

import (
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/api/v1alpha1"
	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/api/v1beta2"
)

// ObjectRef names one configuration object.
type ObjectRef struct {
	Kind, Namespace, Name string
}

func (o ObjectRef) String() string { return o.Kind + "/" + o.Name }

// Usable is the configuration to put in force when some objects have
// problems, and what became of those objects.
type Usable struct {
	// Config is built from the objects without problems, plus the last
	// version in force of each object that has one. Nil only when a
	// problem cannot be tied to an object.
	Config *Config
	// From is what Config was built from: pass it as last to the next
	// call.
	From Resources
	// Problems and Warnings are those of the resources as given, to be
	// reported against their objects.
	Problems, Warnings Problems
	// Kept are the objects with problems whose last valid version stays in
	// force; Left the ones left out, having none.
	Kept, Left []ObjectRef
}

// BuildUsable validates r and returns the configuration to put in force.
// When r is valid that is all of it. Otherwise one object's problem does not
// take down the others: each object with a problem is replaced by its
// version in last (the From of the configuration in force), or left out
// when last has none or that version no longer fits, and the rest is
// validated again until it holds. A component that restarts has no last,
// so it starts from the valid objects alone.
func BuildUsable(r, last Resources) Usable {
	res := Validate(r)
	u := Usable{Problems: res.Problems, Warnings: res.Warnings}
	cur := r
	kept := map[ObjectRef]bool{}
	left := map[ObjectRef]bool{}
	// Each round replaces or drops at least one object, and an object is
	// replaced at most once, so this ends.
	for len(res.Problems) > 0 {
		faulty := map[ObjectRef]bool{}
		for _, p := range res.Problems {
			if p.Kind == "" {
				return u // not tied to an object: nothing can be trusted
			}
			ns := p.Namespace
			if ns == "" {
				ns = r.Namespace
			}
			faulty[ObjectRef{Kind: p.Kind, Namespace: ns, Name: p.Name}] = true
		}
		next, changed := cur.without(faulty, last, kept, left)
		if !changed {
			return u
		}
		cur = next
		res = Validate(cur)
	}
	u.Config, u.From = res.Config, cur
	for o := range kept {
		if !left[o] {
			u.Kept = append(u.Kept, o)
		}
	}
	for o := range left {
		u.Left = append(u.Left, o)
	}
	sortRefs(u.Kept)
	sortRefs(u.Left)
	return u
}

func sortRefs(list []ObjectRef) {
	slices.SortFunc(list, func(a, b ObjectRef) int {
		if c := kindRank(a.Kind) - kindRank(b.Kind); c != 0 {
			return c
		}
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
}

// without returns r with each faulty object replaced by its version in
// last (once: an object already replaced is dropped) or dropped.
func (r Resources) without(faulty map[ObjectRef]bool, last Resources, kept, left map[ObjectRef]bool) (Resources, bool) {
	out := r
	changed := false
	f := func(kind string, ns string, name string) (ObjectRef, bool) {
		if ns == "" {
			ns = r.Namespace
		}
		o := ObjectRef{Kind: kind, Namespace: ns, Name: name}
		return o, faulty[o]
	}
	sub := substituter{namespace: r.Namespace, faulty: f, kept: kept, left: left, changed: &changed}
	out.Pools = substitute(sub, KindIPAddressPool, r.Pools, last.Pools, func(o *v1beta1.IPAddressPool) *metav1.ObjectMeta { return &o.ObjectMeta })
	out.L2Advertisements = substitute(sub, KindL2Advertisement, r.L2Advertisements, last.L2Advertisements, func(o *v1beta1.L2Advertisement) *metav1.ObjectMeta { return &o.ObjectMeta })
	out.BGPAdvertisements = substitute(sub, KindBGPAdvertisement, r.BGPAdvertisements, last.BGPAdvertisements, func(o *v1beta1.BGPAdvertisement) *metav1.ObjectMeta { return &o.ObjectMeta })
	out.BGPPeers = substitute(sub, KindBGPPeer, r.BGPPeers, last.BGPPeers, func(o *v1beta2.BGPPeer) *metav1.ObjectMeta { return &o.ObjectMeta })
	out.BFDProfiles = substitute(sub, KindBFDProfile, r.BFDProfiles, last.BFDProfiles, func(o *v1beta1.BFDProfile) *metav1.ObjectMeta { return &o.ObjectMeta })
	out.Communities = substitute(sub, KindCommunity, r.Communities, last.Communities, func(o *v1beta1.Community) *metav1.ObjectMeta { return &o.ObjectMeta })
	out.CloudAdvertisements = substitute(sub, KindCloudAdvertisement, r.CloudAdvertisements, last.CloudAdvertisements, func(o *v1alpha1.CloudAdvertisement) *metav1.ObjectMeta { return &o.ObjectMeta })
	return out, changed
}

type substituter struct {
	namespace  string
	faulty     func(kind, ns, name string) (ObjectRef, bool)
	kept, left map[ObjectRef]bool
	changed    *bool
}

func substitute[T any](s substituter, kind string, cur, last []T, meta func(*T) *metav1.ObjectMeta) []T {
	out := make([]T, 0, len(cur))
	for i := range cur {
		m := meta(&cur[i])
		o, bad := s.faulty(kind, m.Namespace, m.Name)
		if !bad {
			out = append(out, cur[i])
			continue
		}
		*s.changed = true
		if !s.kept[o] {
			j := slices.IndexFunc(last, func(l T) bool {
				lm := meta(&l)
				ns := lm.Namespace
				if ns == "" {
					ns = s.namespace
				}
				return lm.Name == o.Name && ns == o.Namespace
			})
			if j >= 0 {
				s.kept[o] = true
				out = append(out, last[j])
				continue
			}
		}
		s.left[o] = true
	}
	return out
}

// Package config turns the metallb.io custom resources into one validated,
// plain configuration: the controller allocates from it, the speaker
// announces from it, and the validating webhook and `herald validate` run
// exactly the same checks to refuse what it would refuse.
//
// Herald's own kind CloudAdvertisement (herald-lb.io) is validated in the
// same set: it selects pools the way an L2Advertisement does, and must not
// announce a pool that one also does.
//
// Build takes every object of every kind at once, because most rules span
// objects (overlapping pools, advertisements that must agree, references by
// name). It reports every problem, not the first, each tied to an object and
// a field path, with a message that says how to fix it.
package config

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/herald-lb/herald/api/v1alpha1"
	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/api/v1beta2"
	"github.com/herald-lb/herald/internal/ipam"
)

// Resources is everything the configuration is built from. The lists may be
// in any order; the result does not depend on it.
type Resources struct {
	// Namespace is the namespace Herald runs in and reads its configuration
	// from. Objects elsewhere are refused. An object with an empty namespace
	// is taken to be in this one.
	Namespace string

	Pools             []v1beta1.IPAddressPool
	L2Advertisements  []v1beta1.L2Advertisement
	BGPAdvertisements []v1beta1.BGPAdvertisement
	BGPPeers          []v1beta2.BGPPeer
	BFDProfiles       []v1beta1.BFDProfile
	Communities       []v1beta1.Community
	// CloudAdvertisements are Herald's own kind (herald-lb.io).
	CloudAdvertisements []v1alpha1.CloudAdvertisement

	// Namespaces resolve serviceAllocation.namespaceSelectors.
	Namespaces []corev1.Namespace
	// Nodes tell whether two objects' nodeSelectors can select the same
	// node. Without them, only selectors that are empty or identical are
	// taken to overlap.
	Nodes []corev1.Node
	// Secrets hold BGPPeer passwords (spec.passwordSecret).
	Secrets []corev1.Secret
	// SecretErrors say why a named Secret could not be read (RBAC, say),
	// by Secret name; a peer waiting for it reports that instead of
	// "does not exist".
	SecretErrors map[string]string
}

// Config is the validated configuration. Every list is sorted by name.
type Config struct {
	Namespace         string
	Pools             []*Pool
	L2Advertisements  []*L2Advertisement
	BGPAdvertisements []*BGPAdvertisement
	Peers             []*Peer
	BFDProfiles       []*BFDProfile
	Communities       []CommunityAlias
	// CloudAdvertisements announce pools as cloud floating IPs; a pool is
	// never in both one of these and an L2Advertisement that can run on
	// the same node.
	CloudAdvertisements []*CloudAdvertisement
}

// Result is the outcome of Validate.
type Result struct {
	// Config is the configuration, or nil when there are Problems.
	Config *Config
	// Problems must be fixed before the configuration can be used.
	Problems Problems
	// Warnings are accepted, but are probably not what was meant (an
	// advertisement naming a pool that does not exist, for instance).
	Warnings Problems
}

// Build validates the resources and returns the configuration, or an error
// of type Problems listing everything wrong. Use Validate to get the
// warnings as well.
func Build(r Resources) (*Config, error) {
	res := Validate(r)
	if len(res.Problems) > 0 {
		return nil, res.Problems
	}
	return res.Config, nil
}

// Validate runs every check on the resources as one set.
func Validate(r Resources) Result {
	b := &builder{r: r}
	if r.Namespace == "" {
		b.problems = append(b.problems, Problem{Message: "the configuration namespace is not set; this is a bug in the caller"})
		return Result{Problems: b.problems}
	}
	b.indexNamespaces()

	pools := b.buildPools()
	communities := b.buildCommunities()
	bfds := b.buildBFDProfiles()
	peers := b.buildPeers(bfds)
	l2 := b.buildL2Advertisements(pools)
	bgp := b.buildBGPAdvertisements(pools, peers, communities)
	b.checkEchoMode(pools, peers, bfds, bgp)
	cloud := b.buildCloudAdvertisements(pools)
	b.checkCloudAgainstL2(l2, cloud)

	sortProblems(b.problems)
	sortProblems(b.warnings)
	res := Result{Problems: b.problems, Warnings: b.warnings}
	if len(b.problems) == 0 {
		res.Config = &Config{
			Namespace:         r.Namespace,
			Pools:             pools,
			L2Advertisements:  l2,
			BGPAdvertisements: bgp,
			Peers:             peers,
			BFDProfiles:       bfds,
			Communities:       communities.aliases,

			CloudAdvertisements: cloud,
		}
	}
	return res
}

// Pool returns the pool with the given name, or nil.
func (c *Config) Pool(name string) *Pool {
	return find(c.Pools, name, func(p *Pool) string { return p.Name })
}

// Peer returns the BGP peer with the given name, or nil.
func (c *Config) Peer(name string) *Peer {
	return find(c.Peers, name, func(p *Peer) string { return p.Name })
}

// BFDProfile returns the BFD profile with the given name, or nil.
func (c *Config) BFDProfile(name string) *BFDProfile {
	return find(c.BFDProfiles, name, func(p *BFDProfile) string { return p.Name })
}

// IPAMPools returns the pools in the allocator's form, sorted by name.
func (c *Config) IPAMPools() []ipam.Pool {
	out := make([]ipam.Pool, len(c.Pools))
	for i, p := range c.Pools {
		out[i] = p.Pool
	}
	return out
}

func find[T any](list []T, name string, nameOf func(T) string) T {
	i, ok := slices.BinarySearchFunc(list, name, func(e T, n string) int { return cmp.Compare(nameOf(e), n) })
	if !ok {
		var zero T
		return zero
	}
	return list[i]
}

// builder accumulates problems while it builds the configuration.
type builder struct {
	r        Resources
	problems Problems
	warnings Problems
	// nsLabels holds the labels of every known namespace.
	nsLabels map[string]map[string]string
}

func (b *builder) fail(r ref, p *field.Path, msg string) {
	b.problems = append(b.problems, problem(r, p, msg, false))
}

func (b *builder) wait(r ref, p *field.Path, msg string) {
	b.problems = append(b.problems, problem(r, p, msg, true))
}

func (b *builder) warn(r ref, p *field.Path, msg string) {
	b.warnings = append(b.warnings, problem(r, p, msg, false))
}

func problem(r ref, p *field.Path, msg string, transient bool) Problem {
	f := ""
	if p != nil {
		f = p.String()
	}
	return Problem{Kind: r.kind, Namespace: r.namespace, Name: r.name, Field: f, Message: msg, Transient: transient}
}

func (b *builder) indexNamespaces() {
	b.nsLabels = make(map[string]map[string]string, len(b.r.Namespaces))
	for _, ns := range b.r.Namespaces {
		b.nsLabels[ns.Name] = ns.Labels
	}
}

// object is one input object after the checks every kind shares.
type object[T any] struct {
	ref ref
	obj *T
}

// objects sorts a kind's objects by name and checks what every kind shares:
// a name, the namespace, and names that do not repeat. Objects with no name
// or a repeated name are dropped after their problem is reported, so later
// checks see each name once.
func objects[T any](b *builder, kind string, in []T, meta func(*T) *metav1.ObjectMeta) []object[T] {
	out := make([]object[T], 0, len(in))
	for i := range in {
		m := meta(&in[i])
		ns := m.Namespace
		if ns == "" {
			ns = b.r.Namespace
		}
		r := ref{kind: kind, namespace: ns, name: m.Name}
		if m.Name == "" {
			b.fail(r, field.NewPath("metadata", "name"), "metadata.name is required")
			continue
		}
		out = append(out, object[T]{ref: r, obj: &in[i]})
	}
	slices.SortStableFunc(out, func(a, c object[T]) int {
		return cmp.Or(cmp.Compare(a.ref.name, c.ref.name), cmp.Compare(a.ref.namespace, c.ref.namespace))
	})
	kept := out[:0]
	for i, o := range out {
		if o.ref.namespace != b.r.Namespace {
			b.fail(o.ref, field.NewPath("metadata", "namespace"),
				fmt.Sprintf("resource must be created in namespace %q, where Herald reads its configuration, not in %q",
					b.r.Namespace, o.ref.namespace))
		}
		if i > 0 && out[i-1].ref.name == o.ref.name {
			b.fail(o.ref, field.NewPath("metadata", "name"),
				fmt.Sprintf("%s %q is defined more than once; names must be unique, so rename or remove one", kind, o.ref.name))
			continue
		}
		kept = append(kept, o)
	}
	return kept
}

// nodeCover is what a nodeSelectors list covers, worked out once so that
// comparing two lists is cheap: the rules between objects compare many
// pairs.
type nodeCover struct {
	// all: the list is empty, so every node, including nodes not yet
	// created.
	all bool
	// known has bit i set when the list selects b.r.Nodes[i].
	known []uint64
	// selectors are the canonical texts of the selectors, sorted.
	selectors []string
}

func (b *builder) nodeCover(sels []labels.Selector) nodeCover {
	if len(sels) == 0 {
		return nodeCover{all: true}
	}
	c := nodeCover{known: make([]uint64, (len(b.r.Nodes)+63)/64)}
	for i, n := range b.r.Nodes {
		if matchesAny(sels, n.Labels) {
			c.known[i/64] |= 1 << (i % 64)
		}
	}
	for _, s := range sels {
		c.selectors = append(c.selectors, s.String())
	}
	slices.Sort(c.selectors)
	return c
}

// overlaps reports whether two nodeSelectors lists can select the same
// node: when either is empty, when a known node matches both, or when they
// share a selector.
func (c nodeCover) overlaps(d nodeCover) bool {
	if c.all || d.all {
		return true
	}
	for i := range c.known {
		if c.known[i]&d.known[i] != 0 {
			return true
		}
	}
	for _, s := range c.selectors {
		if _, ok := slices.BinarySearch(d.selectors, s); ok {
			return true
		}
	}
	return false
}

// selectPools resolves an advertisement's ipAddressPools and
// ipAddressPoolSelectors against the pools: the union of both, or every
// pool when both are empty. Names of pools that do not exist are warned
// about, not refused: the advertisement simply does nothing for them until
// the pool is created, as in MetalLB.
func (b *builder) selectPools(r ref, names []string, selectors []metav1.LabelSelector, pools []*Pool) []string {
	spec := field.NewPath("spec")
	distinct := b.uniqueStrings(r, spec.Child("ipAddressPools"), names, "pool name")
	sels, _ := b.selectors(r, spec.Child("ipAddressPoolSelectors"), selectors, usePools)
	if len(names) == 0 && len(selectors) == 0 {
		out := make([]string, len(pools))
		for i, p := range pools {
			out[i] = p.Name
		}
		return out
	}
	set := map[string]bool{}
	for _, i := range distinct {
		n := names[i]
		if !slices.ContainsFunc(pools, func(p *Pool) bool { return p.Name == n }) {
			b.warn(r, spec.Child("ipAddressPools").Index(i),
				fmt.Sprintf("IPAddressPool %q does not exist; this advertisement does nothing for it until the pool is created", n))
			continue
		}
		set[n] = true
	}
	for _, p := range pools {
		if matchesAny(sels, p.Labels) {
			set[p.Name] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// uniqueStrings reports empty and repeated entries of a list of names, and
// returns the indices of the others (first occurrences), which the caller
// checks further: a bad entry must not hide the problems of the rest.
func (b *builder) uniqueStrings(r ref, p *field.Path, list []string, what string) []int {
	var rest []int
	seen := make(map[string]int, len(list))
	for i, s := range list {
		if s == "" {
			b.fail(r, p.Index(i), fmt.Sprintf("empty %s; remove the entry", what))
			continue
		}
		if j, dup := seen[s]; dup {
			b.fail(r, p.Index(i), fmt.Sprintf("%s %q repeats entry [%d]; remove one of them", what, s, j))
			continue
		}
		seen[s] = i
		rest = append(rest, i)
	}
	return rest
}

// sortByName sorts a list by the name nameOf gives.
func sortByName[T any](list []T, nameOf func(T) string) {
	slices.SortStableFunc(list, func(a, b T) int { return cmp.Compare(nameOf(a), nameOf(b)) })
}

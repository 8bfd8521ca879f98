package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/herald-lb/herald/api/v1alpha1"
)

// The clouds a CloudAdvertisement can name.
const (
	ProviderHetzner = string(v1alpha1.CloudProviderHetzner)
)

// cloudProviders is every provider Herald has, for the messages.
var cloudProviders = []string{ProviderHetzner}

// hetznerV6Bits is the size of a Hetzner floating IPv6: a whole /64, routed
// to one server at a time.
const hetznerV6Bits = 64

// CloudAdvertisement is a validated CloudAdvertisement (herald-lb.io) with
// its pools resolved: the addresses of Pools are floating IPs of Provider,
// moved through its API with the token in TokenSecret's TokenKey.
type CloudAdvertisement struct {
	Name string
	// Pools are the names of the existing pools it applies to, sorted.
	Pools []string
	// NodeSelectors limit the nodes that may take the IPs; empty means
	// every node.
	NodeSelectors []labels.Selector
	// ServiceSelectors limit the Services; empty means every Service.
	ServiceSelectors []labels.Selector
	// Provider is the cloud: ProviderHetzner.
	Provider string
	// TokenSecret is the name of the Secret, in the configuration's
	// namespace, holding the API token under TokenKey ("token" unless
	// set). The configuration does not read it: only the speakers may.
	TokenSecret, TokenKey string
}

// HasPool reports whether the advertisement applies to the pool.
func (a *CloudAdvertisement) HasPool(name string) bool {
	_, ok := slices.BinarySearch(a.Pools, name)
	return ok
}

// MatchesNode reports whether a node with these labels may take the IPs.
func (a *CloudAdvertisement) MatchesNode(nodeLabels map[string]string) bool {
	return matchesAll(a.NodeSelectors, nodeLabels)
}

// MatchesService reports whether the advertisement applies to a Service
// with these labels.
func (a *CloudAdvertisement) MatchesService(svcLabels map[string]string) bool {
	return matchesAll(a.ServiceSelectors, svcLabels)
}

// poolSource is how an advertisement selected its pools, to point a
// problem about one pool at the field that selected it.
type poolSource struct {
	names     []string
	selectors []metav1.LabelSelector
}

// field is the path of the entry that selected pool: its entry in
// ipAddressPools, else ipAddressPoolSelectors; with neither set the
// advertisement takes every pool, and ipAddressPools is where to narrow it.
func (s poolSource) field(pool string) *field.Path {
	spec := field.NewPath("spec")
	if i := slices.Index(s.names, pool); i >= 0 {
		return spec.Child("ipAddressPools").Index(i)
	}
	if len(s.selectors) > 0 {
		return spec.Child("ipAddressPoolSelectors")
	}
	return spec.Child("ipAddressPools")
}

// poolSources indexes how each advertisement of the input selected its
// pools, by name (the first of a repeated name, which is the one kept).
func (b *builder) poolSources() (l2, cloud map[string]poolSource) {
	l2, cloud = map[string]poolSource{}, map[string]poolSource{}
	for _, a := range b.r.L2Advertisements {
		if _, dup := l2[a.Name]; !dup {
			l2[a.Name] = poolSource{names: a.Spec.IPAddressPools, selectors: a.Spec.IPAddressPoolSelectors}
		}
	}
	for _, a := range b.r.CloudAdvertisements {
		if _, dup := cloud[a.Name]; !dup {
			cloud[a.Name] = poolSource{names: a.Spec.IPAddressPools, selectors: a.Spec.IPAddressPoolSelectors}
		}
	}
	return l2, cloud
}

func (b *builder) buildCloudAdvertisements(pools []*Pool) []*CloudAdvertisement {
	var out []*CloudAdvertisement
	for _, o := range objects(b, KindCloudAdvertisement, b.r.CloudAdvertisements, func(a *v1alpha1.CloudAdvertisement) *metav1.ObjectMeta { return &a.ObjectMeta }) {
		s := &o.obj.Spec
		spec := field.NewPath("spec")
		a := &CloudAdvertisement{Name: o.ref.name, Provider: string(s.Provider)}
		a.Pools = b.selectPools(o.ref, s.IPAddressPools, s.IPAddressPoolSelectors, pools)
		a.NodeSelectors, _ = b.selectors(o.ref, spec.Child("nodeSelectors"), s.NodeSelectors, useNodes)
		a.ServiceSelectors, _ = b.selectors(o.ref, spec.Child("serviceSelectors"), s.ServiceSelectors, useServices)
		src := poolSource{names: s.IPAddressPools, selectors: s.IPAddressPoolSelectors}

		switch {
		case a.Provider == "":
			b.fail(o.ref, spec.Child("provider"), fmt.Sprintf("provider is required: the cloud whose floating IPs these are (%s)", strings.Join(cloudProviders, ", ")))
		case !slices.Contains(cloudProviders, a.Provider):
			b.fail(o.ref, spec.Child("provider"), fmt.Sprintf("unknown provider %q; Herald moves floating IPs on %s", a.Provider, strings.Join(cloudProviders, ", ")))
		}
		a.TokenSecret, a.TokenKey = b.tokenSecretRef(o.ref, s.TokenSecretRef)

		if a.Provider == ProviderHetzner {
			for _, name := range a.Pools {
				b.checkFloatingV6(o.ref, src.field(name), findPool(pools, name))
			}
		}
		out = append(out, a)
	}
	return out
}

// tokenSecretRef checks the reference to the API token's Secret. The Secret
// itself is not read: only the speakers may read it, and a missing one is
// theirs to report.
func (b *builder) tokenSecretRef(r ref, in v1alpha1.TokenSecretRef) (name, key string) {
	p := field.NewPath("spec", "tokenSecretRef")
	key = in.Key
	if key == "" {
		key = v1alpha1.DefaultTokenKey
	}
	switch msgs := validation.IsDNS1123Subdomain(in.Name); {
	case in.Name == "":
		b.fail(r, p.Child("name"), "the name of the Secret holding the API token is required; create the Secret in Herald's namespace "+
			"and allow the speakers to read it (chart value cloud.tokenSecretName)")
	case len(msgs) > 0:
		b.fail(r, p.Child("name"), fmt.Sprintf("%q is not a valid Secret name: %s", in.Name, strings.Join(msgs, "; ")))
	}
	if msgs := validation.IsConfigMapKey(key); len(msgs) > 0 {
		b.fail(r, p.Child("key"), fmt.Sprintf("%q is not a valid Secret key: %s", key, strings.Join(msgs, "; ")))
	}
	return in.Name, key
}

// checkFloatingV6 refuses an IPv6 range that does not lie inside one /64:
// a Hetzner floating IPv6 is a whole /64, routed to one server at a time,
// so a range across two would be two floating IPs whose addresses the
// pool hands out as one.
func (b *builder) checkFloatingV6(r ref, p *field.Path, pool *Pool) {
	if pool == nil {
		return
	}
	for _, rg := range pool.Ranges {
		if !rg.First.Is6() {
			continue
		}
		net := netip.PrefixFrom(rg.First, hetznerV6Bits).Masked()
		if !net.Contains(rg.Last) {
			b.fail(r, p, fmt.Sprintf(
				"pool %q has the range %q, which spans more than one /64: a Hetzner floating IPv6 is one /64, routed as a whole "+
					"to the server it is assigned to, so each IPv6 range of a pool announced as floating IPs must lie inside one /64 "+
					"(%s holds its start); split the range at the /64 boundaries, one range per floating IP",
				pool.Name, rg.Entry(), net))
		}
	}
}

// checkCloudAgainstL2 refuses a pool announced both by an L2Advertisement
// and a CloudAdvertisement from a node both can select, and a pool that two
// CloudAdvertisements would move with a different provider or token from
// such a node.
//
// Nodes are compared as the other rules between objects compare them
// (nodeCover): advertisements on disjoint nodes may share a pool, since an
// address can be floating on the cloud's nodes and answered for on another
// network's. serviceSelectors do not separate them: two different
// selectors can match the same Service, which no check of the
// configuration can rule out.
//
// The problem is reported on both objects, so that the webhook refuses
// whichever arrives second and BuildUsable keeps the one already in force
// rather than letting the newcomer displace it.
func (b *builder) checkCloudAgainstL2(l2 []*L2Advertisement, cloud []*CloudAdvertisement) {
	if len(cloud) == 0 {
		return
	}
	l2src, cloudsrc := b.poolSources()
	covers := map[string]nodeCover{}
	cover := func(kind, name string, sels []labels.Selector) nodeCover {
		k := kind + "/" + name
		c, ok := covers[k]
		if !ok {
			c = b.nodeCover(sels)
			covers[k] = c
		}
		return c
	}
	for _, c := range cloud {
		cr := ref{kind: KindCloudAdvertisement, namespace: b.r.Namespace, name: c.Name}
		for _, a := range l2 {
			pool := firstShared(c.Pools, a.Pools)
			if pool == "" || !cover(KindCloudAdvertisement, c.Name, c.NodeSelectors).overlaps(cover(KindL2Advertisement, a.Name, a.NodeSelectors)) {
				continue
			}
			msg := fmt.Sprintf("pool %q is announced by L2Advertisement %q and CloudAdvertisement %q: a floating IP is routed by the cloud "+
				"to the server it is assigned to, so ARP/NDP answers for it are never seen — announce it one way "+
				"(or give the two nodeSelectors that no node matches both)", pool, a.Name, c.Name)
			b.fail(cr, cloudsrc[c.Name].field(pool), msg)
			b.fail(ref{kind: KindL2Advertisement, namespace: b.r.Namespace, name: a.Name}, l2src[a.Name].field(pool), msg)
		}
	}
	for j, c := range cloud {
		for _, d := range cloud[:j] {
			if c.Provider == d.Provider && c.TokenSecret == d.TokenSecret && c.TokenKey == d.TokenKey {
				continue
			}
			pool := firstShared(c.Pools, d.Pools)
			if pool == "" || !cover(KindCloudAdvertisement, c.Name, c.NodeSelectors).overlaps(cover(KindCloudAdvertisement, d.Name, d.NodeSelectors)) {
				continue
			}
			b.fail(ref{kind: KindCloudAdvertisement, namespace: b.r.Namespace, name: c.Name}, cloudsrc[c.Name].field(pool), fmt.Sprintf(
				"pool %q is also announced by CloudAdvertisement %q with another provider or token (%s, Secret %s key %s here; %s, Secret %s key %s there), "+
					"so a node both select would not know which API moves the IP; use the same provider and tokenSecretRef, "+
					"or separate them by pools or nodeSelectors",
				pool, d.Name, c.Provider, c.TokenSecret, c.TokenKey, d.Provider, d.TokenSecret, d.TokenKey))
		}
	}
}

// firstShared returns the first name two sorted lists share, or "".
func firstShared(x, y []string) string {
	for _, n := range x {
		if _, ok := slices.BinarySearch(y, n); ok {
			return n
		}
	}
	return ""
}

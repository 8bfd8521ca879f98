package controller

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/internal/ipam"
)

// Bits of FuzzParseRequest's present argument: which annotations are set.
const (
	hasIPs = 1 << iota
	hasLegacyIPs
	hasPool
	hasLegacyPool
	hasShared
	hasLegacyShared
)

// fuzzPools are the allocator's pools in FuzzParseRequest; "other" holds
// 192.0.2.1 with sharing key "k" for TCP/80 before each request.
var fuzzPools = []ipam.Pool{
	{Name: "v4", Ranges: []ipam.Range{mustRange("192.0.2.0/28")}, AutoAssign: true},
	{Name: "v6", Ranges: []ipam.Range{mustRange("2001:db8::/124")}, AutoAssign: true},
	{Name: "dual", Ranges: []ipam.Range{mustRange("198.51.100.0/30"), mustRange("2001:db8:1::/126")}},
}

func mustRange(s string) ipam.Range {
	r, err := ipam.ParseRange(s)
	if err != nil {
		panic(err)
	}
	return r
}

// FuzzParseRequest reads the metallb.io annotations (loadBalancerIPs,
// address-pool, allow-shared-ip) and their metallb.universe.tf twins, with
// spec.loadBalancerIP and the family fields, as the controller does, then
// allocates the request as the Service reconciler would. Beyond not
// panicking: an error is a *requestError that says why; a request holds
// exactly the annotation's addresses, the trimmed pool and the sharing
// key, the stable key winning, and names the legacy keys it used; and an
// allocation honours what was asked and the sharing rules.
func FuzzParseRequest(f *testing.F) {
	f.Add("192.0.2.7", "", "v4", "", "k", "", "", uint8(hasIPs|hasPool|hasShared), uint8(1), uint16(443))
	f.Add("", "192.0.2.1, 2001:db8::1", "", " dual ", "", "k", "", uint8(hasLegacyIPs|hasLegacyPool|hasLegacyShared), uint8(3|2<<2), uint16(80))
	f.Add("::ffff:192.0.2.1", "10.0.0.1", "", "", "", "", "192.0.2.2", uint8(hasIPs|hasLegacyIPs), uint8(2|3<<2|1<<4), uint16(53))
	f.Add("", "", "v6", "v4", "", "", "2001:db8::5", uint8(hasPool|hasLegacyPool), uint8(2), uint16(0))
	f.Add("fe80::1%eth0,,", "", "", "", "", "", "", uint8(hasIPs), uint8(0), uint16(8080))
	f.Fuzz(func(t *testing.T, ips, legacyIPs, pool, legacyPool, shared, legacySharedKey, specIP string, present, fam uint8, port uint16) {
		svc := fuzzService(ips, legacyIPs, pool, legacyPool, shared, legacySharedKey, specIP, present, fam, port)
		r, err := parseRequest(svc)
		if err != nil {
			var re *requestError
			if !errors.As(err, &re) || re.Reason == "" || re.Message == "" {
				t.Fatalf("error %#v is not a *requestError with a reason and a message", err)
			}
			return
		}
		pick := func(bit uint8, stable, legacy string) (string, bool) {
			switch {
			case present&bit != 0:
				return stable, true
			case present&(bit<<1) != 0:
				return legacy, true
			}
			return "", false
		}
		wantIPs, gotIPs := pick(hasIPs, ips, legacyIPs)
		if gotIPs && specIP != "" {
			t.Fatal("spec.loadBalancerIP and the annotation both accepted")
		}
		if !gotIPs {
			wantIPs = specIP
		}
		var want []netip.Addr
		for _, s := range strings.Split(wantIPs, ",") {
			if s = strings.TrimSpace(s); s != "" {
				want = append(want, netip.MustParseAddr(s))
			}
		}
		for _, a := range r.addrs {
			if !a.IsValid() || a.Zone() != "" || a.Is4In6() {
				t.Fatalf("requested address %v accepted", a)
			}
		}
		if !slices.Equal(r.addrs, want) {
			t.Fatalf("addresses %v from %q, want %v", r.addrs, wantIPs, want)
		}
		wantPool, _ := pick(hasPool, pool, legacyPool)
		wantShared, _ := pick(hasShared, shared, legacySharedKey)
		if r.pool != strings.TrimSpace(wantPool) || r.svc.SharingKey != wantShared {
			t.Fatalf("pool %q, sharing key %q; want %q, %q", r.pool, r.svc.SharingKey, strings.TrimSpace(wantPool), wantShared)
		}
		var legacy []string
		for _, k := range []struct {
			bit uint8
			key string
		}{{hasShared, "allow-shared-ip"}, {hasPool, "address-pool"}, {hasIPs, "loadBalancerIPs"}} {
			if present&k.bit == 0 && present&(k.bit<<1) != 0 {
				legacy = append(legacy, legacyPrefix+k.key)
			}
		}
		if !slices.Equal(r.deprecated, legacy) {
			t.Fatalf("deprecated keys %v, want %v", r.deprecated, legacy)
		}
		checkAllocation(t, r)
	})
}

// fuzzService builds the Service FuzzParseRequest reads. fam's bits 0-1
// choose spec.ipFamilies (none, IPv4, IPv6, both), bits 2-3 the family
// policy (unset, single, prefer dual, require dual), bit 4 Local traffic
// policy, bit 5 IPv6 first.
func fuzzService(ips, legacyIPs, pool, legacyPool, shared, legacyShared, specIP string, present, fam uint8, port uint16) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", Annotations: map[string]string{}},
		Spec: corev1.ServiceSpec{
			Type:           corev1.ServiceTypeLoadBalancer,
			LoadBalancerIP: specIP,
			Selector:       map[string]string{"app": "web"},
			Ports:          []corev1.ServicePort{{Port: int32(port)}},
		},
	}
	for _, a := range []struct {
		bit        uint8
		key, value string
	}{
		{hasIPs, AnnotationLoadBalancerIPs, ips}, {hasLegacyIPs, legacyPrefix + "loadBalancerIPs", legacyIPs},
		{hasPool, AnnotationAddressPool, pool}, {hasLegacyPool, legacyPrefix + "address-pool", legacyPool},
		{hasShared, AnnotationAllowSharedIP, shared}, {hasLegacyShared, legacyPrefix + "allow-shared-ip", legacyShared},
	} {
		if present&a.bit != 0 {
			svc.Annotations[a.key] = a.value
		}
	}
	fams := [][]corev1.IPFamily{nil, {corev1.IPv4Protocol}, {corev1.IPv6Protocol}, {corev1.IPv4Protocol, corev1.IPv6Protocol}}[fam&3]
	if fam&(1<<5) != 0 {
		fams = slices.Clone(fams)
		slices.Reverse(fams)
	}
	svc.Spec.IPFamilies = fams
	policies := []corev1.IPFamilyPolicy{"", corev1.IPFamilyPolicySingleStack, corev1.IPFamilyPolicyPreferDualStack, corev1.IPFamilyPolicyRequireDualStack}
	if p := policies[fam>>2&3]; p != "" {
		svc.Spec.IPFamilyPolicy = &p
	}
	if fam&(1<<4) != 0 {
		svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	}
	return svc
}

// checkAllocation allocates r as the Service reconciler does (explicit
// addresses, else the named pool, else any pool) next to a Service holding
// 192.0.2.1 with sharing key "k" on TCP/80, and checks the outcome.
func checkAllocation(t *testing.T, r request) {
	t.Helper()
	alloc := ipam.New()
	if _, err := alloc.SetPools(fuzzPools); err != nil {
		t.Fatal(err)
	}
	shared := netip.MustParseAddr("192.0.2.1")
	other := ipam.Service{Key: "ns/other", Families: ipam.Families{Primary: ipam.IPv4}, SharingKey: "k",
		Ports: []ipam.Port{{Protocol: "TCP", Port: 80}}}
	if _, err := alloc.Assign(other, []netip.Addr{shared}, nil); err != nil {
		t.Fatal(err)
	}
	var (
		got ipam.Allocation
		err error
	)
	switch {
	case len(r.addrs) > 0:
		got, err = alloc.Assign(r.svc, r.addrs, func(pool string) error {
			if r.pool != "" && pool != r.pool {
				return errors.New("not the requested pool")
			}
			return nil
		})
	case r.pool != "":
		got, err = alloc.AllocateFromPool(r.svc, r.pool)
	default:
		got, err = alloc.Allocate(r.svc, []ipam.Candidate{{Pool: "dual"}, {Pool: "v4"}, {Pool: "v6"}})
	}
	if err != nil {
		var ie *ipam.Error
		if !errors.As(err, &ie) || ie.Reason == "" {
			t.Fatalf("allocation error %v has no reason", err)
		}
		return
	}
	i := slices.IndexFunc(fuzzPools, func(p ipam.Pool) bool { return p.Name == got.Pool })
	if i < 0 || len(got.Addrs) == 0 || len(got.Addrs) > 2 || r.pool != "" && got.Pool != r.pool {
		t.Fatalf("allocation %+v for pool %q", got, r.pool)
	}
	for _, a := range got.Addrs {
		if !slices.ContainsFunc(fuzzPools[i].Ranges, func(rg ipam.Range) bool { return rg.Contains(a) }) {
			t.Fatalf("%v is not in pool %q", a, got.Pool)
		}
		if a == shared && (r.svc.SharingKey != "k" || r.svc.BackendKey != "" || slices.Contains(r.svc.Ports, other.Ports[0])) {
			t.Fatalf("%v shared with key %q, backend %q and ports %v", a, r.svc.SharingKey, r.svc.BackendKey, r.svc.Ports)
		}
	}
	if len(r.addrs) > 0 && !sameSet(got.Addrs, r.addrs) {
		t.Fatalf("allocated %v, requested %v", got.Addrs, r.addrs)
	}
}

func sameSet(a, b []netip.Addr) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	cmp := func(x, y netip.Addr) int { return x.Compare(y) }
	slices.SortFunc(a, cmp)
	slices.SortFunc(b, cmp)
	return slices.Equal(a, b)
}

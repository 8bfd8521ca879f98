package controller

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-lb/herald/internal/ipam"
)

// Annotation keys. Each stable metallb.io key has a deprecated
// metallb.universe.tf twin; the stable one wins when both are set.
const (
	AnnotationAddressPool     = "metallb.io/address-pool"
	AnnotationLoadBalancerIPs = "metallb.io/loadBalancerIPs"
	AnnotationAllowSharedIP   = "metallb.io/allow-shared-ip"
	AnnotationAllocatedFrom   = "metallb.io/ip-allocated-from-pool"

	legacyPrefix = "metallb.universe.tf/"
	stablePrefix = "metallb.io/"
)

// request is what a Service asks of the allocator, read from its spec and
// annotations.
type request struct {
	svc ipam.Service
	// addrs are explicitly requested addresses (spec.loadBalancerIP or the
	// loadBalancerIPs annotation); empty for automatic allocation.
	addrs []netip.Addr
	// pool is the address-pool annotation; empty when unset.
	pool string
	// deprecated lists the metallb.universe.tf keys the Service used.
	deprecated []string
}

// requestError is a Service whose request cannot be understood at all: it
// gets a Warning Event with Reason and no address.
type requestError struct {
	Reason  string
	Message string
}

func (e *requestError) Error() string { return e.Message }

// annotation reads a metallb.io key, falling back to its legacy twin.
func annotation(svc *corev1.Service, key string) (value string, legacyKey string, ok bool) {
	if v, ok := svc.Annotations[key]; ok {
		return v, "", true
	}
	legacy := legacyPrefix + strings.TrimPrefix(key, stablePrefix)
	if v, ok := svc.Annotations[legacy]; ok {
		return v, legacy, true
	}
	return "", "", false
}

// parseRequest turns a Service into an allocation request.
func parseRequest(svc *corev1.Service) (request, error) {
	var r request
	r.svc.Key = svc.Namespace + "/" + svc.Name

	use := func(key string) (string, bool) {
		v, legacy, ok := annotation(svc, key)
		if legacy != "" {
			r.deprecated = append(r.deprecated, legacy)
		}
		return v, ok
	}
	if v, ok := use(AnnotationAllowSharedIP); ok {
		r.svc.SharingKey = v
	}
	if v, ok := use(AnnotationAddressPool); ok {
		r.pool = strings.TrimSpace(v)
	}
	ips, hasIPs := use(AnnotationLoadBalancerIPs)
	if hasIPs && svc.Spec.LoadBalancerIP != "" {
		return r, &requestError{Reason: "LoadBalancerFailed",
			Message: "invalid requested loadbalancer IPs: spec.loadBalancerIP and the metallb.io/loadBalancerIPs annotation are mutually exclusive; remove one"}
	}
	var raw []string
	switch {
	case hasIPs:
		for _, s := range strings.Split(ips, ",") {
			if s = strings.TrimSpace(s); s != "" {
				raw = append(raw, s)
			}
		}
	case svc.Spec.LoadBalancerIP != "":
		raw = []string{svc.Spec.LoadBalancerIP}
	}
	for _, s := range raw {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return r, &requestError{Reason: "LoadBalancerFailed",
				Message: fmt.Sprintf("invalid requested loadbalancer IPs: %q is not an IP address", s)}
		}
		if a.Is4In6() {
			// Pools hold no mapped addresses, and taking it as the IPv4
			// address would hide which family was meant.
			return r, &requestError{Reason: "LoadBalancerFailed",
				Message: fmt.Sprintf("invalid requested loadbalancer IPs: %q is an IPv4-mapped IPv6 address; request %s instead", s, a.Unmap())}
		}
		r.addrs = append(r.addrs, a)
	}

	fam, err := families(svc)
	if err != nil {
		return r, err
	}
	r.svc.Families = fam
	if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		// Local Services share only with the same selector: both must then
		// send traffic to the same pods on the announcing node.
		r.svc.BackendKey = labels.SelectorFromSet(svc.Spec.Selector).String()
		if r.svc.BackendKey == "" {
			r.svc.BackendKey = "<no selector>"
		}
	}
	for _, p := range svc.Spec.Ports {
		proto := string(p.Protocol)
		if proto == "" {
			proto = string(corev1.ProtocolTCP)
		}
		r.svc.Ports = append(r.svc.Ports, ipam.Port{Protocol: proto, Port: p.Port})
	}
	sort.Slice(r.svc.Ports, func(i, j int) bool {
		if r.svc.Ports[i].Protocol != r.svc.Ports[j].Protocol {
			return r.svc.Ports[i].Protocol < r.svc.Ports[j].Protocol
		}
		return r.svc.Ports[i].Port < r.svc.Ports[j].Port
	})
	return r, nil
}

// families reads the Service's IP family policy. The families come from
// spec.ipFamilies (set by the API server from the ClusterIPs), as MetalLB
// takes them from the ClusterIPs.
func families(svc *corev1.Service) (ipam.Families, error) {
	var fams []ipam.Family
	for _, f := range svc.Spec.IPFamilies {
		switch f {
		case corev1.IPv4Protocol:
			fams = append(fams, ipam.IPv4)
		case corev1.IPv6Protocol:
			fams = append(fams, ipam.IPv6)
		}
	}
	if len(fams) == 0 {
		// Headless or not yet defaulted: fall back to the ClusterIPs.
		for _, s := range append([]string{svc.Spec.ClusterIP}, svc.Spec.ClusterIPs...) {
			if a, err := netip.ParseAddr(s); err == nil {
				f := ipam.IPv4
				if a.Is6() && !a.Is4In6() {
					f = ipam.IPv6
				}
				if len(fams) == 0 || fams[0] != f {
					fams = append(fams, f)
				}
			}
		}
	}
	if len(fams) == 0 {
		return ipam.Families{}, &requestError{Reason: "noclusterIPsIPFamily",
			Message: "the Service has no ClusterIP family (spec.ipFamilies is empty); Herald takes the address family from it"}
	}
	out := ipam.Families{Primary: fams[0]}
	policy := corev1.IPFamilyPolicySingleStack
	if svc.Spec.IPFamilyPolicy != nil {
		policy = *svc.Spec.IPFamilyPolicy
	}
	switch policy {
	case corev1.IPFamilyPolicyRequireDualStack:
		if len(fams) < 2 {
			return out, &requestError{Reason: "not enough clusterips",
				Message: "ipFamilyPolicy is RequireDualStack but the Service has only one ClusterIP family"}
		}
		out.Policy = ipam.RequireDualStack
	case corev1.IPFamilyPolicyPreferDualStack:
		if len(fams) >= 2 {
			out.Policy = ipam.PreferDualStack
		}
	}
	return out, nil
}

// currentIngress returns the addresses in the Service's status, in order.
func currentIngress(svc *corev1.Service) []netip.Addr {
	var out []netip.Addr
	for _, in := range svc.Status.LoadBalancer.Ingress {
		if a, err := netip.ParseAddr(in.IP); err == nil {
			out = append(out, a.Unmap())
		}
	}
	return out
}

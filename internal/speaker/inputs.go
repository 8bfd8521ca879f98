package speaker

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/herald-lb/herald/internal/announce"
	"github.com/herald-lb/herald/internal/config"
	"github.com/herald-lb/herald/internal/lbclass"
)

// annotationAllocatedFrom is the pool the controller gave a Service its
// addresses from, written before the addresses themselves.
const annotationAllocatedFrom = "metallb.io/ip-allocated-from-pool"

// inputs gathers one sync's inputs from the cache, each object read once;
// services are the LoadBalancer Services with addresses, by key, for the
// Events of the sync.
func (s *speaker) inputs(ctx context.Context, cfg *config.Config) (announce.Inputs, map[string]*corev1.Service, error) {
	in := announce.Inputs{Config: cfg, Nodes: map[string]announce.Node{}, Live: map[string]bool{}}
	services := map[string]*corev1.Service{}
	var nodes corev1.NodeList
	if err := s.client.List(ctx, &nodes); err != nil {
		return in, nil, fmt.Errorf("list nodes: %w", err)
	}
	for i := range nodes.Items {
		n := &nodes.Items[i]
		node := announce.Node{Name: n.Name, Labels: n.Labels, ProviderID: n.Spec.ProviderID}
		node.InternalIPv4, _ = netip.ParseAddr(nodeAddress(n, "0.0.0.0"))
		ready := false
		for _, c := range n.Status.Conditions {
			switch {
			case c.Type == corev1.NodeNetworkUnavailable && c.Status == corev1.ConditionTrue:
				node.NetworkUnavailable = true
			case c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue:
				ready = true
			}
		}
		in.Nodes[n.Name] = node
		if s.opts.MLDisabled {
			in.Live[n.Name] = ready
		}
	}
	if s.ml != nil {
		members := s.ml.Members()
		for _, m := range members {
			in.Live[m] = true
		}
		s.membersGauge.Set(float64(len(members)))
	}
	var slices discoveryv1.EndpointSliceList
	if err := s.client.List(ctx, &slices); err != nil {
		return in, nil, fmt.Errorf("list endpoint slices: %w", err)
	}
	endpoints := map[string]map[string]bool{}
	for _, es := range slices.Items {
		svc := es.Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		key := es.Namespace + "/" + svc
		for _, ep := range es.Endpoints {
			// Ready (or unset), or still serving while terminating, as MetalLB.
			ok := ep.Conditions.Ready == nil || *ep.Conditions.Ready ||
				(ep.Conditions.Serving != nil && *ep.Conditions.Serving)
			if !ok || ep.NodeName == nil {
				continue
			}
			if endpoints[key] == nil {
				endpoints[key] = map[string]bool{}
			}
			endpoints[key][*ep.NodeName] = true
		}
	}
	var svcs corev1.ServiceList
	if err := s.client.List(ctx, &svcs); err != nil {
		return in, nil, fmt.Errorf("list services: %w", err)
	}
	for i := range svcs.Items {
		svc := &svcs.Items[i]
		if !lbclass.Handles(svc, s.opts.LBClass) {
			continue
		}
		var addrs []netip.Addr
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			if a, err := netip.ParseAddr(ing.IP); err == nil {
				addrs = append(addrs, a.Unmap())
			}
		}
		if len(addrs) == 0 {
			continue
		}
		key := svc.Namespace + "/" + svc.Name
		services[key] = svc
		if cfg == nil {
			continue
		}
		in.Services = append(in.Services, announce.Service{
			Key: key, Labels: svc.Labels, Addrs: addrs, Pool: poolOf(cfg, svc.Annotations[annotationAllocatedFrom], addrs[0]),
			Local:         svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal,
			EndpointNodes: endpoints[key],
		})
	}
	return in, services, nil
}

// poolOf is the pool holding a: the one the controller named (annotated),
// when it is in force and holds a, else the first that holds it.
func poolOf(cfg *config.Config, annotated string, a netip.Addr) string {
	holds := func(p *config.Pool) bool {
		for _, r := range p.Ranges {
			if r.Contains(a) {
				return true
			}
		}
		return false
	}
	if p := cfg.Pool(annotated); p != nil && holds(p) {
		return annotated
	}
	for _, p := range cfg.Pools {
		if holds(p) {
			return p.Name
		}
	}
	return ""
}

// peers lists the other nodes' addresses of bind's family, from the Node
// objects: speakers find each other without Pod objects.
func (s *speaker) peers(ctx context.Context, bind string) []string {
	var nodes corev1.NodeList
	if err := s.client.List(ctx, &nodes); err != nil {
		return nil
	}
	var out []string
	for i := range nodes.Items {
		n := &nodes.Items[i]
		if n.Name == s.opts.NodeName {
			continue
		}
		if a := nodeAddress(n, bind); a != "" {
			out = append(out, net.JoinHostPort(a, strconv.Itoa(s.opts.MLBindPort)))
		}
	}
	sort.Strings(out)
	return out
}

// nodeAddress is the node's first InternalIP of like's family (any family
// when like is empty).
func nodeAddress(n *corev1.Node, like string) string {
	want6 := false
	if a, err := netip.ParseAddr(like); err == nil {
		want6 = a.Is6() && !a.Is4In6()
	}
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		ip, err := netip.ParseAddr(a.Address)
		if err != nil {
			continue
		}
		if like == "" || ip.Is6() == want6 {
			return ip.String()
		}
	}
	return ""
}

package main

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/herald-lb/herald/internal/lab"
)

// bulkResult is the scale test: times from the first create request.
type bulkResult struct {
	n                      int
	created                time.Duration // every Service and EndpointSlice created
	firstRoute, halfRoutes time.Duration // the router's first, and half of its, complete routes
	allRoutes              time.Duration // every /32 with a next hop per node
}

// createBulk creates n IPv4 LoadBalancer Services from the bulk pool at
// once, each with a ready endpoint on every node, and waits until the
// router's kernel table has each /32 with a next hop per node. The lab's
// own client is rate limited to client-go's default 5 requests per
// second; this one is not.
func (b *bench) createBulk(ctx context.Context, n int) (bulkResult, error) {
	res := bulkResult{n: n}
	cfg := b.lab.Config()
	cfg.QPS, cfg.Burst = -1, 0
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return res, err
	}
	if err := addServiceCIDR(ctx, cs); err != nil {
		return res, err
	}
	nodes := b.lab.Nodes()
	pool := netip.MustParsePrefix(bulkPool)

	// Watch the router from the start, so the times do not depend on when
	// creating ends.
	wctx, cancel := context.WithTimeout(ctx, b.o.bulkTimeout)
	defer cancel()
	watched := make(chan error, 1)
	start := time.Now()
	go func() {
		var last string
		for {
			counts, err := b.hopCounts(wctx, pool)
			full := 0
			for _, c := range counts {
				if c == len(nodes) {
					full++
				}
			}
			if err == nil {
				last = fmt.Sprintf("%d routes, %d with %d next hops", len(counts), full, len(nodes))
			}
			t := time.Since(start)
			if full > 0 && res.firstRoute == 0 {
				res.firstRoute = t
			}
			if 2*full >= n && res.halfRoutes == 0 {
				res.halfRoutes = t
			}
			if full == n {
				res.allRoutes = t
				watched <- nil
				return
			}
			if err := sleep(wctx, 100*time.Millisecond); err != nil {
				watched <- fmt.Errorf("router: %s of %d: %w", last, n, err)
				return
			}
		}
	}()

	jobs := make(chan int)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range jobs {
				if err := createBulkService(wctx, cs, fmt.Sprintf("bulk-%04d", i), nodes); err != nil {
					select {
					case errc <- err:
					default:
					}
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case jobs <- i:
		case err = <-errc:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errc:
		default:
		}
	}
	if err != nil {
		cancel()
		<-watched
		return res, err
	}
	res.created = time.Since(start)
	b.log.Info("bulk Services created", "count", n, "took", res.created.Round(time.Millisecond))
	if err := <-watched; err != nil {
		return res, err
	}
	b.log.Info("bulk Services routed", "count", n, "first", res.firstRoute.Round(time.Millisecond),
		"half", res.halfRoutes.Round(time.Millisecond), "all", res.allRoutes.Round(time.Millisecond))
	return res, nil
}

// extraServiceCIDR widens the cluster-IP range: the lab's IPv4 one is a
// /24, too small for the bulk Services' ClusterIPs. The addresses are
// never routed anywhere.
const extraServiceCIDR = "198.18.16.0/20"

// addServiceCIDR adds extraServiceCIDR as a ServiceCIDR object and marks
// it ready: the API server allocates only from ready ServiceCIDRs, and the
// controller that would mark it (in kube-controller-manager) does not run
// in the lab.
func addServiceCIDR(ctx context.Context, cs kubernetes.Interface) error {
	sc := &networkingv1.ServiceCIDR{
		ObjectMeta: metav1.ObjectMeta{Name: "bgpbench"},
		Spec:       networkingv1.ServiceCIDRSpec{CIDRs: []string{extraServiceCIDR}},
	}
	created, err := cs.NetworkingV1().ServiceCIDRs().Create(ctx, sc, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("ServiceCIDR %s: %w", extraServiceCIDR, err)
	}
	created.Status.Conditions = []metav1.Condition{{
		Type: networkingv1.ServiceCIDRConditionReady, Status: metav1.ConditionTrue,
		Reason: "BenchReady", Message: "marked ready by bgpbench", LastTransitionTime: metav1.Now(),
	}}
	if _, err := cs.NetworkingV1().ServiceCIDRs().UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("ServiceCIDR %s status: %w", extraServiceCIDR, err)
	}
	// The API server's allocator learns of it through an informer.
	return sleep(ctx, 2*time.Second)
}

func createBulkService(ctx context.Context, cs kubernetes.Interface, name string, nodes []lab.Node) error {
	single := corev1.IPFamilyPolicySingleStack
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: "default",
			Annotations: map[string]string{"metallb.io/address-pool": bulkPoolName},
		},
		Spec: corev1.ServiceSpec{
			Type:           corev1.ServiceTypeLoadBalancer,
			Selector:       map[string]string{"app": name},
			IPFamilyPolicy: &single,
			IPFamilies:     []corev1.IPFamily{corev1.IPv4Protocol},
			Ports: []corev1.ServicePort{{
				Name: "tcp-80", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(80),
			}},
		},
	}
	created, err := cs.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("service %s: %w", name, err)
	}
	port, proto := int32(80), corev1.ProtocolTCP
	portName := "tcp-80"
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: name + "-ipv4", Namespace: "default",
			Labels: map[string]string{
				discoveryv1.LabelServiceName: name,
				discoveryv1.LabelManagedBy:   "bgpbench",
			},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: name, UID: created.UID}},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Protocol: &proto, Port: &port}},
	}
	for i, n := range nodes {
		// Made-up pod addresses: nothing is ever sent to them.
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{fmt.Sprintf("198.18.100.%d", i+1)},
			Conditions: discoveryv1.EndpointConditions{Ready: new(true), Serving: new(true), Terminating: new(false)},
			NodeName:   new(n.Name),
		})
	}
	if _, err := cs.DiscoveryV1().EndpointSlices("default").Create(ctx, es, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("endpoints of %s: %w", name, err)
	}
	return nil
}

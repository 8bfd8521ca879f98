package main

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/herald-lb/herald/bench/bulksvc"
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
			if err := lab.Sleep(wctx, 100*time.Millisecond); err != nil {
				watched <- fmt.Errorf("router: %s of %d: %w", last, n, err)
				return
			}
		}
	}()

	if err := bulksvc.CreateMany(wctx, cs, n, 16, bulkService(), nodes); err != nil {
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
	return lab.Sleep(ctx, 2*time.Second)
}

// bulkService is what the scale test's Services share: IPv4 addresses from
// the bulk pool, an endpoint on every node.
func bulkService() bulksvc.Spec {
	return bulksvc.Spec{
		Pool:       bulkPoolName,
		Family:     corev1.IPv4Protocol,
		ManagedBy:  "bgpbench",
		PodAddress: func(i int) string { return fmt.Sprintf("198.18.100.%d", i) },
	}
}

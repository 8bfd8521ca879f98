// Package bulksvc creates the many single-stack LoadBalancer Services the
// lab benchmarks load herald with. It writes through the caller's client,
// which the benchmarks leave unthrottled, rather than the lab's, so the
// creation rate is the API server's and not client-go's.
package bulksvc

import (
	"context"
	"fmt"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	"github.com/herald-lb/herald/internal/lab"
)

// namespace is where every bulk Service goes.
const namespace = "default"

// Spec is what a benchmark's bulk Services have in common.
type Spec struct {
	// Pool is the MetalLB address pool the Services ask for.
	Pool   string
	Family corev1.IPFamily
	// Labels go on each Service, to list them again.
	Labels map[string]string
	// ManagedBy marks the EndpointSlices, in the label Kubernetes reserves
	// for that.
	ManagedBy string
	// PodAddress is the made-up address of the endpoint on the i-th node,
	// counting from 1. Nothing is ever sent to it.
	PodAddress func(i int) string
}

// Create creates the Service name and one EndpointSlice with a ready
// endpoint on each of nodes.
func Create(ctx context.Context, cs kubernetes.Interface, name string, spec Spec, nodes []lab.Node) error {
	svc, es := objects(name, spec, nodes, "")
	created, err := cs.CoreV1().Services(namespace).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("service %s: %w", name, err)
	}
	es.OwnerReferences[0].UID = created.UID
	if _, err := cs.DiscoveryV1().EndpointSlices(namespace).Create(ctx, es, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("endpoints of %s: %w", name, err)
	}
	return nil
}

// CreateMany creates Services bulk-0000 to bulk-(n-1), and their
// EndpointSlices, with that many creators in parallel. It stops at the
// first error, or when ctx ends, and returns that error.
func CreateMany(ctx context.Context, cs kubernetes.Interface, n, creators int, spec Spec, nodes []lab.Node) (err error) {
	jobs := make(chan int)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	for range creators {
		wg.Go(func() {
			for i := range jobs {
				if err := Create(ctx, cs, fmt.Sprintf("bulk-%04d", i), spec, nodes); err != nil {
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
	return err
}

// objects builds the Service and its EndpointSlice, owned by the Service
// of the given UID.
func objects(name string, spec Spec, nodes []lab.Node, uid types.UID) (*corev1.Service, *discoveryv1.EndpointSlice) {
	single := corev1.IPFamilyPolicySingleStack
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: namespace,
			Labels:      spec.Labels,
			Annotations: map[string]string{"metallb.io/address-pool": spec.Pool},
		},
		Spec: corev1.ServiceSpec{
			Type:           corev1.ServiceTypeLoadBalancer,
			Selector:       map[string]string{"app": name},
			IPFamilyPolicy: &single,
			IPFamilies:     []corev1.IPFamily{spec.Family},
			Ports: []corev1.ServicePort{{
				Name: "tcp-80", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromInt32(80),
			}},
		},
	}
	port, proto := int32(80), corev1.ProtocolTCP
	portName := "tcp-80"
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: name + "-" + strings.ToLower(string(spec.Family)), Namespace: namespace,
			Labels: map[string]string{
				discoveryv1.LabelServiceName: name,
				discoveryv1.LabelManagedBy:   spec.ManagedBy,
			},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: name, UID: uid}},
		},
		AddressType: discoveryv1.AddressType(spec.Family),
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Protocol: &proto, Port: &port}},
	}
	for i, n := range nodes {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{spec.PodAddress(i + 1)},
			Conditions: discoveryv1.EndpointConditions{Ready: new(true), Serving: new(true), Terminating: new(false)},
			NodeName:   new(n.Name),
		})
	}
	return svc, es
}

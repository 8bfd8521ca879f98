// Package lbclass decides which Services Herald is responsible for: the
// controller allocates for them and the speakers announce them.
package lbclass

import corev1 "k8s.io/api/core/v1"

// Handles reports whether Herald, run with --lb-class class, handles svc:
// type LoadBalancer, and spec.loadBalancerClass unset when class is empty,
// or equal to class otherwise (MetalLB's rule).
func Handles(svc *corev1.Service, class string) bool {
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return false
	}
	if svc.Spec.LoadBalancerClass == nil {
		return class == ""
	}
	return *svc.Spec.LoadBalancerClass == class
}

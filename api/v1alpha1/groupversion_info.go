// Package v1alpha1 contains Herald's own API, group herald-lb.io: kinds that
// MetalLB does not have. They live in a group of their own so that
// metallb.io stays field for field MetalLB's, and a manifest written for
// MetalLB means the same to Herald.
//
// CloudAdvertisement announces pools as cloud floating IPs (issue 13).
//
// +kubebuilder:object:generate=true
// +groupName=herald-lb.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is herald-lb.io/v1alpha1.
var GroupVersion = schema.GroupVersion{Group: "herald-lb.io", Version: "v1alpha1"}

var (
	// SchemeBuilder registers this version's kinds with a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds this version's kinds to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// addKnownTypes lists every kind in one place, as api/v1beta1 does.
func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&CloudAdvertisement{}, &CloudAdvertisementList{},
		&ServiceCloudStatus{}, &ServiceCloudStatusList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

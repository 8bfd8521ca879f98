// Package v1beta2 contains the metallb.io/v1beta2 API: BGPPeer, the version
// stored in etcd and the hub that v1beta1 BGPPeers convert through.
//
// +kubebuilder:object:generate=true
// +groupName=metallb.io
package v1beta2

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is metallb.io/v1beta2.
var GroupVersion = schema.GroupVersion{Group: "metallb.io", Version: "v1beta2"}

var (
	// SchemeBuilder registers this version's kinds with a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds this version's kinds to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &BGPPeer{}, &BGPPeerList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// Package v1beta1 contains the metallb.io/v1beta1 API: address pools,
// L2 and BGP advertisements, BFD profiles, community aliases, the
// status-only kinds written by Herald itself, and the deprecated BGPPeer
// v1beta1, which converts to and from the v1beta2 hub.
//
// +kubebuilder:object:generate=true
// +groupName=metallb.io
package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is metallb.io/v1beta1.
var GroupVersion = schema.GroupVersion{Group: "metallb.io", Version: "v1beta1"}

var (
	// SchemeBuilder registers this version's kinds with a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds this version's kinds to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// addKnownTypes lists every kind in one place rather than in per-file init
// functions, so the set of kinds is visible at a glance.
func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&IPAddressPool{}, &IPAddressPoolList{},
		&L2Advertisement{}, &L2AdvertisementList{},
		&BGPAdvertisement{}, &BGPAdvertisementList{},
		&BFDProfile{}, &BFDProfileList{},
		&Community{}, &CommunityList{},
		&ServiceL2Status{}, &ServiceL2StatusList{},
		&ServiceBGPStatus{}, &ServiceBGPStatusList{},
		&ConfigurationState{}, &ConfigurationStateList{},
		&BGPPeer{}, &BGPPeerList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CommunityAlias gives a BGP community value a name.
type CommunityAlias struct {
	// name is the alias, used in place of a value in a BGPAdvertisement's
	// communities. Names must be unique across all Community objects.
	// +optional
	Name string `json:"name,omitempty"`

	// value is the community the name stands for: a standard community
	// "A:B" (two numbers 0-65535) or a large community "large:A:B:C" (three
	// numbers 0-4294967295).
	// +optional
	Value string `json:"value,omitempty"`
}

// CommunitySpec lists community aliases.
type CommunitySpec struct {
	// communities are the aliases this object defines.
	// +optional
	Communities []CommunityAlias `json:"communities,omitempty"`
}

// CommunityStatus is empty.
type CommunityStatus struct{}

// Community defines names for BGP community values, so that
// BGPAdvertisements can refer to a community by name.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced
// +kubebuilder:subresource:status
type Community struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec lists the aliases.
	// +optional
	Spec CommunitySpec `json:"spec,omitempty"`
	// status is unused.
	// +optional
	Status CommunityStatus `json:"status,omitempty"`
}

// CommunityList is a list of Communities.
//
// +kubebuilder:object:root=true
type CommunityList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Community `json:"items"`
}

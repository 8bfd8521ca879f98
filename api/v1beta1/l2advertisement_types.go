package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// L2AdvertisementSpec says which pools' addresses are announced in layer 2
// mode (ARP for IPv4, NDP for IPv6), from which nodes and interfaces.
type L2AdvertisementSpec struct {
	// ipAddressPools names the pools whose addresses this advertisement
	// announces. Together with ipAddressPoolSelectors it forms a union; when
	// both are empty the advertisement applies to every pool.
	// +optional
	IPAddressPools []string `json:"ipAddressPools,omitempty"`

	// ipAddressPoolSelectors select pools by their labels, in addition to
	// the pools named in ipAddressPools.
	// +optional
	IPAddressPoolSelectors []metav1.LabelSelector `json:"ipAddressPoolSelectors,omitempty"`

	// nodeSelectors limit the nodes that may announce the addresses; a node
	// must match at least one selector. Empty means every node. This is a
	// hard filter: a node that matches none never announces, even when no
	// other node can.
	// +optional
	NodeSelectors []metav1.LabelSelector `json:"nodeSelectors,omitempty"`

	// interfaces names the network interfaces on which the announcing node
	// answers for the addresses. Empty means every suitable interface. When
	// several advertisements apply to one Service on one node, their
	// interfaces are combined.
	// +optional
	Interfaces []string `json:"interfaces,omitempty"`

	// serviceSelectors restrict the advertisement to Services whose labels
	// match at least one selector. Empty means every Service of the selected
	// pools.
	// +optional
	ServiceSelectors []metav1.LabelSelector `json:"serviceSelectors,omitempty"`

	// preferredNodeSelectors express a soft preference among the nodes
	// allowed by nodeSelectors: each node scores the sum of the weights of
	// the selectors it matches, over every advertisement that applies to the
	// Service, and the highest score announces. Nodes that match none remain
	// candidates for failover.
	// +optional
	PreferredNodeSelectors []PreferredNodeSelector `json:"preferredNodeSelectors,omitempty"`
}

// PreferredNodeSelector is one weighted node preference, shaped like the
// Kubernetes PreferredSchedulingTerm.
type PreferredNodeSelector struct {
	// weight is added to the score of every node that matches preference.
	// From 1 to 100.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Weight int32 `json:"weight"`

	// preference selects nodes by their labels.
	Preference metav1.LabelSelector `json:"preference"`
}

// L2AdvertisementStatus is empty; the announcement state of each Service is
// reported in ServiceL2Status objects instead.
type L2AdvertisementStatus struct{}

// L2Advertisement announces the addresses of the selected IPAddressPools in
// layer 2 mode: one node per address answers ARP (IPv4) and NDP (IPv6)
// requests for it and takes over when that node fails.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="IPAddressPools",type=string,JSONPath=`.spec.ipAddressPools`
// +kubebuilder:printcolumn:name="IPAddressPool Selectors",type=string,JSONPath=`.spec.ipAddressPoolSelectors`
// +kubebuilder:printcolumn:name="Interfaces",type=string,JSONPath=`.spec.interfaces`
// +kubebuilder:printcolumn:name="Node Selectors",type=string,JSONPath=`.spec.nodeSelectors`,priority=1
type L2Advertisement struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec selects the pools, nodes, interfaces and Services.
	// +optional
	Spec L2AdvertisementSpec `json:"spec,omitempty"`
	// status is unused.
	// +optional
	Status L2AdvertisementStatus `json:"status,omitempty"`
}

// L2AdvertisementList is a list of L2Advertisements.
//
// +kubebuilder:object:root=true
type L2AdvertisementList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []L2Advertisement `json:"items"`
}

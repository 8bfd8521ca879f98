package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BGPAdvertisementSpec says which pools' addresses are announced over BGP,
// from which nodes, to which peers, and with which route attributes.
//
// +kubebuilder:validation:XValidation:rule="!has(self.serviceSelectors) || self.serviceSelectors.size() == 0 || ((!has(self.aggregationLength) || self.aggregationLength == 32) && (!has(self.aggregationLengthV6) || self.aggregationLengthV6 == 128))",message="serviceSelectors can only be used with the default aggregationLength (32) and aggregationLengthV6 (128)"
type BGPAdvertisementSpec struct {
	// aggregationLength is the prefix length announced for IPv4 Service
	// addresses: each address is masked to this length, so 32 announces
	// every address on its own and, for example, 24 announces one /24 route
	// covering all the Service addresses in it. It must not be shorter than
	// the prefix of any range in the selected pools, and at most 32.
	// Defaults to 32.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:default:=32
	AggregationLength *int32 `json:"aggregationLength,omitempty"`

	// aggregationLengthV6 is the prefix length announced for IPv6 Service
	// addresses, like aggregationLength; at most 128. Defaults to 128.
	// +optional
	// +kubebuilder:default:=128
	AggregationLengthV6 *int32 `json:"aggregationLengthV6,omitempty"`

	// localPref is the BGP LOCAL_PREF attribute of the announced routes;
	// peers prefer routes with a higher value. It only matters on iBGP
	// sessions. 0 or unset means the attribute is not set by this
	// advertisement.
	// +optional
	LocalPref uint32 `json:"localPref,omitempty"`

	// communities are the BGP communities attached to the announced routes.
	// Each entry is a standard community "A:B" (two numbers 0-65535), a
	// large community "large:A:B:C" (three numbers 0-4294967295), or the
	// name of an alias defined in a Community object. Well-known communities
	// are written numerically, e.g. no-export is "65535:65281".
	// +optional
	Communities []string `json:"communities,omitempty"`

	// ipAddressPools names the pools whose addresses this advertisement
	// announces. Together with ipAddressPoolSelectors it forms a union; when
	// both are empty the advertisement applies to every pool.
	// +optional
	IPAddressPools []string `json:"ipAddressPools,omitempty"`

	// ipAddressPoolSelectors select pools by their labels, in addition to
	// the pools named in ipAddressPools.
	// +optional
	IPAddressPoolSelectors []metav1.LabelSelector `json:"ipAddressPoolSelectors,omitempty"`

	// nodeSelectors limit the nodes that announce the routes, as their own
	// next hop; a node must match at least one selector. Empty means every
	// node.
	// +optional
	NodeSelectors []metav1.LabelSelector `json:"nodeSelectors,omitempty"`

	// peers names the BGPPeers the routes are announced to. Empty means
	// every peer.
	// +optional
	Peers []string `json:"peers,omitempty"`

	// serviceSelectors restrict the advertisement to Services whose labels
	// match at least one selector. Empty means every Service of the selected
	// pools. Cannot be combined with an aggregationLength other than 32 or
	// an aggregationLengthV6 other than 128.
	// +optional
	ServiceSelectors []metav1.LabelSelector `json:"serviceSelectors,omitempty"`
}

// BGPAdvertisementStatus is empty; what each node announces for a Service
// is reported in ServiceBGPStatus objects instead.
type BGPAdvertisementStatus struct{}

// BGPAdvertisement announces the addresses of the selected IPAddressPools
// to BGP peers, with the given aggregation length, LOCAL_PREF and
// communities.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="IPAddressPools",type=string,JSONPath=`.spec.ipAddressPools`
// +kubebuilder:printcolumn:name="IPAddressPool Selectors",type=string,JSONPath=`.spec.ipAddressPoolSelectors`
// +kubebuilder:printcolumn:name="Peers",type=string,JSONPath=`.spec.peers`
// +kubebuilder:printcolumn:name="Node Selectors",type=string,JSONPath=`.spec.nodeSelectors`,priority=1
type BGPAdvertisement struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec selects the pools, nodes, peers and Services, and sets the route
	// attributes.
	// +optional
	Spec BGPAdvertisementSpec `json:"spec,omitempty"`
	// status is unused.
	// +optional
	Status BGPAdvertisementStatus `json:"status,omitempty"`
}

// BGPAdvertisementList is a list of BGPAdvertisements.
//
// +kubebuilder:object:root=true
type BGPAdvertisementList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPAdvertisement `json:"items"`
}

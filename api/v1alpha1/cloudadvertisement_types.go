package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CloudProvider names the cloud whose floating-IP API moves the addresses.
// +kubebuilder:validation:Enum=hetzner
type CloudProvider string

const (
	// CloudProviderHetzner is Hetzner Cloud: floating IPs, an IPv4 address
	// or an IPv6 /64 each, assigned to a server through its API.
	CloudProviderHetzner CloudProvider = "hetzner"
)

// DefaultTokenKey is the key of the token Secret read when tokenSecretRef
// gives none.
const DefaultTokenKey = "token"

// CloudAdvertisementSpec says which pools' addresses are cloud floating
// IPs, which nodes may take them, and how to reach the cloud's API. The
// selection fields mean what they mean in an L2Advertisement.
type CloudAdvertisementSpec struct {
	// ipAddressPools names the pools whose addresses are floating IPs.
	// Together with ipAddressPoolSelectors it forms a union; when both are
	// empty the advertisement applies to every pool.
	// +optional
	IPAddressPools []string `json:"ipAddressPools,omitempty"`

	// ipAddressPoolSelectors select pools by their labels, in addition to
	// the pools named in ipAddressPools.
	// +optional
	IPAddressPoolSelectors []metav1.LabelSelector `json:"ipAddressPoolSelectors,omitempty"`

	// nodeSelectors limit the nodes that may take the floating IPs; a node
	// must match at least one selector. Empty means every node with a
	// server in the cloud.
	// +optional
	NodeSelectors []metav1.LabelSelector `json:"nodeSelectors,omitempty"`

	// serviceSelectors restrict the advertisement to Services whose labels
	// match at least one selector. Empty means every Service of the
	// selected pools.
	// +optional
	ServiceSelectors []metav1.LabelSelector `json:"serviceSelectors,omitempty"`

	// provider is the cloud: hetzner.
	Provider CloudProvider `json:"provider"`

	// tokenSecretRef names the Secret, in Herald's namespace, holding the
	// cloud API token. Only the speakers read it, and only when the chart
	// grants them that one Secret (cloud.tokenSecretName).
	TokenSecretRef TokenSecretRef `json:"tokenSecretRef"`
}

// TokenSecretRef names a Secret in Herald's namespace and the key in it
// that holds the API token.
type TokenSecretRef struct {
	// name of the Secret.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// key in the Secret's data; "token" when empty.
	// +kubebuilder:default=token
	// +optional
	Key string `json:"key,omitempty"`
}

// CloudAdvertisementStatus is what Herald reports about the advertisement.
type CloudAdvertisementStatus struct {
	// conditions, one per type.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`
}

// CloudAdvertisement announces the addresses of the selected IPAddressPools
// as cloud floating IPs: the node elected for an address assigns the
// floating IP to its own server through the cloud's API, and the next node
// does so when it fails. ARP, NDP and BGP reach no one on such clouds, so a
// pool is announced either this way or by an L2Advertisement, not both.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.provider`
// +kubebuilder:printcolumn:name="IPAddressPools",type=string,JSONPath=`.spec.ipAddressPools`
// +kubebuilder:printcolumn:name="IPAddressPool Selectors",type=string,JSONPath=`.spec.ipAddressPoolSelectors`
// +kubebuilder:printcolumn:name="Token Secret",type=string,JSONPath=`.spec.tokenSecretRef.name`
// +kubebuilder:printcolumn:name="Node Selectors",type=string,JSONPath=`.spec.nodeSelectors`,priority=1
type CloudAdvertisement struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec selects the pools, nodes and Services, and names the cloud.
	Spec CloudAdvertisementSpec `json:"spec"`
	// status is Herald's report.
	// +optional
	Status CloudAdvertisementStatus `json:"status,omitempty"`
}

// CloudAdvertisementList is a list of CloudAdvertisements.
//
// +kubebuilder:object:root=true
type CloudAdvertisementList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CloudAdvertisement `json:"items"`
}

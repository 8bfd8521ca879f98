package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// NodeSelector is the node selector of the v1beta1 BGPPeer: the same
// matchLabels and matchExpressions as a Kubernetes label selector, except
// that every expression must list at least one value. v1beta2 uses the
// standard label selector.
type NodeSelector struct {
	// matchLabels selects nodes that carry every one of these labels with
	// exactly these values.
	// +optional
	MatchLabels map[string]string `json:"matchLabels,omitempty"`

	// matchExpressions select nodes that satisfy every expression.
	// +optional
	MatchExpressions []MatchExpression `json:"matchExpressions,omitempty"`
}

// MatchExpression is one requirement of a NodeSelector.
type MatchExpression struct {
	// key is the label key the requirement applies to.
	Key string `json:"key"`

	// operator relates the key to the values: In, NotIn, Exists or
	// DoesNotExist.
	Operator string `json:"operator"`

	// values are the label values for In and NotIn. At least one is
	// required.
	// +kubebuilder:validation:MinItems=1
	Values []string `json:"values"`
}

// BGPPeerSpec is the v1beta1 form of a BGP session: a subset of v1beta2's
// fields. See metallb.io/v1beta2 BGPPeer for the meaning of each field.
type BGPPeerSpec struct {
	// myASN is the AS number of the local end of the session. Required and
	// not 0.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	// +kubebuilder:validation:Format=int64
	MyASN uint32 `json:"myASN"`

	// peerASN is the AS number the remote end must present.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	// +kubebuilder:validation:Format=int64
	ASN uint32 `json:"peerASN"`

	// peerAddress is the IPv4 or IPv6 address of the peer.
	Address string `json:"peerAddress"`

	// sourceAddress is the local address the session is opened
	// from.
	// +optional
	SrcAddress string `json:"sourceAddress,omitempty"`

	// peerPort is the peer's TCP port, at most 16384. 0 or unset
	// means 179.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=16384
	Port uint16 `json:"peerPort,omitempty"`

	// holdTime is the BGP hold time proposed to the peer, e.g. "90s". Unset
	// (or "0s", which this version cannot tell apart from unset) means the
	// default of 90s: it converts to an unset v1beta2 holdTime.
	// +optional
	HoldTime metav1.Duration `json:"holdTime,omitzero"`

	// keepaliveTime is the interval between BGP KEEPALIVE messages, e.g.
	// "30s". Unset (or "0s") converts to an unset v1beta2 keepaliveTime.
	// +optional
	KeepaliveTime metav1.Duration `json:"keepaliveTime,omitzero"`

	// routerID is the BGP identifier sent to the peer, as an IPv4 address.
	// +optional
	RouterID string `json:"routerID,omitempty"`

	// nodeSelectors limit the nodes that open this session. Empty means
	// every node.
	// +optional
	NodeSelectors []NodeSelector `json:"nodeSelectors,omitempty"`

	// password is the TCP MD5 signature password for the session.
	// +optional
	Password string `json:"password,omitempty"`

	// bfdProfile names the BFDProfile of a BFD session run alongside this
	// BGP session. Unset means no BFD.
	// +optional
	BFDProfile string `json:"bfdProfile,omitempty"`

	// ebgpMultiHop allows an eBGP peer that is more than one hop away.
	// +optional
	EBGPMultiHop bool `json:"ebgpMultiHop,omitempty"`
}

// BGPPeerStatus is empty.
type BGPPeerStatus struct{}

// BGPPeer v1beta1 is deprecated: use metallb.io/v1beta2, which is the
// version stored and has every field. Objects read or written as v1beta1
// are converted; fields that exist only in v1beta2 are not visible here.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced
// +kubebuilder:subresource:status
// +kubebuilder:deprecatedversion:warning="v1beta1 is deprecated, please use v1beta2"
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=`.spec.peerAddress`
// +kubebuilder:printcolumn:name="ASN",type=string,JSONPath=`.spec.peerASN`
// +kubebuilder:printcolumn:name="BFD Profile",type=string,JSONPath=`.spec.bfdProfile`
// +kubebuilder:printcolumn:name="Multi Hops",type=string,JSONPath=`.spec.ebgpMultiHop`
type BGPPeer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec describes the session.
	// +optional
	Spec BGPPeerSpec `json:"spec,omitempty"`
	// status is unused.
	// +optional
	Status BGPPeerStatus `json:"status,omitempty"`
}

// BGPPeerList is a list of BGPPeers.
//
// +kubebuilder:object:root=true
type BGPPeerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPPeer `json:"items"`
}

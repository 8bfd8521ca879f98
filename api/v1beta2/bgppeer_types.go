package v1beta2

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DynamicASNMode tells which kind of AS number to accept from a peer whose
// number is not given.
type DynamicASNMode string

const (
	// InternalASNMode accepts only a peer with the same AS number as myASN
	// (iBGP).
	InternalASNMode DynamicASNMode = "internal"
	// ExternalASNMode accepts only a peer with an AS number different from
	// myASN (eBGP).
	ExternalASNMode DynamicASNMode = "external"
)

// BGPPeerSpec describes one BGP session that the selected nodes open.
type BGPPeerSpec struct {
	// myASN is the AS number of the local end of the session. Required and
	// not 0; from 1 to 4294967295.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	// +kubebuilder:validation:Format=int64
	MyASN uint32 `json:"myASN"`

	// peerASN is the AS number the remote end must present. Exactly
	// one of peerASN and dynamicASN must be set.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	// +kubebuilder:validation:Format=int64
	ASN uint32 `json:"peerASN,omitempty"`

	// dynamicASN accepts the remote end's AS number without naming it:
	// "internal" accepts only myASN (iBGP), "external" only a number other
	// than myASN (eBGP). Exactly one of peerASN and dynamicASN must be set.
	// +optional
	// +kubebuilder:validation:Enum=internal;external
	DynamicASN DynamicASNMode `json:"dynamicASN,omitempty"`

	// localASN, when set, is the AS number presented to this peer instead of
	// myASN, without adding myASN to the AS path (BGP "local-as ...
	// no-prepend replace-as"). From 1 to 4294967295.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967295
	// +kubebuilder:validation:Format=int64
	LocalASN uint32 `json:"localASN,omitempty"`

	// peerAddress is the IPv4 or IPv6 address of the peer to
	// connect to. Exactly one of peerAddress and interface must be set.
	// +optional
	Address string `json:"peerAddress,omitempty"`

	// interface is the name of a node interface over which to peer without
	// a configured address (unnumbered BGP, using the interface's IPv6
	// link-local address). The name is not checked by the API: a wrong name
	// only keeps the session down. Exactly one of peerAddress and interface
	// must be set.
	// +optional
	Interface string `json:"interface,omitempty"`

	// sourceAddress is the local address the session is opened
	// from; it must be configured on one of the node's interfaces. Unset
	// means the address the kernel's routing picks.
	// +optional
	SrcAddress string `json:"sourceAddress,omitempty"`

	// peerPort is the peer's TCP port. From 1 to 16384; defaults to
	// 179.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=16384
	// +kubebuilder:default:=179
	Port uint16 `json:"peerPort,omitempty"`

	// holdTime is the BGP hold time proposed to the peer (RFC 4271), as a
	// duration such as "90s" or "3m". It is counted in whole seconds and
	// must be 0 (no hold timer, no keepalives) or at least 3s. Unset means
	// 90s, or three times keepaliveTime when only that is set.
	// +optional
	HoldTime *metav1.Duration `json:"holdTime,omitempty"`

	// keepaliveTime is the interval between BGP KEEPALIVE messages, as a
	// duration such as "30s". It must not exceed holdTime. Unset means a
	// third of the hold time.
	// +optional
	KeepaliveTime *metav1.Duration `json:"keepaliveTime,omitempty"`

	// connectTime is how long to wait between attempts to connect to the
	// peer, as a duration in whole seconds from "1s" to "65535s".
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self).getSeconds() >= 1 && duration(self).getSeconds() <= 65535",message="connectTime must be between 1 and 65535 seconds"
	// +kubebuilder:validation:XValidation:rule="duration(self).getMilliseconds() % 1000 == 0",message="connectTime must be a whole number of seconds"
	ConnectTime *metav1.Duration `json:"connectTime,omitempty"`

	// routerID is the BGP identifier sent to the peer, written as an IPv4
	// address. Unset means one chosen from the node's addresses.
	// +optional
	RouterID string `json:"routerID,omitempty"`

	// nodeSelectors limit the nodes that open this session; a node must
	// match at least one selector. Empty means every node.
	// +optional
	NodeSelectors []metav1.LabelSelector `json:"nodeSelectors,omitempty"`

	// password is the TCP MD5 signature password (RFC 2385) for the
	// session. Prefer passwordSecret, which keeps it out of the object.
	// Cannot be combined with passwordSecret.
	// +optional
	Password string `json:"password,omitempty"`

	// passwordSecret refers to a Secret of type kubernetes.io/basic-auth, in
	// Herald's namespace, whose "password" key holds the TCP MD5 password.
	// Cannot be combined with password.
	// +optional
	PasswordSecret corev1.SecretReference `json:"passwordSecret,omitempty"`

	// bfdProfile names the BFDProfile of a BFD session run alongside this
	// BGP session, to detect a failed path quickly. Unset means no BFD.
	// +optional
	BFDProfile string `json:"bfdProfile,omitempty"`

	// enableGracefulRestart asks the peer to keep forwarding to this node's
	// routes while the node's BGP speaker restarts (RFC 4724). It cannot be
	// changed once set, because changing it needs a new session. Defaults to
	// false.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="enableGracefulRestart cannot be changed after creation"
	EnableGracefulRestart bool `json:"enableGracefulRestart,omitempty"`

	// ebgpMultiHop allows an eBGP peer that is more than one hop away. Not
	// allowed for iBGP (peerASN equal to myASN). Defaults to false.
	// +optional
	EBGPMultiHop bool `json:"ebgpMultiHop,omitempty"`

	// vrf is the name of the host VRF the session is opened in.
	// Unset means the default VRF.
	// +optional
	VRFName string `json:"vrf,omitempty"`

	// disableMP is deprecated and has no effect; use
	// dualStackAddressFamily. Defaults to false.
	// +optional
	// +kubebuilder:default:=false
	DisableMP bool `json:"disableMP,omitempty"`

	// dualStackAddressFamily carries both address families over this one
	// session: IPv4 routes over an IPv6 session and IPv6 routes over an IPv4
	// session. Defaults to false: only the session's own family.
	// +optional
	// +kubebuilder:default:=false
	DualStackAddressFamily bool `json:"dualStackAddressFamily,omitempty"`
}

// BGPPeerStatus is empty.
type BGPPeerStatus struct{}

// BGPPeer is a BGP router that the selected nodes peer with to announce
// Service addresses. BGPAdvertisements say what is announced to it.
//
// v1beta2 is the version stored; the deprecated v1beta1 converts to it.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced
// +kubebuilder:subresource:status
// +kubebuilder:storageversion
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

// Hub marks v1beta2 as the version other BGPPeer versions convert through.
func (*BGPPeer) Hub() {}

package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BFDProfileSpec holds the timers and modes of a BFD (Bidirectional
// Forwarding Detection) session. Unset fields take the BFD daemon's
// defaults, given below.
type BFDProfileSpec struct {
	// receiveInterval is the shortest interval, in milliseconds, at which
	// this end can receive BFD control packets. From 10 to 60000; the
	// default is 300.
	// +optional
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=60000
	ReceiveInterval *uint32 `json:"receiveInterval,omitempty"`

	// transmitInterval is the shortest interval, in milliseconds, at which
	// this end wants to send BFD control packets (before jitter). From 10 to
	// 60000; the default is 300.
	// +optional
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=60000
	TransmitInterval *uint32 `json:"transmitInterval,omitempty"`

	// detectMultiplier is how many intervals without a packet from the
	// remote end declare the session down: the detection time is the remote
	// transmission interval times this number. From 2 to 255; the default
	// is 3.
	// +optional
	// +kubebuilder:validation:Minimum=2
	// +kubebuilder:validation:Maximum=255
	DetectMultiplier *uint32 `json:"detectMultiplier,omitempty"`

	// echoInterval is the shortest interval, in milliseconds, at which this
	// end can handle echo packets. From 10 to 60000; the default is 50.
	// +optional
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=60000
	EchoInterval *uint32 `json:"echoInterval,omitempty"`

	// echoMode turns on BFD echo packets. Off by default; not usable on
	// multi-hop sessions, nor for peers that receive IPv6 addresses.
	// +optional
	EchoMode *bool `json:"echoMode,omitempty"`

	// passiveMode makes this end wait for the remote end's control packets
	// instead of starting the session itself. Off by default.
	// +optional
	PassiveMode *bool `json:"passiveMode,omitempty"`

	// minimumTtl is, for multi-hop sessions only, the lowest TTL accepted on
	// an incoming control packet. From 1 to 254; the default is 254.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=254
	MinimumTTL *uint32 `json:"minimumTtl,omitempty"`
}

// BFDProfileStatus is empty.
type BFDProfileStatus struct{}

// BFDProfile is a named set of BFD settings that a BGPPeer can refer to
// (spec.bfdProfile) to detect a failed path in well under a second.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Passive Mode",type=boolean,JSONPath=`.spec.passiveMode`
// +kubebuilder:printcolumn:name="Transmit Interval",type=integer,JSONPath=`.spec.transmitInterval`
// +kubebuilder:printcolumn:name="Receive Interval",type=integer,JSONPath=`.spec.receiveInterval`
// +kubebuilder:printcolumn:name="Multiplier",type=integer,JSONPath=`.spec.detectMultiplier`
type BFDProfile struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec holds the BFD settings.
	// +optional
	Spec BFDProfileSpec `json:"spec,omitempty"`
	// status is unused.
	// +optional
	Status BFDProfileStatus `json:"status,omitempty"`
}

// BFDProfileList is a list of BFDProfiles.
//
// +kubebuilder:object:root=true
type BFDProfileList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BFDProfile `json:"items"`
}

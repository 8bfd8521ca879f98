package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ServiceBGPStatusSpec is empty: the object carries only status.
type ServiceBGPStatusSpec struct{}

// MetalLBServiceBGPStatus reports that a node announces a Service over BGP
// and to which peers.
type MetalLBServiceBGPStatus struct {
	// node is the name of the announcing node. Immutable.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="node is immutable"
	Node string `json:"node,omitempty"`

	// serviceName is the name of the Service this object reports on.
	// Immutable.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="serviceName is immutable"
	ServiceName string `json:"serviceName,omitempty"`

	// serviceNamespace is the namespace of the Service this object reports
	// on. Immutable.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="serviceNamespace is immutable"
	ServiceNamespace string `json:"serviceNamespace,omitempty"`

	// peers names the BGPPeers the node is configured to send the Service's
	// routes to. Whether each session is established is not reflected here.
	// +optional
	Peers []string `json:"peers,omitempty"`
}

// ServiceBGPStatus is written by the speaker of each node that announces a
// LoadBalancer Service over BGP: one object per Service and announcing
// node, in Herald's namespace, labelled metallb.io/node,
// metallb.io/service-name and metallb.io/service-namespace. Users do not
// create it.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.status.node`
// +kubebuilder:printcolumn:name="Service Name",type=string,JSONPath=`.status.serviceName`
// +kubebuilder:printcolumn:name="Service Namespace",type=string,JSONPath=`.status.serviceNamespace`
type ServiceBGPStatus struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is empty.
	// +optional
	Spec ServiceBGPStatusSpec `json:"spec,omitempty"`
	// status reports the announcing node and its peers.
	// +optional
	Status MetalLBServiceBGPStatus `json:"status,omitempty"`
}

// ServiceBGPStatusList is a list of ServiceBGPStatuses.
//
// +kubebuilder:object:root=true
type ServiceBGPStatusList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ServiceBGPStatus `json:"items"`
}

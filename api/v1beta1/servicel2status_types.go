package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ServiceL2StatusSpec is empty: the object carries only status.
type ServiceL2StatusSpec struct{}

// MetalLBServiceL2Status reports which node announces a Service in layer 2
// mode and on which interfaces.
type MetalLBServiceL2Status struct {
	// node is the name of the node that answers for the Service's addresses
	// and so receives their traffic. Immutable.
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

	// interfaces lists the node's interfaces on which the addresses are
	// announced. Empty means every suitable interface.
	// +optional
	Interfaces []InterfaceInfo `json:"interfaces,omitempty"`
}

// InterfaceInfo names one network interface.
type InterfaceInfo struct {
	// name is the interface name on the node, e.g. "eth0".
	// +optional
	Name string `json:"name,omitempty"`
}

// ServiceL2Status is written by the speaker of the node that announces a
// LoadBalancer Service in layer 2 mode: one object per announced Service,
// in Herald's namespace, labelled metallb.io/node,
// metallb.io/service-name and metallb.io/service-namespace. It is deleted
// when the node stops announcing. Users do not create it.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Allocated Node",type=string,JSONPath=`.status.node`
// +kubebuilder:printcolumn:name="Service Name",type=string,JSONPath=`.status.serviceName`
// +kubebuilder:printcolumn:name="Service Namespace",type=string,JSONPath=`.status.serviceNamespace`
type ServiceL2Status struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is empty.
	// +optional
	Spec ServiceL2StatusSpec `json:"spec,omitempty"`
	// status reports the announcing node and interfaces.
	// +optional
	Status MetalLBServiceL2Status `json:"status,omitempty"`
}

// ServiceL2StatusList is a list of ServiceL2Statuses.
//
// +kubebuilder:object:root=true
type ServiceL2StatusList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ServiceL2Status `json:"items"`
}

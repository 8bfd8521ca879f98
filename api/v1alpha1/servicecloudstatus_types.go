package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ServiceCloudStatusStatus is where a Service's floating IP is: written by
// the speaker of the node that holds it, which is the only one that knows
// the server and the last move it made.
type ServiceCloudStatusStatus struct {
	// node holds the floating IP: the cloud has it assigned to its server.
	Node string `json:"node,omitempty"`
	// serviceName and serviceNamespace are the Service's.
	ServiceName      string `json:"serviceName,omitempty"`
	ServiceNamespace string `json:"serviceNamespace,omitempty"`
	// provider is the cloud: hetzner.
	Provider CloudProvider `json:"provider,omitempty"`
	// server is the ID of the node's server in the cloud.
	Server string `json:"server,omitempty"`
	// floatingIP is the ID of the cloud's floating IP.
	FloatingIP string `json:"floatingIP,omitempty"`
	// prefix is the floating IP's address, or for IPv6 the /64 that moves
	// as one.
	Prefix string `json:"prefix,omitempty"`
	// addresses are the Service's addresses the floating IP carries.
	Addresses []string `json:"addresses,omitempty"`
	// since is when this node found or put the floating IP on its server.
	Since metav1.Time `json:"since,omitempty"`
	// lastMove is the assignment this node made, if it made one; absent
	// when the floating IP was already on its server.
	// +optional
	LastMove *FloatingIPMove `json:"lastMove,omitempty"`
}

// FloatingIPMove is one assignment made through the cloud's API.
type FloatingIPMove struct {
	// fromServer held the floating IP before; empty when no server did.
	FromServer string `json:"fromServer,omitempty"`
	// duration of the assignment, from the request until the cloud
	// reported its action done, as text ("2.41s").
	Duration string `json:"duration,omitempty"`
	// requests sent to the API for it, retries included.
	Requests int `json:"requests,omitempty"`
}

// ServiceCloudStatus reports, for a Service whose address is a cloud
// floating IP, which node and server hold it now, as ServiceL2Status does
// for Layer 2. There is at most one per Service: only the node the cloud
// delivers the address to writes one. Its labels are ServiceL2Status's
// (metallb.io/node, metallb.io/service-name, metallb.io/service-namespace).
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Service",type=string,JSONPath=`.status.serviceName`
// +kubebuilder:printcolumn:name="Namespace",type=string,JSONPath=`.status.serviceNamespace`
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.status.node`
// +kubebuilder:printcolumn:name="Server",type=string,JSONPath=`.status.server`
// +kubebuilder:printcolumn:name="Floating IP",type=string,JSONPath=`.status.prefix`
// +kubebuilder:printcolumn:name="Last Move",type=string,JSONPath=`.status.lastMove.duration`
// +kubebuilder:printcolumn:name="Since",type=date,JSONPath=`.status.since`
type ServiceCloudStatus struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// status is the holder's report.
	// +optional
	Status ServiceCloudStatusStatus `json:"status,omitempty"`
}

// ServiceCloudStatusList is a list of ServiceCloudStatuses.
//
// +kubebuilder:object:root=true
type ServiceCloudStatusList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ServiceCloudStatus `json:"items"`
}

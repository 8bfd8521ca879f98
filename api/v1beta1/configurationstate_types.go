package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConfigurationResult is the outcome of a component's last attempt to load
// the configuration.
// +kubebuilder:validation:Enum=Valid;Invalid;Unknown
type ConfigurationResult string

const (
	// ConfigurationResultValid: the configuration loaded without error.
	ConfigurationResultValid ConfigurationResult = "Valid"
	// ConfigurationResultInvalid: the configuration has errors, listed in
	// errorSummary.
	ConfigurationResultInvalid ConfigurationResult = "Invalid"
	// ConfigurationResultUnknown: the component has not reported yet.
	ConfigurationResultUnknown ConfigurationResult = "Unknown"
)

// ConfigurationStateStatus is what one component reports about the
// configuration it loaded.
type ConfigurationStateStatus struct {
	// result is Valid, Invalid or Unknown.
	// +optional
	Result ConfigurationResult `json:"result,omitempty"`

	// errorSummary holds the error messages of the failed checks, one per
	// line. Empty when result is Valid.
	// +optional
	ErrorSummary string `json:"errorSummary,omitempty"`

	// conditions are reported by the component's reconcilers, one per type:
	// configReconcilerValid on speakers, poolReconcilerValid on the
	// controller; reason Reconciled, ConfigurationError or UnknownError.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`
}

// ConfigurationState reports whether a Herald component accepted the
// current configuration. Each component keeps one in Herald's namespace:
// "controller" for the controller and "speaker-<node>" for each speaker,
// labelled metallb.io/component-type (controller or speaker) and, for
// speakers, metallb.io/node-name. The component recreates it if deleted.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Result",type=string,JSONPath=`.status.result`
// +kubebuilder:printcolumn:name="ErrorSummary",type=string,JSONPath=`.status.errorSummary`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ConfigurationState struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// status is the component's report.
	// +optional
	Status ConfigurationStateStatus `json:"status,omitempty"`
}

// ConfigurationStateList is a list of ConfigurationStates.
//
// +kubebuilder:object:root=true
type ConfigurationStateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ConfigurationState `json:"items"`
}

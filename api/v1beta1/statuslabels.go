package v1beta1

// Labels of the per-node status objects (ServiceL2Status, ServiceBGPStatus),
// MetalLB's: the speakers find their own by them.
const (
	LabelStatusNode             = "metallb.io/node"
	LabelStatusServiceName      = "metallb.io/service-name"
	LabelStatusServiceNamespace = "metallb.io/service-namespace"
)

// ServiceStatusLabels are the labels of node's status object for the
// Service namespace/name.
func ServiceStatusLabels(node, namespace, name string) map[string]string {
	return map[string]string{LabelStatusNode: node, LabelStatusServiceName: name, LabelStatusServiceNamespace: namespace}
}

// StatusService is the Service key (namespace/name) a status object's
// labels name.
func StatusService(labels map[string]string) string {
	return labels[LabelStatusServiceNamespace] + "/" + labels[LabelStatusServiceName]
}

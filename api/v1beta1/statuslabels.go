package v1beta1

import (
	"fmt"
	"hash/fnv"
)

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

// StatusName is the name of node's status object for the Service
// namespace/name, prefix "l2", "bgp" or "cloud". It is fixed, not generated:
// a speaker whose cache has not yet seen the object it created gets
// AlreadyExists on a second create instead of a second object.
func StatusName(prefix, node, namespace, name string) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%s\x00%s", node, namespace, name)
	return fmt.Sprintf("%s-%016x", prefix, h.Sum64())
}

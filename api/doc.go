// Package api holds Herald's Kubernetes API: MetalLB's group metallb.io,
// field for field, so that manifests written for MetalLB apply unchanged.
//
// The types live in the versioned packages v1beta1 (every kind, including the
// deprecated BGPPeer v1beta1) and v1beta2 (BGPPeer, the storage version).
// Deep-copy functions and the CRDs in config/crd/bases are generated from
// them with controller-gen; this package only carries the tests that guard
// the generated CRDs.
package api

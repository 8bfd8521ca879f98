// Package api holds Herald's Kubernetes API: MetalLB's group metallb.io,
// field for field, so that manifests written for MetalLB apply unchanged,
// and Herald's own group herald-lb.io for what MetalLB does not have, so
// that metallb.io stays MetalLB's.
//
// The types live in the versioned packages v1beta1 (every metallb.io kind,
// including the deprecated BGPPeer v1beta1), v1beta2 (BGPPeer, the storage
// version) and v1alpha1 (herald-lb.io: CloudAdvertisement). Deep-copy
// functions and the CRDs in config/crd/bases are generated from them with
// controller-gen; this package only carries the tests that guard the
// generated CRDs.
package api

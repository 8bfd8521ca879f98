// Package cachescope says what the controller's and the speaker's informer
// caches hold: Herald's configuration kinds from its own namespace only,
// per-node status kinds from that node only, and no managedFields, which
// are about half of a small object and never read.
//
// Herald's own kinds (herald-lb.io) are not in the scope by default: see
// CloudServed.
package cachescope

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	heraldv1alpha1 "github.com/herald-lb/herald/api/v1alpha1"
	metallbv1beta1 "github.com/herald-lb/herald/api/v1beta1"
	metallbv1beta2 "github.com/herald-lb/herald/api/v1beta2"
)

// Options returns cache options for a component running in namespace.
// The configuration kinds are watched in namespace; so are the kinds in
// inNamespace, restricted to the objects matching their selector when it
// is not nil. Secrets are never cached: a component may read only the ones
// it needs, by name (see ClientOptions and internal/secretwatch).
func Options(namespace string, inNamespace map[client.Object]labels.Selector) cache.Options {
	ns := map[string]cache.Config{namespace: {}}
	by := map[client.Object]cache.ByObject{
		&metallbv1beta1.IPAddressPool{}:    {Namespaces: ns},
		&metallbv1beta1.L2Advertisement{}:  {Namespaces: ns},
		&metallbv1beta1.BGPAdvertisement{}: {Namespaces: ns},
		&metallbv1beta2.BGPPeer{}:          {Namespaces: ns},
		&metallbv1beta1.BFDProfile{}:       {Namespaces: ns},
		&metallbv1beta1.Community{}:        {Namespaces: ns},
	}
	for obj, sel := range inNamespace {
		by[obj] = cache.ByObject{Namespaces: ns, Label: sel}
	}
	return cache.Options{ByObject: by, DefaultTransform: cache.TransformStripManagedFields()}
}

// ClientOptions keeps Secrets out of the cache: a cached read would start an
// informer on every Secret, which needs the right to list them all. Secret
// reads go to the API server, or through internal/secretwatch.
func ClientOptions() client.Options {
	return client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.Secret{}}}}
}

// CloudServed reports whether the API server serves CloudAdvertisements
// and ServiceCloudStatuses (herald-lb.io), that is whether their CRDs,
// which come together in charts/herald/crds, are applied. A component adds
// the kind to its cache (in Options' inNamespace) only when it is: a cache
// asked to hold a kind the server does not know fails to start, and Helm
// never creates a chart's new CRDs on upgrade, so after `helm upgrade`
// Herald runs without this one until the operator applies charts/herald/crds.
func CloudServed(cfg *rest.Config) (bool, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return false, fmt.Errorf("discovery: %w", err)
	}
	gv := heraldv1alpha1.GroupVersion.String()
	list, err := dc.ServerResourcesForGroupVersion(gv)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("discover %s: %w", gv, err)
	}
	served := func(name string) bool {
		return slices.ContainsFunc(list.APIResources, func(r metav1.APIResource) bool { return r.Name == name })
	}
	return served("cloudadvertisements") && served("servicecloudstatuses"), nil
}

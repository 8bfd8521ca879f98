// Package cachescope says what the controller's and the speaker's informer
// caches hold: Herald's configuration kinds from its own namespace only,
// per-node status kinds from that node only, and no managedFields, which
// are about half of a small object and never read.
package cachescope

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

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

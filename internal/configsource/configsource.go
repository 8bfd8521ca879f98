// Package configsource reads Herald's configuration objects from the API
// (or a cache of it) into the plain form internal/config validates. The
// controller, the webhook and the speaker all read it the same way.
package configsource

import (
	"context"
	"fmt"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	heraldv1alpha1 "github.com/herald-lb/herald/api/v1alpha1"
	metallbv1beta1 "github.com/herald-lb/herald/api/v1beta1"
	metallbv1beta2 "github.com/herald-lb/herald/api/v1beta2"
	"github.com/herald-lb/herald/internal/config"
)

// Option changes what Load reads.
type Option func(*options)

type options struct {
	cloud client.Reader
}

// WithCloud makes Load read CloudAdvertisements (herald-lb.io) as well,
// from r: a cache that holds the kind in Herald's namespace (see
// cachescope.CloudServed), or an uncached reader. Without it they are left
// out, because listing the kind through a cache that was not told about it
// would start a cluster-wide informer that RBAC refuses.
//
// While the kind's CRD is not applied (Helm does not create a chart's new
// CRDs on upgrade) there are none, and loading goes on without them.
func WithCloud(r client.Reader) Option {
	return func(o *options) { o.cloud = r }
}

// Load reads every configuration object in the namespace, and the
// Namespaces and Secrets the configuration refers to, as one set. It also
// returns the objects by "Kind/name", for Events about them.
//
// Secrets are read one by one, by the names the BGPPeers give, never
// listed: Herald's ServiceAccounts may read only the Secrets they need. A
// CloudAdvertisement's token Secret is not read at all: only the speakers
// may, to call the cloud's API.
func Load(ctx context.Context, c client.Reader, namespace string, opts ...Option) (config.Resources, map[string]client.Object, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	res := config.Resources{Namespace: namespace}
	objs := map[string]client.Object{}
	in := client.InNamespace(namespace)
	var (
		pools metallbv1beta1.IPAddressPoolList
		l2    metallbv1beta1.L2AdvertisementList
		bgp   metallbv1beta1.BGPAdvertisementList
		peers metallbv1beta2.BGPPeerList
		bfds  metallbv1beta1.BFDProfileList
		comms metallbv1beta1.CommunityList
		nss   corev1.NamespaceList
	)
	for _, l := range []struct {
		list client.ObjectList
		opts []client.ListOption
	}{
		{&pools, []client.ListOption{in}}, {&l2, []client.ListOption{in}}, {&bgp, []client.ListOption{in}},
		{&peers, []client.ListOption{in}}, {&bfds, []client.ListOption{in}}, {&comms, []client.ListOption{in}},
		{&nss, nil},
	} {
		if err := c.List(ctx, l.list, l.opts...); err != nil {
			return res, nil, fmt.Errorf("list %T: %w", l.list, err)
		}
	}
	res.Pools, res.L2Advertisements, res.BGPAdvertisements = pools.Items, l2.Items, bgp.Items
	res.BGPPeers, res.BFDProfiles, res.Communities = peers.Items, bfds.Items, comms.Items
	res.Namespaces = nss.Items
	ReadSecrets(ctx, c, &res)
	for i := range pools.Items {
		objs["IPAddressPool/"+pools.Items[i].Name] = &pools.Items[i]
	}
	for i := range l2.Items {
		objs["L2Advertisement/"+l2.Items[i].Name] = &l2.Items[i]
	}
	for i := range bgp.Items {
		objs["BGPAdvertisement/"+bgp.Items[i].Name] = &bgp.Items[i]
	}
	for i := range peers.Items {
		objs["BGPPeer/"+peers.Items[i].Name] = &peers.Items[i]
	}
	for i := range bfds.Items {
		objs["BFDProfile/"+bfds.Items[i].Name] = &bfds.Items[i]
	}
	for i := range comms.Items {
		objs["Community/"+comms.Items[i].Name] = &comms.Items[i]
	}
	if o.cloud != nil {
		var cloud heraldv1alpha1.CloudAdvertisementList
		err := o.cloud.List(ctx, &cloud, in)
		switch {
		case meta.IsNoMatchError(err) || apierrors.IsNotFound(err):
			// The CRD is not applied yet: no CloudAdvertisements.
		case err != nil:
			return res, nil, fmt.Errorf("list %T: %w", &cloud, err)
		}
		res.CloudAdvertisements = cloud.Items
		for i := range cloud.Items {
			objs[config.KindCloudAdvertisement+"/"+cloud.Items[i].Name] = &cloud.Items[i]
		}
	}
	return res, objs, nil
}

// ReadSecrets adds to res the password Secrets its BGPPeers name that it
// does not hold yet. A Secret that does not exist is left out (the peer
// waits for it); one that cannot be read is recorded with the reason, so
// the problem says why rather than "does not exist".
func ReadSecrets(ctx context.Context, c client.Reader, res *config.Resources) {
	// Copies: res may share them with another Resources (the webhook's
	// before and after).
	res.Secrets = slices.Clone(res.Secrets)
	res.SecretErrors = maps.Clone(res.SecretErrors)
	have := map[string]bool{}
	for _, s := range res.Secrets {
		have[s.Name] = true
	}
	for _, p := range res.BGPPeers {
		ref := p.Spec.PasswordSecret
		if ref.Name == "" || (ref.Namespace != "" && ref.Namespace != res.Namespace) || have[ref.Name] {
			continue
		}
		have[ref.Name] = true
		var sec corev1.Secret
		err := c.Get(ctx, client.ObjectKey{Namespace: res.Namespace, Name: ref.Name}, &sec)
		switch {
		case err == nil:
			res.Secrets = append(res.Secrets, sec)
		case apierrors.IsNotFound(err):
		default:
			if res.SecretErrors == nil {
				res.SecretErrors = map[string]string{}
			}
			res.SecretErrors[ref.Name] = err.Error()
		}
	}
}

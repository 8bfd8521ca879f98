// Package configsource reads Herald's configuration objects from the API
// (or a cache of it) into the plain form internal/config validates. The
// controller, the webhook and the speaker all read it the same way.
package configsource

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metallbv1beta1 "github.com/herald-lb/herald/api/v1beta1"
	metallbv1beta2 "github.com/herald-lb/herald/api/v1beta2"
	"github.com/herald-lb/herald/internal/config"
)

// Load reads every configuration object in the namespace, and the
// Namespaces and Secrets the configuration refers to, as one set. It also
// returns the objects by "Kind/name", for Events about them.
func Load(ctx context.Context, c client.Reader, namespace string) (config.Resources, map[string]client.Object, error) {
	res := config.Resources{Namespace: namespace}
	objs := map[string]client.Object{}
	in := client.InNamespace(namespace)
	var (
		pools  metallbv1beta1.IPAddressPoolList
		l2     metallbv1beta1.L2AdvertisementList
		bgp    metallbv1beta1.BGPAdvertisementList
		peers  metallbv1beta2.BGPPeerList
		bfds   metallbv1beta1.BFDProfileList
		comms  metallbv1beta1.CommunityList
		nss    corev1.NamespaceList
		secret corev1.SecretList
	)
	for _, l := range []struct {
		list client.ObjectList
		opts []client.ListOption
	}{
		{&pools, []client.ListOption{in}}, {&l2, []client.ListOption{in}}, {&bgp, []client.ListOption{in}},
		{&peers, []client.ListOption{in}}, {&bfds, []client.ListOption{in}}, {&comms, []client.ListOption{in}},
		{&nss, nil}, {&secret, []client.ListOption{in}},
	} {
		if err := c.List(ctx, l.list, l.opts...); err != nil {
			return res, nil, fmt.Errorf("list %T: %w", l.list, err)
		}
	}
	res.Pools, res.L2Advertisements, res.BGPAdvertisements = pools.Items, l2.Items, bgp.Items
	res.BGPPeers, res.BFDProfiles, res.Communities = peers.Items, bfds.Items, comms.Items
	res.Namespaces, res.Secrets = nss.Items, secret.Items
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
	return res, objs, nil
}

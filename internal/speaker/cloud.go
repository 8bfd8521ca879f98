package speaker

import (
	"context"
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"

	"github.com/herald-lb/herald/internal/announce/floatingip"
	"github.com/herald-lb/herald/internal/cloud"
	"github.com/herald-lb/herald/internal/cloud/hetzner"
	"github.com/herald-lb/herald/internal/cloudlease"
	"github.com/herald-lb/herald/internal/config"
	"github.com/herald-lb/herald/internal/secretwatch"
	"github.com/herald-lb/herald/internal/version"
)

// cloudMode is the cloud floating-IP mode: the elected speaker calls the
// cloud's API with the token its CloudAdvertisement names (read by name:
// RBAC grants the speakers that one Secret), and a Lease per floating IP
// arbitrates between speakers that both believe they own it.
func cloudMode(ctx context.Context, cs kubernetes.Interface, secrets *secretwatch.Watcher, opts Options, resync func(), event func(svc, typ, reason, msg string), reg prometheus.Registerer) (*floatingip.Announcer, error) {
	arb, err := cloudlease.New(cs.CoordinationV1(), opts.Namespace, cloudlease.Options{Duration: opts.CloudLease, HoldDown: opts.CloudHoldDown})
	if err != nil {
		return nil, err
	}
	return floatingip.New(ctx, floatingip.Options{
		Node: opts.NodeName,
		Token: func(ctx context.Context, name, key string) (string, error) {
			sec, err := secrets.Get(ctx, name)
			if err != nil {
				return "", err
			}
			tok := strings.TrimSpace(string(sec.Data[key]))
			if tok == "" {
				return "", fmt.Errorf("Secret %s has no %q", name, key)
			}
			return tok, nil
		},
		NewProvider: func(provider, token string, budget *cloud.Budget) (cloud.Provider, error) {
			if provider != config.ProviderHetzner {
				return nil, fmt.Errorf("unknown provider %q", provider)
			}
			return hetzner.New(hetzner.Options{Token: token, Endpoint: opts.CloudEndpoint, Budget: budget, Version: version.Version})
		},
		Arbiter: arb, Event: event, Resync: resync, LeaseDuration: opts.CloudLease, HoldDown: opts.CloudHoldDown,
		Log: opts.Log.WithName("cloud"), Registry: reg,
	}), nil
}

package speaker

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

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
func cloudMode(ctx context.Context, cs kubernetes.Interface, c client.Client, holder func(string) string, secrets *secretwatch.Watcher, opts Options, resync func(), event func(svc, typ, reason, msg string), report func(floatingip.NodeReport), reg prometheus.Registerer) (*floatingip.Announcer, error) {
	arb, err := cloudlease.New(cs.CoordinationV1(), opts.Namespace, cloudlease.Options{Duration: opts.CloudLease, HoldDown: opts.CloudHoldDown})
	if err != nil {
		return nil, err
	}
	return floatingip.New(ctx, floatingip.Options{
		Node: opts.NodeName, Namespace: opts.Namespace, Client: c,
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
		Arbiter: arb, Holder: holder, Event: event, Resync: resync, LeaseDuration: opts.CloudLease, HoldDown: opts.CloudHoldDown,
		Log: opts.Log.WithName("cloud"), Registry: reg, NodeReport: report,
	}), nil
}

// cloudLeases selects the floating IPs' Leases, which the speaker caches:
// the election reads who holds each IP.
func cloudLeases() labels.Selector {
	return labels.SelectorFromSet(cloudlease.Labels())
}

// leaseHolder reads the holder of the Lease of the floating IP with an
// election key from the cache; "" when none holds it, or it cannot be read
// (the plain election then decides, and the Lease still arbitrates).
func leaseHolder(c client.Reader, namespace string) func(string) string {
	return func(key string) string {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		var l coordinationv1.Lease
		if err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: cloudlease.LeaseName(key)}, &l); err != nil {
			return ""
		}
		return cloudlease.Holder(&l)
	}
}

// holderChanged passes a Lease's creation, deletion and change of holder to
// a sync, not its renewals: three per lease per floating IP.
func holderChanged() predicate.Funcs {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, okOld := e.ObjectOld.(*coordinationv1.Lease)
		n, okNew := e.ObjectNew.(*coordinationv1.Lease)
		return !okOld || !okNew || cloudlease.Holder(o) != cloudlease.Holder(n)
	}}
}

// ConditionCloudServer is the condition of a speaker's ConfigurationState
// that says whether its node can hold cloud floating IPs; present only
// while a CloudAdvertisement selects the node.
const ConditionCloudServer = "cloudServerFound"

// reportCloudNode puts the cloud mode's verdict on this node where an
// operator looks: a condition on the speaker's ConfigurationState (shown
// by herald status) and an Event on the Node.
func (s *speaker) reportCloudNode(ctx context.Context) func(floatingip.NodeReport) {
	return func(r floatingip.NodeReport) {
		var cond *metav1.Condition
		switch {
		case !r.Selected:
		case r.Eligible:
			cond = &metav1.Condition{Status: metav1.ConditionTrue, Reason: "ServerFound", Message: r.Message}
		default:
			cond = &metav1.Condition{Status: metav1.ConditionFalse, Reason: "NoCloudServer", Message: r.Message}
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := s.state.SetCondition(wctx, ConditionCloudServer, cond); err != nil {
			s.log.Error(err, "ConfigurationState", "condition", ConditionCloudServer)
		}
		if !r.Selected {
			return
		}
		typ, reason := corev1.EventTypeNormal, "FloatingIPEligible"
		if !r.Eligible {
			typ, reason = corev1.EventTypeWarning, "FloatingIPNotEligible"
			s.log.Info("this node cannot hold cloud floating IPs", "why", r.Message)
		}
		var node corev1.Node
		if err := s.client.Get(wctx, types.NamespacedName{Name: s.opts.NodeName}, &node); err == nil {
			s.recorder.Eventf(&node, nil, typ, reason, "CloudServer", "%s", r.Message)
		}
	}
}

// Package controller is Herald's controller: it gives LoadBalancer Services
// their addresses (through internal/ipam and internal/config), keeps pool
// status and ConfigurationState, and serves the validating webhook.
package controller

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/source"

	heraldv1alpha1 "github.com/herald-lb/herald/api/v1alpha1"
	metallbv1beta1 "github.com/herald-lb/herald/api/v1beta1"
	metallbv1beta2 "github.com/herald-lb/herald/api/v1beta2"
	"github.com/herald-lb/herald/internal/cachescope"
	"github.com/herald-lb/herald/internal/configstate"
	"github.com/herald-lb/herald/internal/eventnote"
	"github.com/herald-lb/herald/internal/lbclass"
	"github.com/herald-lb/herald/internal/metricsauth"
	"github.com/herald-lb/herald/internal/scheme"
	"github.com/herald-lb/herald/internal/secretwatch"
)

// Options configure the controller.
type Options struct {
	// Namespace holds the configuration CRs.
	Namespace string
	// LBClass: empty handles Services without spec.loadBalancerClass; X
	// handles only class X.
	LBClass string
	// MetricsAddr serves /metrics ("0" disables); MetricsSecure serves it
	// over HTTPS to authorized callers only (internal/metricsauth).
	MetricsAddr   string
	MetricsSecure bool
	// HealthAddr serves /healthz and /readyz ("0" disables).
	HealthAddr string
	// LeaderElection runs one active replica at a time on a Lease.
	LeaderElection   bool
	LeaderElectionID string
	// Webhook, when set, serves the validating webhook.
	Webhook *WebhookOptions
	// PoolStatusInterval bounds how often pool status is written.
	PoolStatusInterval time.Duration
	// Registry receives the metrics; nil means controller-runtime's, which
	// the metrics server serves. Tests running two controllers in one
	// process give each its own.
	Registry prometheus.Registerer
	Log      logr.Logger

	// cloudCached is set by NewManager when the API server serves
	// CloudAdvertisements, which the cache then holds and Setup watches.
	cloudCached bool
}

// Scheme returns a scheme with the Kubernetes and metallb.io types.
func Scheme() (*runtime.Scheme, error) { return scheme.New() }

// Run starts the controller and blocks until ctx ends.
func Run(ctx context.Context, cfg *rest.Config, opts Options) error {
	mgr, err := NewManager(cfg, opts)
	if err != nil {
		return err
	}
	return mgr.Start(ctx)
}

// NewManager builds the controller's manager without starting it.
func NewManager(cfg *rest.Config, opts Options) (manager.Manager, error) {
	if opts.Namespace == "" {
		return nil, fmt.Errorf("namespace is required")
	}
	if opts.LeaderElectionID == "" {
		opts.LeaderElectionID = "herald-controller"
	}
	if opts.PoolStatusInterval == 0 {
		opts.PoolStatusInterval = 500 * time.Millisecond
	}
	scheme, err := Scheme()
	if err != nil {
		return nil, err
	}
	inNamespace := map[client.Object]labels.Selector{&metallbv1beta1.ConfigurationState{}: nil}
	if opts.cloudCached, err = cachescope.CloudServed(cfg); err != nil {
		return nil, err
	}
	if opts.cloudCached {
		inNamespace[&heraldv1alpha1.CloudAdvertisement{}] = nil
	} else {
		opts.Log.Info("CloudAdvertisements are not served (their CRD is not applied): they are read from the API server " +
			"when the configuration is loaded, and watched only after a restart; apply charts/herald/crds")
	}
	mopts := ctrl.Options{
		Scheme:                        scheme,
		Logger:                        opts.Log,
		Cache:                         cachescope.Options(opts.Namespace, inNamespace),
		Client:                        cachescope.ClientOptions(),
		Metrics:                       metricsauth.Options(opts.MetricsAddr, opts.MetricsSecure),
		HealthProbeBindAddress:        opts.HealthAddr,
		LeaderElection:                opts.LeaderElection,
		LeaderElectionID:              opts.LeaderElectionID,
		LeaderElectionNamespace:       opts.Namespace,
		LeaderElectionReleaseOnCancel: true,
	}
	mgr, err := ctrl.NewManager(cfg, mopts)
	if err != nil {
		return nil, fmt.Errorf("new manager: %w", err)
	}
	if err := Setup(mgr, opts); err != nil {
		return nil, err
	}
	if opts.HealthAddr != "0" && opts.HealthAddr != "" {
		if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
			return nil, err
		}
		if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
			return nil, err
		}
	}
	return mgr, nil
}

// skipNameValidation lets tests run several controllers in one process;
// controller-runtime otherwise refuses a second controller of one name.
var skipNameValidation = true

// Setup registers the controller's reconcilers and runnables with mgr.
func Setup(mgr manager.Manager, opts Options) error {
	log := opts.Log
	if log.GetSink() == nil {
		log = mgr.GetLogger()
	}
	reg := opts.Registry
	if reg == nil {
		reg = crmetrics.Registry
	}
	m := newMetrics(reg)
	state := newAllocState()
	recorder := eventnote.Recorder(mgr.GetEventRecorder("metallb-controller"))

	retryCh := make(chan event.TypedGenericEvent[*corev1.Service], 1024)
	retry := func(keys []string) {
		// Sending may block while the workqueue drains; it must not hold
		// up the caller, which may be a reconcile.
		go func() {
			for _, k := range keys {
				ns, name, _ := strings.Cut(k, "/")
				retryCh <- event.TypedGenericEvent[*corev1.Service]{Object: &corev1.Service{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}}
			}
		}()
	}
	svcR := &serviceReconciler{
		client: mgr.GetClient(), state: state, recorder: recorder, metrics: m,
		lbClass: opts.LBClass, log: log.WithName("service"), retry: retry,
	}
	err := ctrl.NewControllerManagedBy(mgr).
		Named("service").
		For(&corev1.Service{}).
		WithOptions(crcontroller.Options{SkipNameValidation: &skipNameValidation}).
		WatchesRawSource(source.Channel(retryCh, &handler.TypedEnqueueRequestForObject[*corev1.Service]{})).
		Complete(svcR)
	if err != nil {
		return fmt.Errorf("service controller: %w", err)
	}

	// BGP password Secrets are read by name, each through a watch of its
	// own that requeues the configuration when the Secret changes.
	cs, err := kubernetes.NewForConfig(mgr.GetConfig())
	if err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	secretEvents := make(chan event.GenericEvent, 1)
	secrets := secretwatch.New(cs, opts.Namespace, func() {
		select {
		case secretEvents <- event.GenericEvent{Object: &corev1.Secret{}}:
		default: // one pending reload reads every Secret anew
		}
	})
	if err := mgr.Add(secrets); err != nil {
		return err
	}
	cloudReader := client.Reader(mgr.GetAPIReader())
	if opts.cloudCached {
		cloudReader = mgr.GetClient()
	}
	cfgR := &configReconciler{
		client: secretwatch.Client{Client: mgr.GetClient(), Secrets: secrets}, reader: mgr.GetAPIReader(), namespace: opts.Namespace,
		cloud: cloudReader,
		state: state, metrics: m, recorder: recorder, log: log.WithName("config"), services: svcR,
		configState: configstate.Controller(mgr.GetClient(), opts.Namespace),
		enqueueAll: func(ctx context.Context) {
			var list corev1.ServiceList
			if err := mgr.GetClient().List(ctx, &list); err != nil {
				log.Error(err, "list services to serve")
				return
			}
			keys := make([]string, 0, len(list.Items))
			for i := range list.Items {
				if lbclass.Handles(&list.Items[i], opts.LBClass) {
					keys = append(keys, list.Items[i].Namespace+"/"+list.Items[i].Name)
				}
			}
			retry(keys)
		},
	}
	one := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []ctrl.Request {
		return []ctrl.Request{{NamespacedName: types.NamespacedName{Namespace: opts.Namespace, Name: "config"}}}
	})
	b := ctrl.NewControllerManagedBy(mgr).Named("config").
		WithOptions(crcontroller.Options{SkipNameValidation: &skipNameValidation})
	for _, obj := range []client.Object{
		&metallbv1beta1.IPAddressPool{}, &metallbv1beta1.L2Advertisement{}, &metallbv1beta1.BGPAdvertisement{},
		&metallbv1beta2.BGPPeer{}, &metallbv1beta1.BFDProfile{}, &metallbv1beta1.Community{},
		&corev1.Namespace{},
	} {
		b = b.Watches(obj, one)
	}
	if opts.cloudCached {
		b = b.Watches(&heraldv1alpha1.CloudAdvertisement{}, one)
	}
	b = b.WatchesRawSource(source.Channel(secretEvents, one))
	// A tick source makes the first load happen even with no configuration
	// objects at all.
	start := make(chan event.GenericEvent, 1)
	start <- event.GenericEvent{Object: &metallbv1beta1.IPAddressPool{}}
	b = b.WatchesRawSource(source.Channel(start, one))
	if err := b.Complete(cfgR); err != nil {
		return fmt.Errorf("config controller: %w", err)
	}

	if err := mgr.Add(&poolStatusWriter{
		client: mgr.GetClient(), state: state, metrics: m, namespace: opts.Namespace,
		interval: opts.PoolStatusInterval, log: log.WithName("pool-status"),
	}); err != nil {
		return err
	}
	if err := mgr.Add(&memberlistSecret{client: mgr.GetClient(), namespace: opts.Namespace, log: log.WithName("memberlist-secret")}); err != nil {
		return err
	}
	if opts.Webhook != nil {
		if err := setupWebhook(mgr, opts); err != nil {
			return err
		}
	}
	return nil
}

package speaker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	heraldv1alpha1 "github.com/herald-lb/herald/api/v1alpha1"
	metallbv1beta1 "github.com/herald-lb/herald/api/v1beta1"
	metallbv1beta2 "github.com/herald-lb/herald/api/v1beta2"
	"github.com/herald-lb/herald/internal/announce"
	"github.com/herald-lb/herald/internal/announce/bgproutes"
	"github.com/herald-lb/herald/internal/announce/layer2"
	"github.com/herald-lb/herald/internal/cachescope"
	"github.com/herald-lb/herald/internal/config"
	"github.com/herald-lb/herald/internal/configsource"
	"github.com/herald-lb/herald/internal/configstate"
	"github.com/herald-lb/herald/internal/eventnote"
	"github.com/herald-lb/herald/internal/linkdamp"
	"github.com/herald-lb/herald/internal/membership"
	"github.com/herald-lb/herald/internal/metricsauth"
	"github.com/herald-lb/herald/internal/scheme"
	"github.com/herald-lb/herald/internal/secretwatch"
)

// Options configure a speaker.
type Options struct {
	NodeName  string
	Namespace string
	LBClass   string
	// MetricsAddr serves /metrics ("0" disables); MetricsSecure serves it
	// over HTTPS to authorized callers only (internal/metricsauth).
	MetricsAddr   string
	MetricsSecure bool
	// HealthAddr serves /healthz and /readyz ("" or "0" disables); ready
	// means Layer 2 can open its raw socket.
	HealthAddr string
	// Memberlist: bind address (empty: the node's InternalIP), port, and
	// the detection profile ("fast" or "lan"). Disabled falls back to Node
	// Ready conditions, which is much slower (the node lifecycle controller
	// marks a node NotReady after 40 s by default).
	MLBindAddr string
	MLBindPort int
	MLProfile  string
	MLDisabled bool
	// MLUnencrypted gossips in clear, without the memberlist Secret.
	// Otherwise the speaker joins only once it can read the key, and
	// announces nothing over Layer 2 until then.
	MLUnencrypted bool
	// HandoverDelay is how long a stopping speaker keeps answering after it
	// has left the membership, while the next owners take over.
	HandoverDelay time.Duration
	// CloudEndpoint is the cloud API's base URL; empty means the
	// provider's own (a lab points it at its stand-in).
	CloudEndpoint string
	// CloudLease is the Lease per floating IP (cloudlease's 15 s when 0):
	// a dead owner's IP moves once it expires. CloudHoldDown is how long
	// an IP stays with a new holder (30 s when 0).
	CloudLease, CloudHoldDown time.Duration
	// Resync re-checks everything at this interval, on top of events.
	Resync   time.Duration
	Registry prometheus.Registerer
	Log      logr.Logger
}

// Run runs the speaker until ctx ends, then hands its addresses over.
func Run(ctx context.Context, cfg *rest.Config, opts Options) error {
	if opts.NodeName == "" {
		return errors.New("the node name is required (--node-name)")
	}
	if opts.HandoverDelay == 0 {
		opts.HandoverDelay = time.Second
	}
	if opts.Resync == 0 {
		opts.Resync = 10 * time.Second
	}
	if opts.MLBindPort == 0 {
		opts.MLBindPort = 7946
	}
	sch, err := scheme.New()
	if err != nil {
		return err
	}
	thisNode := labels.SelectorFromSet(labels.Set{metallbv1beta1.LabelStatusNode: opts.NodeName})
	inNamespace := map[client.Object]labels.Selector{
		// Status objects: this node's only; the speaker never reads others'.
		&metallbv1beta1.ServiceL2Status{}:  thisNode,
		&metallbv1beta1.ServiceBGPStatus{}: thisNode,
		// Its own ConfigurationState, read on every sync at no cost.
		&metallbv1beta1.ConfigurationState{}: labels.SelectorFromSet(labels.Set{configstate.LabelNodeName: opts.NodeName}),
	}
	cloudCached, err := cachescope.CloudServed(cfg)
	if err != nil {
		return err
	}
	if cloudCached {
		inNamespace[&heraldv1alpha1.CloudAdvertisement{}] = nil
		inNamespace[&heraldv1alpha1.ServiceCloudStatus{}] = thisNode
		inNamespace[&coordinationv1.Lease{}] = cloudLeases()
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 sch,
		Logger:                 opts.Log,
		Cache:                  cachescope.Options(opts.Namespace, inNamespace),
		Client:                 cachescope.ClientOptions(),
		Metrics:                metricsauth.Options(opts.MetricsAddr, opts.MetricsSecure),
		HealthProbeBindAddress: cmp.Or(opts.HealthAddr, "0"),
	})
	if err != nil {
		return fmt.Errorf("new manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("raw-socket", rawSocketCheck); err != nil {
		return fmt.Errorf("readiness check: %w", err)
	}
	if err := rawSocketCheck(nil); err != nil {
		opts.Log.Error(err, "Layer 2 cannot answer: the speaker stays unready")
	}
	reg := opts.Registry
	if reg == nil {
		reg = crmetrics.Registry
	}
	s := &speaker{
		opts: opts, client: mgr.GetClient(), reader: mgr.GetAPIReader(),
		recorder: eventnote.Recorder(mgr.GetEventRecorder("metallb-speaker")),
		log:      opts.Log, keyGauge: newKeyUnavailable(reg), membersGauge: newMembers(reg),
		holdDown: newHoldDown(reg), linkUp: true,
		kick: make(chan struct{}, 1),
	}
	// BGP password Secrets are read by name, each through a watch that
	// resyncs on a change (the speaker may not list Secrets).
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("secrets: %w", err)
	}
	secrets := secretwatch.New(cs, opts.Namespace, s.trigger)
	defer secrets.Stop()
	s.client = secretwatch.Client{Client: s.client, Secrets: secrets}
	// Every watched change kicks one sync; the sync looks at everything.
	kick := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []ctrl.Request {
		s.trigger()
		return nil
	})
	b := ctrl.NewControllerManagedBy(mgr).Named("speaker-watch").
		WithOptions(crcontroller.Options{SkipNameValidation: ptrTrue()})
	for _, obj := range []client.Object{
		&corev1.Service{}, &discoveryv1.EndpointSlice{}, &corev1.Node{}, &corev1.Namespace{},
		&metallbv1beta1.IPAddressPool{}, &metallbv1beta1.L2Advertisement{}, &metallbv1beta1.Community{},
		&metallbv1beta1.BGPAdvertisement{}, &metallbv1beta2.BGPPeer{}, &metallbv1beta1.BFDProfile{},
		&metallbv1beta1.ConfigurationState{},
	} {
		b = b.Watches(obj, kick)
	}
	s.cloudReader = mgr.GetAPIReader()
	if cloudCached {
		b = b.Watches(&heraldv1alpha1.CloudAdvertisement{}, kick).
			Watches(&coordinationv1.Lease{}, kick, builder.WithPredicates(holderChanged()))
		s.cloudReader = mgr.GetClient()
	}
	if err := b.Complete(reconcileNothing{}); err != nil {
		return err
	}

	mgrCtx, stopMgr := context.WithCancel(context.Background())
	defer stopMgr()
	mgrDone := make(chan error, 1)
	go func() { mgrDone <- mgr.Start(mgrCtx) }()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		stopMgr()
		<-mgrDone
		return fmt.Errorf("cache did not sync")
	}

	slogger := slog.New(logr.ToSlogHandler(opts.Log))
	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	s.state = configstate.Speaker(s.client, opts.Namespace, opts.NodeName)
	// Without the CRD (an upgrade before charts/herald/crds is applied)
	// no ServiceCloudStatus is written.
	var cloudClient client.Client
	var holder func(string) string
	if cloudCached {
		cloudClient, holder = s.client, leaseHolder(s.client, opts.Namespace)
	}
	cloudAnnouncer, err := cloudMode(runCtx, cs, cloudClient, holder, secrets, opts, s.trigger, s.event, s.reportCloudNode(runCtx), reg)
	if err != nil {
		stopMgr()
		<-mgrDone
		return err
	}
	// The modes, in the order they sync. A new mode is one more line.
	s.loop = announce.NewLoop(opts.NodeName, []announce.Announcer{
		layer2.New(runCtx, layer2.Options{
			Node: opts.NodeName, Namespace: opts.Namespace, Client: s.client, Log: opts.Log.WithName("layer2"),
			Event: s.event, Resync: s.trigger, HandoverDelay: opts.HandoverDelay, Registry: reg,
		}),
		bgproutes.New(runCtx, bgproutes.Options{
			Node: opts.NodeName, Namespace: opts.Namespace, Client: s.client, Recorder: s.recorder,
			Log: opts.Log.WithName("bgp"), Registry: reg,
		}),
		cloudAnnouncer,
	}, announcedGauge(reg), s.event)

	if !opts.MLDisabled {
		if err := s.prepareMembership(ctx, runCtx, slogger); err != nil {
			stopMgr()
			<-mgrDone
			return err
		}
	}

	s.watchLinks(runCtx)
	s.run(ctx)

	// Every mode stops its own way; Layer 2's handover starts once the
	// node has left the membership, BGP's Cease does not wait for it.
	stopCtx, cancelStop := context.WithTimeout(context.Background(), opts.HandoverDelay+3*time.Second)
	s.loop.Shutdown(stopCtx, func() {
		if s.ml != nil {
			if err := s.ml.Leave(500 * time.Millisecond); err != nil {
				s.log.Error(err, "leave memberlist")
			}
		}
	})
	cancelStop()
	stopRun()
	stopMgr()
	return <-mgrDone
}

type reconcileNothing struct{}

func (reconcileNothing) Reconcile(context.Context, ctrl.Request) (ctrl.Result, error) {
	return ctrl.Result{}, nil
}

func ptrTrue() *bool { b := true; return &b }

type speaker struct {
	opts     Options
	client   client.Client
	reader   client.Reader
	recorder events.EventRecorder
	log      logr.Logger
	keyGauge prometheus.Gauge
	// membersGauge is herald_speaker_memberlist_members.
	membersGauge prometheus.Gauge
	// holdDown is herald_speaker_link_hold_down.
	holdDown prometheus.Gauge
	loop     *announce.Loop
	state    *configstate.Writer
	// cloudReader reads CloudAdvertisements: the cache when their CRD is
	// served at start, else the API server.
	cloudReader client.Reader
	gossip      *gossip                // nil with memberlist disabled
	ml          *membership.Membership // nil until joined

	kick chan struct{}

	mu   sync.Mutex
	cfg  *config.Config   // the configuration in force
	last config.Resources // what cfg was built from
	// services are the LoadBalancer Services of the last sync, by key, so
	// that Events need no read of their own.
	services map[string]*corev1.Service
	cfgErrs  string
	readyAt  time.Time
	// dataPlaneDown: no interface of the node can carry traffic, or its
	// link came back less than a hold-down ago (holdUntil, from damper).
	dataPlaneDown bool
	linkUp        bool // what the interfaces say, before any hold-down
	holdUntil     time.Time
	damper        linkdamp.Damper
}

func (s *speaker) trigger() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// run syncs on every kick, on membership changes and periodically, until
// ctx ends.
func (s *speaker) run(ctx context.Context) {
	t := time.NewTicker(s.opts.Resync)
	defer t.Stop()
	var mlChanges <-chan struct{}
	s.trigger()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-mlChanges:
		case <-t.C:
		}
		s.joinMembership(ctx)
		if mlChanges == nil && s.ml != nil {
			mlChanges = s.ml.Changes()
		}
		if err := s.sync(ctx); err != nil && ctx.Err() == nil {
			s.log.Error(err, "sync")
		}
	}
}

// sync reads the inputs once and hands every mode its desired state.
func (s *speaker) sync(ctx context.Context) error {
	res, _, err := configsource.Load(ctx, s.client, s.opts.Namespace, configsource.WithCloud(s.cloudReader))
	if err != nil {
		return err
	}
	// What of the configuration is valid is in force: an object with a
	// problem keeps its last valid version here, or is left out after a
	// restart. A speaker that announced nothing while the others elected
	// it would leave its share of the addresses dark.
	u := config.BuildUsable(res, s.last)
	s.mu.Lock()
	if u.Config != nil {
		s.cfg, s.last = u.Config, u.From
	}
	if msg := u.Problems.Error(); msg != s.cfgErrs {
		s.cfgErrs = msg
		if len(u.Problems) > 0 {
			s.log.Error(u.Problems, "objects with problems are not in force as they are; the rest of the configuration is",
				"keptLastValid", len(u.Kept), "leftOut", len(u.Left), "applied", u.Config != nil)
		}
	}
	cfg := s.cfg
	s.mu.Unlock()
	if err := s.state.Write(ctx, u); err != nil {
		s.log.Error(err, "ConfigurationState")
	}

	ifaces, err := readInterfaces()
	if err != nil {
		return err
	}
	s.updateDataPlane(dataPlaneUp(ifaces))
	in, services, err := s.inputs(ctx, cfg)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.services = services
	s.mu.Unlock()
	return s.loop.Sync(ctx, in, ifaces, s.ready())
}

// event raises an Event on a Service of the last sync; none on a Service
// that has gone.
func (s *speaker) event(svcKey, typ, reason, msg string) {
	s.mu.Lock()
	svc := s.services[svcKey]
	s.mu.Unlock()
	if svc == nil {
		return
	}
	s.recorder.Eventf(svc, nil, typ, reason, "Announce", "%s", msg)
}

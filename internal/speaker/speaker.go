package speaker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	metallbv1beta1 "github.com/herald-lb/herald/api/v1beta1"
	metallbv1beta2 "github.com/herald-lb/herald/api/v1beta2"
	"github.com/herald-lb/herald/internal/cachescope"
	"github.com/herald-lb/herald/internal/config"
	"github.com/herald-lb/herald/internal/configsource"
	"github.com/herald-lb/herald/internal/lbclass"
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
	// Resync re-checks everything at this interval, on top of events.
	Resync   time.Duration
	Registry prometheus.Registerer
	Log      logr.Logger
}

// Labels of ServiceL2Status objects, MetalLB's.
const (
	labelNode             = "metallb.io/node"
	labelServiceName      = "metallb.io/service-name"
	labelServiceNamespace = "metallb.io/service-namespace"
)

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
	thisNode := labels.SelectorFromSet(labels.Set{labelNode: opts.NodeName})
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: sch,
		Logger: opts.Log,
		// Status objects: this node's only; the speaker never reads others'.
		Cache: cachescope.Options(opts.Namespace, map[client.Object]labels.Selector{
			&metallbv1beta1.ServiceL2Status{}:  thisNode,
			&metallbv1beta1.ServiceBGPStatus{}: thisNode,
		}),
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
		recorder: mgr.GetEventRecorder("metallb-speaker"),
		log:      opts.Log, metrics: newMetrics(reg, opts.NodeName),
		kick:  make(chan struct{}, 1),
		owned: map[string]Announcement{},
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
	} {
		b = b.Watches(obj, kick)
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
	s.runCtx = runCtx
	s.bgp = &bgpRunner{node: opts.NodeName, log: slogger.With("component", "bgp"), lastErr: map[string]string{}}
	reg.MustRegister(newBGPCollector(s.bgp))
	s.responders = newResponders(runCtx, slogger, hooks{
		conflict:   s.onConflict,
		request:    func(a netip.Addr) { s.metrics.requests.WithLabelValues(a.String()).Inc() },
		reply:      func(a netip.Addr) { s.metrics.responses.WithLabelValues(a.String()).Inc() },
		gratuitous: func(a netip.Addr) { s.metrics.gratuitous.WithLabelValues(a.String()).Inc() },
	})

	if !opts.MLDisabled {
		if err := s.prepareMembership(ctx, runCtx, slogger); err != nil {
			stopMgr()
			<-mgrDone
			return err
		}
	}

	s.watchLinks(runCtx)
	s.loop(ctx)

	// BGP first: a Cease to every router now, so they withdraw this node's
	// routes at once. Then Layer 2: leave the membership so that the next
	// owners take the addresses, keep answering meanwhile, then stop.
	stopCtx, cancelStop := context.WithTimeout(context.Background(), 2*time.Second)
	s.stopBGP(stopCtx)
	cancelStop()
	s.log.Info("stopping: handing addresses over", "delay", opts.HandoverDelay.String())
	if s.ml != nil {
		if err := s.ml.Leave(500 * time.Millisecond); err != nil {
			s.log.Error(err, "leave memberlist")
		}
	}
	time.Sleep(opts.HandoverDelay)
	s.responders.close()
	stopRun()
	cleanup, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	s.deleteStatuses(cleanup, nil)
	cancel()
	stopMgr()
	return <-mgrDone
}

type reconcileNothing struct{}

func (reconcileNothing) Reconcile(context.Context, ctrl.Request) (ctrl.Result, error) {
	return ctrl.Result{}, nil
}

func ptrTrue() *bool { b := true; return &b }

type speaker struct {
	opts       Options
	client     client.Client
	reader     client.Reader
	recorder   events.EventRecorder
	log        logr.Logger
	metrics    *metrics
	responders *responders
	gossip     *gossip                // nil with memberlist disabled
	ml         *membership.Membership // nil until joined
	bgp        *bgpRunner
	runCtx     context.Context // lives until the speaker has stopped

	kick chan struct{}

	mu    sync.Mutex
	cfg   *config.Config   // the configuration in force
	last  config.Resources // what cfg was built from
	owned map[string]Announcement
	// services are the LoadBalancer Services of the last sync, by key, so
	// that Events need no read of their own.
	services map[string]*corev1.Service
	cfgErrs  string
	readyAt  time.Time
	// dataPlaneDown: no interface of the node can carry traffic.
	dataPlaneDown bool
	// announceFailed: Services this node should announce but cannot (no
	// usable interface); the Event goes out once per failure. Only the
	// sync loop touches it.
	announceFailed map[string]bool
	// stateWritten is the outcome last written to ConfigurationState, so
	// that an unchanged one costs no request. Only the sync loop touches it.
	stateWritten string
}

func (s *speaker) trigger() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// loop syncs on every kick, on membership changes and periodically, until
// ctx ends.
func (s *speaker) loop(ctx context.Context) {
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

// peers lists the other nodes' addresses of bind's family, from the Node
// objects: speakers find each other without Pod objects.
func (s *speaker) peers(ctx context.Context, bind string) []string {
	var nodes corev1.NodeList
	if err := s.client.List(ctx, &nodes); err != nil {
		return nil
	}
	var out []string
	for i := range nodes.Items {
		n := &nodes.Items[i]
		if n.Name == s.opts.NodeName {
			continue
		}
		if a := nodeAddress(n, bind); a != "" {
			out = append(out, net.JoinHostPort(a, strconv.Itoa(s.opts.MLBindPort)))
		}
	}
	sort.Strings(out)
	return out
}

// nodeAddress is the node's first InternalIP of like's family (any family
// when like is empty).
func nodeAddress(n *corev1.Node, like string) string {
	want6 := false
	if a, err := netip.ParseAddr(like); err == nil {
		want6 = a.Is6() && !a.Is4In6()
	}
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		ip, err := netip.ParseAddr(a.Address)
		if err != nil {
			continue
		}
		if like == "" || ip.Is6() == want6 {
			return ip.String()
		}
	}
	return ""
}

// ready reports whether the speaker may announce: it has joined the
// membership, or waited out the join timeout alone. Announcing earlier is
// how a restarted MetalLB speaker answered beside the owner.
//
// After joining it waits claimDelay more: the current owners must first
// learn of this node through gossip and stop answering for the addresses
// it wins, or both would answer for a moment. Their clients' caches keep
// sending to them meanwhile, so the pause loses no traffic.
func (s *speaker) ready() bool {
	if s.opts.MLDisabled {
		return true
	}
	if s.ml == nil {
		return false // no member yet: see joinMembership
	}
	select {
	case <-s.ml.Ready():
	default:
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readyAt.IsZero() {
		s.readyAt = time.Now()
		time.AfterFunc(claimDelay, s.trigger)
	}
	return time.Since(s.readyAt) >= claimDelay
}

// claimDelay is a few gossip rounds of the fast profile plus a sync.
const claimDelay = 500 * time.Millisecond

// rejoinDelay is how long a node whose link came back waits before it
// claims addresses: it has to merge with the others first, or, having
// thought them dead while cut off, it would claim everything.
const rejoinDelay = 1500 * time.Millisecond

// dataPlaneUp: the node has at least one interface that could carry Service
// traffic by default (usable, not excluded, with a global address).
func dataPlaneUp(ifaces []Iface) bool {
	for _, i := range ifaces {
		if !i.Up || !i.Carrier || i.Enslaved || i.NoARP || Excluded(i.Name) {
			continue
		}
		for _, p := range i.Prefixes {
			if p.Addr().IsGlobalUnicast() {
				return true
			}
		}
	}
	return false
}

// updateDataPlane follows the node's links. Down: tell the other speakers,
// who stop electing this node, so its addresses move at once (leadership
// follows the data plane). Up again: rejoin, and claim nothing until the
// membership has merged.
func (s *speaker) updateDataPlane(up bool) {
	if s.ml == nil {
		return
	}
	s.mu.Lock()
	was := !s.dataPlaneDown
	s.dataPlaneDown = !up
	if up && !was {
		s.readyAt = time.Now().Add(rejoinDelay - claimDelay)
		time.AfterFunc(rejoinDelay, s.trigger)
	}
	s.mu.Unlock()
	if up == was {
		return
	}
	s.log.Info("data plane changed", "up", up)
	if err := s.ml.SetDataPlane(up); err != nil {
		s.log.Error(err, "announce data plane state")
	}
	if up {
		s.ml.Rejoin()
	}
}

// watchLinks syncs on every link change, so a lost carrier gives the
// addresses up at once instead of at the next resync.
func (s *speaker) watchLinks(ctx context.Context) {
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	if err := netlink.LinkSubscribe(updates, done); err != nil {
		s.log.Error(err, "subscribe to link changes; relying on the periodic resync")
		return
	}
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-updates:
				if !ok {
					return
				}
				s.trigger()
			}
		}
	}()
}

// sync recomputes the plan and applies this node's part of it.
func (s *speaker) sync(ctx context.Context) error {
	res, _, err := configsource.Load(ctx, s.client, s.opts.Namespace)
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
	s.writeState(ctx, u.Problems)

	ifaces, err := readInterfaces()
	if err != nil {
		return err
	}
	s.updateDataPlane(dataPlaneUp(ifaces))
	in, got, err := s.inputs(ctx, cfg)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.services = got.services
	s.mu.Unlock()
	plan := Plan(in)
	if !s.ready() {
		plan = nil
	}
	l2err := s.apply(ctx, plan, ifaces)
	if err := s.applyBGP(ctx, PlanBGP(in, s.opts.NodeName), cfg, got.nodeIPv4); err != nil {
		s.log.Error(err, "BGP")
	}
	return l2err
}

// listed is what inputs read beyond the plan's inputs, kept so that the
// sync reads nothing twice.
type listed struct {
	services map[string]*corev1.Service // LoadBalancer Services with addresses, by key
	nodeIPv4 netip.Addr                 // this node's IPv4 InternalIP, or the zero Addr
}

// inputs gathers the plan's inputs from the cache.
func (s *speaker) inputs(ctx context.Context, cfg *config.Config) (Inputs, listed, error) {
	in := Inputs{Config: cfg, Nodes: map[string]Node{}, Live: map[string]bool{}}
	got := listed{services: map[string]*corev1.Service{}}
	var nodes corev1.NodeList
	if err := s.client.List(ctx, &nodes); err != nil {
		return in, got, fmt.Errorf("list nodes: %w", err)
	}
	for i := range nodes.Items {
		n := &nodes.Items[i]
		if n.Name == s.opts.NodeName {
			got.nodeIPv4, _ = netip.ParseAddr(nodeAddress(n, "0.0.0.0"))
		}
		node := Node{Name: n.Name, Labels: n.Labels}
		ready := false
		for _, c := range n.Status.Conditions {
			switch {
			case c.Type == corev1.NodeNetworkUnavailable && c.Status == corev1.ConditionTrue:
				node.NetworkUnavailable = true
			case c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue:
				ready = true
			}
		}
		in.Nodes[n.Name] = node
		if s.opts.MLDisabled {
			in.Live[n.Name] = ready
		}
	}
	if s.ml != nil {
		for _, m := range s.ml.Members() {
			in.Live[m] = true
		}
	}
	var slices discoveryv1.EndpointSliceList
	if err := s.client.List(ctx, &slices); err != nil {
		return in, got, fmt.Errorf("list endpoint slices: %w", err)
	}
	endpoints := map[string]map[string]bool{}
	for _, es := range slices.Items {
		svc := es.Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		key := es.Namespace + "/" + svc
		for _, ep := range es.Endpoints {
			// Ready (or unset), or still serving while terminating, as MetalLB.
			ok := ep.Conditions.Ready == nil || *ep.Conditions.Ready ||
				(ep.Conditions.Serving != nil && *ep.Conditions.Serving)
			if !ok || ep.NodeName == nil {
				continue
			}
			if endpoints[key] == nil {
				endpoints[key] = map[string]bool{}
			}
			endpoints[key][*ep.NodeName] = true
		}
	}
	var svcs corev1.ServiceList
	if err := s.client.List(ctx, &svcs); err != nil {
		return in, got, fmt.Errorf("list services: %w", err)
	}
	for i := range svcs.Items {
		svc := &svcs.Items[i]
		if !lbclass.Handles(svc, s.opts.LBClass) {
			continue
		}
		var addrs []netip.Addr
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			if a, err := netip.ParseAddr(ing.IP); err == nil {
				addrs = append(addrs, a.Unmap())
			}
		}
		if len(addrs) == 0 {
			continue
		}
		key := svc.Namespace + "/" + svc.Name
		got.services[key] = svc
		if cfg == nil {
			continue
		}
		in.Services = append(in.Services, Service{
			Key: key, Labels: svc.Labels, Addrs: addrs, Pool: poolOf(cfg, addrs[0]),
			Local:         svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal,
			EndpointNodes: endpoints[key],
		})
	}
	return in, got, nil
}

func poolOf(cfg *config.Config, a netip.Addr) string {
	for _, p := range cfg.Pools {
		for _, r := range p.Ranges {
			if r.Contains(a) {
				return p.Name
			}
		}
	}
	return ""
}

// apply makes this node answer for exactly the addresses it owns, and
// brings status objects, Events and metrics in line.
func (s *speaker) apply(ctx context.Context, plan []Announcement, ifaces []Iface) error {
	want := map[string][]netip.Addr{}
	owned := map[string]Announcement{}
	failed := map[string]bool{}
	defer func() { s.announceFailed = failed }()
	for _, a := range plan {
		if a.Owner != s.opts.NodeName {
			continue
		}
		var used []string
		for _, addr := range a.Addrs {
			for _, i := range SelectInterfaces(addr, ifaces, a.Interfaces) {
				want[i.Name] = append(want[i.Name], addr)
				used = append(used, i.Name)
			}
		}
		if len(used) == 0 {
			// Once per failure, not on every sync.
			if !s.announceFailed[a.Service] {
				s.event(a.Service, corev1.EventTypeWarning, "announceFailed",
					fmt.Sprintf("the interfaces specified by LB IP %q don't exist or are down on assigned node %q with protocol \"layer2\"", a.Addrs[0], s.opts.NodeName))
			}
			failed[a.Service] = true
			continue
		}
		a.Interfaces = uniqueSorted(used)
		owned[a.Service] = a
	}
	if err := s.responders.set(want); err != nil {
		s.log.Error(err, "responders")
	}

	s.mu.Lock()
	s.owned = owned
	s.mu.Unlock()
	addrs := make(map[string][]netip.Addr, len(owned))
	for key, a := range owned {
		addrs[key] = a.Addrs
		if err := s.writeStatus(ctx, a); err != nil {
			s.log.Error(err, "write ServiceL2Status", "service", key)
		}
	}
	for _, ip := range s.announced(protocolLayer2, addrs).Gone {
		s.metrics.forgetLayer2(ip)
	}
	s.deleteStatuses(ctx, owned)
	return nil
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
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

// writeStatus keeps one ServiceL2Status per owned Service.
func (s *speaker) writeStatus(ctx context.Context, a Announcement) error {
	ns, name, _ := strings.Cut(a.Service, "/")
	var list metallbv1beta1.ServiceL2StatusList
	if err := s.client.List(ctx, &list, client.InNamespace(s.opts.Namespace), client.MatchingLabels{
		labelNode: s.opts.NodeName, labelServiceName: name, labelServiceNamespace: ns,
	}); err != nil {
		return err
	}
	var st *metallbv1beta1.ServiceL2Status
	if len(list.Items) > 0 {
		st = &list.Items[0]
	} else {
		st = &metallbv1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{
			GenerateName: "l2-", Namespace: s.opts.Namespace,
			Labels: map[string]string{labelNode: s.opts.NodeName, labelServiceName: name, labelServiceNamespace: ns},
		}}
		if err := s.client.Create(ctx, st); err != nil {
			return err
		}
	}
	var ifs []metallbv1beta1.InterfaceInfo
	for _, i := range a.Interfaces {
		ifs = append(ifs, metallbv1beta1.InterfaceInfo{Name: i})
	}
	want := metallbv1beta1.MetalLBServiceL2Status{Node: s.opts.NodeName, ServiceName: name, ServiceNamespace: ns, Interfaces: ifs}
	if statusEqual(st.Status, want) {
		return nil
	}
	st.Status = want
	return s.client.Status().Update(ctx, st)
}

func statusEqual(a, b metallbv1beta1.MetalLBServiceL2Status) bool {
	if a.Node != b.Node || a.ServiceName != b.ServiceName || a.ServiceNamespace != b.ServiceNamespace || len(a.Interfaces) != len(b.Interfaces) {
		return false
	}
	for i := range a.Interfaces {
		if a.Interfaces[i].Name != b.Interfaces[i].Name {
			return false
		}
	}
	return true
}

// deleteStatuses removes this node's ServiceL2Status objects for Services
// it does not own (all of them when keep is nil).
func (s *speaker) deleteStatuses(ctx context.Context, keep map[string]Announcement) {
	var list metallbv1beta1.ServiceL2StatusList
	if err := s.client.List(ctx, &list, client.InNamespace(s.opts.Namespace), client.MatchingLabels{labelNode: s.opts.NodeName}); err != nil {
		return
	}
	for i := range list.Items {
		st := &list.Items[i]
		key := st.Labels[labelServiceNamespace] + "/" + st.Labels[labelServiceName]
		if _, ok := keep[key]; ok {
			continue
		}
		if err := s.client.Delete(ctx, st); err != nil && !apierrors.IsNotFound(err) {
			s.log.Error(err, "delete ServiceL2Status", "name", st.Name)
		}
	}
}

// onConflict: another MAC answers for an address this node owns: a
// duplicate address on the LAN, or two speakers that both think they own it.
// During a handover the next owner announces a moment before this node has
// seen the change, so the conflict counts only if the address is still this
// node's after a fresh sync and a grace period.
func (s *speaker) onConflict(iface string, addr netip.Addr, mac net.HardwareAddr) {
	s.trigger()
	go func() {
		time.Sleep(conflictGrace)
		if s.ownedService(addr) == "" {
			return
		}
		s.reportConflict(iface, addr, mac)
	}()
}

// conflictGrace is longer than a sync takes, shorter than a human notices.
const conflictGrace = 2 * time.Second

func (s *speaker) ownedService(addr netip.Addr) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, a := range s.owned {
		if containsAddr(a.Addrs, addr) {
			return key
		}
	}
	return ""
}

func (s *speaker) reportConflict(iface string, addr netip.Addr, mac net.HardwareAddr) {
	s.metrics.conflicts.WithLabelValues(addr.String()).Inc()
	s.log.Info("address conflict: another host answers for an address this node announces",
		"address", addr.String(), "interface", iface, "otherMAC", mac.String())
	if svc := s.ownedService(addr); svc != "" {
		s.event(svc, corev1.EventTypeWarning, "AddressConflict",
			fmt.Sprintf("another host (MAC %s) answers for %s on %s, which node %q announces: a duplicate address on the LAN, or a split brain", mac, addr, iface, s.opts.NodeName))
	}
}

// writeState records the configuration outcome on ConfigurationState
// "speaker-<node>".
func (s *speaker) writeState(ctx context.Context, ps config.Problems) {
	want := metallbv1beta1.ConfigurationResultValid
	summary := ""
	if len(ps) > 0 {
		want, summary = metallbv1beta1.ConfigurationResultInvalid, ps.Error()
	}
	outcome := string(want) + "\n" + summary
	if outcome == s.stateWritten {
		return
	}
	name := "speaker-" + s.opts.NodeName
	var cs metallbv1beta1.ConfigurationState
	key := types.NamespacedName{Namespace: s.opts.Namespace, Name: name}
	if err := s.reader.Get(ctx, key, &cs); err != nil {
		if !apierrors.IsNotFound(err) {
			return
		}
		cs = metallbv1beta1.ConfigurationState{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.opts.Namespace,
			Labels: map[string]string{"metallb.io/component-type": "speaker", "metallb.io/node-name": s.opts.NodeName}}}
		if err := s.client.Create(ctx, &cs); err != nil {
			return
		}
	}
	if cs.Status.Result != want || cs.Status.ErrorSummary != summary {
		cs.Status.Result, cs.Status.ErrorSummary = want, summary
		if err := s.client.Status().Update(ctx, &cs); err != nil {
			return
		}
	}
	s.stateWritten = outcome
}

package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metallbv1beta1 "github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/bench/procstat"
)

const (
	configNamespace = "herald-system"
	seqNamespace    = "bench-seq"
	poolV4          = "bench-v4"
	poolV6          = "bench-v6"
)

var (
	prefixV4 = netip.MustParsePrefix("198.18.0.0/15")
	prefixV6 = netip.MustParsePrefix("2001:db8::/64")
)

// bench holds the clients and the address tracker of one run.
type bench struct {
	o       options
	cp      *controlPlane
	ctl     *controllerProc
	cs      *kubernetes.Clientset
	crs     client.Client
	tr      *tracker
	stopInf chan struct{}
}

func newBench(ctx context.Context, cp *controlPlane, o options) (*bench, error) {
	cfg := rest.CopyConfig(cp.cfg)
	// The creators must not be what limits the burst.
	cfg.QPS, cfg.Burst = 500, 1000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	if err := metallbv1beta1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	crs, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	b := &bench{o: o, cp: cp, cs: cs, crs: crs, tr: newTracker(), stopInf: make(chan struct{})}
	// One informer over all Services records when each first shows an
	// address; it is running before the first create, so every address
	// arrives as a watch event, timestamped on arrival.
	f := informers.NewSharedInformerFactory(cs, 0)
	inf := f.Core().V1().Services().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    b.tr.observe,
		UpdateFunc: func(_, obj any) { b.tr.observe(obj) },
	}); err != nil {
		return nil, err
	}
	f.Start(b.stopInf)
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		close(b.stopInf)
		return nil, fmt.Errorf("service informer did not sync")
	}
	return b, nil
}

func (b *bench) close() { close(b.stopInf) }

// setup creates the namespaces and the two pools.
func (b *bench) setup(ctx context.Context) error {
	names := []string{configNamespace, seqNamespace}
	for i := range b.o.namespaces {
		names = append(names, burstNamespace(i))
	}
	for _, n := range names {
		if _, err := b.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("namespace %q: %w", n, err)
		}
	}
	for name, p := range map[string]netip.Prefix{poolV4: prefixV4, poolV6: prefixV6} {
		pool := &metallbv1beta1.IPAddressPool{
			ObjectMeta: metav1.ObjectMeta{Namespace: configNamespace, Name: name},
			Spec:       metallbv1beta1.IPAddressPoolSpec{Addresses: []string{p.String()}},
		}
		if err := b.crs.Create(ctx, pool); err != nil {
			return fmt.Errorf("pool %q: %w", name, err)
		}
	}
	return nil
}

func burstNamespace(i int) string { return fmt.Sprintf("bench-%d", i) }

// isV6 spreads n IPv6 Services evenly over total.
func isV6(i, n, total int) bool { return (i+1)*n/total > i*n/total }

func newService(ns, name string, v6 bool) *corev1.Service {
	no := false
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeLoadBalancer,
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}},
			// 10,000 Services would exhaust the default NodePort range
			// (30000-32767); node ports play no part in allocation.
			AllocateLoadBalancerNodePorts: &no,
		},
	}
	if v6 {
		single := corev1.IPFamilyPolicySingleStack
		svc.Spec.IPFamilyPolicy = &single
		svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol}
	}
	return svc
}

// tracker records when each Service first carries an address.
type tracker struct {
	mu      sync.Mutex
	seen    map[string]time.Time
	last    time.Time
	waiters map[string]chan time.Time
}

func newTracker() *tracker {
	return &tracker{seen: map[string]time.Time{}, waiters: map[string]chan time.Time{}}
}

func (t *tracker) observe(obj any) {
	now := time.Now()
	svc, ok := obj.(*corev1.Service)
	if !ok || len(svc.Status.LoadBalancer.Ingress) == 0 {
		return
	}
	key := svc.Namespace + "/" + svc.Name
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.seen[key]; ok {
		return
	}
	t.seen[key] = now
	t.last = now
	if ch, ok := t.waiters[key]; ok {
		ch <- now
		delete(t.waiters, key)
	}
}

func (t *tracker) count() (int, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.seen), t.last
}

// expect returns a channel that receives the time key gets its address.
func (t *tracker) expect(key string) <-chan time.Time {
	ch := make(chan time.Time, 1)
	t.mu.Lock()
	defer t.mu.Unlock()
	if at, ok := t.seen[key]; ok {
		ch <- at
	} else {
		t.waiters[key] = ch
	}
	return ch
}

// sample is the resource use of the processes at one moment.
type sample struct {
	at                          time.Time
	ctlCPU, apiCPU, etcdCPU     float64
	selfCPU                     float64
	requests                    float64
	requestsByMethod            map[string]float64
	queueWaitSum, queueWaitN    float64
	workSum, workN, reconcilesN float64
}

func (b *bench) sample(ctx context.Context) (sample, error) {
	s := sample{at: time.Now(), requestsByMethod: map[string]float64{}}
	var err error
	if s.ctlCPU, err = procstat.CPUSeconds(b.ctl.pid()); err != nil {
		return s, fmt.Errorf("controller cpu: %w", err)
	}
	if s.apiCPU, err = procstat.CPUSeconds(b.cp.apiPID); err != nil {
		return s, fmt.Errorf("kube-apiserver cpu: %w", err)
	}
	if s.etcdCPU, err = procstat.CPUSeconds(b.cp.etcdPID); err != nil {
		return s, fmt.Errorf("etcd cpu: %w", err)
	}
	s.selfCPU, _ = procstat.CPUSeconds(os.Getpid())
	m, err := scrape(ctx, b.ctl.metricsURL)
	if err != nil {
		return s, fmt.Errorf("controller metrics: %w", err)
	}
	s.requests = m.Sum("rest_client_requests_total")
	for _, meth := range []string{"GET", "LIST", "WATCH", "POST", "PUT", "PATCH", "DELETE"} {
		if v := m.Sum("rest_client_requests_total", `method="`+meth+`"`); v > 0 {
			s.requestsByMethod[meth] = v
		}
	}
	svc := `name="service"`
	s.queueWaitSum = m.Sum("workqueue_queue_duration_seconds_sum", svc)
	s.queueWaitN = m.Sum("workqueue_queue_duration_seconds_count", svc)
	s.workSum = m.Sum("workqueue_work_duration_seconds_sum", svc)
	s.workN = m.Sum("workqueue_work_duration_seconds_count", svc)
	s.reconcilesN = m.Sum("controller_runtime_reconcile_total", `controller="service"`)
	return s, nil
}

// burstResult is what the burst measured.
type burstResult struct {
	complete          bool
	addressed         int
	wall              time.Duration // first create to last address (or to giving up)
	createsDone       time.Duration // first create to last create returning
	before, after     sample        // at the first create and at the last address
	settled           sample        // once the controller's queue has drained
	peakDepth         float64
	rssPeak           uint64
	throttleLogLines  int
	firstAddressAfter time.Duration
}

func (b *bench) burst(ctx context.Context) (burstResult, error) {
	var r burstResult
	o := b.o
	before, err := b.sample(ctx)
	if err != nil {
		return r, err
	}
	r.before = before

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next      atomic.Int64
		createErr error
		errOnce   sync.Once
		wg        sync.WaitGroup
	)
	start := time.Now()
	for range o.creators {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= o.services || ctx.Err() != nil {
					return
				}
				svc := newService(burstNamespace(i%o.namespaces), fmt.Sprintf("svc-%05d", i), isV6(i, o.ipv6, o.services))
				if _, err := b.cs.CoreV1().Services(svc.Namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
					errOnce.Do(func() { createErr = fmt.Errorf("create %s/%s: %w", svc.Namespace, svc.Name, err); cancel() })
					return
				}
			}
		})
	}
	createsDone := make(chan time.Duration, 1)
	go func() { wg.Wait(); createsDone <- time.Since(start) }()

	// Poll progress and the controller's queue depth while waiting.
	deadline := start.Add(o.burstTimeout)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	lastLog := start
	for {
		select {
		case <-ctx.Done():
			if createErr != nil {
				return r, createErr
			}
			return r, ctx.Err()
		case d := <-createsDone:
			if createErr != nil {
				return r, createErr
			}
			r.createsDone = d
			slog.Info("all creates returned", "after", d.Round(time.Millisecond))
		case <-tick.C:
		}
		if err := b.ctl.alive(); err != nil {
			return r, err
		}
		n, last := b.tr.count()
		if n > 0 && r.firstAddressAfter == 0 {
			r.firstAddressAfter = time.Since(start)
		}
		if m, err := scrape(ctx, b.ctl.metricsURL); err == nil {
			r.peakDepth = max(r.peakDepth, m.Sum("workqueue_depth", `name="service"`))
		}
		if time.Since(lastLog) >= 5*time.Second {
			slog.Info("burst progress", "addressed", n, "of", o.services, "elapsed", time.Since(start).Round(time.Second))
			lastLog = time.Now()
		}
		if n >= o.services {
			r.complete, r.addressed, r.wall = true, n, last.Sub(start)
			break
		}
		if time.Now().After(deadline) {
			r.addressed, r.wall = n, time.Since(start)
			break
		}
	}
	if r.after, err = b.sample(ctx); err != nil {
		return r, err
	}
	if r.complete {
		slog.Info("burst addressed", "services", o.services, "after", r.wall.Round(time.Millisecond))
	}
	if v, err := procstat.StatusBytes(b.ctl.pid(), "VmHWM"); err == nil {
		r.rssPeak = v[0]
	}
	r.throttleLogLines = b.ctl.countLog("client-side throttling")
	if r.createsDone == 0 {
		cancel() // gave up: stop creating
		r.createsDone = <-createsDone
	}
	if r.complete {
		if r.settled, err = b.settle(ctx); err != nil {
			return r, err
		}
	}
	return r, nil
}

// settle waits (up to two minutes) until the controller's Service queue has
// stayed empty for a second, so the annotation writes that follow each
// status write are done before the next scenario.
func (b *bench) settle(ctx context.Context) (sample, error) {
	deadline := time.Now().Add(2 * time.Minute)
	empty := 0
	for empty < 4 && time.Now().Before(deadline) {
		m, err := scrape(ctx, b.ctl.metricsURL)
		if err != nil {
			return sample{}, err
		}
		if m.Sum("workqueue_depth", `name="service"`) == 0 {
			empty++
		} else {
			empty = 0
		}
		select {
		case <-ctx.Done():
			return sample{}, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return b.sample(ctx)
}

// seqResult is what the one-at-a-time scenario measured.
type seqResult struct {
	latencies       []time.Duration
	creates         []time.Duration // the create calls alone, part of each latency
	before, after   sample
	rssPeak, rssNow uint64
}

func (b *bench) sequentialRun(ctx context.Context) (*seqResult, error) {
	r := &seqResult{}
	var err error
	if r.before, err = b.sample(ctx); err != nil {
		return nil, err
	}
	for i := range b.o.sequential {
		name := fmt.Sprintf("seq-%04d", i)
		got := b.tr.expect(seqNamespace + "/" + name)
		svc := newService(seqNamespace, name, isV6(i, b.o.ipv6, b.o.services))
		start := time.Now()
		if _, err := b.cs.CoreV1().Services(seqNamespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("create %s/%s: %w", seqNamespace, name, err)
		}
		r.creates = append(r.creates, time.Since(start))
		select {
		case at := <-got:
			r.latencies = append(r.latencies, at.Sub(start))
		case <-time.After(30 * time.Second):
			if err := b.ctl.alive(); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("%s/%s: no address after 30s", seqNamespace, name)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if r.after, err = b.sample(ctx); err != nil {
		return nil, err
	}
	slices.Sort(r.latencies)
	slices.Sort(r.creates)
	return r, nil
}

// verify lists every benchmark Service and checks that each has exactly
// one address, of its family, inside its pool, and that no address is used
// twice.
func (b *bench) verify(ctx context.Context) error {
	var all []corev1.Service
	nss := []string{seqNamespace}
	for i := range b.o.namespaces {
		nss = append(nss, burstNamespace(i))
	}
	for _, ns := range nss {
		opts := metav1.ListOptions{Limit: 1000}
		for {
			l, err := b.cs.CoreV1().Services(ns).List(ctx, opts)
			if err != nil {
				return fmt.Errorf("list services in %q: %w", ns, err)
			}
			all = append(all, l.Items...)
			if l.Continue == "" {
				break
			}
			opts.Continue = l.Continue
		}
	}
	if want := b.o.services + b.o.sequential; len(all) != want {
		return fmt.Errorf("found %d Services, want %d", len(all), want)
	}
	return checkAddresses(all)
}

func checkAddresses(svcs []corev1.Service) error {
	owner := map[netip.Addr]string{}
	for i := range svcs {
		svc := &svcs[i]
		key := svc.Namespace + "/" + svc.Name
		ing := svc.Status.LoadBalancer.Ingress
		if len(ing) != 1 {
			return fmt.Errorf("%s: %d ingress entries, want 1", key, len(ing))
		}
		a, err := netip.ParseAddr(ing[0].IP)
		if err != nil {
			return fmt.Errorf("%s: ingress %q: %w", key, ing[0].IP, err)
		}
		wantV6 := len(svc.Spec.IPFamilies) > 0 && svc.Spec.IPFamilies[0] == corev1.IPv6Protocol
		pool := prefixV4
		if wantV6 {
			pool = prefixV6
		}
		if !pool.Contains(a) {
			return fmt.Errorf("%s: address %s is not in its pool %s", key, a, pool)
		}
		if prev, dup := owner[a]; dup {
			return fmt.Errorf("address %s is held by both %s and %s", a, prev, key)
		}
		owner[a] = key
	}
	return nil
}

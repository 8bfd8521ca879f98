package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/herald-lb/herald/bench/labrun"
	"github.com/herald-lb/herald/internal/cloud/hetzner/hcloudsim"
	"github.com/herald-lb/herald/internal/cloudlease"
	"github.com/herald-lb/herald/internal/lab"
)

const token = "bench-token"

// maxIPs is the size of the pool: 203.0.113.10 to 203.0.113.29.
const maxIPs = 20

// fip is one floating IP: the stand-in's ID, its address and its Service.
type fip struct {
	id      int64
	addr    netip.Addr
	service string
}

func (f fip) ID() string { return strconv.FormatInt(f.id, 10) }

// path is the stand-in's path of the floating IP, as its request log has it.
func (f fip) path() string { return "/floating_ips/" + f.ID() }

func floatingIPs() []fip {
	out := make([]fip, maxIPs)
	for i := range out {
		out[i] = fip{id: int64(i + 1), addr: netip.AddrFrom4([4]byte{203, 0, 113, byte(10 + i)}), service: fmt.Sprintf("fip-%d", i+1)}
	}
	return out
}

// heraldConfig is seed 000's set-up with the pool widened to maxIPs
// floating IPs, announced by a CloudAdvertisement with its token Secret.
func heraldConfig() string {
	return `apiVersion: v1
kind: Secret
metadata:
  name: hcloud
  namespace: ` + lab.HeraldNamespace + `
stringData:
  token: ` + token + `
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: floating
  namespace: ` + lab.HeraldNamespace + `
spec:
  addresses:
  - 203.0.113.10-203.0.113.29
---
apiVersion: herald-lb.io/v1alpha1
kind: CloudAdvertisement
metadata:
  name: hetzner
  namespace: ` + lab.HeraldNamespace + `
spec:
  ipAddressPools: [floating]
  provider: hetzner
  tokenSecretRef:
    name: hcloud
`
}

// move is the end of an assign action as the router saw it: the route to
// the floating IP points at the server's node from at on.
type move struct {
	fip, server int64
	at          time.Time
}

// bench is one run over one lab and one stand-in.
type bench struct {
	o    options
	lab  *lab.Lab
	sim  *hcloudsim.Sim
	log  *slog.Logger
	fips []fip
	// lease is the --cloud-lease speakers get when (re)started.
	lease atomic.Int64

	mu       sync.Mutex
	moves    []move
	routeErr error
}

// start starts the stand-in and the lab, gives every node its server
// (spec.providerID, as Hetzner's cloud controller manager sets it) and
// applies the configuration. done removes both.
func start(ctx context.Context, o options, log *slog.Logger) (*bench, func(error) error, error) {
	b := &bench{o: o, log: log, fips: floatingIPs()}
	b.lease.Store(int64(o.leases[0]))
	b.sim = hcloudsim.New(hcloudsim.Options{Tokens: []string{token}, OnAssigned: b.routed})
	for i := int64(1); i <= 3; i++ {
		b.sim.AddServer(i, nodeOf(i))
	}
	for _, f := range b.fips {
		b.sim.AddFloatingIP(f.id, f.service, f.addr.String(), 0)
	}
	u, err := url.Parse(b.sim.Endpoint())
	if err != nil {
		b.sim.Close()
		return nil, nil, err
	}
	opts, err := o.inputs.Options(ctx, "cloudbench-logs-", log)
	if err != nil {
		b.sim.Close()
		return nil, nil, err
	}
	opts.Router, opts.PointToPoint = true, true
	opts.Forward = []string{u.Host}
	opts.SpeakerArgs = func(kubeconfig string, n lab.Node) []string {
		return append(lab.DefaultSpeakerArgs(kubeconfig, n), "--cloud-endpoint", b.sim.Endpoint(),
			"--cloud-lease", time.Duration(b.lease.Load()).String(), "--cloud-hold-down", o.holdDown.String())
	}
	l, labDone, err := labrun.Start(ctx, opts, nil)
	if err != nil {
		b.sim.Close()
		return nil, nil, err
	}
	b.mu.Lock()
	b.lab = l
	b.mu.Unlock()
	done := func(err error) error {
		err = labDone(err)
		b.sim.Close()
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.routeErr != nil {
			err = errors.Join(err, fmt.Errorf("router: %w", b.routeErr))
		}
		return err
	}
	for i, n := range l.Nodes() {
		patch := fmt.Sprintf(`{"spec":{"providerID":"hcloud://%d"}}`, i+1)
		if _, err := l.Client().CoreV1().Nodes().Patch(ctx, n.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			return nil, nil, done(err)
		}
	}
	if err := l.Apply(ctx, heraldConfig()); err != nil {
		return nil, nil, done(err)
	}
	return b, done, nil
}

func nodeOf(server int64) string {
	if server == 0 {
		return ""
	}
	return fmt.Sprintf("node%d", server)
}

// routed is the stand-in's OnAssigned: the router's route follows the
// assignment, and the time it did is noted.
func (b *bench) routed(id, server int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lab == nil {
		return
	}
	err := b.lab.RouteVia(netip.PrefixFrom(b.fips[id-1].addr, 32), nodeOf(server))
	if err != nil && b.routeErr == nil {
		b.routeErr = err
	}
	b.moves = append(b.moves, move{fip: id, server: server, at: time.Now()})
}

// mark is where the stand-in's request log and the moves stand now.
type mark struct{ requests, moves int }

func (b *bench) mark() mark {
	b.mu.Lock()
	defer b.mu.Unlock()
	return mark{requests: len(b.sim.Requests()), moves: len(b.moves)}
}

// since returns the requests and moves after m.
func (b *bench) since(m mark) ([]hcloudsim.Request, []move) {
	reqs := b.sim.Requests()
	b.mu.Lock()
	defer b.mu.Unlock()
	return reqs[m.requests:], append([]move(nil), b.moves[m.moves:]...)
}

// createServices creates one IPv4 LoadBalancer Service per floating IP,
// asking for its address, and waits until each has it.
func (b *bench) createServices(ctx context.Context, fips []fip) error {
	for _, f := range fips {
		svc := lab.Service{Name: f.service, Families: []corev1.IPFamily{corev1.IPv4Protocol},
			Annotations: map[string]string{"metallb.io/loadBalancerIPs": f.addr.String()}}
		if _, err := b.lab.CreateService(ctx, svc); err != nil {
			return err
		}
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		addrs, err := b.lab.WaitAddresses(wctx, "default", f.service)
		cancel()
		if err != nil {
			return err
		}
		if len(addrs) != 1 || addrs[0] != f.addr {
			return fmt.Errorf("Service %s got %v, want %s", f.service, addrs, f.addr)
		}
	}
	return nil
}

// leaseOf reads the Lease of a floating IP.
func (b *bench) leaseOf(ctx context.Context, f fip) (holder string, acquired, renewed time.Time, err error) {
	l, err := b.lab.Client().CoordinationV1().Leases(lab.HeraldNamespace).Get(ctx, cloudlease.LeaseName(f.addr.String()), metav1.GetOptions{})
	if err != nil {
		return "", time.Time{}, time.Time{}, err
	}
	holder = cloudlease.Holder(l)
	if l.Spec.AcquireTime != nil {
		acquired = l.Spec.AcquireTime.Time
	}
	if l.Spec.RenewTime != nil {
		renewed = l.Spec.RenewTime.Time
	}
	return holder, acquired, renewed, nil
}

// settled waits until f is assigned to one node's server, that node holds
// its Lease, the remote client's request is answered by that node, and, if
// want is set, it is want. It returns the node.
func (b *bench) settled(ctx context.Context, f fip, want string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, b.o.settleTimeout)
	defer cancel()
	state := ""
	for {
		node, s := b.settledOnce(ctx, f, want)
		if node != "" {
			return node, nil
		}
		state = s
		if err := lab.Sleep(ctx, 100*time.Millisecond); err != nil {
			err = fmt.Errorf("%s not settled: %s", f.addr, state)
			if perr := b.lab.CheckProcesses(); perr != nil {
				err = errors.Join(err, perr)
			}
			return "", err
		}
	}
}

func (b *bench) settledOnce(ctx context.Context, f fip, want string) (string, string) {
	node := nodeOf(b.sim.Assignment(f.id))
	if node == "" || (want != "" && node != want) {
		return "", fmt.Sprintf("assigned to %q, want %q", node, want)
	}
	holder, _, _, err := b.leaseOf(ctx, f)
	if err != nil || holder != node {
		return "", fmt.Sprintf("on %s, Lease held by %q (%v)", node, holder, err)
	}
	got, err := b.lab.CurlFromRemote(ctx, f.addr, 80)
	if err != nil || got != node {
		return "", fmt.Sprintf("on %s, answered by %q (%v)", node, got, err)
	}
	return node, ""
}

// stable waits until f is settled on the same node twice, 5 s apart.
func (b *bench) stable(ctx context.Context, f fip) (string, error) {
	last := ""
	for {
		node, err := b.settled(ctx, f, "")
		if err != nil || node == last {
			return node, err
		}
		last = node
		if err := lab.Sleep(ctx, 5*time.Second); err != nil {
			return "", err
		}
	}
}

// allSettled waits until every floating IP of fips is settled.
func (b *bench) allSettled(ctx context.Context, fips []fip) error {
	for _, f := range fips {
		if _, err := b.settled(ctx, f, ""); err != nil {
			return err
		}
	}
	return nil
}

// restartSpeakers stops every speaker gracefully and starts them all again
// with lease, then returns the node f settles on.
func (b *bench) restartSpeakers(ctx context.Context, lease time.Duration, f fip) (string, error) {
	b.log.Info("restarting every speaker", "lease", lease)
	// Each speaker stopped hands the IP to a live one, which may be
	// stopped in turn while its assign action runs: the action still ends,
	// and would move the IP after it settled. With no action time every
	// such move is over before the next stop. The caller sets the action
	// time of its next runs.
	b.sim.SetActionTime(0)
	for _, n := range b.lab.Nodes() {
		if err := b.lab.StopSpeaker(n.Name, 10*time.Second); err != nil {
			return "", err
		}
	}
	b.lease.Store(int64(lease))
	for _, n := range b.lab.Nodes() {
		if err := b.lab.StartSpeaker(n.Name); err != nil {
			return "", err
		}
	}
	owner, err := b.stable(ctx, f)
	if err != nil {
		return "", fmt.Errorf("after restarting the speakers with --cloud-lease %s: %w", lease, err)
	}
	return owner, nil
}

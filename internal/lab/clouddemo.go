package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/herald-lb/herald/internal/cloud/hetzner/hcloudsim"
)

// CloudFloatingIP is the floating IP of `herald lab-cloud`.
var CloudFloatingIP = netip.MustParseAddr("203.0.113.10")

const cloudDemoToken = "lab-token"

// cloudDemoConfig is a floating IP's pool and its CloudAdvertisement, with
// the token Secret it names (docs/hetzner.md).
const cloudDemoConfig = `apiVersion: v1
kind: Secret
metadata: {name: hcloud, namespace: metallb-system}
stringData: {token: ` + cloudDemoToken + `}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: floating, namespace: metallb-system}
spec: {addresses: [203.0.113.10/32]}
---
apiVersion: herald-lb.io/v1alpha1
kind: CloudAdvertisement
metadata: {name: hetzner, namespace: metallb-system}
spec: {ipAddressPools: [floating], provider: hetzner, tokenSecretRef: {name: hcloud}}
`

// CloudDemo is `herald lab-cloud`: Hetzner Cloud floating IPs, in a lab
// whose "cloud" is a stand-in for Hetzner's API on 127.0.0.1 and the lab
// router, which sends the floating IP only to the node whose server the
// stand-in has it assigned to. It shows the elected speaker assigning the
// IP to its server, a client on another subnet reaching it there, and the
// move when that node dies, with the API requests it cost.
func CloudDemo(ctx context.Context, opts DemoOptions, out io.Writer) (err error) {
	if opts.ProbeEvery == 0 {
		opts.ProbeEvery = 10 * time.Millisecond
	}
	t0 := time.Now()
	step := func(what, format string, args ...any) {
		fmt.Fprintf(out, "%5.1fs  %-15s %s\n", time.Since(t0).Seconds(), what, fmt.Sprintf(format, args...))
	}

	var (
		mu       sync.Mutex
		l        *Lab
		routeErr error
	)
	sim := hcloudsim.New(hcloudsim.Options{Tokens: []string{cloudDemoToken}, ActionTime: time.Second,
		OnAssigned: func(_, server int64) {
			mu.Lock()
			defer mu.Unlock()
			if l == nil || server == 0 {
				return
			}
			if err := l.RouteVia(netip.PrefixFrom(CloudFloatingIP, 32), fmt.Sprintf("node%d", server)); err != nil {
				routeErr = err
			}
		}})
	defer sim.Close()
	n := max(opts.Nodes, 3)
	for i := 1; i <= n; i++ {
		sim.AddServer(int64(i), fmt.Sprintf("node%d", i))
	}
	sim.AddFloatingIP(7, "web", CloudFloatingIP.String(), 0)
	u, err := url.Parse(sim.Endpoint())
	if err != nil {
		return err
	}
	opts.Router, opts.PointToPoint = true, true
	opts.Forward = append(opts.Forward, u.Host)
	opts.SpeakerArgs = func(kubeconfig string, node Node) []string {
		return append(DefaultSpeakerArgs(kubeconfig, node), "--cloud-endpoint", sim.Endpoint(),
			"--cloud-lease", demoLease.String(), "--cloud-hold-down", demoHoldDown.String())
	}
	step("start", "kube-apiserver and etcd; a LAN of network namespaces; a router linked to each node point to point, as a cloud's; Hetzner's API stand-in at %s", sim.Endpoint())
	started, err := Start(ctx, opts.Options)
	if err != nil {
		if ctx.Err() != nil {
			return errors.New("interrupted")
		}
		return err
	}
	mu.Lock()
	l = started
	mu.Unlock()
	defer func() {
		if cerr := l.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", cerr))
		} else {
			step("cleanup", "namespaces, processes and control plane removed")
		}
	}()
	step("lab", "%s (Ctrl-C stops it and removes everything)", l.ID())

	// Hetzner's cloud controller manager sets spec.providerID; node n runs
	// on server n.
	for i, node := range l.Nodes() {
		patch := fmt.Sprintf(`{"spec":{"providerID":"hcloud://%d"}}`, i+1)
		if _, err := l.Client().CoreV1().Nodes().Patch(ctx, node.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			return err
		}
	}
	if err := l.Apply(ctx, cloudDemoConfig); err != nil {
		return err
	}
	step("configuration", "Secret hcloud; IPAddressPool floating (%s/32); CloudAdvertisement hetzner (herald-lb.io)", CloudFloatingIP)
	if _, err := l.CreateService(ctx, Service{Name: "web"}); err != nil {
		return err
	}
	owner, server, err := waitServer(ctx, sim, 0)
	if err != nil {
		return err
	}
	who, err := l.CurlFromRemote(ctx, CloudFloatingIP, 80)
	if err != nil {
		return fmt.Errorf("curl from the remote subnet: %w", err)
	}
	step("default/web", "%s assigned to server %d by %s's speaker (one assign, action 1 s); curl from %s answered by %s",
		CloudFloatingIP, server, owner, l.RemoteNode().IPv4, who)
	step("ARP", "no node answers ARP for it: the cloud routes it, as Hetzner's network does")
	// Within the hold-down the Lease stays with its holder, dead or not:
	// a failover then would show the hold-down, not the lease.
	step("hold-down", "waiting %s: a floating IP stays with a new holder for its hold-down (--cloud-hold-down, 30 s by default), dead or not, so it moves at most once per hold-down", demoHoldDown)
	for {
		if err := Sleep(ctx, demoHoldDown+time.Second); err != nil {
			return err
		}
		now := sim.Assignment(7)
		if now == server {
			break
		}
		// Speakers that join later take nothing from the IP's holder, so
		// this is a holder that let go of it (it stopped); the new
		// holder's hold-down starts again.
		owner, server = fmt.Sprintf("node%d", now), now
		step("default/web", "moved to server %d (%s took it when its holder let go); waiting its hold-down", server, owner)
	}

	probe, err := l.ProbeFromRemote(ctx, CloudFloatingIP, 80, opts.ProbeEvery)
	if err != nil {
		return err
	}
	time.Sleep(200 * time.Millisecond)
	before := len(sim.Requests())
	step("failover", "kill -9 %s's speaker and cut its link; curl every %s from the remote subnet", owner, opts.ProbeEvery)
	since := time.Now()
	if err := l.KillSpeaker(owner); err != nil {
		return err
	}
	if err := l.CutLink(owner); err != nil {
		return err
	}
	next, nextServer, err := waitServer(ctx, sim, server)
	if err != nil {
		return err
	}
	moved := time.Since(since)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_, werr := probe.Wait(wctx, func(x Sample) bool { return x.Err == nil && x.Node == next && !x.Start.Before(since) })
	cancel()
	samples := probe.Stop()
	if werr != nil {
		return fmt.Errorf("no answer from %s after the move: %w", next, werr)
	}
	d, _, _ := Failover(samples, since, owner)
	step("default/web", "the next owner %s took its Lease when the dead owner's expired (%s) and assigned the IP to server %d: %s after the kill; the client was answered again after %s",
		next, demoLease, nextServer, moved.Round(10*time.Millisecond), d.Round(10*time.Millisecond))
	var assigns, other int
	for _, r := range sim.Requests()[before:] {
		if r.Method == "POST" && strings.HasSuffix(r.Path, "/actions/assign") {
			assigns++
		} else {
			other++
		}
	}
	step("API", "%d assign and %d other requests for the move; never an unassign", assigns, other)
	mu.Lock()
	rerr := routeErr
	mu.Unlock()
	if rerr != nil {
		return fmt.Errorf("router: %w", rerr)
	}
	if opts.Hold {
		fmt.Fprintf(out, "\nThe lab stays up until Ctrl-C. Try:\n  %s status --kubeconfig %s -n %s\n", opts.Herald, l.Kubeconfig(), HeraldNamespace)
		<-ctx.Done()
	}
	return nil
}

// waitServer waits up to a minute for floating IP 7 to be on a server
// other than from (0: any), and returns that server's node.
func waitServer(ctx context.Context, sim *hcloudsim.Sim, from int64) (string, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		if s := sim.Assignment(7); s != 0 && s != from {
			return fmt.Sprintf("node%d", s), s, nil
		}
		select {
		case <-ctx.Done():
			return "", 0, fmt.Errorf("the floating IP was not assigned to a new server within a minute (on server %d)", sim.Assignment(7))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// The demo's speakers run with a short lease and hold-down, so that its
// failover shows in seconds what the defaults (15 s, 30 s) do in tens.
const (
	demoLease    = 3 * time.Second
	demoHoldDown = 5 * time.Second
)

// Sleep waits d, or returns ctx's error if ctx ends first.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

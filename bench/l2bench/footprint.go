package main

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/herald-lb/herald/bench/bulksvc"
	"github.com/herald-lb/herald/bench/procstat"
	"github.com/herald-lb/herald/internal/lab"
)

// usage is one speaker's footprint over a window.
type usage struct {
	node  string
	pid   int
	mem   memory
	cpu   float64 // CPU seconds in the window
	cores float64 // cpu / window: fraction of one core
	owned int     // addresses it announces (metallb_speaker_announced)
	heap  uint64  // Go heap in use (go_memstats_heap_inuse_bytes), 0 if not exported
	arp   int     // ARP packet sockets open in its namespace
}

// cpuSnap is every speaker's pid and CPU time at one instant.
type cpuSnap struct {
	at   time.Time
	pids map[string]int
	cpu  map[string]float64
}

func (b *bench) snapCPU() (cpuSnap, error) {
	s := cpuSnap{at: time.Now(), pids: map[string]int{}, cpu: map[string]float64{}}
	for _, n := range b.lab.Nodes() {
		pid, err := procstat.SpeakerPID(b.herald, b.lab.Kubeconfig(), n.Name)
		if err != nil {
			return s, err
		}
		c, err := procstat.CPUSeconds(pid)
		if err != nil {
			return s, fmt.Errorf("%s (pid %d): %w", n.Name, pid, err)
		}
		s.pids[n.Name], s.cpu[n.Name] = pid, c
	}
	return s, nil
}

// usageBetween is each speaker's CPU use between two snapshots and its
// memory now. A speaker that restarted in between is an error: its CPU
// time started again from zero.
func (b *bench) usageBetween(ctx context.Context, from, to cpuSnap) ([]usage, error) {
	window := to.at.Sub(from.at).Seconds()
	var out []usage
	for _, n := range b.lab.Nodes() {
		pid := to.pids[n.Name]
		if pid != from.pids[n.Name] {
			return nil, fmt.Errorf("%s's speaker restarted during the window (pid %d, then %d)", n.Name, from.pids[n.Name], pid)
		}
		mem, err := readMemory(pid)
		if err != nil {
			return nil, fmt.Errorf("%s (pid %d): %w", n.Name, pid, err)
		}
		u := usage{node: n.Name, pid: pid, mem: mem, cpu: to.cpu[n.Name] - from.cpu[n.Name]}
		u.cores = u.cpu / window
		m, err := scrapeSpeaker(ctx, n.Namespace)
		if err != nil {
			return nil, err
		}
		u.owned = m.Count("metallb_speaker_announced", nil)
		u.heap = uint64(m.Sum("go_memstats_heap_inuse_bytes"))
		if u.arp, err = arpSockets(pid); err != nil {
			return nil, fmt.Errorf("%s (pid %d): %w", n.Name, pid, err)
		}
		out = append(out, u)
	}
	return out, nil
}

// idleUsage measures every speaker over window with nothing happening.
func (b *bench) idleUsage(ctx context.Context, window time.Duration) ([]usage, error) {
	from, err := b.snapCPU()
	if err != nil {
		return nil, err
	}
	if err := lab.Sleep(ctx, window); err != nil {
		return nil, err
	}
	to, err := b.snapCPU()
	if err != nil {
		return nil, err
	}
	return b.usageBetween(ctx, from, to)
}

// bulkPool holds the many-addresses Services: inside the LAN's
// 2001:db8::/64 and clear of the lab's own pool.
const (
	bulkPoolName = "l2bench-bulk"
	bulkPrefix   = "2001:db8::1:0/112"
	bulkLabel    = "l2bench"
)

// checkBulkPool makes sure the bulk prefix is on the LAN, does not overlap
// the lab's IPv6 pool and is big enough.
func checkBulkPool(n int) (netip.Prefix, error) {
	p := netip.MustParsePrefix(bulkPrefix)
	lan := netip.MustParsePrefix("2001:db8::/64")
	if !lan.Contains(p.Addr()) || p.Bits() < lan.Bits() {
		return p, fmt.Errorf("%s is not inside the LAN's %s", p, lan)
	}
	first, last, err := parseRange(lab.Pool6)
	if err != nil {
		return p, fmt.Errorf("lab pool %s: %w", lab.Pool6, err)
	}
	if rangesOverlap(p, first, last) {
		return p, fmt.Errorf("%s overlaps the lab's pool %s", p, lab.Pool6)
	}
	if size := 1 << (128 - p.Bits()); n > size-2 {
		return p, fmt.Errorf("%d addresses do not fit in %s", n, p)
	}
	return p, nil
}

func bulkConfig() string {
	return `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: ` + bulkPoolName + `, namespace: ` + lab.HeraldNamespace + `}
spec:
  addresses: ["` + bulkPrefix + `"]
  autoAssign: false
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: ` + bulkPoolName + `, namespace: ` + lab.HeraldNamespace + `}
spec:
  ipAddressPools: [` + bulkPoolName + `]
`
}

// bulkResult is how the many Services came up.
type bulkResult struct {
	created, addressed, announced time.Duration // from the first create
	perNode                       map[string]int
}

// createBulk creates n single-stack IPv6 LoadBalancer Services from the bulk
// pool, each with a ready endpoint on every node (a Cluster-policy Service
// is announced only with one), and waits until all have addresses and the
// speakers announce them all. The lab's own client is rate limited to
// client-go's default 5 requests per second; this one is not.
func (b *bench) createBulk(ctx context.Context, n int) (bulkResult, error) {
	var res bulkResult
	prefix, err := checkBulkPool(n)
	if err != nil {
		return res, err
	}
	if err := b.lab.Apply(ctx, bulkConfig()); err != nil {
		return res, err
	}
	cfg := b.lab.Config()
	cfg.QPS, cfg.Burst = 500, 1000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return res, err
	}
	nodes := b.lab.Nodes()
	start := time.Now()
	if err := bulksvc.CreateMany(ctx, cs, n, 8, bulkService(), nodes); err != nil {
		return res, err
	}
	res.created = time.Since(start)
	b.log.Info("bulk Services created", "count", n, "took", res.created.Round(time.Millisecond))

	wait := func(what string, done func() (bool, string, error)) error {
		wctx, cancel := context.WithTimeout(ctx, b.o.bulkTimeout)
		defer cancel()
		for {
			ok, state, err := done()
			if err != nil {
				return err
			}
			if ok {
				return nil
			}
			if err := lab.Sleep(wctx, 500*time.Millisecond); err != nil {
				return fmt.Errorf("%s: still %s: %w", what, state, err)
			}
		}
	}
	err = wait("addresses", func() (bool, string, error) {
		list, err := cs.CoreV1().Services("default").List(ctx, metav1.ListOptions{LabelSelector: bulkLabel + "=bulk"})
		if err != nil {
			return false, "", err
		}
		got := 0
		for _, s := range list.Items {
			if len(s.Status.LoadBalancer.Ingress) > 0 {
				got++
			}
		}
		return got == n, fmt.Sprintf("%d of %d addressed", got, n), nil
	})
	if err != nil {
		return res, err
	}
	res.addressed = time.Since(start)
	b.log.Info("bulk Services addressed", "count", n, "took", res.addressed.Round(time.Millisecond))

	inBulk := func(labels string) bool {
		_, rest, ok := strings.Cut(labels, `ip="`)
		if !ok {
			return false
		}
		ip, _, _ := strings.Cut(rest, `"`)
		a, err := netip.ParseAddr(ip)
		return err == nil && prefix.Contains(a)
	}
	err = wait("announcements", func() (bool, string, error) {
		res.perNode = map[string]int{}
		total := 0
		for _, nd := range nodes {
			m, err := scrapeSpeaker(ctx, nd.Namespace)
			if err != nil {
				return false, "", err
			}
			c := m.Count("metallb_speaker_announced", inBulk)
			res.perNode[nd.Name] = c
			total += c
		}
		return total == n, fmt.Sprintf("%d of %d announced (%v)", total, n, res.perNode), nil
	})
	if err != nil {
		return res, err
	}
	res.announced = time.Since(start)
	b.log.Info("bulk addresses announced", "count", n, "took", res.announced.Round(time.Millisecond), "per node", res.perNode)
	return res, nil
}

// bulkService is what the footprint's many Services share: IPv6 addresses
// from the bulk pool, an endpoint on every node.
func bulkService() bulksvc.Spec {
	return bulksvc.Spec{
		Pool:       bulkPoolName,
		Family:     corev1.IPv6Protocol,
		Labels:     map[string]string{bulkLabel: "bulk"},
		ManagedBy:  "l2bench",
		PodAddress: func(i int) string { return fmt.Sprintf("2001:db8:19::%d", i) },
	}
}

package chaos

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/herald-lb/herald/bench/bulksvc"
	"github.com/herald-lb/herald/bench/procstat"
	"github.com/herald-lb/herald/internal/lab"
)

// LeaderElectedControllerArgs are the lab controller's arguments with
// leader election on, for two replicas that take over from each other.
func LeaderElectedControllerArgs(kubeconfig string) []string {
	args := lab.DefaultControllerArgs(kubeconfig)
	for i, a := range args {
		if a == "--leader-elect=false" {
			args[i] = "--leader-elect=true"
		}
	}
	return args
}

// bulkPool is where LeaderKill's Services get addresses: 1,024 IPv6
// addresses, handed out only on request.
const bulkPool = `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: chaos-bulk, namespace: ` + lab.HeraldNamespace + `}
spec: {addresses: ["2001:db8:c::/118"], autoAssign: false}
`

const bulkLabel = "herald-chaos"

// acquired is what client-go's leader election logs on winning.
const acquired = "Successfully acquired lease"

// LeaderKill runs a second controller replica beside the lab's (which must
// run with LeaderElectedControllerArgs), creates n Services, and kills the
// leader with SIGKILL once a fifth of them exist. Every sample of all
// Services' addresses must show no address twice; it measures the time
// from the kill to the other replica leading and to every Service having
// its address.
func LeaderKill(ctx context.Context, l *lab.Lab, n int, o Options) (r Result, err error) {
	o = o.withDefaults()
	r.Scenario = fmt.Sprintf("controller leader killed while %d Services are created, 2 replicas", n)
	start := time.Now()
	if err := l.StartControllerReplica("controller-2"); err != nil {
		return r, err
	}
	replicas := []string{"controller", "controller-2"}
	leader, err := waitLeader(ctx, l, replicas, time.Minute)
	if err != nil {
		return r, err
	}
	r.Owner = leader
	if err := l.Apply(ctx, bulkPool); err != nil {
		return r, err
	}
	// The controller's configuration must hold the pool first, or the
	// first Services fail to allocate and are retried.
	if err := lab.Sleep(ctx, 3*time.Second); err != nil {
		return r, err
	}
	cfg := l.Config()
	cfg.QPS, cfg.Burst = -1, 0 // the API server's pace, not client-go's
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return r, err
	}
	spec := bulksvc.Spec{
		Pool: "chaos-bulk", Family: corev1.IPv6Protocol,
		Labels:     map[string]string{bulkLabel: "bulk"},
		ManagedBy:  "herald-chaos",
		PodAddress: func(i int) string { return fmt.Sprintf("2001:db8:e::%d", i) },
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var createErr error
	wg.Go(func() { createErr = bulksvc.CreateMany(cctx, cs, n, 8, spec, l.Nodes()) })
	defer wg.Wait()

	var killed, led, all time.Time
	var samples, seenMax int
	for {
		addrs, err := bulkAddresses(ctx, cs)
		if err != nil {
			return r, err
		}
		samples++
		if dup := duplicate(addrs); dup != "" {
			r.figure("samples", float64(samples))
			return r, fmt.Errorf("sample %d: %s", samples, dup)
		}
		seenMax = max(seenMax, len(addrs))
		if killed.IsZero() && len(addrs) >= n/5 {
			killed = time.Now()
			if err := l.KillProcess(leader); err != nil {
				return r, err
			}
			o.Log.Info("controller leader killed", "leader", leader, "addressed", len(addrs))
		}
		if !killed.IsZero() && led.IsZero() {
			for _, c := range replicas {
				if c != leader && strings.Contains(readLog(l, c), acquired) {
					led = time.Now()
				}
			}
		}
		if len(addrs) == n && !killed.IsZero() {
			all = time.Now()
			break
		}
		if time.Since(start) > 5*time.Minute {
			return r, fmt.Errorf("%d of %d Services addressed after 5 minutes (creation: %v)", len(addrs), n, createErr)
		}
		if err := lab.Sleep(ctx, 100*time.Millisecond); err != nil {
			return r, err
		}
	}
	r.Duration = time.Since(start).Round(time.Millisecond)
	r.figure("services", float64(n))
	r.figure("samples", float64(samples))
	r.figure("duplicates", 0)
	r.figure("kill to new leader s", led.Sub(killed).Seconds())
	r.figure("kill to all addressed s", all.Sub(killed).Seconds())
	r.Events = map[string]int{}
	if ev, err := l.EventReasons(ctx, start); err == nil {
		r.Events["IPAllocated"] = ev["IPAllocated"]
		r.Events["AllocationFailed"] = ev["AllocationFailed"]
	}
	return r, nil
}

func waitLeader(ctx context.Context, l *lab.Lab, replicas []string, within time.Duration) (string, error) {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for _, c := range replicas {
			if strings.Contains(readLog(l, c), acquired) {
				return c, nil
			}
		}
		if err := lab.Sleep(ctx, 100*time.Millisecond); err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("no controller replica leads after %s", within)
}

// bulkAddresses maps each address of the bulk Services to the Services
// holding it.
func bulkAddresses(ctx context.Context, cs kubernetes.Interface) (map[string][]string, error) {
	list, err := cs.CoreV1().Services("default").List(ctx, metav1.ListOptions{LabelSelector: bulkLabel})
	if err != nil {
		return nil, fmt.Errorf("list Services: %w", err)
	}
	out := map[string][]string{}
	for _, s := range list.Items {
		for _, in := range s.Status.LoadBalancer.Ingress {
			out[in.IP] = append(out[in.IP], s.Name)
		}
	}
	return out, nil
}

// duplicate names an address held by two Services, or returns "".
func duplicate(addrs map[string][]string) string {
	for ip, svcs := range addrs {
		if len(svcs) > 1 {
			slices.Sort(svcs)
			return fmt.Sprintf("address %s held by %d Services: %v", ip, len(svcs), svcs)
		}
	}
	return ""
}

// Frames floods the client's link with BadFrames about addr4 and addr6 (an
// IPv6 Service address; may be invalid), mixed with a few good requests,
// at perSecond frames a second for o.For. No bad frame may be answered, the
// good ones must be, no speaker may crash and the owner must not change;
// it reports each speaker's CPU during the flood against an idle window
// as long.
func Frames(ctx context.Context, l *lab.Lab, t Target, addr6 netip.Addr, perSecond int, o Options) (r Result, err error) {
	o = o.withDefaults()
	bad := lab.BadFrames(t.Addr, addr6)
	frames := append(slices.Clone(bad), lab.GoodFrames(t.Addr, addr6)...)
	r.Scenario = fmt.Sprintf("%d kinds of bad frame and %d good ones flooded at %d/s", len(bad), len(frames)-len(bad), perSecond)
	idle, err := speakersCPU(ctx, l, o.For)
	if err != nil {
		return r, err
	}
	w, err := startWatch(ctx, l, t, o, &r)
	if err != nil {
		return r, err
	}
	from := time.Now()
	defer func() { w.finish(context.WithoutCancel(ctx), &r, from, time.Now()) }()
	cpu0, err := speakerTimes(l)
	if err != nil {
		return r, err
	}
	res, err := l.FloodFrames(ctx, frames, perSecond, o.For)
	if err != nil {
		return r, err
	}
	cpu1, err := speakerTimes(l)
	if err != nil {
		return r, fmt.Errorf("after the flood: %w (%v)", err, l.CheckProcesses())
	}
	flood := time.Since(from).Seconds()
	for _, n := range l.Nodes() {
		r.figure(n.Name+" idle cpu %", idle[n.Name])
		r.figure(n.Name+" flood cpu %", 100*(cpu1[n.Name]-cpu0[n.Name])/flood)
	}
	r.figure("frames sent", float64(res.Sent))
	r.figure("good answered", float64(res.Answers[lab.GoodFrameMAC.String()]))
	wrong := 0
	for i, f := range bad {
		if c := res.Answers[lab.BadFrameMAC(i).String()]; c > 0 {
			wrong += c
			r.note("%d answers to %q", c, f.Name)
		}
	}
	r.figure("bad answered", float64(wrong))
	if err := l.CheckProcesses(); err != nil {
		return r, err
	}
	if o.Strict && wrong > 0 {
		return r, fmt.Errorf("%d answers to bad frames: %v", wrong, r.Notes)
	}
	if res.Answers[lab.GoodFrameMAC.String()] == 0 {
		return r, fmt.Errorf("none of the good requests among the flood was answered")
	}
	// The owner still answers, alone.
	if _, err := w.answers.WaitRound(ctx, from, func(r lab.Round) bool { return r.AnsweredOnlyBy(w.ownerMAC) }); err != nil {
		return r, err
	}
	return r, nil
}

// speakerTimes is each speaker's CPU seconds so far.
func speakerTimes(l *lab.Lab) (map[string]float64, error) {
	out := map[string]float64{}
	for _, n := range l.Nodes() {
		pid, err := l.SpeakerPID(n.Name)
		if err != nil {
			return nil, err
		}
		if out[n.Name], err = procstat.CPUSeconds(pid); err != nil {
			return nil, fmt.Errorf("speaker of %s: %w", n.Name, err)
		}
	}
	return out, nil
}

// speakersCPU is each speaker's CPU over d, in % of a core.
func speakersCPU(ctx context.Context, l *lab.Lab, d time.Duration) (map[string]float64, error) {
	before, err := speakerTimes(l)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := lab.Sleep(ctx, d); err != nil {
		return nil, err
	}
	after, err := speakerTimes(l)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for k := range after {
		out[k] = 100 * (after[k] - before[k]) / time.Since(t0).Seconds()
	}
	return out, nil
}

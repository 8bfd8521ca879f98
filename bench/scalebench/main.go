// Command scalebench measures internal/membership at cluster sizes from 10
// to 500 members, with Herald's "fast" profile and memberlist's stock "lan"
// profile, and writes bench/results/scale.{json,md} (issue 14, "Scale").
//
// For each profile and size it starts a cluster of real memberlist members
// in this one process, each on its own loopback address (127.<net>.x.y,
// routed to lo by Linux; no other address is used), waits until every
// member lists every other, lets the join traffic settle, then:
//   - quiet window: for -window, counts the bytes memberlist sends (see
//     sink.go: go-metrics counters at the transport, totals over all
//     members), the process's CPU time, the suspicions and deaths memberlist
//     declares, and the live members some survivor drops from Members():
//     nobody was killed, so every one is a false positive;
//   - detection: -runs times, a member is stopped without Leave (a crash)
//     at a random moment, and every survivor is watched through Changes()
//     until it no longer lists it. Killed members are not replaced: run k
//     has n-k+1 members.
//
// A size whose cluster does not start or converge, or whose quiet window
// uses more CPU than the machine has to spare, ends that profile's
// series: larger sizes would measure the machine, not memberlist.
//
// Run from the repository root: go run ./bench/scalebench (make bench-scale)
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/herald-lb/herald/bench/report"
	"github.com/herald-lb/herald/internal/membership"
)

type options struct {
	out           string
	sizes         []int
	profiles      []string
	window        time.Duration
	settle        time.Duration
	runs          int
	port          int
	detectTimeout time.Duration
	seedOnly      bool
	cpuProfile    string
	staggerFrom   int
	stagger       time.Duration
}

func main() {
	var o options
	sizes := flag.String("sizes", "10,50,100,250,500", "cluster sizes, comma-separated, 2 to 500")
	profiles := flag.String("profiles", "fast,lan", "membership profiles, comma-separated")
	flag.StringVar(&o.out, "out", "bench/results", "directory for scale.json and scale.md")
	flag.DurationVar(&o.window, "window", 15*time.Second, "quiet window: traffic, CPU and false positives")
	flag.DurationVar(&o.settle, "settle", 5*time.Second, "wait after the cluster converged, before the quiet window")
	flag.IntVar(&o.runs, "runs", 3, "killed members per profile and size")
	flag.IntVar(&o.port, "port", 27948, "memberlist port of every member")
	flag.DurationVar(&o.detectTimeout, "detect-timeout", 90*time.Second, "longest wait for a kill to be seen")
	flag.IntVar(&o.staggerFrom, "stagger-from", 100, "from this cluster size on, start members -stagger apart instead of all at once")
	flag.DurationVar(&o.stagger, "stagger", 250*time.Millisecond, "time between member starts in clusters of -stagger-from members or more")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.BoolVar(&o.seedOnly, "seed-only", false, "give members only member 0's address as peer, not every member's as a speaker has")
	flag.Parse()
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 2 || n > 500 {
			fmt.Fprintf(os.Stderr, "scalebench: bad cluster size %q (want 2 to 500)\n", s)
			os.Exit(2)
		}
		o.sizes = append(o.sizes, n)
	}
	o.profiles = strings.Split(*profiles, ",")
	if o.runs < 1 || o.runs >= slices.Min(o.sizes)-1 || o.window <= 0 {
		fmt.Fprintln(os.Stderr, "scalebench: want -runs at least 1 and below the smallest size minus 1, and a positive -window")
		os.Exit(2)
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "scalebench: CPU profile: %v\n", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
		// A run that never converges is the one worth profiling, so
		// an interrupt still writes the profile.
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		go func() {
			<-sig
			pprof.StopCPUProfile()
			fmt.Fprintln(os.Stderr, "scalebench: interrupted; CPU profile written to", o.cpuProfile)
			os.Exit(130)
		}()
	}
	if err := run(context.Background(), o); err != nil {
		slog.Error("scalebench failed", "err", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

// drain is how long a cluster that did not start is left to its timers
// before the next is measured: at least the longest suspicion, 6 × 3 ×
// log10 500 × 300 ms.
const drain = 20 * time.Second

// saturated is the share of the machine's cores above which a quiet window
// is taken to measure the machine's limits rather than memberlist's.
const saturated = 0.8

func run(ctx context.Context, o options) error {
	sink := &byteSink{}
	if err := sink.install(); err != nil {
		return fmt.Errorf("metrics sink: %w", err)
	}
	rep := report.Report{
		Title: "Membership at scale: traffic, CPU, detection and false positives from 10 to 500 members",
		Description: fmt.Sprintf("Each scenario: one cluster of n real memberlist members (internal/membership) in one process, each on its own loopback address, "+
			"converged, then %s to settle; a quiet window of %s (nothing killed) for traffic, CPU and false positives; then %d members killed one after another "+
			"(Shutdown without Leave, like a crash, not replaced) and every survivor watched until it dropped the victim from Members(). "+
			"fast = Herald's default profile; lan = memberlist's DefaultLANConfig, which MetalLB uses.", o.settle, o.window, o.runs),
		Command: "make bench-scale",
		Machine: report.DescribeMachine(time.Now()),
	}
	net := 80
	for _, profile := range o.profiles {
		for _, n := range o.sizes {
			res, stop, err := scenario(ctx, o, sink, profile, n, net)
			net++
			if err != nil {
				return fmt.Errorf("%s, %d members: %w", profile, n, err)
			}
			if res != nil {
				rep.Results = append(rep.Results, *res)
			}
			if stop != "" {
				fmt.Println(stop)
				rep.Notes = append(rep.Notes, stop)
				break
			}
		}
	}
	rep.Notes = append(rep.Notes, notes(o)...)
	return report.Write(o.out, "scale", rep)
}

// scenario measures one profile at one size. A cluster that cannot be
// measured (it does not start, or the machine is saturated) gives a reason
// to stop the series; an error is a fault of the benchmark itself.
func scenario(ctx context.Context, o options, sink *byteSink, profile string, n, net int) (*report.Result, string, error) {
	name := fmt.Sprintf("%s, %d members", profile, n)
	ev := &events{}
	start, cpuStart, busyStart := time.Now(), processCPU(), machineBusy()
	stagger := time.Duration(0)
	if n >= o.staggerFrom {
		stagger = o.stagger
	}
	c, err := startCluster(ctx, profile, n, net, o.port, o.seedOnly, stagger, 30*time.Second+time.Duration(n)*(200*time.Millisecond+stagger), ev.logger())
	if err != nil {
		e, secs := ev.snapshot(), time.Since(start).Seconds()
		ours := (processCPU() - cpuStart).Seconds() / secs
		others := max(0, (machineBusy()-busyStart).Seconds()/secs-ours)
		// memberlist does not stop its suspicion timers on Shutdown: those
		// of a cluster that never settled still fire, and count deaths in
		// the process-wide counters, for up to 6 suspicion timeouts.
		time.Sleep(drain)
		return nil, fmt.Sprintf("%s: did not start (%v; meanwhile %.2f cores, %.2f cores of other load, %d failed probes, %d deaths declared, %d refutations); larger %s clusters not tried.",
			name, err, ours, others, e.probeFailed, e.timedOut, e.refuted, profile), nil
	}
	defer c.stop()
	converged := time.Since(start)
	joinCores := (processCPU() - cpuStart).Seconds() / converged.Seconds()
	joinOthers := max(0, (machineBusy()-busyStart).Seconds()/converged.Seconds()-joinCores)
	joinEv := ev.snapshot()
	time.Sleep(o.settle)

	cpu0, busy0, sched0, ev0 := processCPU(), machineBusy(), readSchedLatency(), ev.snapshot()
	before, t0 := sink.snapshot(), time.Now()
	wctx, cancel := context.WithTimeout(ctx, o.window)
	quiet := c.observe(wctx, "", t0)
	cancel()
	took := time.Since(t0)
	d := sink.snapshot().minus(before)
	qev := ev.snapshot().minus(ev0)
	schedP99, schedP9999, schedMax := readSchedLatency().since(sched0)
	cpu1, busy1 := processCPU(), machineBusy()
	secs := took.Seconds()
	cores := (cpu1 - cpu0).Seconds() / secs
	others := max(0, (busy1-busy0).Seconds()/secs-cores)
	total := float64(d.udpSent+d.tcpSent) / secs
	lost := 0.0
	if d.udpSent > 0 {
		lost = 100 * (float64(d.udpSent) - float64(d.udpReceived)) / float64(d.udpSent)
	}

	var first, all []time.Duration
	missed, spurious := 0, 0
	kcpu0, kt0, kev0 := processCPU(), time.Now(), ev.snapshot()
	for r := range o.runs {
		time.Sleep(500*time.Millisecond + rand.N(time.Second))
		began, err := c.kill(n - 1 - r)
		if err != nil {
			return nil, "", err
		}
		dctx, cancel := context.WithTimeout(ctx, o.detectTimeout)
		w := c.observe(dctx, c.names[n-1-r], began)
		cancel()
		missed += w.missed
		spurious += w.spurious
		if len(w.dropped) > 0 {
			s := report.Summarize(w.dropped)
			first, all = append(first, s.Min), append(all, s.Max)
		}
		fmt.Printf("%s: kill %d seen by the first survivor after %s, by %d of %d after %s\n", name, r+1,
			report.Summarize(w.dropped).Min.Round(time.Millisecond), len(w.dropped), len(w.dropped)+w.missed,
			report.Summarize(w.dropped).Max.Round(time.Millisecond))
	}
	killCores := (processCPU() - kcpu0).Seconds() / time.Since(kt0).Seconds()
	kev := ev.snapshot().minus(kev0)
	timing, err := membership.ProfileTiming(profile, n)
	if err != nil {
		return nil, "", err
	}
	fs, as := report.Summarize(first), report.Summarize(all)
	res := &report.Result{Name: name, Metrics: []report.Metric{
		{Name: "probe interval", Unit: "ms", Value: report.Millis(timing.Probe, 0)},
		{Name: "gossip interval", Unit: "ms", Value: report.Millis(timing.Gossip, 0)},
		{Name: "suspicion", Unit: "ms", Value: report.Millis(timing.SuspicionMin, 0)},
		{Name: "converged", Unit: "s", Value: report.Round(converged.Seconds(), 1)},
		{Name: "join: process CPU", Unit: "cores", Value: report.Round(joinCores, 2)},
		{Name: "join: other load", Unit: "cores", Value: report.Round(joinOthers, 2)},
		{Name: "join: failed probes", Unit: "count", Value: float64(joinEv.probeFailed)},
		{Name: "join: deaths declared", Unit: "count", Value: float64(joinEv.timedOut)},
		{Name: "per node", Unit: "KB/s", Value: report.Round(total/float64(n)/1000, 2)},
		{Name: "total", Unit: "KB/s", Value: report.Round(total/1000, 1)},
		{Name: "TCP share", Unit: "%", Value: report.Round(100*float64(d.tcpSent)/max(1, float64(d.udpSent+d.tcpSent)), 1)},
		{Name: "UDP lost", Unit: "%", Value: report.Round(lost, 2)},
		{Name: "CPU per node", Unit: "% of a core", Value: report.Round(100*cores/float64(n), 3)},
		{Name: "process CPU", Unit: "cores", Value: report.Round(cores, 2)},
		{Name: "other load", Unit: "cores", Value: report.Round(others, 2)},
		{Name: "quiet: suspicions", Unit: "count", Value: float64(d.suspect)},
		{Name: "quiet: dead declared", Unit: "count", Value: float64(d.dead)},
		{Name: "quiet: live members dropped", Unit: "count", Value: float64(quiet.spurious)},
		{Name: "quiet: failed probes", Unit: "count", Value: float64(qev.probeFailed)},
		{Name: "quiet: refutations", Unit: "count", Value: float64(qev.refuted)},
		{Name: "quiet: probes stretched", Unit: "count", Value: float64(d.degraded)},
		{Name: "quiet: sched wait p99", Unit: "ms", Value: report.Millis(schedP99, 1)},
		{Name: "quiet: sched wait p99.99", Unit: "ms", Value: report.Millis(schedP9999, 1)},
		{Name: "quiet: sched wait max", Unit: "ms", Value: report.Millis(schedMax, 0)},
		{Name: "kill, first, median", Unit: "ms", Value: report.Millis(fs.Median, 0)},
		{Name: "kill, all, median", Unit: "ms", Value: report.Millis(as.Median, 0)},
		{Name: "kill, all, max", Unit: "ms", Value: report.Millis(as.Max, 0)},
		{Name: "expected typical", Unit: "ms", Value: report.Millis(timing.Typical(), 0)},
		{Name: "kill: not seen in time", Unit: "count", Value: float64(missed)},
		{Name: "kill: live members dropped", Unit: "count", Value: float64(spurious)},
		{Name: "kill: process CPU", Unit: "cores", Value: report.Round(killCores, 2)},
		{Name: "kill: failed probes", Unit: "count", Value: float64(kev.probeFailed)},
		{Name: "kill: deaths declared", Unit: "count", Value: float64(kev.timedOut)},
	}}
	fmt.Printf("%s: converged in %s (%.2f cores, %d failed probes, %d deaths); %.2f KB/s per node, %.1f KB/s total; CPU %.3f%% of a core per node (%.2f cores, %.2f others); "+
		"quiet: %d failed probes, %d suspicions, %d dead, %d dropped, sched wait p99 %s max %s; kill all median %s max %s\n",
		name, converged.Round(100*time.Millisecond), joinCores, joinEv.probeFailed, joinEv.timedOut, total/float64(n)/1000, total/1000, 100*cores/float64(n), cores, others,
		qev.probeFailed, d.suspect, d.dead, quiet.spurious, schedP99, schedMax, as.Median.Round(time.Millisecond), as.Max.Round(time.Millisecond))
	if cores > saturated*float64(runtime.NumCPU()) {
		return res, fmt.Sprintf("%s: the quiet window used %.2f of %d cores; larger %s clusters not tried, as they would measure this machine's limits.",
			name, cores, runtime.NumCPU(), profile), nil
	}
	return res, "", nil
}

func notes(o options) []string {
	return []string{
		"Bytes: memberlist's own go-metrics counters memberlist.udp.sent and memberlist.tcp.sent, added where memberlist hands a buffer to its socket " +
			"(after compression and encryption, none here), summed over all members; per node = total / n, the mean (SWIM spreads the load evenly, " +
			"but no per-member figure is measured). IP/UDP/TCP headers (28 bytes a datagram) and TCP ACKs are not counted. " +
			"UDP lost = sent minus received over sent: datagrams the kernel dropped, a sign of an overloaded machine.",
		"CPU: all members run in one process, so CPU per node = process CPU time (user + system, getrusage) / n / window, " +
			"Go's scheduler and garbage collector included; the benchmark's own watchers are idle in a quiet window. " +
			"A real node also pays, once for its one member, a Go runtime's fixed overhead and a NIC driver's cost, neither of which shows here. " +
			"TCP is push-pull (full state with one peer every 30 s per member, stretched by memberlist above 32 members): a short window catches few, so TCP share is noisy at small n.",
		"False positives: suspicions and dead declared are memberlist's memberlist.msg.suspect and memberlist.msg.dead counters over all members in the quiet window " +
			"(a suspicion refuted in time moves nothing); live members dropped counts (observer, member) pairs where a member's Members() lost a member nobody killed, " +
			"which would move addresses.",
		fmt.Sprintf("Kill: first/all = until the first survivor / every survivor dropped the victim; median and max over %d kills per scenario. "+
			"expected typical = membership.ProfileTiming for n members (internal/membership/timing.go). "+
			"kill: process CPU, failed probes and deaths declared (the victims' own included) cover all the kills, from the first kill to the last survivor's drop, "+
			"the watchers (one per survivor, woken by each change of its member list) included.", o.runs),
		fmt.Sprintf("Timers: probe interval, gossip interval and suspicion (the minimum, once confirmed) are what internal/membership chose for n members "+
			"(fast: the step of its curve, fastCurve in profile.go; each member is given all n addresses as peers, as a speaker is given every node). "+
			"Join: from the first member's start until every member listed all n; members start at once below %d members, %s apart from %d on "+
			"(all at once, the join's gossip, n² log n messages decoded in this one process, saturates 2 cores). "+
			"Other load: the machine's busy CPU minus this process's, other programs on the same cores. "+
			"Failed probes: probes that got no ack, direct, indirect or over TCP, and raised a suspicion; refutations: a member denied its own suspicion or death; "+
			"probes stretched: Lifeguard's awareness lengthened a member's probe interval; sched wait: how long goroutines waited for a CPU "+
			"(Go's /sched/latencies histogram, bucket lower bounds).", o.staggerFrom, o.stagger, o.staggerFrom),
		"What one process on a few cores can and cannot say: traffic per node is set by the profile's timers and the member count, not by the machine, " +
			"so it extrapolates to real nodes as long as UDP lost stays near 0. CPU per node here shares cores with n−1 other members: when the process " +
			"nears the machine's cores, probes are answered late, suspicions and false positives rise and detection slows, and those figures describe " +
			"the machine, not memberlist on n separate nodes. Past the largest size measured, traffic per node grows with the gossip of n members " +
			"(about log n retransmissions of each update, and push-pull state of n entries every 30 s); extrapolate CPU and detection with care.",
	}
}

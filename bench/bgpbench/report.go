package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/herald-lb/herald/bench/report"
)

// results is everything one run measured.
type results struct {
	started, finished time.Time
	loadavg           string
	incomplete        string // why the run stopped early, if it did

	bfdState, bfdTimers, holdTimers string
	bfd, hold, graceful             []lossRun
	bulk                            bulkResult
	memBefore, memAfter             []nodeMemory
	prefixes                        map[string]int
}

const command = "make bench-bgp (as root; or: make build && go run ./bench/bgpbench)"

func metric(name, unit string, v float64) report.Metric {
	return report.Metric{Name: name, Unit: unit, Value: v}
}

func spread(name string, ds []time.Duration, extra ...report.Metric) report.Result {
	s := report.Summarize(ds)
	return report.Result{Name: name, Metrics: append([]report.Metric{
		metric("runs", "", float64(s.N)),
		metric("min", "ms", report.Millis(s.Min, 1)),
		metric("median", "ms", report.Millis(s.Median, 1)),
		metric("p95", "ms", report.Millis(s.P95, 1)),
		metric("max", "ms", report.Millis(s.Max, 1)),
	}, extra...)}
}

func pick(runs []lossRun, f func(lossRun) time.Duration) []time.Duration {
	var ds []time.Duration
	for _, r := range runs {
		ds = append(ds, f(r))
	}
	return ds
}

func failedTotal(runs []lossRun) (failed, requests int) {
	for _, r := range runs {
		failed += r.failed
		requests += r.requests
	}
	return
}

func list(runs []lossRun, f func(lossRun) time.Duration) string {
	parts := make([]string, len(runs))
	for i, r := range runs {
		parts[i] = fmt.Sprint(f(r).Round(time.Millisecond).Milliseconds())
	}
	return strings.Join(parts, ", ")
}

// The defaults: 20 runs per scenario, as the issue asks.
const (
	defaultRuns       = 20
	defaultServices   = 1000
	defaultProbeEvery = 20 * time.Millisecond
)

func scaled(o options) string {
	if o.bfdRuns == defaultRuns && o.holdRuns == defaultRuns && o.gracefulRuns == defaultRuns &&
		o.services == defaultServices && o.probeEvery == defaultProbeEvery {
		return ""
	}
	return fmt.Sprintf("NOT the default run counts: -bfd-runs %d -hold-runs %d -graceful-runs %d -services %d -probe-every %s.",
		o.bfdRuns, o.holdRuns, o.gracefulRuns, o.services, o.probeEvery)
}

func machineNote(r results) string {
	return fmt.Sprintf("The whole run took %s; load average when it started: %s. The machine's cores are shared by the API server, etcd, the controller, three speakers, FRR, the stand-in backends and the benchmark itself.",
		r.finished.Sub(r.started).Round(time.Second), r.loadavg)
}

func routeGone(r lossRun) time.Duration { return r.routeGone }
func recovered(r lossRun) time.Duration { return r.recovered }
func exited(r lossRun) time.Duration    { return r.exit }

func failoverReport(o options, r results) report.Report {
	rep := report.Report{
		Title: "BGP node loss: time until the router stops using the node",
		Description: fmt.Sprintf("Lab of network namespaces (internal/lab) with a router: three nodes and an FRR 8.4 router (bgpd -F datacenter, bfdd, multipath) on one bridge, "+
			"a remote client behind the router, a real kube-apiserver and etcd, the controller and a speaker per node, each peering with the router over IPv4 and IPv6 (eBGP 64500 to 64501). "+
			"One IPv4 LoadBalancer Service (Cluster policy, a ready endpoint on every node), advertised as a /32 from every node: the router has an ECMP route with three next hops. "+
			"The remote client sends an HTTP request to the Service every %s, each on a new connection (1 s timeout), so the router's L4 hash spreads them over the nodes. "+
			"Hard loss: node1's bridge port goes down and node1's speaker gets SIGKILL right after (in that order, so that the FIN the kernel sends for the killed speaker's sockets cannot reach the router: a node that loses power sends none). Graceful stop: node1's speaker gets SIGTERM. "+
			"'route' is the time from the signal until the router's kernel route for the /32 no longer lists node1 (polled every 10 ms with ip route); "+
			"'requests ok' is the time from the signal until the start of the first successful request after the last failed one (0 if none failed). "+
			"After each run node1 comes back (link up, speaker started) and the next run waits for the three next hops (and, with BFD, the BFD sessions) plus %s.", o.probeEvery, o.settle),
		Command: command,
		Machine: report.DescribeMachine(r.started),
	}
	if len(r.bfd) > 0 {
		f, n := failedTotal(r.bfd)
		rep.Results = append(rep.Results,
			spread("hard loss, BFD 100 ms x 3: route", pick(r.bfd, routeGone)),
			spread("hard loss, BFD 100 ms x 3: requests ok", pick(r.bfd, recovered), metric("failed requests", "", float64(f)), metric("requests", "", float64(n))))
	}
	if len(r.hold) > 0 {
		f, n := failedTotal(r.hold)
		rep.Results = append(rep.Results,
			spread("hard loss, no BFD, holdTime 3s: route", pick(r.hold, routeGone)),
			spread("hard loss, no BFD, holdTime 3s: requests ok", pick(r.hold, recovered), metric("failed requests", "", float64(f)), metric("requests", "", float64(n))))
	}
	if len(r.graceful) > 0 {
		f, n := failedTotal(r.graceful)
		rep.Results = append(rep.Results,
			spread("graceful stop (SIGTERM): route", pick(r.graceful, routeGone)),
			spread("graceful stop (SIGTERM): requests ok", pick(r.graceful, recovered), metric("failed requests", "", float64(f)), metric("requests", "", float64(n))),
			spread("graceful stop (SIGTERM): speaker exit", pick(r.graceful, exited)))
	}
	rep.Results = append(rep.Results,
		report.Result{Name: "MetalLB native BGP, hard loss, holdTime 9s: QUOTED from the issue, not measured here",
			Metrics: []report.Metric{metric("min", "ms", 6300), metric("median", "ms", 7300), metric("max", "ms", 8500)}},
		report.Result{Name: "MetalLB, graceful stop: QUOTED from the issue, not measured here",
			Metrics: []report.Metric{metric("min", "ms", 358), metric("median", "ms", 667), metric("max", "ms", 676)}})
	if r.incomplete != "" {
		rep.Notes = append(rep.Notes, "INCOMPLETE run, figures so far only: "+r.incomplete)
	}
	if s := scaled(o); s != "" {
		rep.Notes = append(rep.Notes, s)
	}
	if len(r.bfd) > 0 {
		s := report.Summarize(pick(r.bfd, routeGone))
		met := "met"
		if s.Median >= 500*time.Millisecond {
			met = "NOT met"
		}
		rep.Notes = append(rep.Notes, fmt.Sprintf("Goal (issue): median under 500 ms with BFD (route withdrawn at the router): %s (median %s).", met, s.Median.Round(time.Millisecond)))
	}
	rep.Notes = append(rep.Notes,
		"BFD phase: both sides use 100 ms transmit/receive and multiplier 3 (Herald's BFDProfile on both BGPPeers; an FRR bfd profile on every neighbour); the BGPPeers set no holdTime, so the hold time is the negotiated minimum with FRR's datacenter profile. Router's view of BFD: "+r.bfdState+". Sessions: "+r.bfdTimers+".",
		"No-BFD phase: BGPPeers with holdTime 3s and no bfdProfile; BFD removed from FRR's neighbours. Sessions: "+r.holdTimers+".",
		"p95 is the nearest-rank percentile; the median of an even count is the mean of the two middle runs.")
	if len(r.bfd) > 0 {
		rep.Notes = append(rep.Notes, "BFD, each run, route / requests ok in ms: "+list(r.bfd, routeGone)+" / "+list(r.bfd, recovered)+".")
	}
	if len(r.hold) > 0 {
		rep.Notes = append(rep.Notes, "holdTime 3s, each run, route / requests ok in ms: "+list(r.hold, routeGone)+" / "+list(r.hold, recovered)+".")
	}
	if len(r.graceful) > 0 {
		rep.Notes = append(rep.Notes, "graceful, each run, route / speaker exit in ms: "+list(r.graceful, routeGone)+" / "+list(r.graceful, exited)+".")
	}
	rep.Notes = append(rep.Notes,
		"MetalLB rows: figures quoted from the issue (native BGP, hard loss 6.3–8.5 s, median 7.3 s, with holdTime 9s; graceful stop 358–676 ms, median 667 ms); not measured in this run.",
		machineNote(r))
	return rep
}

func scaleReport(o options, r results) report.Report {
	rep := report.Report{
		Title: fmt.Sprintf("BGP scale: %d Services at once, and the speakers' memory", r.bulk.n),
		Description: fmt.Sprintf("Same lab as the node-loss benchmark, speakers freshly restarted. %d single-stack IPv4 LoadBalancer Services from the pool %s "+
			"(each with an EndpointSlice with a ready endpoint on every node; their ClusterIPs come from an extra ServiceCIDR %s, the lab's own IPv4 range being a /24) are created by 16 workers with an unthrottled client; times run from the first create request "+
			"until the router's kernel table (ip -j route, polled every 100 ms) has the first, half, and every /32 with a next hop per node. "+
			"Memory is each speaker's VmRSS and VmHWM before the Services and 10 s after every route was in.", r.bulk.n, bulkPool, extraServiceCIDR),
		Command: command,
		Machine: report.DescribeMachine(r.started),
	}
	if r.bulk.allRoutes > 0 {
		rep.Results = append(rep.Results, report.Result{Name: fmt.Sprintf("%d Services", r.bulk.n), Metrics: []report.Metric{
			metric("created", "ms", report.Millis(r.bulk.created, 1)),
			metric("first route", "ms", report.Millis(r.bulk.firstRoute, 1)),
			metric("half the routes", "ms", report.Millis(r.bulk.halfRoutes, 1)),
			metric("every route", "ms", report.Millis(r.bulk.allRoutes, 1)),
		}})
	}
	for i, m := range r.memAfter {
		res := report.Result{Name: "speaker " + m.node}
		if i < len(r.memBefore) {
			res.Metrics = append(res.Metrics, metric("RSS before", "MiB", report.MiB(r.memBefore[i].mem.rss)))
		}
		res.Metrics = append(res.Metrics, metric("RSS after", "MiB", report.MiB(m.mem.rss)), metric("HWM after", "MiB", report.MiB(m.mem.hwm)))
		rep.Results = append(rep.Results, res)
	}
	if r.incomplete != "" {
		rep.Notes = append(rep.Notes, "INCOMPLETE run, figures so far only: "+r.incomplete)
	}
	if s := scaled(o); s != "" {
		rep.Notes = append(rep.Notes, s)
	}
	if len(r.prefixes) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.prefixes)) {
			parts = append(parts, fmt.Sprintf("%s: %d", k, r.prefixes[k]))
		}
		rep.Notes = append(rep.Notes, "Prefixes the router received per session ("+strings.Join(parts, "; ")+
			"). Each node has two sessions (IPv4 and IPv6 peer); the router activates the IPv4 unicast family only on the IPv4 sessions and IPv6 unicast only on the IPv6 ones, so the IPv6 sessions carry none of the IPv4 /32s: the memory is for the prefixes advertised on one session per node, with the second session up and idle (carrying the one IPv6 address of the pool bgp, if any).")
	}
	rep.Notes = append(rep.Notes, machineNote(r))
	return rep
}

func writeReports(o options, r results) error {
	if len(r.bfd)+len(r.hold)+len(r.graceful) > 0 {
		if err := report.Write(o.out, "bgp-failover", failoverReport(o, r)); err != nil {
			return err
		}
	}
	if r.bulk.allRoutes > 0 || len(r.memAfter) > 0 {
		if err := report.Write(o.out, "bgp-scale", scaleReport(o, r)); err != nil {
			return err
		}
	}
	return nil
}

func printSummary(w io.Writer, o options, r results) {
	fmt.Fprint(w, failoverReport(o, r).Markdown())
	fmt.Fprintln(w)
	fmt.Fprint(w, scaleReport(o, r).Markdown())
}

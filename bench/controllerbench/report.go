package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/herald-lb/herald/bench/report"
)

func methods(before, after sample) string {
	var parts []string
	for _, m := range []string{"GET", "LIST", "WATCH", "POST", "PUT", "PATCH", "DELETE"} {
		if d := after.requestsByMethod[m] - before.requestsByMethod[m]; d > 0 {
			parts = append(parts, fmt.Sprintf("%s %.0f", m, d))
		}
	}
	return strings.Join(parts, ", ")
}

func mean(sum, n float64) float64 {
	if n == 0 {
		return 0
	}
	return sum / n
}

func buildReport(o options, b *bench, r burstResult, seq *seqResult, loadavg string) report.Report {
	rep := report.Report{
		Title: "Controller end to end: LoadBalancer Services against a real API server",
		Description: fmt.Sprintf("bin/herald controller runs as its own process (no client-side rate limit, as herald sets it, "+
			"leader election off) against envtest's kube-apiserver and etcd on the same machine. "+
			"Burst: %d LoadBalancer Services (%d single-stack IPv4 from 198.18.0.0/15, %d single-stack IPv6 from 2001:db8::/64, "+
			"one TCP port each, over %d namespaces) created by %d parallel creators; the time runs from the first create "+
			"until every Service has status.loadBalancer.ingress, seen through a watch. CPU is user+system seconds from /proc "+
			"over that window. Sequential: with the burst's Services in place, %d more created one at a time, each timed "+
			"from its create call to the watch event carrying its address.",
			o.services, o.services-o.ipv6, o.ipv6, o.namespaces, o.creators, o.sequential),
		Command: "make build && go run ./bench/controllerbench",
		Machine: report.DescribeMachine(time.Now()),
	}
	if o.services != 10_000 || o.ipv6 != 2_000 || o.sequential != 200 || o.creators != 32 || o.namespaces != 4 || len(o.controllerArgs) > 0 {
		rep.Command = fmt.Sprintf("go run ./bench/controllerbench -services %d -ipv6 %d -sequential %d -creators %d -namespaces %d",
			o.services, o.ipv6, o.sequential, o.creators, o.namespaces)
		for _, a := range o.controllerArgs {
			rep.Command += " -controller-arg=" + a
		}
	}
	wall := r.wall.Seconds()
	ctlCPU := r.after.ctlCPU - r.before.ctlCPU
	apiCPU := r.after.apiCPU - r.before.apiCPU
	etcdCPU := r.after.etcdCPU - r.before.etcdCPU
	selfCPU := r.after.selfCPU - r.before.selfCPU
	name := fmt.Sprintf("Herald, burst of %d", o.services)
	if !r.complete {
		name = fmt.Sprintf("Herald, burst of %d: INCOMPLETE, %d addressed when stopped", o.services, r.addressed)
	}
	rep.Results = append(rep.Results, report.Result{Name: name, Metrics: []report.Metric{
		{Name: "Services", Value: float64(o.services)},
		{Name: "first create to all addressed", Unit: "s", Value: report.Round(wall, 2)},
		{Name: "addressed per second", Unit: "Services/s", Value: report.Round(float64(r.addressed)/wall, 1)},
		{Name: "controller CPU", Unit: "s", Value: report.Round(ctlCPU, 2)},
		{Name: "controller peak RSS", Unit: "MiB", Value: report.MiB(r.rssPeak)},
		{Name: "controller API requests", Value: r.after.requests - r.before.requests},
		{Name: "API server CPU", Unit: "s", Value: report.Round(apiCPU, 2)},
		{Name: "etcd CPU", Unit: "s", Value: report.Round(etcdCPU, 2)},
	}})
	if seq != nil {
		rep.Results = append(rep.Results, report.Result{
			Name: fmt.Sprintf("Herald, %d one at a time with %d in place", o.sequential, o.services),
			Metrics: []report.Metric{
				{Name: "Services", Value: float64(o.sequential)},
				{Name: "controller CPU", Unit: "s", Value: report.Round(seq.after.ctlCPU-seq.before.ctlCPU, 2)},
				{Name: "controller peak RSS", Unit: "MiB", Value: report.MiB(seq.rssPeak)},
				{Name: "controller API requests", Value: seq.after.requests - seq.before.requests},
				{Name: "API server CPU", Unit: "s", Value: report.Round(seq.after.apiCPU-seq.before.apiCPU, 2)},
				{Name: "etcd CPU", Unit: "s", Value: report.Round(seq.after.etcdCPU-seq.before.etcdCPU, 2)},
				{Name: "create to address p50", Unit: "ms", Value: report.Millis(report.Percentile(seq.latencies, 50), 2)},
				{Name: "create to address p99", Unit: "ms", Value: report.Millis(report.Percentile(seq.latencies, 99), 2)},
				{Name: "create to address max", Unit: "ms", Value: report.Millis(slices.Max(seq.latencies), 2)},
			},
		})
	}
	// MetalLB's figures are ranges from the issue; one row per end.
	for _, end := range []struct {
		label                string
		burst, rss, p50, p99 float64
	}{{"low", 20.5, 95, 9.5, 20.7}, {"high", 21.3, 105, 11.2, 27.5}} {
		rep.Results = append(rep.Results, report.Result{
			Name: fmt.Sprintf("MetalLB, QUOTED from the issue, not measured here (%s end of range): burst of 2000, 200 one at a time", end.label),
			Metrics: []report.Metric{
				{Name: "Services", Value: 2000},
				{Name: "first create to all addressed", Unit: "s", Value: end.burst},
				{Name: "addressed per second", Unit: "Services/s", Value: report.Round(2000/end.burst, 1)},
				{Name: "controller CPU", Unit: "s", Value: 8.2},
				{Name: "controller peak RSS", Unit: "MiB", Value: end.rss},
				{Name: "create to address p50", Unit: "ms", Value: end.p50},
				{Name: "create to address p99", Unit: "ms", Value: end.p99},
			},
		})
	}

	cores := float64(rep.Machine.Cores)
	notes := []string{
		fmt.Sprintf("Burst window %.1f s: controller %.2f CPU-s (%.2f cores), kube-apiserver %.2f CPU-s (%.2f cores), etcd %.2f CPU-s (%.2f cores), "+
			"the benchmark's own creators and watch %.2f CPU-s (%.2f cores); the machine has %.0f cores, all shared by these processes.",
			wall, ctlCPU, ctlCPU/wall, apiCPU, apiCPU/wall, etcdCPU, etcdCPU/wall, selfCPU, selfCPU/wall, cores),
		fmt.Sprintf("Burst: all creates had returned %.2f s after the first; the first address was seen after %.2f s; "+
			"the controller's Service workqueue peaked at %.0f items; mean time queued %.1f ms, mean reconcile %.2f ms; %.0f reconciles.",
			r.createsDone.Seconds(), r.firstAddressAfter.Seconds(), r.peakDepth,
			1000*mean(r.after.queueWaitSum-r.before.queueWaitSum, r.after.queueWaitN-r.before.queueWaitN),
			1000*mean(r.after.workSum-r.before.workSum, r.after.workN-r.before.workN),
			r.after.reconcilesN-r.before.reconcilesN),
		fmt.Sprintf("Controller API requests in the burst window by method: %s. Lines in the controller's log about client-side throttling: %d.",
			methods(r.before, r.after), r.throttleLogLines),
	}
	if r.complete {
		notes = append(notes, fmt.Sprintf("Once the queue drained (%.1f s after the first create): controller %.2f CPU-s, %.0f API requests in all (%s).",
			r.settled.at.Sub(r.before.at).Seconds(), r.settled.ctlCPU-r.before.ctlCPU, r.settled.requests-r.before.requests, methods(r.before, r.settled)))
	}
	if seq != nil {
		notes = append(notes, fmt.Sprintf("Sequential: the create call alone (the API server's share of each latency) took p50 %.2f ms, p99 %.2f ms.",
			report.Millis(report.Percentile(seq.creates, 50), 2), report.Millis(report.Percentile(seq.creates, 99), 2)))
		notes = append(notes, fmt.Sprintf("Sequential: mean %.2f ms, min %.2f ms; controller RSS at the end %.1f MiB (peak %.1f MiB); requests by method: %s.",
			report.Millis(meanDur(seq.latencies), 2), report.Millis(seq.latencies[0], 2), report.MiB(seq.rssNow), report.MiB(seq.rssPeak), methods(seq.before, seq.after)))
		notes = append(notes, fmt.Sprintf("Checked after both scenarios: all %d Services hold exactly one address, each inside its family's pool, none duplicated.",
			o.services+o.sequential))
	}
	notes = append(notes,
		"API server flags: --service-cluster-ip-range=10.96.0.0/16,fd00:10::/108 --max-requests-inflight=800 --max-mutating-requests-inflight=400. "+
			"Services set allocateLoadBalancerNodePorts: false, since 10,000 would exhaust the default NodePort range.",
		"MetalLB rows are figures quoted from the issue (measured on this kind of machine against the same envtest API server: "+
			"200 one at a time p50 9.5–11.2 ms, p99 20.7–27.5 ms; burst of 2,000 finished 20.5–21.3 s after the first create with 8.2 s of controller CPU; "+
			"controller RSS 95–105 MB with 2,000 Services). They were not measured in this run, and their burst is 2,000 Services, not 10,000.",
		"Load average when the run started: "+strings.TrimSpace(loadavg)+" (other work on the machine shares its cores).",
	)
	rep.Notes = notes
	return rep
}

func meanDur(ds []time.Duration) time.Duration {
	var t time.Duration
	for _, d := range ds {
		t += d
	}
	return t / time.Duration(max(len(ds), 1))
}

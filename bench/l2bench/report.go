package main

import (
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/herald-lb/herald/bench/report"
)

// results is everything one run measured.
type results struct {
	started, finished time.Time
	loadavg           string

	hardFast, hardLAN []hardRun
	graceful          []gracefulRun
	idle1, idleBulk   []usage
	bulk              bulkResult
	flood             floodResult
}

const command = "make bench-l2 (as root; or: make build && go run ./bench/l2bench)"

func machineNote(r results) string {
	return fmt.Sprintf("The whole run took %s; load average when it started: %s. The machine's cores are shared by the API server, etcd, the controller, three speakers, the stand-in backends and the benchmark itself.",
		r.finished.Sub(r.started).Round(time.Second), r.loadavg)
}

// scaled notes that figures come from a smaller run than the default.
func scaled(o options) string {
	if o.hardRuns == 20 && o.lanRuns == 20 && o.gracefulRuns == 20 && o.addresses == 1000 &&
		o.floodRate == 10_000 && o.floodFor == 5*time.Second && o.cpuWindow == 10*time.Second && o.probeEvery == 10*time.Millisecond {
		return ""
	}
	return fmt.Sprintf("NOT the default figures: -hard-runs %d -lan-runs %d -graceful-runs %d -addresses %d -flood-rate %d -flood-for %s -cpu-window %s -probe-every %s.",
		o.hardRuns, o.lanRuns, o.gracefulRuns, o.addresses, o.floodRate, o.floodFor, o.cpuWindow, o.probeEvery)
}

func metric(name, unit string, v float64) report.Metric {
	return report.Metric{Name: name, Unit: unit, Value: v}
}

func hardResult(name string, runs []hardRun) (report.Result, []time.Duration) {
	var ds []time.Duration
	for _, r := range runs {
		if r.ok {
			ds = append(ds, r.took)
		}
	}
	s := report.Summarize(ds)
	return report.Result{Name: name, Metrics: []report.Metric{
		metric("runs", "", float64(len(runs))),
		metric("no takeover", "runs", float64(len(runs)-len(ds))),
		metric("min", "ms", report.Millis(s.Min, 1)),
		metric("median", "ms", report.Millis(s.Median, 1)),
		metric("p95", "ms", report.Millis(s.P95, 1)),
		metric("max", "ms", report.Millis(s.Max, 1)),
	}}, ds
}

func failoverReport(o options, r results) report.Report {
	rep := report.Report{
		Title: "Layer 2 hard failover: owner killed and its link cut",
		Description: fmt.Sprintf("Lab of network namespaces (internal/lab): three nodes and a client on one bridge, a real kube-apiserver and etcd, "+
			"the controller, a speaker per node; one IPv4 LoadBalancer Service (Cluster policy, a ready endpoint on every node). "+
			"The client sends an HTTP request to the Service address every %s, each on a new connection (2 s timeout). "+
			"In each run the owning speaker gets SIGKILL and its bridge port is taken down at the same moment; the failover time runs from the kill "+
			"to the end of the first successful request, started after the kill, answered by another node. Then the link and the speaker come back "+
			"and the run ends when the original owner, alone, answers ARP and HTTP for the address again.", o.probeEvery),
		Command: command,
		Machine: report.DescribeMachine(r.started),
	}
	fast, fastDs := hardResult("Herald, --ml-profile fast (the default)", r.hardFast)
	rep.Results = append(rep.Results, fast)
	if len(r.hardLAN) > 0 {
		lan, _ := hardResult("Herald, --ml-profile lan (memberlist's stock LAN settings)", r.hardLAN)
		rep.Results = append(rep.Results, lan)
	}
	rep.Results = append(rep.Results, report.Result{
		Name: "MetalLB, QUOTED from the issue, not measured here",
		Metrics: []report.Metric{
			metric("min", "ms", 5250), metric("median", "ms", 5550), metric("max", "ms", 6560),
		},
	})
	if s := scaled(o); s != "" {
		rep.Notes = append(rep.Notes, s)
	}
	if len(fastDs) > 0 {
		s := report.Summarize(fastDs)
		met := "met"
		if s.Median >= time.Second || s.P95 >= 1500*time.Millisecond {
			met = "NOT met"
		}
		rep.Notes = append(rep.Notes, fmt.Sprintf("Goal (issue): median < 1 s and p95 < 1.5 s with the default settings: %s (median %s, p95 %s).",
			met, s.Median.Round(time.Millisecond), s.P95.Round(time.Millisecond)))
	}
	rep.Notes = append(rep.Notes, "p95 is the nearest-rank percentile (the 19th of 20 runs); the median of an even count is the mean of the two middle runs.")
	rep.Notes = append(rep.Notes, fmt.Sprintf("fast, each run in ms: %s.", runList(r.hardFast)))
	if len(r.hardLAN) > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("lan, each run in ms: %s.", runList(r.hardLAN)))
	}
	rep.Notes = append(rep.Notes,
		"MetalLB row: figures quoted from the issue for MetalLB in the same kind of lab (hard failover 5.25–6.56 s, median 5.55 s); not measured in this run.",
		machineNote(r))
	return rep
}

func runList(runs []hardRun) string {
	parts := make([]string, len(runs))
	for i, r := range runs {
		if !r.ok {
			parts[i] = "none"
			continue
		}
		parts[i] = fmt.Sprintf("%d (%s→%s)", r.took.Round(time.Millisecond).Milliseconds(), r.owner, r.to)
	}
	return strings.Join(parts, ", ")
}

func handoverReport(o options, r results) report.Report {
	rep := report.Report{
		Title: "Layer 2 graceful handover: owner stopped with SIGTERM",
		Description: fmt.Sprintf("Same lab and Service as the failover benchmark, default speaker settings (--ml-profile fast, --handover-delay 1s). "+
			"The client sends an HTTP request every %s on a new connection; %s after the probe starts, the owning speaker gets SIGTERM "+
			"(as Kubernetes does when it deletes the pod) and the probe runs until 500 ms after another node answers ARP for the address. "+
			"Failed requests are every request of that window that got no answer; the longest gap is the longest time between two consecutive answers. "+
			"The speaker is then started again and wins the address back before the next run.", o.probeEvery, baseline),
		Command: command,
		Machine: report.DescribeMachine(r.started),
	}
	var gaps, hands, exits []time.Duration
	requests, failed, failedRuns := 0, 0, 0
	for _, g := range r.graceful {
		gaps = append(gaps, g.gap)
		hands = append(hands, g.handover)
		exits = append(exits, g.exit)
		requests += g.requests
		failed += g.failed
		if g.failed > 0 {
			failedRuns++
		}
	}
	gs, hs, es := report.Summarize(gaps), report.Summarize(hands), report.Summarize(exits)
	rep.Results = append(rep.Results, report.Result{Name: "Herald, SIGTERM", Metrics: []report.Metric{
		metric("runs", "", float64(len(r.graceful))),
		metric("requests", "", float64(requests)),
		metric("failed requests", "", float64(failed)),
		metric("runs with a failed request", "", float64(failedRuns)),
		metric("longest gap min", "ms", report.Millis(gs.Min, 1)),
		metric("longest gap median", "ms", report.Millis(gs.Median, 1)),
		metric("longest gap p95", "ms", report.Millis(gs.P95, 1)),
		metric("longest gap max", "ms", report.Millis(gs.Max, 1)),
		metric("SIGTERM to next owner's first answer, median", "ms", report.Millis(hs.Median, 1)),
		metric("SIGTERM to exit, median", "ms", report.Millis(es.Median, 1)),
	}})
	rep.Results = append(rep.Results, report.Result{Name: "MetalLB, QUOTED from the issue, not measured here", Metrics: []report.Metric{
		metric("failed requests", "", 0),
		metric("longest gap min", "ms", 95),
		metric("longest gap max", "ms", 116),
	}})
	if s := scaled(o); s != "" {
		rep.Notes = append(rep.Notes, s)
	}
	met := "met"
	if failed > 0 {
		met = "NOT met"
	}
	rep.Notes = append(rep.Notes, fmt.Sprintf("Goal (issue): no failed request: %s (%d of %d failed).", met, failed, requests))
	parts := make([]string, len(r.graceful))
	for i, g := range r.graceful {
		parts[i] = fmt.Sprintf("%d/%d (%s→%s)", g.gap.Round(time.Millisecond).Milliseconds(), g.failed, g.owner, g.to)
	}
	rep.Notes = append(rep.Notes, "Each run, longest gap in ms / failed requests: "+strings.Join(parts, ", ")+".")
	for i, g := range r.graceful {
		if len(g.failures) > 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("Run %d (%s→%s, next owner's first answer %+d ms after SIGTERM): %s.",
				i+1, g.owner, g.to, g.handover.Milliseconds(), strings.Join(g.failures, "; ")))
		}
	}
	rep.Notes = append(rep.Notes,
		"The next owner's first answer can come before SIGTERM returns: the stopping speaker leaves the memberlist cluster at once and keeps answering ARP for --handover-delay while the next owner takes over.",
		"MetalLB row: figures quoted from the issue (graceful handover gap 95–116 ms, no failed request); not measured in this run.",
		machineNote(r))
	return rep
}

func footprintReport(o options, r results) report.Report {
	rep := report.Report{
		Title: "Layer 2 speaker footprint",
		Description: fmt.Sprintf("Each speaker's resident memory (VmRSS now, VmHWM its peak since start) from /proc/PID/status, and its CPU "+
			"(utime+stime from /proc/PID/stat) over a %s idle window, as a percentage of one core. First with the lab's one IPv4 Service, on speakers "+
			"that have done nothing else; then, on freshly restarted speakers, with %d more single-stack IPv6 LoadBalancer Services from a pool %s "+
			"with its own L2Advertisement, measured once all are announced and 10 s have passed. Addresses owned is the speaker's count of "+
			"metallb_speaker_announced series.", o.cpuWindow, o.addresses, bulkPrefix),
		Command: command,
		Machine: report.DescribeMachine(r.started),
	}
	row := func(label string, us []usage) {
		for _, u := range us {
			mets := []report.Metric{
				metric("addresses owned", "", float64(u.owned)),
				metric("RSS", "MiB", report.MiB(u.mem.rss)),
				metric("peak RSS", "MiB", report.MiB(u.mem.hwm)),
				metric("RSS anonymous", "MiB", report.MiB(u.mem.anon)),
				metric("RSS file-backed", "MiB", report.MiB(u.mem.file)),
			}
			if u.heap > 0 { // only if the speaker exports Go's memory statistics
				mets = append(mets, metric("Go heap in use", "MiB", report.MiB(u.heap)))
			}
			mets = append(mets, metric("idle CPU", "% of one core", report.Round(100*u.cores, 3)))
			rep.Results = append(rep.Results, report.Result{Name: fmt.Sprintf("%s, %s", u.node, label), Metrics: mets})
		}
	}
	row("1 Service", r.idle1)
	row(fmt.Sprintf("%d addresses", o.addresses+1), r.idleBulk)
	rep.Results = append(rep.Results,
		report.Result{Name: "MetalLB speaker idle, QUOTED from the issue, not measured here (low end)", Metrics: []report.Metric{metric("RSS", "MiB", 65)}},
		report.Result{Name: "MetalLB speaker idle, QUOTED from the issue, not measured here (high end)", Metrics: []report.Metric{metric("RSS", "MiB", 68)}},
	)
	if s := scaled(o); s != "" {
		rep.Notes = append(rep.Notes, s)
	}
	var worst uint64
	for _, u := range append(slices.Clone(r.idle1), r.idleBulk...) {
		worst = max(worst, u.mem.rss)
	}
	met := "met"
	if report.MiB(worst) > 34 {
		met = "NOT met"
	}
	rep.Notes = append(rep.Notes, fmt.Sprintf("Goal (issue): half of MetalLB's 65–68 MB or less, about 33 MB: %s (largest RSS measured here %.1f MiB).", met, report.MiB(worst)))
	if r.bulk.perNode != nil {
		nodes := slices.Sorted(maps.Keys(r.bulk.perNode))
		var per []string
		for _, n := range nodes {
			per = append(per, fmt.Sprintf("%s %d", n, r.bulk.perNode[n]))
		}
		rep.Notes = append(rep.Notes, fmt.Sprintf("The %d bulk Services (and their EndpointSlices) were created in %s by 8 parallel clients; all had addresses %s and were announced %s after the first create; bulk addresses per node: %s.",
			o.addresses, r.bulk.created.Round(time.Millisecond), r.bulk.addressed.Round(time.Millisecond), r.bulk.announced.Round(time.Millisecond), strings.Join(per, ", ")))
	}
	rep.Notes = append(rep.Notes,
		"MetalLB rows: the issue's figure for MetalLB's speaker at idle (65–68 MB RSS); not measured in this run.",
		machineNote(r))
	return rep
}

func floodReport(o options, r results) report.Report {
	f := r.flood
	rep := report.Report{
		Title: "Layer 2 ARP flood",
		Description: fmt.Sprintf("From the client namespace, a raw AF_PACKET socket sends broadcast ARP requests (who has %s, the Service address %s owns) "+
			"at %d per second for %s, paced by a 10 ms ticker, and counts on the same socket the replies addressed to the client. "+
			"Every node receives every request; only the owner answers. CPU is each speaker's utime+stime from the first request to 0.5 s after the last, "+
			"divided by the sending time, as a percentage of one core; idle CPU is over the %s just before.",
			f.addr, f.owner, o.floodRate, o.floodFor, f.idleWindow),
		Command: command,
		Machine: report.DescribeMachine(r.started),
	}
	idle := map[string]usage{}
	for _, u := range f.idle {
		idle[u.node] = u
	}
	send := f.sendFor.Seconds()
	// The owner's row first, so its columns lead the table.
	rows := slices.Clone(f.flood)
	slices.SortStableFunc(rows, func(a, b usage) int {
		switch {
		case a.node == f.owner:
			return -1
		case b.node == f.owner:
			return 1
		}
		return 0
	})
	for _, u := range rows {
		mets := []report.Metric{
			metric("addresses owned", "", float64(u.owned)),
			metric("ARP sockets", "", float64(u.arp)),
			metric("idle CPU", "% of one core", report.Round(100*idle[u.node].cores, 3)),
			metric("CPU in the flood", "% of one core", report.Round(100*u.cpu/send, 2)),
			metric("CPU time in the flood", "s", report.Round(u.cpu, 2)),
		}
		name := u.node + " (not the owner)"
		if u.node == f.owner {
			name = u.node + " (owner)"
			answered := 0.0
			if f.sent > 0 {
				answered = report.Round(100*float64(f.replies)/float64(f.sent), 2)
			}
			mets = append([]report.Metric{
				metric("requests sent", "", float64(f.sent)),
				metric("rate achieved", "req/s", report.Round(float64(f.sent)/send, 0)),
				metric("replies received", "", float64(f.replies)),
				metric("answered", "%", answered),
				metric("requests counted by the speaker", "", f.received),
				metric("replies counted by the speaker", "", f.responded),
			}, mets...)
		}
		rep.Results = append(rep.Results, report.Result{Name: name, Metrics: mets})
	}
	if s := scaled(o); s != "" {
		rep.Notes = append(rep.Notes, s)
	}
	rep.Notes = append(rep.Notes,
		fmt.Sprintf("Sent %d requests in %s; replies from any other MAC: %d; frames the client's socket dropped: %d. The counts by the speaker are the increase of metallb_layer2_requests_received and metallb_layer2_responses_sent for the address over the flood.",
			f.sent, f.sendFor.Round(time.Millisecond), f.others, f.sockDrops),
		"Before the flood, IPv4 Services were added until every node announced at least one IPv4 address, so that every speaker has its ARP socket open (it opens one per interface when it first announces an IPv4 address there) and the others read and drop every request, as on a cluster where every node announces something; they were deleted again after the flood. Addresses owned and ARP sockets are as measured at the end of the flood.",
		"The client's kernel may send an ARP request of its own for the address now and then; its reply is counted too, so replies can exceed requests by a few.",
		machineNote(r))
	return rep
}

func writeReports(o options, r results) error {
	for base, rep := range map[string]report.Report{
		"l2-failover":  failoverReport(o, r),
		"l2-handover":  handoverReport(o, r),
		"l2-footprint": footprintReport(o, r),
		"l2-arpflood":  floodReport(o, r),
	} {
		if err := report.Write(o.out, base, rep); err != nil {
			return err
		}
	}
	return nil
}

func printSummary(w io.Writer, o options, r results) {
	for _, rep := range []report.Report{failoverReport(o, r), handoverReport(o, r), footprintReport(o, r), floodReport(o, r)} {
		fmt.Fprintln(w, rep.Markdown())
	}
	fmt.Fprintf(w, "Written to %s/l2-{failover,handover,footprint,arpflood}.{json,md}\n", filepath.Clean(o.out))
}

// showAnomalies logs the speakers' logs for runs that stand out: a hard
// failover without takeover or much slower than the median, a graceful
// handover with a failed request or a long gap.
func (b *bench) showAnomalies(r results) {
	for _, set := range []struct {
		tag  string
		runs []hardRun
	}{{"fast", r.hardFast}, {"lan", r.hardLAN}} {
		var ds []time.Duration
		for _, h := range set.runs {
			if h.ok {
				ds = append(ds, h.took)
			}
		}
		med := report.Summarize(ds).Median
		for i, h := range set.runs {
			if !h.ok || h.took > 2*med || (set.tag == "fast" && h.took > 1500*time.Millisecond) {
				b.log.Warn("hard failover stands out", "profile", set.tag, "run", i+1, "took", h.took, "median", med, "to", h.to, "takeover", h.ok)
				b.showLogs(fmt.Sprintf("hard %s run %d", set.tag, i+1), h.logs)
			}
		}
	}
	for i, g := range r.graceful {
		if g.failed > 0 || g.gap > 500*time.Millisecond {
			b.log.Warn("graceful handover stands out", "run", i+1, "failed", g.failed, "failures", g.failures, "longest gap", g.gap)
			b.showLogs(fmt.Sprintf("graceful run %d", i+1), g.logs)
		}
	}
}

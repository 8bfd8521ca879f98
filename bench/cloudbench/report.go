package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/herald-lb/herald/bench/report"
)

// The defaults: 10 runs per lease and action time, the three
// action times, the default lease and a short one.
var (
	defaultLeases  = []time.Duration{3 * time.Second, 15 * time.Second}
	defaultActions = []time.Duration{0, time.Second, 3 * time.Second}
)

const (
	defaultRuns       = 10
	defaultIPs        = 10
	defaultManyRuns   = 3
	defaultHoldDown   = 5 * time.Second
	defaultIdleWindow = 10 * time.Minute
	defaultProbeEvery = 10 * time.Millisecond
)

// Hetzner's budget, and the share of it for one IP's idle checks.
const (
	hourlyBudget = 3600
	idleGoal     = hourlyBudget / 100
)

const command = "make bench-cloud (as root; or: make build && go run ./bench/cloudbench)"

// results is everything one run measured.
type results struct {
	started, finished time.Time
	loadavg           string
	incomplete        string // why the run stopped early, if it did

	failovers       []failoverSet
	lease, action   time.Duration // the speakers' lease and the action time of the counts
	idle1, idleMany idleResult
	many            []manyRun
}

func metric(name, unit string, v float64) report.Metric {
	return report.Metric{Name: name, Unit: unit, Value: v}
}

func ms(d time.Duration) float64 { return report.Millis(d, 0) }

func pick(runs []hardRun, f func(hardRun) time.Duration) []time.Duration {
	out := make([]time.Duration, len(runs))
	for i, r := range runs {
		out[i] = f(r)
	}
	return out
}

func median(ds []time.Duration) time.Duration { return report.Summarize(ds).Median }

func list(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprint(d.Round(time.Millisecond).Milliseconds())
	}
	return strings.Join(parts, ", ")
}

func failoverTime(r hardRun) time.Duration { return r.failover }
func detection(r hardRun) time.Duration    { return r.detection }
func leaseLeft(r hardRun) time.Duration    { return r.leaseLeft }
func decision(r hardRun) time.Duration     { return r.decision }
func apiAction(r hardRun) time.Duration    { return r.action }
func answer(r hardRun) time.Duration       { return r.answer }
func outage(r hardRun) time.Duration       { return r.outage }

func (s failoverSet) name() string {
	return fmt.Sprintf("lease %s, action %s", s.lease, s.action)
}

func (s failoverSet) overheads() []time.Duration {
	return pick(s.runs, func(r hardRun) time.Duration { return r.overhead(s.action) })
}

// withinGoal counts the runs with failover ≤ detection + action + 300 ms.
func (s failoverSet) withinGoal() int {
	n := 0
	for _, o := range s.overheads() {
		if o <= goalSlack {
			n++
		}
	}
	return n
}

func requestTotals(runs []hardRun, rejoin bool) []int {
	out := make([]int, len(runs))
	for i, r := range runs {
		out[i] = r.requests.total
		if rejoin {
			out[i] = r.rejoin.total
		}
	}
	return out
}

func intMedian(xs []int) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	if n := len(s); n%2 == 0 {
		return float64(s[n/2-1]+s[n/2]) / 2
	}
	return float64(s[len(s)/2])
}

func scaled(o options) string {
	if o.runs == defaultRuns && o.ips == defaultIPs && o.manyRuns == defaultManyRuns && o.idleWindow == defaultIdleWindow &&
		o.probeEvery == defaultProbeEvery && slices.Equal(o.leases, defaultLeases) && slices.Equal(o.actions, defaultActions) {
		return ""
	}
	return fmt.Sprintf("NOT the defaults: -runs %d -leases %s -actions %s -ips %d -many-runs %d -idle-window %s -probe-every %s.",
		o.runs, (*durations)(&o.leases), (*durations)(&o.actions), o.ips, o.manyRuns, o.idleWindow, o.probeEvery)
}

func machineNote(r results) string {
	return fmt.Sprintf("The whole run took %s; load average when it started: %s. The machine's cores are shared by the API server, etcd, the controller, three speakers, the stand-in and the benchmark itself.",
		r.finished.Sub(r.started).Round(time.Second), r.loadavg)
}

const labDescription = "Lab of network namespaces (internal/lab) in its cloud topology: three nodes, each with a point-to-point link of its own to a router that shares no LAN with them (the nodes' LAN carries only their own traffic, as a cloud's private network), a remote client behind the router, a real kube-apiserver and etcd, the controller and a speaker per node. " +
	"Each node is a Hetzner server (spec.providerID hcloud://1 to 3); the speakers talk to the Hetzner Cloud API stand-in (internal/cloud/hetzner/hcloudsim, on 127.0.0.1, relayed into the node namespaces) through the real hcloud-go client, polling a running action every 500 ms (hcloud-go's default). " +
	"The stand-in's assign action ends after its action time; when it ends, and before the action reads as done, the router's host route for the floating IP is moved to the new server's node: the floating IP reaches only that node, as on Hetzner. "

func failoverReport(o options, r results) report.Report {
	rep := report.Report{
		Title: "Cloud floating IP (Hetzner): hard failover time, detection, decision and API action",
		Description: labDescription + fmt.Sprintf("One floating IP (a /32, one IPv4 LoadBalancer Service with a ready endpoint on every node). "+
			"The remote client requests it every %s, each on a new connection (%s timeout). Hard failover: the owner's links (LAN and uplink) are cut, then its speaker gets SIGKILL. "+
			"'failover' is the kill to the first answer from the next owner; 'detection' the kill to the next owner's Lease acquired (the Lease's spec.acquireTime, which that speaker writes); "+
			"'lease left' the kill to the dead owner's Lease expiring (its last spec.renewTime plus the lease); 'decision' the Lease acquired to the next owner's assign request arriving at the stand-in (its request log); "+
			"'API action' that request to the route moved (the action's end); 'route to answer' the route moved to the first answer; 'client outage' the dead owner's last answer to the next owner's first; "+
			"'overhead' is failover − detection − the configured action time, which the goal bounds at 300 ms. "+
			"Speakers run with --cloud-lease as the row says and --cloud-hold-down %s; each run starts once the hold-down has passed since the Lease last changed hands (within it a Lease stays with its holder, dead or not), "+
			"and after each run the dead owner comes back (link up, speaker started) and takes nothing: the next run kills the new holder.", o.probeEvery, "2s", o.holdDown),
		Command: command,
		Machine: report.DescribeMachine(r.started),
	}
	for _, s := range r.failovers {
		over := report.Summarize(s.overheads())
		fo := report.Summarize(pick(s.runs, failoverTime))
		rep.Results = append(rep.Results, report.Result{Name: s.name(), Metrics: []report.Metric{
			metric("runs", "", float64(len(s.runs))),
			metric("failover median", "ms", ms(fo.Median)),
			metric("failover max", "ms", ms(fo.Max)),
			metric("detection", "ms", ms(median(pick(s.runs, detection)))),
			metric("lease left", "ms", ms(median(pick(s.runs, leaseLeft)))),
			metric("decision", "ms", ms(median(pick(s.runs, decision)))),
			metric("API action", "ms", ms(median(pick(s.runs, apiAction)))),
			metric("route to answer", "ms", ms(median(pick(s.runs, answer)))),
			metric("client outage", "ms", ms(median(pick(s.runs, outage)))),
			metric("overhead median", "ms", ms(over.Median)),
			metric("overhead max", "ms", ms(over.Max)),
			metric("runs within goal", "", float64(s.withinGoal())),
		}})
	}
	if r.incomplete != "" {
		rep.Notes = append(rep.Notes, "INCOMPLETE run, figures so far only: "+r.incomplete)
	}
	if s := scaled(o); s != "" {
		rep.Notes = append(rep.Notes, s)
	}
	if len(r.failovers) > 0 {
		within, total, worst := 0, 0, time.Duration(0)
		for _, s := range r.failovers {
			within += s.withinGoal()
			total += len(s.runs)
			worst = max(worst, report.Summarize(s.overheads()).Max)
		}
		met := "met"
		if within < total {
			met = "NOT met"
		}
		rep.Notes = append(rep.Notes, fmt.Sprintf("Goal (issue 13): failover ≤ detection + action time + 300 ms: %s in %d of %d runs (largest overhead %s). All columns but 'runs' are medians unless named max.",
			met, within, total, worst.Round(time.Millisecond)))
	}
	rep.Notes = append(rep.Notes,
		"The lease dominates: a floating IP moves only once the dead owner's Lease has expired, and the next owner learns that by trying for it, which it does every third of a lease (its renewal tick). "+
			"The owner renews every third of a lease, so at the kill between two thirds of a lease and a whole one is left ('lease left'), and the next owner takes it up to a third of a lease later: detection lies between about 2/3 and 4/3 of the lease, whatever memberlist saw (it sees the node dead in about a second, and the election names the next owner then; that owner is refused the Lease until it expires). "+
			"The decision (one read of the floating IP, then the assign) and the route's last step are tens of milliseconds; the API action is the action time. A shorter --cloud-lease buys a faster failover with more Lease writes to the API server (three per lease per owned IP), none to the cloud.")
	for _, s := range r.failovers {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%s, each run in ms: failover %s; detection %s; decision %s; API action %s; client outage %s.",
			s.name(), list(pick(s.runs, failoverTime)), list(pick(s.runs, detection)), list(pick(s.runs, decision)),
			list(pick(s.runs, apiAction)), list(pick(s.runs, outage))))
	}
	rep.Notes = append(rep.Notes, "Hetzner publishes no figure for its own assign action time; add yours to the detection of your lease to estimate your failover.",
		fmt.Sprintf("p95 is not given: %d runs per row. The median of an even count is the mean of the two middle runs.", o.runs), machineNote(r))
	return rep
}

func idleRow(name string, r idleResult) report.Result {
	perIP := r.perIPPerHour()
	return report.Result{Name: name, Metrics: []report.Metric{
		metric("window", "s", report.Round(r.window.Seconds(), 0)),
		metric("requests", "", float64(r.requests.total)),
		metric("requests/h (window)", "", report.Round(r.perHour(), 0)),
		metric("check spacing", "s", report.Round(median(r.intervals).Seconds(), 1)),
		metric("requests/h per IP (spacing)", "", report.Round(perIP, 1)),
		metric("share of 3,600/h per IP", "%", report.Round(100*perIP/hourlyBudget, 2)),
	}}
}

func requestsReport(o options, r results) report.Report {
	rep := report.Report{
		Title: "Cloud floating IP (Hetzner): API requests at idle and per failover",
		Description: labDescription + fmt.Sprintf("Requests are counted from the stand-in's request log. Idle: the floating IPs assigned and settled, nothing moving, over a window of %s, with one floating IP and then with %d (one Service each, spread over the three nodes by the election); "+
			"'requests/h (window)' scales the window's count to an hour; 'check spacing' is the median time between two reads of the same IP (its periodic check) and 'requests/h per IP (spacing)' an hour over the mean spacing, which does not depend on where the window's edges fall between two checks. "+
			"Per failover: every request from the kill until 1.5 s after the next owner's first answer (the action's last polls included), for the failovers of the other report; and with %d IPs, the node holding the most of them is cut and killed. "+
			"'rejoin' counts the requests while the dead owner comes back, until 8 s after every speaker counts it a member again: it takes nothing, and the IP stays with its new holder (the benchmark fails on a move). Counts run with --cloud-lease %s and action time %s.", o.idleWindow, o.ips, o.ips, r.lease, r.action),
		Command: command,
		Machine: report.DescribeMachine(r.started),
	}
	if r.idle1.window > 0 {
		rep.Results = append(rep.Results, idleRow("idle, 1 floating IP", r.idle1))
	}
	if r.idleMany.window > 0 {
		rep.Results = append(rep.Results, idleRow(fmt.Sprintf("idle, %d floating IPs", r.idleMany.ips), r.idleMany))
	}
	for _, s := range r.failovers {
		tot := requestTotals(s.runs, false)
		rep.Results = append(rep.Results, report.Result{Name: "failover, 1 floating IP, " + s.name(), Metrics: []report.Metric{
			metric("runs", "", float64(len(s.runs))),
			metric("per failover median", "", intMedian(tot)),
			metric("per failover max", "", float64(slices.Max(append(tot, 0)))),
			metric("rejoin median", "", intMedian(requestTotals(s.runs, true))),
		}})
	}
	for i, m := range r.many {
		rep.Results = append(rep.Results, report.Result{Name: fmt.Sprintf("failover %d with %d floating IPs: %s held %d", i+1, o.ips, m.node, m.moved), Metrics: []report.Metric{
			metric("runs", "", 1),
			metric("per failover median", "", float64(m.requests.total)),
			metric("per moved IP", "", report.Round(float64(m.requests.total)/float64(max(m.moved, 1)), 1)),
			metric("last IP moved", "ms", ms(m.took)),
		}})
	}
	if r.incomplete != "" {
		rep.Notes = append(rep.Notes, "INCOMPLETE run, figures so far only: "+r.incomplete)
	}
	if s := scaled(o); s != "" {
		rep.Notes = append(rep.Notes, s)
	}
	for _, row := range []struct {
		name string
		r    idleResult
	}{{"1 floating IP", r.idle1}, {fmt.Sprintf("%d floating IPs", r.idleMany.ips), r.idleMany}} {
		if row.r.window <= 0 {
			continue
		}
		perIP := row.r.perIPPerHour()
		if perIP == 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("Goal (issue 13), idle cost ≤ 1%% of the 3,600/h budget per floating IP: not measured with %s: no IP was read twice within the %s window (a check is spaced 100 s or more; use -idle-window of at least 7m); by the window's count, %.1f/h for all of them (%s).",
				row.name, row.r.window, row.r.perHour(), row.r.requests))
			continue
		}
		met := "met"
		if perIP > idleGoal {
			met = "NOT met"
		}
		rep.Notes = append(rep.Notes, fmt.Sprintf("Goal (issue 13), idle cost ≤ 1%% of the 3,600/h budget per floating IP (≤ %d requests/h): %s with %s, %.1f requests/h per IP (%.1f/h for all of them by the window's count; %s).",
			idleGoal, met, row.name, perIP, row.r.perHour(), row.r.requests))
	}
	for _, s := range r.failovers {
		var kinds []string
		for _, run := range s.runs {
			kinds = append(kinds, run.requests.String())
		}
		rep.Notes = append(rep.Notes, fmt.Sprintf("Failover, %s, each run: %s.", s.name(), strings.Join(kinds, "; ")))
	}
	for i, m := range r.many {
		rep.Notes = append(rep.Notes, fmt.Sprintf("Failover %d with %d IPs: %s.", i+1, o.ips, m.requests))
	}
	rep.Notes = append(rep.Notes, "Lease renewals go to the Kubernetes API server, never to the cloud: the cloud sees only the owner's periodic read of each IP, and a read, an assign and the action's polls per move.", machineNote(r))
	return rep
}

func writeReports(o options, r results) error {
	if len(r.failovers) > 0 {
		if err := report.Write(o.out, "cloud-failover", failoverReport(o, r)); err != nil {
			return err
		}
	}
	if len(r.failovers) > 0 || r.idle1.window > 0 {
		if err := report.Write(o.out, "cloud-requests", requestsReport(o, r)); err != nil {
			return err
		}
	}
	return nil
}

func printSummary(w io.Writer, o options, r results) {
	fmt.Fprint(w, failoverReport(o, r).Markdown())
	fmt.Fprintln(w)
	fmt.Fprint(w, requestsReport(o, r).Markdown())
}

package main

import (
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/herald-lb/herald/bench/report"
	"github.com/herald-lb/herald/internal/chaos"
)

type results struct {
	started, finished time.Time
	loadavg           string
	o                 options
	runs              []chaos.Result
}

const command = "make bench-chaos (as root; or: make build && go run ./bench/chaosbench)"

func metric(name, unit string, v float64) report.Metric {
	return report.Metric{Name: name, Unit: unit, Value: v}
}

// common are the columns every scenario has, for the Markdown table.
func common(r chaos.Result) []report.Metric {
	return []report.Metric{
		metric("length", "s", report.Round(r.Duration.Seconds(), 1)),
		metric("requests", "", float64(r.Requests)),
		metric("failed", "", float64(r.Failed)),
		metric("longest gap", "ms", report.Millis(r.LongestGap, 0)),
		metric("moves", "", float64(r.Moves)),
		metric("spurious moves", "", float64(r.Spurious)),
		metric("rounds answered twice", "", float64(r.DoubleRounds)),
		metric("two owners for", "ms", report.Millis(r.DoubleSpan, 0)),
	}
}

// full adds the scenario's own figures, Events and metric increases, for
// the JSON.
func full(r chaos.Result) []report.Metric {
	out := common(r)
	for _, k := range slices.Sorted(maps.Keys(r.Figures)) {
		out = append(out, metric(k, "", report.Round(r.Figures[k], 1)))
	}
	for _, k := range slices.Sorted(maps.Keys(r.Events)) {
		out = append(out, metric("Event "+k, "", float64(r.Events[k])))
	}
	for _, k := range slices.Sorted(maps.Keys(r.Metrics)) {
		out = append(out, metric("increase of "+k, "", r.Metrics[k]))
	}
	return out
}

func chaosReport(res results, detail func(chaos.Result) []report.Metric) report.Report {
	o := res.o
	rep := report.Report{
		Title: "Chaos suite: Herald under faults in the namespace lab (issue 14)",
		Description: "Lab of network namespaces (internal/lab), a fresh one per scenario: three nodes (two for partition-2) and a client on one bridge, " +
			"a real kube-apiserver and etcd, the controller and a speaker per node (--ml-profile fast, the default). One IPv4 LoadBalancer Service; " +
			"the client sends it an HTTP request every 10 ms on a new connection (2 s timeout) and asks who has its address by ARP every 20 ms, " +
			"each request from a MAC of its own so that every answer is credited to its request. A move is a change of the MAC that alone " +
			"answers; spurious moves are those in the window where nothing failed; a round answered twice is a request two MACs answered.",
		Command: command,
		Machine: report.DescribeMachine(res.started),
	}
	for _, r := range res.runs {
		rep.Results = append(rep.Results, report.Result{Name: r.Scenario, Metrics: detail(r)})
	}
	rep.Notes = append(rep.Notes, "Durations of this run: "+durations(o)+".")
	for _, r := range res.runs {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.Figures)) {
			parts = append(parts, fmt.Sprintf("%s %s", k, trim(r.Figures[k])))
		}
		if len(r.Events) > 0 {
			parts = append(parts, fmt.Sprintf("Events %v", r.Events))
		}
		if len(r.Metrics) > 0 {
			var ms []string
			for _, k := range slices.Sorted(maps.Keys(r.Metrics)) {
				ms = append(ms, increase(k, r.Metrics[k]))
			}
			parts = append(parts, "metrics "+strings.Join(ms, ", "))
		}
		parts = append(parts, r.Notes...)
		rep.Notes = append(rep.Notes, fmt.Sprintf("**%s** (owner before the fault: %s): %s.", r.Scenario, r.Owner, strings.Join(parts, "; ")))
	}
	rep.Notes = append(rep.Notes, fmt.Sprintf("The whole run took %s; load average when it started: %s. The machine's cores are shared by the API server, etcd, the controller, the speakers, the stand-in backends and the benchmark itself.",
		res.finished.Sub(res.started).Round(time.Second), res.loadavg))
	return rep
}

// durations names the lengths of the scenarios o runs, and only those.
func durations(o options) string {
	var parts []string
	add := func(prefixes []string, text string) {
		for _, s := range o.scenarios {
			for _, p := range prefixes {
				if strings.HasPrefix(s, p) {
					parts = append(parts, text)
					return
				}
			}
		}
	}
	add([]string{"loss", "jitter", "starve"}, fmt.Sprintf("loss, jitter and starvation %s each (the issue asks for 10 minutes), %d hard failures under each netem setting", o.dur, o.kills))
	add([]string{"partition"}, fmt.Sprintf("partitions %s", o.partitionFor))
	add([]string{"api-down"}, fmt.Sprintf("API server down %s", o.apiFor))
	add([]string{"flap"}, fmt.Sprintf("link flapping %s", o.flapFor))
	add([]string{"frames"}, fmt.Sprintf("flood %s at %d frames/s", o.floodFor, o.floodRate))
	add([]string{"leader-kill"}, fmt.Sprintf("%d Services in leader-kill", o.services))
	return strings.Join(parts, "; ")
}

// increase writes a counter's change over a scenario. It is negative only
// when a speaker restarted within it and its counter began again from 0.
func increase(name string, v float64) string {
	if v < 0 {
		return fmt.Sprintf("%s %s (a speaker restarted: its counter began again)", name, trim(v))
	}
	return fmt.Sprintf("%s +%s", name, trim(v))
}

func trim(v float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.1f", v), "0"), ".")
}

// writeReports writes chaos.json with every figure and chaos.md with the
// common columns in its table and the rest in its notes.
func writeReports(o options, res results) error {
	if err := report.Write(o.out, "chaos", chaosReport(res, full)); err != nil {
		return err
	}
	md := chaosReport(res, common).Markdown()
	return os.WriteFile(filepath.Join(o.out, "chaos.md"), []byte(md), 0o644)
}

func printSummary(w io.Writer, res results) {
	for _, r := range res.runs {
		fmt.Fprintf(w, "%s: %d requests, %d failed, longest gap %s, %d moves (%d spurious), two owners for %s; %v %v %v\n",
			r.Scenario, r.Requests, r.Failed, r.LongestGap.Round(time.Millisecond), r.Moves, r.Spurious, r.DoubleSpan.Round(time.Millisecond), r.Figures, r.Events, r.Notes)
	}
}

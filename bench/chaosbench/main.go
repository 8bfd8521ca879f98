// Command chaosbench runs the chaos suite of issue 14 (internal/chaos) at
// length in the network-namespace lab: three nodes and a client on a
// bridge, a real API server and etcd, the controller and a speaker per
// node, a fresh lab per scenario. Each scenario reports what a client
// sending a request every 10 ms saw (failed requests, longest gap), who
// answered ARP for the Service address every 20 ms (ownership changes, two
// nodes at once), and the Events and metrics Herald raised:
//
//   - loss-1, loss-5, loss-10, jitter-50: netem on every node's link for
//     -for, then -kills hard failures of the owner under it;
//   - partition: the owner's memberlist traffic cut for -partition-for,
//     then healed; partition-2: the same in a 2-node cluster;
//   - starve: the owner's speaker at 5% of a core for -for;
//   - api-down: the API server stopped for -api-for, the owner killed
//     halfway;
//   - flap: the owner's link down and up every 2 s for -flap-for;
//   - rolling: every speaker restarted in turn;
//   - leader-kill: 2 controller replicas, the leader killed while
//     -services Services are created;
//   - frames: bad ARP/NDP frames flooded at -flood-rate for -flood-for.
//
// It writes bench/results/chaos.{json,md}. Run as root from the repository
// root after `make build`:
//
//	go run ./bench/chaosbench                                        # the 10-minute runs
//	go run ./bench/chaosbench -for 2m -scenarios loss-5,partition    # shorter, some
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/bench/labrun"
	"github.com/herald-lb/herald/internal/chaos"
	"github.com/herald-lb/herald/internal/lab"
)

type options struct {
	scenarios                          []string
	dur, partitionFor, apiFor, flapFor time.Duration
	floodFor                           time.Duration
	kills, services, floodRate         int
	out                                string
	inputs                             labrun.Inputs
}

// scenarioNames in the order they run.
var scenarioNames = []string{"loss-1", "loss-5", "loss-10", "jitter-50", "partition", "partition-2", "starve", "api-down", "flap", "rolling", "rolling-bgp", "leader-kill", "frames"}

func main() {
	var o options
	var list string
	flag.StringVar(&list, "scenarios", strings.Join(scenarioNames, ","), "scenarios to run, comma-separated")
	flag.DurationVar(&o.dur, "for", 10*time.Minute, "length of the loss, jitter and starvation faults")
	flag.DurationVar(&o.partitionFor, "partition-for", time.Minute, "length of the partitions")
	flag.DurationVar(&o.apiFor, "api-for", 2*time.Minute, "how long the API server is down")
	flag.DurationVar(&o.flapFor, "flap-for", time.Minute, "how long the link flaps")
	flag.DurationVar(&o.floodFor, "flood-for", 30*time.Second, "length of the bad-frame flood")
	flag.IntVar(&o.kills, "kills", 10, "hard failures under each netem setting")
	flag.IntVar(&o.services, "services", 500, "Services created while the controller leader is killed")
	flag.IntVar(&o.floodRate, "flood-rate", 10_000, "bad frames per second")
	flag.StringVar(&o.out, "out", "bench/results", "directory for chaos.json and chaos.md")
	o.inputs.Register(flag.CommandLine)
	flag.Parse()
	o.scenarios = strings.Split(list, ",")

	labrun.Main("chaosbench", func(ctx context.Context, log *slog.Logger) error {
		return run(ctx, o, log)
	})
}

func run(ctx context.Context, o options, log *slog.Logger) error {
	for _, s := range o.scenarios {
		if !slices.Contains(scenarioNames, s) {
			return fmt.Errorf("unknown scenario %q (want some of %s)", s, strings.Join(scenarioNames, ","))
		}
	}
	loadavg, _ := os.ReadFile("/proc/loadavg")
	res := results{started: time.Now(), loadavg: strings.TrimSpace(string(loadavg)), o: o}
	var errs []error
	for _, name := range o.scenarios {
		log.Info("scenario", "name", name)
		r, err := runScenario(ctx, o, name, log)
		r.Scenario = name + ": " + r.Scenario
		if err != nil {
			r.Notes = append(r.Notes, "ERROR: "+err.Error())
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			log.Error("scenario failed", "name", name, "err", err)
		}
		res.runs = append(res.runs, r)
		if ctx.Err() != nil {
			break
		}
	}
	res.finished = time.Now()
	if err := writeReports(o, res); err != nil {
		return err
	}
	printSummary(os.Stdout, res)
	return errors.Join(errs...)
}

// runScenario starts a fresh lab for one scenario and runs it.
func runScenario(ctx context.Context, o options, name string, log *slog.Logger) (r chaos.Result, err error) {
	opts, err := o.inputs.Options(ctx, "chaosbench-logs-", log)
	if err != nil {
		return r, err
	}
	switch name {
	case "partition-2":
		opts.Nodes = 2
	case "leader-kill":
		opts.ControllerArgs = chaos.LeaderElectedControllerArgs
	case "rolling-bgp":
		opts.Router = true
	}
	l, done, err := labrun.Start(ctx, opts, nil)
	if err != nil {
		return r, err
	}
	defer func() { err = done(err) }()
	co := chaos.Options{For: o.dur, Log: log}
	if name == "rolling-bgp" {
		return rollingBGP(ctx, l, co)
	}
	if err := l.Apply(ctx, lab.Config()); err != nil {
		return r, err
	}
	if name == "leader-kill" {
		return chaos.LeaderKill(ctx, l, o.services, co)
	}
	t, err := target(ctx, l, "chaos", corev1.IPv4Protocol)
	if err != nil {
		return r, err
	}
	switch name {
	case "loss-1", "loss-5", "loss-10":
		p, _ := strconv.ParseFloat(strings.TrimPrefix(name, "loss-"), 64)
		return chaos.Loss(ctx, l, t, chaos.Drop(p/100), o.kills, co)
	case "jitter-50":
		return chaos.Loss(ctx, l, t, chaos.Jitter(50*time.Millisecond), o.kills, co)
	case "partition", "partition-2":
		co.For = o.partitionFor
		return chaos.Partition(ctx, l, t, "", co)
	case "starve":
		return chaos.Starve(ctx, l, t, 0.05, co)
	case "api-down":
		for _, s := range []string{"other-1", "other-2"} {
			if _, err := target(ctx, l, s, corev1.IPv4Protocol); err != nil {
				return r, err
			}
		}
		co.For = o.apiFor
		return chaos.APIDown(ctx, l, t, 10*time.Second, co)
	case "flap":
		co.For = o.flapFor
		return chaos.Flap(ctx, l, t, 2*time.Second, co)
	case "rolling":
		return chaos.Rolling(ctx, l, t, co)
	case "frames":
		t6, err := target(ctx, l, "chaos6", corev1.IPv6Protocol)
		if err != nil {
			return r, err
		}
		co.For = o.floodFor
		return chaos.Frames(ctx, l, t, t6.Addr, o.floodRate, co)
	}
	return r, fmt.Errorf("scenario %q not wired", name)
}

// target creates a Service and waits for its address and one node
// answering for it, then a few seconds of quiet.
func target(ctx context.Context, l *lab.Lab, name string, fam corev1.IPFamily) (chaos.Target, error) {
	if _, err := l.CreateService(ctx, lab.Service{Name: name, Families: []corev1.IPFamily{fam}}); err != nil {
		return chaos.Target{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	addrs, err := l.WaitAddresses(wctx, "default", name)
	if err != nil {
		return chaos.Target{}, err
	}
	if _, err := l.WaitAnnouncer(wctx, addrs[0]); err != nil {
		return chaos.Target{}, err
	}
	t := time.NewTimer(3 * time.Second)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return chaos.Target{}, ctx.Err()
	case <-t.C:
	}
	return chaos.Target{Service: name, Addr: addrs[0]}, nil
}

// rollingBGP peers every node with the router, graceful restart on, and
// restarts the speakers in turn under a Service's traffic.
func rollingBGP(ctx context.Context, l *lab.Lab, co chaos.Options) (chaos.Result, error) {
	if err := l.Apply(ctx, chaos.GracefulRestartConfig(l)); err != nil {
		return chaos.Result{}, err
	}
	if _, err := l.CreateService(ctx, lab.Service{Name: "chaos", Families: []corev1.IPFamily{corev1.IPv4Protocol}}); err != nil {
		return chaos.Result{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	addrs, err := l.WaitAddresses(wctx, "default", "chaos")
	if err != nil {
		return chaos.Result{}, err
	}
	return chaos.RollingBGP(ctx, l, chaos.Target{Service: "chaos", Addr: addrs[0]}, co)
}

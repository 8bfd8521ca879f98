// Command cloudbench measures Herald's cloud floating-IP mode (Hetzner) in
// the network-namespace lab (internal/lab) with its router: three nodes,
// a remote client behind the router, a real API server, the controller and
// a speaker per node, each speaking to the Hetzner Cloud API stand-in
// (hcloudsim, on 127.0.0.1) through the real hcloud-go client. The router
// sends each floating IP to the node whose server the stand-in has it
// assigned to, and moves that route when an assign action ends. In one run
// it measures
//
//   - hard failover: the owner's link is cut and its speaker killed while
//     the remote client requests the floating IP every 10 ms; broken down
//     into detection (kill to the next owner's Lease acquired), the
//     decision (Lease to its assign request at the stand-in) and the API
//     action (assign request to the route moved), for every -leases
//     (--cloud-lease) and -actions (the stand-in's action time), -runs
//     times each;
//   - API requests: at idle over -idle-window, with one floating IP and
//     with -ips floating IPs, scaled to an hour; and per failover.
//
// It writes bench/results/cloud-{failover,requests}.{json,md}. Run as root
// from the repository root after `make build`:
//
//	go run ./bench/cloudbench
//	go run ./bench/cloudbench -runs 1 -leases 3s -actions 0s,1s -idle-window 30s -many-runs 1 -out /tmp/cloud  # smoke run
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/herald-lb/herald/bench/labrun"
)

type options struct {
	runs, ips, manyRuns  int
	leases, actions      []time.Duration
	holdDown, idleWindow time.Duration
	probeEvery           time.Duration
	failoverTimeout      time.Duration
	settleTimeout        time.Duration
	out                  string
	inputs               labrun.Inputs
}

// durations is a comma-separated list of durations, as a flag.
type durations []time.Duration

func (d *durations) String() string {
	parts := make([]string, len(*d))
	for i, v := range *d {
		parts[i] = v.String()
	}
	return strings.Join(parts, ",")
}

func (d *durations) Set(s string) error {
	*d = nil
	for _, p := range strings.Split(s, ",") {
		v, err := time.ParseDuration(strings.TrimSpace(p))
		if err != nil {
			return err
		}
		*d = append(*d, v)
	}
	return nil
}

func main() {
	o := options{leases: defaultLeases, actions: defaultActions}
	flag.IntVar(&o.runs, "runs", defaultRuns, "hard failovers per lease and action time")
	flag.Var((*durations)(&o.leases), "leases", "the speakers' --cloud-lease values, in turn (15s is the default)")
	flag.Var((*durations)(&o.actions), "actions", "the stand-in's action times, in turn, for each lease")
	flag.DurationVar(&o.holdDown, "hold-down", defaultHoldDown, "the speakers' --cloud-hold-down; every failover waits until it has passed since the IP last moved")
	flag.DurationVar(&o.idleWindow, "idle-window", defaultIdleWindow, "how long API requests are counted at idle, for 1 and for -ips floating IPs")
	flag.IntVar(&o.ips, "ips", defaultIPs, "floating IPs in the second idle count and the failovers with many IPs")
	flag.IntVar(&o.manyRuns, "many-runs", defaultManyRuns, "hard failovers with -ips floating IPs (requests per failover)")
	flag.DurationVar(&o.probeEvery, "probe-every", defaultProbeEvery, "interval between the remote client's requests")
	flag.DurationVar(&o.failoverTimeout, "failover-timeout", 2*time.Minute, "give up on a takeover after this long")
	flag.DurationVar(&o.settleTimeout, "settle-timeout", 2*time.Minute, "give up waiting for an IP to settle (assigned, its Lease held and answered by one node) after this long")
	o.inputs.Register(flag.CommandLine)
	flag.StringVar(&o.out, "out", "bench/results", "directory for the cloud-*.json and cloud-*.md files")
	flag.Parse()

	labrun.Main("cloudbench", func(ctx context.Context, log *slog.Logger) error {
		return run(ctx, o, log)
	})
}

func (o options) validate() error {
	switch {
	case o.runs < 0 || o.manyRuns < 0:
		return errors.New("run counts must not be negative")
	case o.ips < 1 || o.ips > maxIPs:
		return fmt.Errorf("-ips must be between 1 and %d", maxIPs)
	case len(o.leases) == 0 || len(o.actions) == 0:
		return errors.New("-leases and -actions need at least one value each")
	case o.probeEvery <= 0 || o.holdDown <= 0 || o.idleWindow < 0:
		return errors.New("-probe-every and -hold-down must be positive, -idle-window not negative")
	}
	for _, l := range o.leases {
		if l < time.Second {
			return fmt.Errorf("lease %s: at least 1s", l)
		}
	}
	for _, a := range o.actions {
		if a < 0 {
			return fmt.Errorf("action time %s is negative", a)
		}
	}
	return nil
}

func run(ctx context.Context, o options, log *slog.Logger) (err error) {
	if err := o.validate(); err != nil {
		return err
	}
	loadavg, _ := os.ReadFile("/proc/loadavg")
	b, done, err := start(ctx, o, log)
	if err != nil {
		return err
	}
	defer func() { err = done(err) }()

	res := results{started: time.Now(), loadavg: strings.TrimSpace(string(loadavg))}
	// Whatever was measured is written even if a later step fails.
	defer func() {
		if err == nil {
			return
		}
		res.finished, res.incomplete = time.Now(), err.Error()
		if werr := writeReports(o, res); werr != nil {
			err = errors.Join(err, werr)
		}
	}()

	first := b.fips[0]
	if err := b.createServices(ctx, b.fips[:1]); err != nil {
		return err
	}
	owner, err := b.stable(ctx, first)
	if err != nil {
		return err
	}
	log.Info("floating IP assigned and answered", "ip", first.addr, "owner", owner)

	for i, lease := range o.leases {
		if i > 0 {
			if owner, err = b.restartSpeakers(ctx, lease, first); err != nil {
				return err
			}
		}
		for _, action := range o.actions {
			b.sim.SetActionTime(action)
			set := failoverSet{lease: lease, action: action}
			for n := range o.runs {
				r, err := b.hardFailover(ctx, first, owner)
				if err != nil {
					return fmt.Errorf("lease %s, action %s, run %d: %w", lease, action, n+1, err)
				}
				set.runs = append(set.runs, r)
				owner = r.to // the IP stays there when the dead owner comes back
				log.Info("hard failover", "lease", lease, "action", action, "run", fmt.Sprintf("%d/%d", n+1, o.runs),
					"to", r.to, "failover", r.failover.Round(time.Millisecond), "detection", r.detection.Round(time.Millisecond),
					"decision", r.decision.Round(time.Millisecond), "api action", r.action.Round(time.Millisecond),
					"outage", r.outage.Round(time.Millisecond), "requests", r.requests.total)
			}
			res.failovers = append(res.failovers, set)
		}
	}
	// The counts run with the last lease; the cloud sees no lease traffic.
	b.sim.SetActionTime(o.actions[len(o.actions)-1])
	res.lease = o.leases[len(o.leases)-1]
	res.action = o.actions[len(o.actions)-1]
	if o.idleWindow > 0 {
		if res.idle1, err = b.idle(ctx, b.fips[:1]); err != nil {
			return err
		}
	}
	if err := b.createServices(ctx, b.fips[1:o.ips]); err != nil {
		return err
	}
	many := b.fips[:o.ips]
	if err := b.allSettled(ctx, many); err != nil {
		return err
	}
	if o.idleWindow > 0 {
		if res.idleMany, err = b.idle(ctx, many); err != nil {
			return err
		}
	}
	for n := range o.manyRuns {
		r, err := b.manyFailover(ctx, many)
		if err != nil {
			return fmt.Errorf("failover with %d IPs, run %d: %w", len(many), n+1, err)
		}
		log.Info("hard failover with many IPs", "run", fmt.Sprintf("%d/%d", n+1, o.manyRuns), "node", r.node,
			"moved", r.moved, "last moved", r.took.Round(time.Millisecond), "requests", r.requests.total)
		res.many = append(res.many, r)
	}
	res.finished = time.Now()
	if err := writeReports(o, res); err != nil {
		return err
	}
	printSummary(os.Stdout, o, res)
	return nil
}

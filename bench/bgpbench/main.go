// Command bgpbench measures Herald's BGP mode in the network-namespace lab
// (internal/lab) with its FRR router: three nodes peering with the router
// over IPv4 and IPv6, a remote client behind the router. In one run it
// measures
//
//   - node hard loss: node1's speaker is killed (SIGKILL) and its link cut
//     at once; the time until the router's kernel route for the Service /32
//     no longer lists node1, and until requests from the remote client stop
//     failing, with BFD (100 ms x 3) over -bfd-runs runs and without BFD at
//     holdTime 3s over -hold-runs runs;
//   - graceful stop: node1's speaker gets SIGTERM -graceful-runs times; the
//     time until the router's route loses node1;
//   - -services Services appearing at once: the time until the router has
//     every /32 from every node;
//   - the speakers' RSS with those prefixes advertised.
//
// It writes bench/results/bgp-{failover,scale}.{json,md}. Run as root from
// the repository root after `make build`:
//
//	go run ./bench/bgpbench
//	go run ./bench/bgpbench -bfd-runs 2 -hold-runs 1 -graceful-runs 2 -services 100 -out /tmp/bgp  # smoke run
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/herald-lb/herald/bench/labrun"
	"github.com/herald-lb/herald/bench/report"
	"github.com/herald-lb/herald/internal/lab"
)

type options struct {
	bfdRuns, holdRuns, gracefulRuns int
	services                        int
	probeEvery, settle              time.Duration
	lossTimeout, settleTimeout      time.Duration
	bulkTimeout                     time.Duration
	out                             string
	inputs                          labrun.Inputs
}

func main() {
	var o options
	flag.IntVar(&o.bfdRuns, "bfd-runs", defaultRuns, "hard node losses with BFD 100 ms x 3")
	flag.IntVar(&o.holdRuns, "hold-runs", defaultRuns, "hard node losses without BFD, holdTime 3s")
	flag.IntVar(&o.gracefulRuns, "graceful-runs", defaultRuns, "graceful stops (SIGTERM)")
	flag.IntVar(&o.services, "services", defaultServices, "Services created at once for the scale test (0 skips it)")
	flag.DurationVar(&o.probeEvery, "probe-every", defaultProbeEvery, "interval between the remote client's requests")
	flag.DurationVar(&o.settle, "settle", time.Second, "pause after node1 is back, before the next run")
	flag.DurationVar(&o.lossTimeout, "loss-timeout", 30*time.Second, "give up on the router dropping node1 after this long")
	flag.DurationVar(&o.settleTimeout, "settle-timeout", 90*time.Second, "give up waiting for node1's route to come back after this long")
	flag.DurationVar(&o.bulkTimeout, "bulk-timeout", 5*time.Minute, "give up waiting for the Services' routes after this long")
	o.inputs.Register(flag.CommandLine)
	flag.StringVar(&o.out, "out", "bench/results", "directory for the bgp-*.json and bgp-*.md files")
	flag.Parse()

	labrun.Main("bgpbench", func(ctx context.Context, log *slog.Logger) error {
		return run(ctx, o, log)
	})
}

func (o options) validate() error {
	switch {
	case o.bfdRuns < 0 || o.holdRuns < 0 || o.gracefulRuns < 0:
		return errors.New("run counts must not be negative")
	case o.services < 0 || o.services > bulkPoolSize:
		return fmt.Errorf("-services must be between 0 and %d (the size of %s)", bulkPoolSize, bulkPool)
	case o.probeEvery <= 0:
		return errors.New("-probe-every must be positive")
	}
	return nil
}

// bench is one run over one lab.
type bench struct {
	o      options
	lab    *lab.Lab
	herald string
	log    *slog.Logger
}

func run(ctx context.Context, o options, log *slog.Logger) (err error) {
	if err := o.validate(); err != nil {
		return err
	}
	opts, err := o.inputs.Options(ctx, "bgpbench-logs-", log)
	if err != nil {
		return err
	}
	loadavg, _ := os.ReadFile("/proc/loadavg")

	b := &bench{o: o, herald: opts.Herald, log: log}
	opts.Router = true
	// FRR runs bfdd on every neighbour; setFRRBFD tunes or removes it.
	opts.RouterBFD = true
	l, done, err := labrun.Start(ctx, opts, func(l *lab.Lab) {
		log.Warn("router logs", "log", "\n"+l.RouterLogs(20))
	})
	if err != nil {
		return err
	}
	b.lab = l
	defer func() { err = done(err) }()

	var res results
	res.started = time.Now()
	res.loadavg = strings.TrimSpace(string(loadavg))
	// Whatever was measured is written even if a later step fails.
	written := false
	defer func() {
		if written || len(res.bfd)+len(res.hold)+len(res.graceful) == 0 {
			return
		}
		res.finished = time.Now()
		res.incomplete = fmt.Sprint(err)
		if werr := writeReports(o, res); werr != nil {
			err = errors.Join(err, werr)
		}
	}()

	// Phase 1: BFD 100 ms x 3 on both sides, hold time left to negotiation.
	if err := b.configure(ctx, true, 0); err != nil {
		return err
	}
	svc, err := b.webService(ctx)
	if err != nil {
		return err
	}
	log.Info("Service web routed through every node", "prefix", svc)
	if res.bfdState, err = b.waitBFDUp(ctx); err != nil {
		return err
	}
	res.bfdTimers, _ = b.sessionTimers(ctx)
	if res.graceful, err = b.gracefulStops(ctx, svc, o.gracefulRuns); err != nil {
		return fmt.Errorf("graceful stop: %w", err)
	}
	if res.bfd, err = b.hardLosses(ctx, svc, o.bfdRuns, "bfd"); err != nil {
		return fmt.Errorf("hard loss with BFD: %w", err)
	}

	// Phase 2: no BFD, holdTime 3s.
	if o.holdRuns > 0 {
		if err := b.configure(ctx, false, 3*time.Second); err != nil {
			return err
		}
		if err := b.waitHold(ctx, 3*time.Second); err != nil {
			return err
		}
		if _, err := b.waitHops(ctx, svc, 3); err != nil {
			return err
		}
		res.holdTimers, _ = b.sessionTimers(ctx)
		if res.hold, err = b.hardLosses(ctx, svc, o.holdRuns, "hold3s"); err != nil {
			return fmt.Errorf("hard loss without BFD: %w", err)
		}
	}

	if o.services > 0 {
		// Fresh speakers, so that their peak RSS is their start plus the
		// many prefixes, nothing else.
		if err := b.restartSpeakers(ctx, svc); err != nil {
			return err
		}
		if err := lab.Sleep(ctx, 5*time.Second); err != nil {
			return err
		}
		if res.memBefore, err = b.speakerMemory(); err != nil {
			return err
		}
		if res.bulk, err = b.createBulk(ctx, o.services); err != nil {
			return fmt.Errorf("%d Services: %w", o.services, err)
		}
		if err := lab.Sleep(ctx, 10*time.Second); err != nil {
			return err
		}
		if res.memAfter, err = b.speakerMemory(); err != nil {
			return err
		}
		if res.prefixes, err = b.sessionPrefixes(ctx); err != nil {
			return err
		}
		for _, m := range res.memAfter {
			log.Info("speaker memory", "node", m.node, "rss MiB", report.MiB(m.mem.rss), "hwm MiB", report.MiB(m.mem.hwm))
		}
	}
	res.finished = time.Now()

	written = true
	if err := writeReports(o, res); err != nil {
		return err
	}
	printSummary(os.Stdout, o, res)
	return nil
}

// restartSpeakers stops every speaker gracefully and starts them all
// again, then waits for the Service's three next hops.
func (b *bench) restartSpeakers(ctx context.Context, svc netip.Prefix) error {
	b.log.Info("restarting every speaker")
	for _, n := range b.lab.Nodes() {
		if err := b.lab.StopSpeaker(n.Name, 10*time.Second); err != nil {
			return err
		}
	}
	for _, n := range b.lab.Nodes() {
		if err := b.lab.StartSpeaker(n.Name); err != nil {
			return err
		}
	}
	_, err := b.waitHops(ctx, svc, 3)
	return err
}

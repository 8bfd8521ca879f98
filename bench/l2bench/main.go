// Command l2bench measures Herald's Layer 2 mode in the network-namespace
// lab (internal/lab): three nodes on a bridge, a client, a real API server,
// the controller and a speaker per node. In one run it measures
//
//   - hard failover: the owner of a Service address is killed (SIGKILL) and
//     its link cut at once, while the client sends a request every 10 ms;
//     the time from the kill to the first answer from another node, over
//     -hard-runs runs with the default speaker settings (--ml-profile fast)
//     and -lan-runs runs with memberlist's stock LAN settings (--ml-profile
//     lan);
//   - graceful handover: the owner is stopped with SIGTERM -graceful-runs
//     times, counting failed requests and the longest gap between answers;
//   - footprint: each speaker's RSS and idle CPU with one Service, then with
//     -addresses more IPv6 Service addresses;
//   - ARP flood: -flood-rate ARP requests per second for -flood-for from the
//     client for an owned address, with the owner's CPU and the answers.
//
// It writes bench/results/l2-{failover,handover,footprint,arpflood}.{json,md}.
// Run as root from the repository root after `make build`:
//
//	go run ./bench/l2bench
//	go run ./bench/l2bench -hard-runs 2 -lan-runs 1 -graceful-runs 2 -addresses 50 -flood-for 1s -cpu-window 2s -out /tmp/l2  # smoke run
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
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/bench/labrun"
	"github.com/herald-lb/herald/bench/report"
	"github.com/herald-lb/herald/internal/lab"
)

type options struct {
	hardRuns, lanRuns, gracefulRuns int
	addresses                       int
	floodRate                       int
	floodFor, cpuWindow             time.Duration
	probeEvery, settle              time.Duration
	failoverTimeout, settleTimeout  time.Duration
	bulkTimeout                     time.Duration
	out                             string
	inputs                          labrun.Inputs
}

func main() {
	var o options
	flag.IntVar(&o.hardRuns, "hard-runs", 20, "hard failovers with the default speaker settings (--ml-profile fast)")
	flag.IntVar(&o.lanRuns, "lan-runs", 20, "hard failovers with memberlist's stock LAN settings (--ml-profile lan)")
	flag.IntVar(&o.gracefulRuns, "graceful-runs", 20, "graceful handovers (SIGTERM)")
	flag.IntVar(&o.addresses, "addresses", 1000, "IPv6 Service addresses for the footprint under load")
	flag.IntVar(&o.floodRate, "flood-rate", 10_000, "ARP requests per second in the flood")
	flag.DurationVar(&o.floodFor, "flood-for", 5*time.Second, "length of the ARP flood (and of the idle window before it)")
	flag.DurationVar(&o.cpuWindow, "cpu-window", 10*time.Second, "window for the speakers' idle CPU")
	flag.DurationVar(&o.probeEvery, "probe-every", 10*time.Millisecond, "interval between the client's requests")
	flag.DurationVar(&o.settle, "settle", time.Second, "pause after the owner is back, before the next run")
	flag.DurationVar(&o.failoverTimeout, "failover-timeout", time.Minute, "give up on a takeover after this long")
	flag.DurationVar(&o.settleTimeout, "settle-timeout", 90*time.Second, "give up waiting for the owner to win its address back after this long")
	flag.DurationVar(&o.bulkTimeout, "bulk-timeout", 5*time.Minute, "give up waiting for the bulk Services' addresses and announcements after this long")
	o.inputs.Register(flag.CommandLine)
	flag.StringVar(&o.out, "out", "bench/results", "directory for the l2-*.json and l2-*.md files")
	flag.Parse()

	labrun.Main("l2bench", func(ctx context.Context, log *slog.Logger) error {
		return run(ctx, o, log)
	})
}

func (o options) validate() error {
	switch {
	case o.hardRuns < 0 || o.lanRuns < 0 || o.gracefulRuns < 0 || o.addresses < 0:
		return errors.New("run counts and -addresses must not be negative")
	case o.floodRate < 100 || o.floodFor <= 0 || o.cpuWindow <= 0:
		return errors.New("-flood-rate must be at least 100, -flood-for and -cpu-window positive")
	case o.probeEvery <= 0:
		return errors.New("-probe-every must be positive")
	}
	if o.addresses > 0 {
		if _, err := checkBulkPool(o.addresses); err != nil {
			return err
		}
	}
	return nil
}

// bench is one run: the lab and what the speakers are started with.
type bench struct {
	o      options
	lab    *lab.Lab
	herald string
	log    *slog.Logger
	// profile is the --ml-profile speakers get when (re)started.
	profile atomic.Pointer[string]
}

func run(ctx context.Context, o options, log *slog.Logger) (err error) {
	if err := o.validate(); err != nil {
		return err
	}
	opts, err := o.inputs.Options(ctx, "l2bench-logs-", log)
	if err != nil {
		return err
	}
	loadavg, _ := os.ReadFile("/proc/loadavg")

	b := &bench{o: o, herald: opts.Herald, log: log}
	fast := "fast"
	b.profile.Store(&fast)
	opts.SpeakerArgs = func(kubeconfig string, n lab.Node) []string {
		return append(lab.DefaultSpeakerArgs(kubeconfig, n), "--ml-profile", *b.profile.Load())
	}
	l, done, err := labrun.Start(ctx, opts, nil)
	if err != nil {
		return err
	}
	b.lab = l
	defer func() { err = done(err) }()

	if err := l.Apply(ctx, lab.Config()); err != nil {
		return err
	}
	if _, err := l.CreateService(ctx, lab.Service{Name: "web", Families: []corev1.IPFamily{corev1.IPv4Protocol}}); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	addrs, err := l.WaitAddresses(wctx, "default", "web")
	cancel()
	if err != nil {
		return err
	}
	addr := addrs[0]
	owner, err := b.settled(ctx, addr, "")
	if err != nil {
		return err
	}
	log.Info("Service web announced", "address", addr, "owner", owner)

	var res results
	res.started = time.Now()
	res.loadavg = strings.TrimSpace(string(loadavg))

	// Footprint with one Service, on speakers that have done nothing else.
	if err := lab.Sleep(ctx, 5*time.Second); err != nil {
		return err
	}
	if res.idle1, err = b.idleUsage(ctx, o.cpuWindow); err != nil {
		return fmt.Errorf("footprint with one Service: %w", err)
	}
	for _, u := range res.idle1 {
		log.Info("footprint, one Service", "node", u.node, "rss MiB", report.MiB(u.mem.rss), "hwm MiB", report.MiB(u.mem.hwm), "cpu %", report.Round(100*u.cores, 3))
	}

	extra, err := b.spreadIPv4(ctx, owner)
	if err != nil {
		return fmt.Errorf("ARP flood: %w", err)
	}
	if err := lab.Sleep(ctx, 2*time.Second); err != nil { // announcement bursts over
		return err
	}
	if res.flood, err = b.arpFlood(ctx, addr, owner, o.floodRate, o.floodFor); err != nil {
		return fmt.Errorf("ARP flood: %w", err)
	}
	// The failovers run with the one Service again.
	if err := b.deleteServices(ctx, extra); err != nil {
		return err
	}
	if _, err := b.settled(ctx, addr, owner); err != nil {
		return fmt.Errorf("after the ARP flood: %w", err)
	}

	if res.hardFast, err = b.hardFailovers(ctx, addr, owner, o.hardRuns, "fast"); err != nil {
		return fmt.Errorf("hard failover (fast): %w", err)
	}
	if res.graceful, err = b.gracefulHandovers(ctx, addr, owner, o.gracefulRuns); err != nil {
		return fmt.Errorf("graceful handover: %w", err)
	}
	if o.lanRuns > 0 {
		if err := b.restartSpeakers(ctx, "lan", addr, owner); err != nil {
			return err
		}
		if res.hardLAN, err = b.hardFailovers(ctx, addr, owner, o.lanRuns, "lan"); err != nil {
			return fmt.Errorf("hard failover (lan): %w", err)
		}
	}

	if o.addresses > 0 {
		// Fresh speakers with the default settings, so that their peak RSS
		// is their start plus the many addresses, nothing else.
		if err := b.restartSpeakers(ctx, "fast", addr, owner); err != nil {
			return err
		}
		if res.bulk, err = b.createBulk(ctx, o.addresses); err != nil {
			return fmt.Errorf("%d addresses: %w", o.addresses, err)
		}
		if err := lab.Sleep(ctx, 10*time.Second); err != nil {
			return err
		}
		if res.idleBulk, err = b.idleUsage(ctx, o.cpuWindow); err != nil {
			return fmt.Errorf("footprint with %d addresses: %w", o.addresses, err)
		}
		for _, u := range res.idleBulk {
			log.Info("footprint, many addresses", "node", u.node, "owned", u.owned, "rss MiB", report.MiB(u.mem.rss), "hwm MiB", report.MiB(u.mem.hwm), "cpu %", report.Round(100*u.cores, 3))
		}
	}
	res.finished = time.Now()

	b.showAnomalies(res)
	if err := writeReports(o, res); err != nil {
		return err
	}
	printSummary(os.Stdout, o, res)
	return nil
}

// restartSpeakers stops every speaker gracefully and starts them all again
// with profile, then waits until want announces addr again.
func (b *bench) restartSpeakers(ctx context.Context, profile string, addr netip.Addr, want string) error {
	b.log.Info("restarting every speaker", "profile", profile)
	for _, n := range b.lab.Nodes() {
		if err := b.lab.StopSpeaker(n.Name, 10*time.Second); err != nil {
			return err
		}
	}
	b.profile.Store(&profile)
	for _, n := range b.lab.Nodes() {
		if err := b.lab.StartSpeaker(n.Name); err != nil {
			return err
		}
	}
	if _, err := b.settled(ctx, addr, want); err != nil {
		return fmt.Errorf("after restarting the speakers with --ml-profile %s: %w", profile, err)
	}
	return lab.Sleep(ctx, b.o.settle)
}

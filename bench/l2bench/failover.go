package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/herald-lb/herald/internal/lab"
)

// baseline is how long a probe runs before each failure, so the outage is
// measured against a flowing stream of answers.
const baseline = 300 * time.Millisecond

// hardRun is one SIGKILL-and-cut-link failover.
type hardRun struct {
	owner, to string
	took      time.Duration // kill to the first answer from another node
	ok        bool          // another node answered within the timeout
	logs      map[string][2]int64
}

// hardFailovers kills the owner of addr n times; each time it restores the
// owner and waits until it has the address back before the next run.
func (b *bench) hardFailovers(ctx context.Context, addr netip.Addr, owner string, n int, tag string) ([]hardRun, error) {
	var runs []hardRun
	for i := range n {
		if err := ctx.Err(); err != nil {
			return runs, err
		}
		offs := b.logOffsets()
		probe := b.lab.Probe(ctx, addr, 80, b.o.probeEvery)
		if err := lab.Sleep(ctx, baseline); err != nil {
			probe.Stop()
			return runs, err
		}
		killed := time.Now()
		err := b.lab.KillSpeaker(owner)
		if err == nil {
			err = b.lab.CutLink(owner)
		}
		if err != nil {
			probe.Stop()
			return runs, err
		}
		wctx, cancel := context.WithTimeout(ctx, b.o.failoverTimeout)
		_, werr := probe.Wait(wctx, func(s lab.Sample) bool {
			return s.Err == nil && s.Node != owner && !s.Start.Before(killed)
		})
		cancel()
		samples := probe.Stop()
		if werr != nil && ctx.Err() != nil {
			return runs, ctx.Err()
		}
		r := hardRun{owner: owner}
		r.took, r.to, r.ok = lab.Failover(samples, killed, owner)
		if !r.ok {
			b.log.Warn("no other node answered", "run", i+1, "profile", tag, "timeout", b.o.failoverTimeout)
		} else {
			b.log.Info("hard failover", "profile", tag, "run", fmt.Sprintf("%d/%d", i+1, n), "from", owner, "to", r.to, "took", r.took.Round(time.Millisecond))
		}

		if err := b.lab.RestoreLink(owner); err != nil {
			return runs, err
		}
		if err := b.lab.StartSpeaker(owner); err != nil {
			return runs, err
		}
		if _, err := b.settled(ctx, addr, owner); err != nil {
			return runs, fmt.Errorf("%s run %d: %s never won %s back: %w", tag, i+1, owner, addr, err)
		}
		r.logs = b.logSpan(offs)
		runs = append(runs, r)
		if err := lab.Sleep(ctx, b.o.settle); err != nil {
			return runs, err
		}
	}
	return runs, nil
}

// gracefulRun is one SIGTERM handover.
type gracefulRun struct {
	owner, to string
	requests  int
	failed    int
	gap       time.Duration // longest time between two answers
	handover  time.Duration // SIGTERM to the first answer from the next owner
	exit      time.Duration // SIGTERM to the speaker's exit
	logs      map[string][2]int64
	failures  []string // when and how requests failed, relative to SIGTERM
}

// gracefulHandovers stops the owner of addr with SIGTERM n times, probing
// throughout, and restarts it after each.
func (b *bench) gracefulHandovers(ctx context.Context, addr netip.Addr, owner string, n int) ([]gracefulRun, error) {
	var runs []gracefulRun
	for i := range n {
		if err := ctx.Err(); err != nil {
			return runs, err
		}
		offs := b.logOffsets()
		probe := b.lab.Probe(ctx, addr, 80, b.o.probeEvery)
		if err := lab.Sleep(ctx, baseline); err != nil {
			probe.Stop()
			return runs, err
		}
		r := gracefulRun{owner: owner}
		termed := time.Now()
		if err := b.lab.StopSpeaker(owner, 10*time.Second); err != nil {
			probe.Stop()
			return runs, err
		}
		r.exit = time.Since(termed)
		next, err := b.waitNewAnnouncer(ctx, addr, owner)
		if err != nil {
			probe.Stop()
			return runs, fmt.Errorf("graceful run %d: %w", i+1, err)
		}
		if err := lab.Sleep(ctx, 500*time.Millisecond); err != nil {
			probe.Stop()
			return runs, err
		}
		samples := probe.Stop()
		r.requests = len(samples)
		for _, s := range lab.Failed(samples) {
			r.failed++
			r.failures = append(r.failures, fmt.Sprintf("request started at %+d ms, failed at %+d ms: %v",
				s.Start.Sub(termed).Milliseconds(), s.End.Sub(termed).Milliseconds(), s.Err))
		}
		r.gap = lab.LongestOutage(samples)
		var ok bool
		r.handover, r.to, ok = lab.Failover(samples, termed, owner)
		if !ok {
			r.to = next
		}
		b.log.Info("graceful handover", "run", fmt.Sprintf("%d/%d", i+1, n), "from", owner, "to", r.to,
			"requests", r.requests, "failed", r.failed, "longest gap", r.gap.Round(time.Millisecond), "exit", r.exit.Round(time.Millisecond))

		if err := b.lab.StartSpeaker(owner); err != nil {
			return runs, err
		}
		if _, err := b.settled(ctx, addr, owner); err != nil {
			return runs, fmt.Errorf("graceful run %d: %s never won %s back: %w", i+1, owner, addr, err)
		}
		r.logs = b.logSpan(offs)
		runs = append(runs, r)
		if err := lab.Sleep(ctx, b.o.settle); err != nil {
			return runs, err
		}
	}
	return runs, nil
}

// waitNewAnnouncer waits until a node other than old answers ARP/NDP for addr.
func (b *bench) waitNewAnnouncer(ctx context.Context, addr netip.Addr, old string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last string
	for {
		n, err := b.lab.Announcer(ctx, addr)
		if err == nil && n != old {
			return n, nil
		}
		last = fmt.Sprintf("%s %v", n, err)
		if err := lab.Sleep(ctx, 20*time.Millisecond); err != nil {
			return "", fmt.Errorf("no node other than %s announces %s (last: %s)", old, addr, last)
		}
	}
}

// settled waits until exactly one node answers ARP/NDP for addr, its
// backend answers a request to addr, and, if want is set, it is want.
func (b *bench) settled(ctx context.Context, addr netip.Addr, want string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, b.o.settleTimeout)
	defer cancel()
	var state string
	for {
		node, s := b.settledOnce(ctx, addr, want)
		if node != "" {
			return node, nil
		}
		state = s
		if err := lab.Sleep(ctx, 100*time.Millisecond); err != nil {
			err = fmt.Errorf("%s not settled: %s", addr, state)
			if perr := b.lab.CheckProcesses(); perr != nil {
				err = errors.Join(err, perr)
			}
			return "", err
		}
	}
}

func (b *bench) settledOnce(ctx context.Context, addr netip.Addr, want string) (string, string) {
	macs, err := b.lab.Neighbors(ctx, addr)
	if err != nil || len(macs) != 1 {
		return "", fmt.Sprintf("answered by %v (%v)", macs, err)
	}
	node := b.lab.NodeByMAC(macs[0])
	if node == "" || (want != "" && node != want) {
		return "", fmt.Sprintf("answered by %s (%q), want %q", macs[0], node, want)
	}
	got, err := b.lab.Curl(ctx, addr, 80)
	if err != nil || got != node {
		return "", fmt.Sprintf("curl answered by %q (%v), ARP/NDP by %s", got, err, node)
	}
	return node, ""
}

// logOffsets notes where each speaker's log ends now.
func (b *bench) logOffsets() map[string]int64 {
	out := map[string]int64{}
	for _, n := range b.lab.Nodes() {
		name := "speaker-" + n.Name
		out[name] = fileSize(b.lab.LogPath(name))
	}
	return out
}

// logSpan pairs the offsets noted at the start of a run with the ends now.
func (b *bench) logSpan(from map[string]int64) map[string][2]int64 {
	out := map[string][2]int64{}
	for name, off := range from {
		out[name] = [2]int64{off, fileSize(b.lab.LogPath(name))}
	}
	return out
}

// showLogs logs what every speaker wrote during one run.
func (b *bench) showLogs(what string, spans map[string][2]int64) {
	for name, sp := range spans {
		if s := logSection(b.lab.LogPath(name), sp[0], sp[1], 6000); s != "" {
			b.log.Warn(what+": log of "+name+" during the run", "log", "\n"+s)
		}
	}
}

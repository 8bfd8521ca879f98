package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netns"

	"github.com/herald-lb/herald/internal/lab"
)

// baseline is how long the probe runs before each failure, so the outage
// is measured against a flowing stream of answers; tail is how long it
// runs after the router dropped the node, longer than a request's timeout,
// so every request started before the drop has finished.
const (
	baseline     = 300 * time.Millisecond
	probeTimeout = time.Second
	tail         = 1500 * time.Millisecond
)

// lossRun is one node loss, hard or graceful.
type lossRun struct {
	t0        time.Time     // the failure: SIGKILL or SIGTERM
	routeGone time.Duration // failure to node1 gone from the router's route
	recovered time.Duration // failure to the first answer after the last failed request
	exit      time.Duration // graceful only: SIGTERM to the speaker's exit
	requests  int
	failed    int
	answered  map[string]int // answers by node before the failure
	failures  []string
}

// victim is the node that is lost in every run.
func (b *bench) victim() (name string, addr netip.Addr) {
	n := b.lab.Nodes()[0]
	return n.Name, n.IPv4
}

// hardLosses kills node1's speaker and cuts its link n times, restoring
// both after each run.
func (b *bench) hardLosses(ctx context.Context, svc netip.Prefix, n int, tag string) ([]lossRun, error) {
	node, _ := b.victim()
	var runs []lossRun
	for i := range n {
		r, err := b.loseNode(ctx, svc, func() error {
			// The link goes first: a killed process's sockets are closed
			// by the kernel, and a FIN that reached the router would end
			// the session at once, which a node that loses power or its
			// network never sends.
			err := b.lab.CutLink(node)
			if err == nil {
				err = b.lab.KillSpeaker(node)
			}
			return err
		})
		if err != nil {
			return runs, fmt.Errorf("%s run %d: %w", tag, i+1, err)
		}
		b.log.Info("hard loss", "mode", tag, "run", fmt.Sprintf("%d/%d", i+1, n),
			"route", r.routeGone.Round(time.Millisecond), "requests ok", r.recovered.Round(time.Millisecond),
			"failed", fmt.Sprintf("%d/%d", r.failed, r.requests))
		runs = append(runs, r)
		if err := b.lab.RestoreLink(node); err != nil {
			return runs, err
		}
		if err := b.lab.StartSpeaker(node); err != nil {
			return runs, err
		}
		if err := b.restored(ctx, svc, tag == "bfd"); err != nil {
			return runs, fmt.Errorf("%s run %d: %w", tag, i+1, err)
		}
	}
	return runs, nil
}

// gracefulStops stops node1's speaker with SIGTERM n times and starts it
// again after each.
func (b *bench) gracefulStops(ctx context.Context, svc netip.Prefix, n int) ([]lossRun, error) {
	node, _ := b.victim()
	var runs []lossRun
	for i := range n {
		var exited time.Time
		stopped := make(chan error, 1)
		signalled := false
		r, err := b.loseNode(ctx, svc, func() error {
			signalled = true
			go func() {
				err := b.lab.StopSpeaker(node, 10*time.Second)
				exited = time.Now()
				stopped <- err
			}()
			return nil
		})
		if err != nil {
			if signalled {
				<-stopped
			}
			return runs, fmt.Errorf("graceful run %d: %w", i+1, err)
		}
		if err := <-stopped; err != nil {
			return runs, err
		}
		r.exit = exited.Sub(r.t0)
		b.log.Info("graceful stop", "run", fmt.Sprintf("%d/%d", i+1, n),
			"route", r.routeGone.Round(time.Millisecond), "exit", r.exit.Round(time.Millisecond),
			"failed", fmt.Sprintf("%d/%d", r.failed, r.requests))
		runs = append(runs, r)
		if err := b.lab.StartSpeaker(node); err != nil {
			return runs, err
		}
		if err := b.restored(ctx, svc, true); err != nil {
			return runs, fmt.Errorf("graceful run %d: %w", i+1, err)
		}
	}
	return runs, nil
}

// restored waits for the three next hops (and, with bfd, the BFD sessions)
// and then the settle pause.
func (b *bench) restored(ctx context.Context, svc netip.Prefix, bfd bool) error {
	if _, err := b.waitHops(ctx, svc, 3); err != nil {
		return err
	}
	if bfd {
		if _, err := b.waitBFDUp(ctx); err != nil {
			return err
		}
	}
	return lab.Sleep(ctx, b.o.settle)
}

// loseNode probes the Service from the remote client, calls fail, polls
// the router's kernel route every 10 ms until node1 is no longer a next
// hop, probes on for tail, and works out when requests stopped failing.
func (b *bench) loseNode(ctx context.Context, svc netip.Prefix, fail func() error) (lossRun, error) {
	_, addr := b.victim()
	var r lossRun
	if hops, err := b.lab.RouterRoutes(ctx, svc); err != nil || len(hops) != 3 {
		return r, fmt.Errorf("before the run: %s via %v (%v), want 3 next hops", svc, hops, err)
	}
	probe, err := b.startProbe(ctx, svc.Addr(), 80, b.o.probeEvery)
	if err != nil {
		return r, err
	}
	defer probe.stop()
	if err := lab.Sleep(ctx, baseline); err != nil {
		return r, err
	}
	r.t0 = time.Now()
	if err := fail(); err != nil {
		return r, err
	}
	wctx, cancel := context.WithTimeout(ctx, b.o.lossTimeout)
	defer cancel()
	for {
		hops, err := b.lab.RouterRoutes(wctx, svc)
		if err == nil && !slices.Contains(hops, addr) {
			r.routeGone = time.Since(r.t0)
			break
		}
		if err := lab.Sleep(wctx, 10*time.Millisecond); err != nil {
			return r, fmt.Errorf("the router still routes %s via %v after %s", svc, hops, b.o.lossTimeout)
		}
	}
	if err := lab.Sleep(ctx, tail); err != nil {
		return r, err
	}
	samples := probe.stop()
	r.requests = len(samples)
	r.answered = map[string]int{}
	var lastFail *sample
	for i, s := range samples {
		if s.start.Before(r.t0) && s.err == nil {
			r.answered[s.node]++
		}
		if s.err != nil {
			r.failed++
			lastFail = &samples[i]
			r.failures = append(r.failures, fmt.Sprintf("started %+d ms, failed %+d ms: %v",
				s.start.Sub(r.t0).Milliseconds(), s.end.Sub(r.t0).Milliseconds(), s.err))
		}
	}
	if lastFail != nil {
		for _, s := range samples {
			if s.err == nil && s.start.After(lastFail.start) {
				r.recovered = s.start.Sub(r.t0)
				break
			}
		}
		if r.recovered == 0 {
			return r, fmt.Errorf("requests still failing %s after the route changed: %s", tail, strings.Join(r.failures, "; "))
		}
	}
	if len(r.answered) < 2 {
		b.log.Warn("before the failure, answers came from fewer than two nodes", "answered", r.answered)
	}
	return r, nil
}

// sample is one request of a probe.
type sample struct {
	start, end time.Time
	node       string
	err        error
}

// probe sends a request from the remote client at a steady rate, each on
// a new connection, so the router's ECMP hash picks a node anew each time.
type probe struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
	mu     sync.Mutex
	out    []sample
}

// startProbe requests http://addr:port/ from the remote namespace every
// interval, with Go's client dialling from a thread inside that namespace.
func (b *bench) startProbe(ctx context.Context, addr netip.Addr, port int, every time.Duration) (*probe, error) {
	remote, err := netns.GetFromName(b.lab.RemoteNode().Namespace)
	if err != nil {
		return nil, fmt.Errorf("remote namespace: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &probe{cancel: cancel}
	client := &http.Client{
		Timeout: probeTimeout,
		Transport: &http.Transport{
			Proxy:             nil,
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
				return dialIn(ctx, remote, network, address)
			},
		},
	}
	p.wg.Go(func() {
		defer remote.Close()
		tick := time.NewTicker(every)
		defer tick.Stop()
		var reqs sync.WaitGroup
		defer reqs.Wait()
		for {
			reqs.Go(func() {
				s := sample{start: time.Now()}
				s.node, s.err = b.lab.Get(ctx, client, addr, port)
				s.end = time.Now()
				if ctx.Err() != nil && s.err != nil {
					return // cut short by stop: says nothing about the network
				}
				p.mu.Lock()
				p.out = append(p.out, s)
				p.mu.Unlock()
			})
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	return p, nil
}

// stop ends the probe and returns its samples by start time.
func (p *probe) stop() []sample {
	p.once.Do(p.cancel)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	out := slices.Clone(p.out)
	slices.SortFunc(out, func(a, b sample) int { return a.start.Compare(b.start) })
	return out
}

// dialIn dials from a thread switched into ns; the socket stays there. If
// switching back fails the goroutine ends still locked, and Go discards
// the thread rather than let other code run in the wrong namespace.
func dialIn(ctx context.Context, ns netns.NsHandle, network, address string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("current network namespace: %w", err)}
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("enter the remote namespace: %w", err)}
			return
		}
		var d net.Dialer
		c, derr := d.DialContext(ctx, network, address)
		if err := netns.Set(orig); err != nil {
			if c != nil {
				c.Close()
			}
			done <- result{err: errors.Join(derr, fmt.Errorf("leave the remote namespace: %w", err))}
			return
		}
		runtime.UnlockOSThread()
		done <- result{c, derr}
	}()
	r := <-done
	return r.c, r.err
}

package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/herald-lb/herald/internal/cloud/hetzner/hcloudsim"
	"github.com/herald-lb/herald/internal/lab"
)

// requestCount is a set of API requests by kind.
type requestCount struct {
	total  int
	byKind map[string]int // "GET /floating_ips/{id}", ...
}

// kind is a request's method and path with IDs replaced by {id}.
func kind(q hcloudsim.Request) string {
	parts := strings.Split(q.Path, "/")
	for i, p := range parts {
		if p != "" && strings.Trim(p, "0123456789") == "" {
			parts[i] = "{id}"
		}
	}
	return q.Method + " " + strings.Join(parts, "/")
}

func countRequests(reqs []hcloudsim.Request) requestCount {
	c := requestCount{byKind: map[string]int{}}
	for _, q := range reqs {
		c.total++
		c.byKind[kind(q)]++
	}
	return c
}

func (c requestCount) String() string {
	parts := make([]string, 0, len(c.byKind))
	for _, k := range slices.Sorted(maps.Keys(c.byKind)) {
		parts = append(parts, fmt.Sprintf("%d %s", c.byKind[k], k))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// idleResult is the API requests of a quiet window.
type idleResult struct {
	ips      int
	window   time.Duration
	requests requestCount
	// intervals are the times between two reads of the same floating IP
	// (its periodic checks) inside the window.
	intervals []time.Duration
}

// perHour is the window's count scaled to an hour.
func (r idleResult) perHour() float64 {
	if r.window <= 0 {
		return 0
	}
	return float64(r.requests.total) * float64(time.Hour) / float64(r.window)
}

// perIPPerHour is the steady cost of one floating IP: an hour over the
// mean spacing of its checks, free of where the window's edges fall
// between two checks (a count over a window of a few intervals is one
// check more or less). Zero when no IP was checked twice.
func (r idleResult) perIPPerHour() float64 {
	if len(r.intervals) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range r.intervals {
		sum += d
	}
	return float64(time.Hour) / (float64(sum) / float64(len(r.intervals)))
}

// idle counts the API requests over the idle window, with fips assigned
// and settled and nothing else happening, and the spacing of each IP's
// checks.
func (b *bench) idle(ctx context.Context, fips []fip) (idleResult, error) {
	if err := b.allSettled(ctx, fips); err != nil {
		return idleResult{}, err
	}
	// Past the first checks of the IPs that have just moved.
	if err := lab.Sleep(ctx, 5*time.Second); err != nil {
		return idleResult{}, err
	}
	b.log.Info("counting API requests at idle", "floating IPs", len(fips), "window", b.o.idleWindow)
	start := b.mark()
	from := time.Now()
	if err := lab.Sleep(ctx, b.o.idleWindow); err != nil {
		return idleResult{}, err
	}
	reqs, moves := b.since(start)
	r := idleResult{ips: len(fips), window: time.Since(from), requests: countRequests(reqs), intervals: checkIntervals(reqs)}
	if len(moves) > 0 {
		return r, fmt.Errorf("%d floating IP moves during the idle window: not idle", len(moves))
	}
	b.log.Info("API requests at idle", "floating IPs", len(fips), "requests", r.requests.total, "kinds", r.requests.String(),
		"per hour", int(r.perHour()), "per IP per hour from the check spacing", int(r.perIPPerHour()))
	return r, nil
}

// checkIntervals is the time between consecutive reads of each floating IP.
func checkIntervals(reqs []hcloudsim.Request) []time.Duration {
	last := map[string]time.Time{}
	var out []time.Duration
	for _, q := range reqs {
		if q.Method != "GET" || kind(q) != "GET /floating_ips/{id}" {
			continue
		}
		if t, ok := last[q.Path]; ok {
			out = append(out, q.Time.Sub(t))
		}
		last[q.Path] = q.Time
	}
	return out
}

// manyRun is one hard failover with many floating IPs.
type manyRun struct {
	node     string
	moved    int           // floating IPs that were on the node
	took     time.Duration // kill to the last of them moved
	requests requestCount  // from the kill until the last move plus tail
}

// manyFailover cuts the link of the node with the most of fips and kills
// its speaker, waits until each of its IPs is on another server, then
// restores it and waits until it has them all back.
func (b *bench) manyFailover(ctx context.Context, fips []fip) (manyRun, error) {
	on := map[string][]fip{}
	for _, f := range fips {
		n := nodeOf(b.sim.Assignment(f.id))
		on[n] = append(on[n], f)
	}
	var r manyRun
	for n, fs := range on {
		if len(fs) > r.moved || (len(fs) == r.moved && n < r.node) {
			r.node, r.moved = n, len(fs)
		}
	}
	for _, f := range on[r.node] {
		if err := b.pastHoldDown(ctx, f); err != nil {
			return r, err
		}
	}
	start := b.mark()
	killed := time.Now()
	err := b.lab.CutLink(r.node)
	if err == nil {
		err = b.lab.KillSpeaker(r.node)
	}
	if err != nil {
		return r, err
	}
	wctx, cancel := context.WithTimeout(ctx, b.o.failoverTimeout)
	defer cancel()
	// Settled means answered by the node it is on: the cut node answers
	// no one, so each IP is settled once it is on another node.
	for _, f := range on[r.node] {
		if _, err := b.settled(wctx, f, ""); err != nil {
			return r, err
		}
	}
	if err := lab.Sleep(ctx, tail); err != nil {
		return r, err
	}
	reqs, moves := b.since(start)
	for _, m := range moves {
		r.took = max(r.took, m.at.Sub(killed))
	}
	r.requests = countRequests(reqs)
	back := b.mark()
	if err := b.restore(ctx, r.node); err != nil {
		return r, err
	}
	if _, moves := b.since(back); len(moves) > 0 {
		return r, fmt.Errorf("floating IP %d moved to server %d when %s came back: a returning node takes nothing", moves[0].fip, moves[0].server, r.node)
	}
	return r, nil
}

package main

import (
	"context"
	"fmt"
	"time"

	"github.com/herald-lb/herald/internal/cloud/hetzner/hcloudsim"
	"github.com/herald-lb/herald/internal/lab"
)

// baseline is how long the probe runs before each failure, so the outage
// is measured against a flowing stream of answers; tail is how long the
// stand-in's log is kept after the first answer from the next owner, so
// the requests that finish its assign (the action's last polls) count.
const (
	baseline = 300 * time.Millisecond
	tail     = 1500 * time.Millisecond
)

// hardRun is one cut-link-and-SIGKILL failover of one floating IP.
type hardRun struct {
	owner, to string
	// failover: kill to the first answer from the next owner, as the
	// remote client sees it.
	failover time.Duration
	// detection: kill to the next owner's Lease acquired (the Lease's
	// acquireTime); leaseLeft: kill to the dead owner's Lease expiring
	// (its last renewTime plus the lease).
	detection, leaseLeft time.Duration
	// decision: Lease acquired to the assign request at the stand-in.
	decision time.Duration
	// action: assign request to the route moved (the action's end).
	action time.Duration
	// answer: route moved to the first answer from the next owner.
	answer time.Duration
	// outage: the last answer from the dead owner to the first from the
	// next, the client's gap.
	outage   time.Duration
	requests requestCount
	// rejoin: requests while the dead owner comes back, which takes
	// nothing: the IP stays with its new holder.
	rejoin requestCount
}

// rejoinWatch is how long after a restored node is back in the membership
// the IP is watched for a move it must not make: more than two leases of
// the shortest benchmarked.
const rejoinWatch = 8 * time.Second

// hardFailover cuts the link of owner, the node f is on, and kills its
// speaker, then measures the takeover; it restores the node, which must
// leave f with its new holder (r.to).
func (b *bench) hardFailover(ctx context.Context, f fip, owner string) (hardRun, error) {
	if err := b.pastHoldDown(ctx, f); err != nil {
		return hardRun{}, err
	}
	start := b.mark()
	probe, err := b.lab.ProbeFromRemote(ctx, f.addr, 80, b.o.probeEvery)
	if err != nil {
		return hardRun{}, err
	}
	defer probe.Stop()
	if err := lab.Sleep(ctx, baseline); err != nil {
		return hardRun{}, err
	}
	// The link goes first: a node that loses power sends nothing more.
	killed := time.Now()
	err = b.lab.CutLink(owner)
	if err == nil {
		err = b.lab.KillSpeaker(owner)
	}
	if err != nil {
		return hardRun{}, err
	}
	holder, _, renewed, err := b.leaseOf(ctx, f)
	if err != nil {
		return hardRun{}, err
	}
	if holder != owner {
		return hardRun{}, fmt.Errorf("%s's Lease held by %q at the kill, want %s", f.addr, holder, owner)
	}
	wctx, cancel := context.WithTimeout(ctx, b.o.failoverTimeout)
	_, werr := probe.Wait(wctx, func(s lab.Sample) bool {
		return s.Err == nil && s.Node != owner && !s.Start.Before(killed)
	})
	cancel()
	if werr != nil {
		return hardRun{}, fmt.Errorf("no answer from another node within %s (IP on server %d): %w", b.o.failoverTimeout, b.sim.Assignment(f.id), werr)
	}
	if err := lab.Sleep(ctx, tail); err != nil {
		return hardRun{}, err
	}
	samples := probe.Stop()
	reqs, moves := b.since(start)
	next, acquired, _, err := b.leaseOf(ctx, f)
	if err != nil {
		return hardRun{}, err
	}
	r, err := analyze(f, owner, killed, renewed.Add(time.Duration(b.lease.Load())), next, acquired, samples, reqs, moves)
	if err != nil {
		return r, err
	}

	back := b.mark()
	if err := b.restore(ctx, owner); err != nil {
		return r, err
	}
	if _, err := b.settled(ctx, f, r.to); err != nil {
		return r, fmt.Errorf("after %s came back: %w", owner, err)
	}
	reqs, moves = b.since(back)
	if len(moves) > 0 {
		return r, fmt.Errorf("%s moved to server %d when %s came back: a returning node takes nothing", f.addr, moves[0].server, owner)
	}
	r.rejoin = countRequests(reqs)
	return r, nil
}

// restore brings node back, link and speaker, waits until every speaker
// counts it a member again, and then watches for rejoinWatch.
func (b *bench) restore(ctx context.Context, node string) error {
	if err := b.lab.RestoreLink(node); err != nil {
		return err
	}
	if err := b.lab.StartSpeaker(node); err != nil {
		return err
	}
	if err := b.lab.WaitMembers(ctx, len(b.lab.Nodes())); err != nil {
		return fmt.Errorf("after restoring %s: %w", node, err)
	}
	return lab.Sleep(ctx, rejoinWatch)
}

// pastHoldDown waits until the hold-down has passed since f's Lease last
// changed hands: within it the Lease stays with its holder even if it
// dies, which would add the rest of the hold-down to the failover.
func (b *bench) pastHoldDown(ctx context.Context, f fip) error {
	_, acquired, _, err := b.leaseOf(ctx, f)
	if err != nil {
		return err
	}
	if wait := time.Until(acquired.Add(b.o.holdDown + 500*time.Millisecond)); wait > 0 {
		return lab.Sleep(ctx, wait)
	}
	return nil
}

// analyze breaks one failover of f down: killed is when the owner went,
// expiry when its Lease ran out, next and acquired the Lease's holder and
// acquireTime afterwards; samples are the remote client's requests, reqs
// the stand-in's request log and moves the router's route changes, all
// from before the kill on.
func analyze(f fip, owner string, killed, expiry time.Time, next string, acquired time.Time, samples []lab.Sample, reqs []hcloudsim.Request, moves []move) (hardRun, error) {
	r := hardRun{owner: owner, leaseLeft: expiry.Sub(killed)}
	var ok bool
	r.failover, r.to, ok = lab.Failover(samples, killed, owner)
	switch {
	case !ok:
		return r, fmt.Errorf("no answer from a node other than %s after the kill", owner)
	case next != r.to:
		return r, fmt.Errorf("%s answered, but %q holds the Lease", r.to, next)
	case acquired.Before(killed):
		return r, fmt.Errorf("%s's Lease acquired at %s, before the kill at %s", next, acquired.Format(time.StampMicro), killed.Format(time.StampMicro))
	}
	r.detection = acquired.Sub(killed)

	var assigned time.Time
	for _, q := range reqs {
		if q.Method == "POST" && q.Path == f.path()+"/actions/assign" && !q.Time.Before(acquired) {
			assigned = q.Time
			break
		}
	}
	if assigned.IsZero() {
		return r, fmt.Errorf("no assign request for %s after %s took the Lease", f.addr, next)
	}
	r.decision = assigned.Sub(acquired)

	var moved time.Time
	for _, m := range moves {
		if m.fip == f.id && nodeOf(m.server) == next {
			moved = m.at
			break
		}
	}
	if moved.IsZero() {
		return r, fmt.Errorf("the route to %s never moved to %s", f.addr, next)
	}
	r.action = moved.Sub(assigned)
	r.answer = r.failover - moved.Sub(killed)

	var lastOld time.Time
	for _, s := range samples {
		if s.Err == nil && s.Node == owner && s.End.After(lastOld) {
			lastOld = s.End
		}
	}
	if lastOld.IsZero() {
		return r, fmt.Errorf("%s never answered before the kill", owner)
	}
	r.outage = killed.Add(r.failover).Sub(lastOld)

	var during []hcloudsim.Request
	for _, q := range reqs {
		if !q.Time.Before(killed) {
			during = append(during, q)
		}
	}
	r.requests = countRequests(during)
	return r, nil
}

// overhead is what a failover took beyond detection and the configured
// action time: the goal is at most 300 ms.
func (r hardRun) overhead(action time.Duration) time.Duration {
	return r.failover - r.detection - action
}

// failoverSet is the runs of one lease and action time.
type failoverSet struct {
	lease, action time.Duration
	runs          []hardRun
}

// goalSlack is the allowance over detection plus the action time.
const goalSlack = 300 * time.Millisecond

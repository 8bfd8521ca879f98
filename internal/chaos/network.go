package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/herald-lb/herald/bench/report"
	"github.com/herald-lb/herald/internal/lab"
	"github.com/herald-lb/herald/internal/linkdamp"
)

// Impairment is a degraded link, put on and taken off one node at a time.
type Impairment struct {
	Name         string
	Apply, Clear func(ctx context.Context, l *lab.Lab, node string) error
}

// Netem is tc netem with args ("loss", "5%" or "delay", "0ms", "50ms") on
// the node's eth0.
func Netem(args ...string) Impairment {
	return Impairment{
		Name:  "netem " + strings.Join(args, " "),
		Apply: func(ctx context.Context, l *lab.Lab, node string) error { return l.Netem(ctx, node, args...) },
		Clear: func(ctx context.Context, l *lab.Lab, node string) error { return l.ClearNetem(ctx, node) },
	}
}

// Drop loses each IPv4 packet a node sends with probability p (iptables'
// statistic match): loss where the kernel has no netem.
func Drop(p float64) Impairment {
	return Impairment{
		Name:  fmt.Sprintf("%g%% of each node's outgoing IPv4 packets dropped", p*100),
		Apply: func(ctx context.Context, l *lab.Lab, node string) error { return l.DropOutgoing(ctx, node, p) },
		Clear: func(ctx context.Context, l *lab.Lab, node string) error { return l.DropOutgoing(ctx, node, 0) },
	}
}

// Jitter delays each IPv4 packet a node sends by max(0, uniform(±j)), as
// netem's "delay 0ms j" does, through an NFQUEUE: jitter where the kernel
// has no netem.
func Jitter(j time.Duration) Impairment {
	var mu sync.Mutex
	on := map[string]*lab.Jitter{}
	return Impairment{
		Name: fmt.Sprintf("each node's outgoing IPv4 packets delayed 0 to %s (uniform ±%s around 0)", j, j),
		Apply: func(ctx context.Context, l *lab.Lab, node string) error {
			jit, err := l.JitterOutgoing(ctx, node, j)
			if err == nil {
				mu.Lock()
				on[node] = jit
				mu.Unlock()
			}
			return err
		},
		Clear: func(ctx context.Context, l *lab.Lab, node string) error {
			mu.Lock()
			jit := on[node]
			delete(on, node)
			mu.Unlock()
			if jit == nil {
				return nil
			}
			return jit.Stop()
		},
	}
}

// Loss impairs every node's link for o.For with no failure: Spurious
// counts the moves meanwhile. Then, still impaired, the owner fails hard
// kills times (SIGKILL and its link cut), each failover measured and the
// owner revived in between.
func Loss(ctx context.Context, l *lab.Lab, t Target, imp Impairment, kills int, o Options) (r Result, err error) {
	o = o.withDefaults()
	r.Scenario = imp.Name
	w, err := startWatch(ctx, l, t, o, &r)
	if err != nil {
		return r, err
	}
	owner := w.owner
	from := time.Now()
	var to time.Time
	defer func() {
		for _, n := range l.Nodes() {
			err = errors.Join(err, imp.Clear(context.WithoutCancel(ctx), l, n.Name))
		}
		if to.IsZero() {
			to = time.Now()
		}
		w.finish(context.WithoutCancel(ctx), &r, from, to)
	}()
	for _, n := range l.Nodes() {
		if err := imp.Apply(ctx, l, n.Name); err != nil {
			return r, err
		}
	}
	o.Log.Info("every node link impaired", "how", imp.Name, "for", o.For, "owner", owner)
	if err := w.hold(ctx, o.For, w.ownerMAC); err != nil {
		return r, err
	}
	to = time.Now()
	var took []time.Duration
	for i := range kills {
		d, next, err := w.failover(ctx, owner)
		if err != nil {
			return r, fmt.Errorf("hard failure %d under %s: %w", i+1, r.Scenario, err)
		}
		took = append(took, d)
		o.Log.Info("hard failure under impairment", "run", i+1, "from", owner, "to", next, "took", d)
		if err := w.revive(ctx, owner); err != nil {
			return r, err
		}
		if err := lab.Sleep(ctx, time.Second); err != nil {
			return r, err
		}
	}
	if len(took) > 0 {
		s := report.Summarize(took)
		r.figure("failover runs", float64(s.N))
		r.figure("failover median ms", ms(s.Median))
		r.figure("failover max ms", ms(s.Max))
	}
	return r, nil
}

// Partition cuts node's memberlist traffic (both ways, TCP and UDP, with
// iptables in its namespace; the client still reaches every node) for
// o.For, then heals it. It measures how long two nodes answer the address,
// the conflict Events, the time from the heal to one owner alone, and when
// the client's neighbour entry points at that owner (gratuitous ARP after
// the heal). node empty means the owner.
func Partition(ctx context.Context, l *lab.Lab, t Target, node string, o Options) (r Result, err error) {
	o = o.withDefaults()
	w, err := startWatch(ctx, l, t, o, &r)
	if err != nil {
		return r, err
	}
	owner := w.owner
	if node == "" {
		node = owner
	}
	r.Scenario = fmt.Sprintf("partition of %s from %d other speakers", node, len(l.Nodes())-1)
	from := time.Now()
	healed := false
	defer func() {
		if !healed {
			err = errors.Join(err, l.PartitionMemberlist(context.WithoutCancel(ctx), node, false))
		}
		w.finish(context.WithoutCancel(ctx), &r, from, from)
		r.Spurious = 0 // a partition moves addresses by design; doubles are the figure
	}()
	cut := time.Now()
	if err := l.PartitionMemberlist(ctx, node, true); err != nil {
		return r, err
	}
	o.Log.Info("memberlist partition", "node", node, "for", o.For, "owner", owner)
	if err := lab.Sleep(ctx, o.For); err != nil {
		return r, err
	}
	firstDouble := lab.Owned(between(w.answers.Rounds(), cut, time.Now())).FirstDouble
	if !firstDouble.IsZero() {
		r.figure("two owners from ms after the cut", ms(firstDouble.Sub(cut)))
	}
	heal := time.Now()
	if err := l.PartitionMemberlist(ctx, node, false); err != nil {
		return r, err
	}
	healed = true
	// One owner again: wait for the rounds to show one MAC for 2 s on end.
	var single time.Time
	var singleMAC string
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := lab.Sleep(ctx, 100*time.Millisecond); err != nil {
			return r, err
		}
		at, mac, ok := lab.SingleSince(w.answers.Rounds(), heal)
		if ok && time.Since(at) > 2*time.Second+200*time.Millisecond {
			single, singleMAC = at, mac.String()
			break
		}
		if time.Now().After(deadline) {
			return r, fmt.Errorf("no single owner of %s within 30 s of healing the partition", t.Addr)
		}
	}
	lastDouble := lab.Owned(between(w.answers.Rounds(), heal, time.Now())).LastDouble
	r.figure("one owner after heal ms", ms(single.Sub(heal)))
	if !lastDouble.IsZero() {
		r.figure("last double answer after heal ms", ms(lastDouble.Sub(heal)))
	}
	// The client's neighbour entry must follow: the owner resends
	// gratuitous ARP, or the client keeps sending to the node that gave
	// the address up.
	var neighbor string
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); {
		mac, err := clientNeighbor(ctx, l, t.Addr)
		if err != nil {
			return r, err
		}
		neighbor = mac.String()
		if neighbor == singleMAC {
			r.figure("client entry on the owner after heal ms", ms(time.Since(heal)))
			break
		}
		if err := lab.Sleep(ctx, 50*time.Millisecond); err != nil {
			return r, err
		}
	}
	if neighbor != singleMAC {
		r.note("10 s after the heal the client's neighbour entry still pointed at %s (%s), not the owner %s (%s)",
			neighbor, nodeByMAC(l, neighbor), singleMAC, nodeByMAC(l, singleMAC))
		if o.Strict {
			return r, errors.New(r.Notes[len(r.Notes)-1])
		}
	}
	r.note("owner after the heal: %s", nodeByMAC(l, singleMAC))
	return r, nil
}

// Flap takes the owner's link down and up again every period for o.For,
// then lets it settle and fails the owner hard once: the address must not
// follow every flap, and a real failure must still be handled.
func Flap(ctx context.Context, l *lab.Lab, t Target, period time.Duration, o Options) (r Result, err error) {
	o = o.withDefaults()
	r.Scenario = fmt.Sprintf("owner's link down and up every %s", period)
	w, err := startWatch(ctx, l, t, o, &r)
	if err != nil {
		return r, err
	}
	owner := w.owner
	from := time.Now()
	var to time.Time
	down := false
	defer func() {
		if down {
			err = errors.Join(err, l.RestoreLink(owner))
		}
		if to.IsZero() {
			to = time.Now()
		}
		w.finish(context.WithoutCancel(ctx), &r, from, to)
	}()
	flaps := 0
	for time.Since(from) < o.For {
		if err := l.CutLink(owner); err != nil {
			return r, err
		}
		down = true
		if err := lab.Sleep(ctx, period); err != nil {
			return r, err
		}
		if err := l.RestoreLink(owner); err != nil {
			return r, err
		}
		down = false
		flaps++
		if err := lab.Sleep(ctx, period); err != nil {
			return r, err
		}
		if o.Strict {
			// A hold-down allows the address away once and back once.
			if own := lab.Owned(between(w.answers.Rounds(), from, time.Now())); own.Moves > 2 {
				return r, fmt.Errorf("the address moved %d times in %d flaps of %s's link (owners %v)", own.Moves, flaps, owner, own.Owners)
			}
		}
	}
	to = time.Now()
	r.figure("flaps", float64(flaps))
	// Settled: it comes back to its owner once the hold-down it earned
	// (up to linkdamp.DefaultMax) is over, then a real failure.
	if _, err := w.settle(ctx, owner, to, linkdamp.DefaultMax+30*time.Second); err != nil {
		return r, err
	}
	r.figure("owner back after flapping ms", ms(time.Since(to)))
	d, next, err := w.failover(ctx, owner)
	if err != nil {
		return r, err
	}
	r.figure("failover after flapping ms", ms(d))
	o.Log.Info("hard failure after flapping", "from", owner, "to", next, "took", d)
	return r, w.revive(ctx, owner)
}

func nodeByMAC(l *lab.Lab, mac string) string {
	if hw, err := net.ParseMAC(mac); err == nil {
		if n := l.NodeByMAC(hw); n != "" {
			return n
		}
	}
	return "no node"
}

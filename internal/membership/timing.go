package membership

import (
	"fmt"
	"math"
	"time"
)

// Timing is how long, by memberlist's own rules, the peers of a member that
// stops answering (a crash, a power cut, a pulled cable) take to declare it
// dead, in a cluster of Members members on a healthy network. The parts add
// up in this order:
//
//  1. ProbeWait: until some peer probes the dead member. Each member probes
//     one other per ProbeInterval, round-robin over its member list, which
//     it reshuffles every round. A member probed first in one round and last
//     in the next waits 2(n−1)−1 intervals for that prober: the worst case.
//     With n−1 peers probing independently the expected wait is about
//     (n−1)/n of an interval (ProbeWaitTypical).
//  2. Probe: a failed probe lasts one ProbeInterval: a direct ping, then
//     after ProbeTimeout indirect pings through IndirectChecks other
//     members and a TCP ping, all until the interval ends.
//  3. Suspicion: the suspected member has this long to refute before it is
//     declared dead: SuspicionMult × max(1, log10 n) × ProbeInterval
//     (SuspicionMin). When memberlist expects confirmations from other
//     members (n−2 ≥ SuspicionMult−2 > 0), the timeout starts
//     SuspicionMaxTimeoutMult times higher (SuspicionMax) and shrinks to
//     SuspicionMin as they arrive.
//  4. Gossip: the member that declared the death tells the others at its
//     next gossip round, within one GossipInterval.
//  5. Settle: a death counts only once it has stood for three gossip
//     rounds, at least 100 ms (Membership.deathSettle), so a live member's
//     refutation cancels it first.
//
// The figures assume a healthy prober: memberlist's Lifeguard awareness
// stretches the probe interval of a member that itself misses acks.
type Timing struct {
	Members          int
	ProbeWait        time.Duration
	ProbeWaitTypical time.Duration
	Probe            time.Duration
	SuspicionMin     time.Duration
	SuspicionMax     time.Duration
	Gossip           time.Duration
	Settle           time.Duration
}

// Worst is the longest detection: the unluckiest probe schedule and, when
// confirmations are expected, none arriving.
func (t Timing) Worst() time.Duration {
	return t.ProbeWait + t.Probe + t.SuspicionMax + t.Gossip + t.Settle
}

// Typical is the expected detection when no confirmations are needed (or
// they arrive at once): the expected probe wait, the minimum suspicion,
// half a gossip interval and the settle time.
func (t Timing) Typical() time.Duration {
	return t.ProbeWaitTypical + t.Probe + t.SuspicionMin + t.Gossip/2 + t.Settle
}

// ProfileTiming computes the Timing of a profile for a cluster of members
// members (at least 2).
func ProfileTiming(profile string, members int) (Timing, error) {
	if members < 2 {
		return Timing{}, fmt.Errorf("membership: timing needs at least 2 members, got %d", members)
	}
	c, err := profileConfig(profile, members)
	if err != nil {
		return Timing{}, err
	}
	n := members
	interval := c.ProbeInterval
	// memberlist's suspicion timeout, computed as it does (util.go).
	scale := math.Max(1, math.Log10(float64(n)))
	minimum := time.Duration(c.SuspicionMult) * time.Duration(scale*1000) * interval / 1000
	maximum := minimum
	// memberlist's expected confirmations (state.go, suspectNode).
	if k := c.SuspicionMult - 2; k > 0 && n-2 >= k {
		maximum = time.Duration(c.SuspicionMaxTimeoutMult) * minimum
	}
	return Timing{
		Members:          n,
		ProbeWait:        time.Duration(2*(n-1)-1) * interval,
		ProbeWaitTypical: time.Duration(n-1) * interval / time.Duration(n),
		Probe:            interval,
		SuspicionMin:     minimum,
		SuspicionMax:     maximum,
		Gossip:           c.GossipInterval,
		Settle:           settleFor(c),
	}, nil
}

package membership

import (
	"fmt"
	"time"

	"github.com/hashicorp/memberlist"
)

// step is the fast profile's timers for clusters of up to upTo members.
type step struct {
	upTo          int // members; the last step has no limit
	probe         time.Duration
	probeTimeout  time.Duration
	gossip        time.Duration
	suspicionMult int
	// tcpTimeout bounds a join's and a push-pull's TCP exchange.
	tcpTimeout time.Duration
}

// fastCurve is the fast profile's timers by cluster size. Up to 32 members
// they are the original profile's. Beyond, two things change:
//
//   - SuspicionMult 3 turns on Lifeguard's confirmations: memberlist then
//     expects one other member to confirm a suspicion, and until one does
//     the suspicion lasts SuspicionMaxTimeoutMult (6) times longer. A dead
//     member is probed by about one member per probe interval, so its
//     confirmation comes within the shorter timeout; a live member that
//     one prober missed (a stall of its own, or of the prober) is not
//     confirmed, and has seconds to refute instead of a few hundred
//     milliseconds, in which a rumour may not go around a large cluster
//     and back.
//   - The gossip interval lengthens from 33 members, the probe interval
//     from 129: each member of an n-member cluster decodes what n others
//     gossip, so a burst (n members joining at once, each message
//     retransmitted 4 × log10 n times) grows with n² log n over the
//     cluster; spreading it out keeps a busy member answering its probes
//     in time, where the original timers saturated 2 cores with 100
//     members and then declared live members dead by the thousand.
//
// Typical detection stays under a second up to 128 members; it is 1.9 s
// at 256 and 3.1 s at 512 (ProfileTiming). docs/reliability.md
// ("Membership at scale") and bench/results/scale.md give the
// measurements behind each step.
var fastCurve = []step{
	{upTo: 32, probe: 100 * time.Millisecond, probeTimeout: 50 * time.Millisecond, gossip: 30 * time.Millisecond, suspicionMult: 2, tcpTimeout: time.Second},
	{upTo: 64, probe: 100 * time.Millisecond, probeTimeout: 50 * time.Millisecond, gossip: 40 * time.Millisecond, suspicionMult: 3, tcpTimeout: time.Second},
	{upTo: 128, probe: 100 * time.Millisecond, probeTimeout: 50 * time.Millisecond, gossip: 80 * time.Millisecond, suspicionMult: 3, tcpTimeout: time.Second},
	{upTo: 256, probe: 200 * time.Millisecond, probeTimeout: 100 * time.Millisecond, gossip: 150 * time.Millisecond, suspicionMult: 3, tcpTimeout: 2 * time.Second},
	{upTo: 512, probe: 300 * time.Millisecond, probeTimeout: 150 * time.Millisecond, gossip: 200 * time.Millisecond, suspicionMult: 3, tcpTimeout: 2 * time.Second},
	{probe: 500 * time.Millisecond, probeTimeout: 250 * time.Millisecond, gossip: 400 * time.Millisecond, suspicionMult: 3, tcpTimeout: 2 * time.Second},
}

// curveStep returns the index in fastCurve of the step for members members.
func curveStep(members int) int {
	for i, s := range fastCurve {
		if s.upTo == 0 || members <= s.upTo {
			return i
		}
	}
	return len(fastCurve) - 1
}

// nextStep returns the step a member on step cur moves to when it counts
// members members. It moves up as soon as the cluster outgrows its step,
// but down only once the cluster is a quarter below the lower step's
// limit: a cluster that hovers at a limit does not make its members
// re-create their memberlist again and again (see Membership.resize).
func nextStep(cur, members int) int {
	want := curveStep(members)
	if want >= cur {
		return want
	}
	if members <= fastCurve[want].upTo*3/4 {
		return want
	}
	return cur
}

// profileConfig returns memberlist's configuration for a profile and a
// cluster of members members, before the per-member fields are set.
func profileConfig(profile string, members int) (*memberlist.Config, error) {
	switch profile {
	case ProfileLAN:
		return stepConfig(profile, 0), nil
	case ProfileFast:
		return stepConfig(profile, curveStep(members)), nil
	default:
		return nil, fmt.Errorf("membership: unknown profile %q (want %q or %q)", profile, ProfileFast, ProfileLAN)
	}
}

// stepConfig returns the configuration of a valid profile at a step of
// fastCurve; the LAN profile has one configuration for every size.
func stepConfig(profile string, step int) *memberlist.Config {
	if profile == ProfileLAN {
		return memberlist.DefaultLANConfig()
	}
	return fastConfig(fastCurve[step])
}

// fastConfig returns the fast profile's configuration with the timers of
// step s. The figures given are those of the first step.
func fastConfig(s step) *memberlist.Config {
	c := memberlist.DefaultLANConfig()
	// One probe every 100 ms; a LAN answers in well under a millisecond,
	// so 50 ms before falling back to indirect probes leaves room for a
	// busy scheduler without slowing detection.
	c.ProbeInterval = s.probe
	c.ProbeTimeout = s.probeTimeout
	// SuspicionMult 2 makes memberlist expect no confirmations (it wants
	// SuspicionMult-2 of them), so the suspicion timeout is the fixed
	// 2 × max(1, log10 n) × 100 ms = 200 ms up to 10 members, rather than
	// a timeout that starts SuspicionMaxTimeoutMult times higher and
	// shrinks only as other members confirm. A live but suspected member
	// of a small cluster refutes within a gossip round or two, far inside
	// 200 ms. Larger clusters expect a confirmation (fastCurve).
	c.SuspicionMult = s.suspicionMult
	// Gossip fast so that a death (or a refutation) spreads in tens of
	// milliseconds; 3 peers per round as stock.
	c.GossipInterval = s.gossip
	c.GossipNodes = 3
	// Each message is sent to RetransmitMult × ceil(log10(n+1)) gossip
	// targets. Stock 4, not less: with 3 a leave reached 3 of 4 peers in
	// one round and the fourth, on a miss, fell back to failure detection
	// (a 663 ms graceful leave in bench/membershipdetect). At 30 ms
	// rounds the extra datagrams cost nothing.
	c.RetransmitMult = 4
	// Two members relay an indirect probe: a direct probe that fails
	// because of the path, not the target, does not raise a suspicion.
	c.IndirectChecks = 2
	// Joining and push-pull use TCP. A LAN answers in milliseconds, and a
	// member cut off by a partition retries its join until one succeeds:
	// an attempt that began before the heal holds it back for this long.
	// 1 s up to 128 members; beyond, 2 s, for a push-pull of hundreds of
	// members from a busy peer.
	c.TCPTimeout = s.tcpTimeout
	// memberlist compresses every datagram it sends when this is on, with
	// a new LZW writer (tens of KB allocated) per ping and ack: most of a
	// member's CPU at 10 probes a second, for datagrams of 50 to 100
	// bytes that rarely shrink. Peers decode compressed and plain alike,
	// so a mixed cluster (a rolling update) still understands itself.
	c.EnableCompression = false
	// Full state exchange stays at the stock 30 s: it is anti-entropy
	// only, detection does not depend on it.
	return c
}

// settleFor is how long a death declared with configuration c waits before
// it counts (Membership.deathSettle): 100 ms while gossip runs at 100 ms or
// less, which covers a refutation's one or two rounds in the small
// clusters where stale deaths were seen and keeps detection under a second
// up to 128 members; three gossip rounds beyond.
func settleFor(c *memberlist.Config) time.Duration {
	if c.GossipInterval <= 100*time.Millisecond {
		return 100 * time.Millisecond
	}
	return 3 * c.GossipInterval
}

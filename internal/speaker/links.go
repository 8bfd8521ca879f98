package speaker

import (
	"context"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/herald-lb/herald/internal/announce"
)

// ready reports whether the speaker may announce: it has joined the
// membership, or waited out the join timeout alone. Announcing earlier is
// how a restarted MetalLB speaker answered beside the owner.
//
// After joining it waits claimDelay more: the current owners must first
// learn of this node through gossip and stop answering for the addresses
// it wins, or both would answer for a moment. Their clients' caches keep
// sending to them meanwhile, so the pause loses no traffic.
func (s *speaker) ready() bool {
	if s.opts.MLDisabled {
		return true
	}
	if s.ml == nil {
		return false // no member yet: see joinMembership
	}
	select {
	case <-s.ml.Ready():
	default:
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readyAt.IsZero() {
		s.readyAt = time.Now()
		time.AfterFunc(claimDelay, s.trigger)
	}
	return time.Since(s.readyAt) >= claimDelay
}

// claimDelay is a few gossip rounds of the fast profile plus a sync.
const claimDelay = 500 * time.Millisecond

// rejoinDelay is how long a node whose link came back waits before it
// claims addresses: it has to merge with the others first, or, having
// thought them dead while cut off, it would claim everything.
const rejoinDelay = 1500 * time.Millisecond

// dataPlaneUp: the node has at least one interface that could carry Service
// traffic by default (usable, not excluded, with a global address).
func dataPlaneUp(ifaces []announce.Iface) bool {
	for _, i := range ifaces {
		if !i.Up || !i.Carrier || i.Enslaved || i.NoARP || announce.Excluded(i.Name) {
			continue
		}
		for _, p := range i.Prefixes {
			if p.Addr().IsGlobalUnicast() {
				return true
			}
		}
	}
	return false
}

// updateDataPlane follows the node's links. Down: tell the other speakers,
// who stop electing this node, so its addresses move at once (leadership
// follows the data plane). Up again: stay out for the hold-down the link
// has earned by flapping (linkdamp: 4 s after one pull, doubling with each
// flap), so a flapping link moves the addresses away once instead of at
// every flap; then rejoin, and claim nothing until the membership has
// merged.
func (s *speaker) updateDataPlane(up bool) {
	if s.ml == nil {
		return
	}
	now := time.Now()
	s.mu.Lock()
	if up != s.linkUp {
		s.linkUp = up
		if up {
			hold := s.damper.Up()
			s.holdUntil = now.Add(hold)
			time.AfterFunc(hold, s.trigger)
			s.log.Info("link back; holding the node out of elections", "for", hold.String(), "damping", s.damper.String())
		} else {
			s.damper.Down(now)
		}
	}
	effective := up && !now.Before(s.holdUntil)
	was := !s.dataPlaneDown
	s.dataPlaneDown = !effective
	if effective && !was {
		s.readyAt = now.Add(rejoinDelay - claimDelay)
		time.AfterFunc(rejoinDelay, s.trigger)
	}
	holding := up && !effective
	s.mu.Unlock()
	s.holdDown.Set(boolGauge(holding))
	if effective == was {
		return
	}
	s.log.Info("data plane changed", "up", effective)
	if err := s.ml.SetDataPlane(effective); err != nil {
		s.log.Error(err, "announce data plane state")
	}
	if effective {
		s.ml.Rejoin()
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// watchLinks syncs on every link change, so a lost carrier gives the
// addresses up at once instead of at the next resync.
func (s *speaker) watchLinks(ctx context.Context) {
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	if err := netlink.LinkSubscribe(updates, done); err != nil {
		s.log.Error(err, "subscribe to link changes; relying on the periodic resync")
		return
	}
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-updates:
				if !ok {
					return
				}
				s.trigger()
			}
		}
	}()
}

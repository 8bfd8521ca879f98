// Package linkdamp holds a node out of elections after its link comes back,
// for longer the more the link has flapped: route-flap damping for a
// node's data plane. A link that goes down once makes the node's addresses
// move away at once and come back after a short hold-down; a link that
// goes up and down every few seconds moves them away once, and back only
// once it has stayed up for a hold-down that grew with each flap.
package linkdamp

import (
	"fmt"
	"time"
)

// Defaults for the zero values of a Damper.
const (
	// DefaultMin is the hold-down after a single flap: longer than a
	// link's bounce (an STP re-convergence, a cable re-seated) takes, and
	// than the up phase of a link flapping every 2 s, so that its second
	// flap already finds the node held out.
	DefaultMin = 4 * time.Second
	// DefaultMax bounds the hold-down of a link that keeps flapping.
	DefaultMax = 60 * time.Second
	// DefaultDecay halves the hold-down for each quiet period of this
	// length, so a link that flapped an hour ago starts from DefaultMin.
	DefaultDecay = 60 * time.Second
)

// Damper computes the hold-down of one link (or of a node's data plane as a
// whole). It is not safe for concurrent use. The zero value uses the
// defaults.
type Damper struct {
	Min, Max, Decay time.Duration

	hold     time.Duration // the hold-down the next return gets
	lastDown time.Time
	flaps    int // downs while the hold-down was raised, for logs
}

// Down records the link going down at now. A down within Decay of the
// previous one doubles the hold-down, up to Max; each whole Decay of quiet
// before it halves the hold-down first, back to none below Min.
func (d *Damper) Down(now time.Time) {
	minHold, maxHold, decay := d.limits()
	if d.hold > 0 && !d.lastDown.IsZero() {
		for quiet := now.Sub(d.lastDown); quiet >= decay && d.hold > 0; quiet -= decay {
			d.hold /= 2
			if d.hold < minHold {
				d.hold = 0
			}
		}
	}
	switch {
	case d.hold == 0:
		d.hold, d.flaps = minHold, 1
	default:
		d.hold, d.flaps = min(2*d.hold, maxHold), d.flaps+1
	}
	d.lastDown = now
}

// Up returns how long the node stays out of elections from now on, the link
// having come back: the hold-down earned by the downs so far (none if the
// link never went down).
func (d *Damper) Up() time.Duration { return d.hold }

// String describes the damper's state for logs.
func (d *Damper) String() string {
	return fmt.Sprintf("hold-down %s after %d flaps", d.hold, d.flaps)
}

func (d *Damper) limits() (minHold, maxHold, decay time.Duration) {
	minHold, maxHold, decay = d.Min, d.Max, d.Decay
	if minHold <= 0 {
		minHold = DefaultMin
	}
	if maxHold < minHold {
		maxHold = max(DefaultMax, minHold)
	}
	if decay <= 0 {
		decay = DefaultDecay
	}
	return minHold, maxHold, decay
}

package lab

import (
	"net"
	"time"
)

// Ownership is what a run of AnswerSampler rounds says about who held an
// address: how often it changed hands, and how long two nodes answered.
type Ownership struct {
	Rounds     int
	Unanswered int // rounds nobody answered (a lost frame, or an outage)
	Double     int // rounds two or more MACs answered
	// Moves counts changes of the single answering MAC between answered
	// rounds; a run of double answers between two owners counts once.
	Moves int
	// Owners is the sequence of single owners, one entry per stretch.
	Owners []string
	// FirstDouble and LastDouble bound the rounds two MACs answered: the
	// time two nodes claimed the address (zero if never).
	FirstDouble, LastDouble time.Time
}

// DoubleSpan is the time from the first to the last round two MACs
// answered, zero if none did.
func (o Ownership) DoubleSpan() time.Duration {
	if o.FirstDouble.IsZero() {
		return 0
	}
	return o.LastDouble.Sub(o.FirstDouble)
}

// Owned sums up rounds. Under packet loss a round may lose its answer, or,
// during a split brain, one of its two answers: neither is a move.
func Owned(rounds []Round) Ownership {
	o := Ownership{Rounds: len(rounds)}
	var owner string
	for _, r := range rounds {
		switch len(r.MACs) {
		case 0:
			o.Unanswered++
			continue
		case 1:
		default:
			o.Double++
			if o.FirstDouble.IsZero() {
				o.FirstDouble = r.Sent
			}
			o.LastDouble = r.Sent
			continue
		}
		mac := r.MACs[0].String()
		if mac == owner {
			continue
		}
		if owner != "" {
			o.Moves++
		}
		owner = mac
		o.Owners = append(o.Owners, mac)
	}
	return o
}

// SingleSince is when the rounds last began to be answered by one MAC
// only, at or after from, and that MAC: the first round of the final
// stretch with no double answer. ok is false if the last answered round
// had two MACs, or none was answered after from.
func SingleSince(rounds []Round, from time.Time) (at time.Time, mac net.HardwareAddr, ok bool) {
	for i := len(rounds) - 1; i >= 0 && !rounds[i].Sent.Before(from); i-- {
		r := rounds[i]
		switch {
		case len(r.MACs) > 1 || len(r.MACs) == 1 && mac != nil && r.MACs[0].String() != mac.String():
			return at, mac, mac != nil
		case len(r.MACs) == 1:
			at, mac = r.Sent, r.MACs[0]
		}
	}
	return at, mac, mac != nil
}

package l2frame

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Pacing says how gratuitous announcements are spaced.
type Pacing struct {
	// BurstCount is the number of rounds sent when an address is taken or
	// Announce is called; the first goes out at once.
	BurstCount int
	// BurstInterval separates the rounds of a burst.
	BurstInterval time.Duration
	// Refresh separates the single rounds repeated while an address stays
	// owned, so that switch FDB and neighbour entries never age out. Zero or
	// negative disables refreshing.
	Refresh time.Duration
}

// Table is the set of addresses a responder answers for, together with when
// each is next announced and when a conflict was last reported for it.
// It is safe for concurrent use.
type Table struct {
	pacing Pacing

	mu    sync.Mutex
	addrs map[netip.Addr]*entry
	wake  chan struct{}
}

type entry struct {
	left         int       // rounds left in the current burst
	next         time.Time // when the next round is due
	lastConflict time.Time
}

// NewTable returns an empty table announcing with pacing p.
func NewTable(p Pacing) *Table {
	if p.BurstCount < 1 {
		p.BurstCount = 1
	}
	return &Table{pacing: p, addrs: map[netip.Addr]*entry{}, wake: make(chan struct{}, 1)}
}

// Replace makes addrs the owned set. Added addresses are due for a burst at
// once; removed ones are forgotten, so nothing more is answered or announced
// for them. Both results are sorted.
func (t *Table) Replace(addrs []netip.Addr, now time.Time) (added, removed []netip.Addr) {
	want := make(map[netip.Addr]bool, len(addrs))
	for _, a := range addrs {
		want[a] = true
	}
	t.mu.Lock()
	for a := range t.addrs {
		if !want[a] {
			delete(t.addrs, a)
			removed = append(removed, a)
		}
	}
	for a := range want {
		if _, ok := t.addrs[a]; !ok {
			t.addrs[a] = &entry{left: t.pacing.BurstCount, next: now}
			added = append(added, a)
		}
	}
	t.mu.Unlock()
	if len(added) > 0 {
		t.poke()
	}
	slices.SortFunc(added, netip.Addr.Compare)
	slices.SortFunc(removed, netip.Addr.Compare)
	return added, removed
}

// Announce schedules a fresh burst for a, if owned, and reports whether it is.
func (t *Table) Announce(a netip.Addr, now time.Time) bool {
	t.mu.Lock()
	e, ok := t.addrs[a]
	if ok {
		e.left, e.next = t.pacing.BurstCount, now
	}
	t.mu.Unlock()
	if ok {
		t.poke()
	}
	return ok
}

// AnnounceAll schedules a fresh burst for every owned address.
func (t *Table) AnnounceAll(now time.Time) {
	t.mu.Lock()
	for _, e := range t.addrs {
		e.left, e.next = t.pacing.BurstCount, now
	}
	t.mu.Unlock()
	t.poke()
}

// Owns reports whether a is owned.
func (t *Table) Owns(a netip.Addr) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.addrs[a]
	return ok
}

// Addrs returns the owned addresses, sorted.
func (t *Table) Addrs() []netip.Addr {
	t.mu.Lock()
	out := make([]netip.Addr, 0, len(t.addrs))
	for a := range t.addrs {
		out = append(out, a)
	}
	t.mu.Unlock()
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// IfOwned runs f while holding the table, if a is owned, and reports whether
// it ran. Sending under the lock means a reply or announcement can never go
// out after Replace has returned without a.
func (t *Table) IfOwned(a netip.Addr, f func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.addrs[a]; !ok {
		return false
	}
	f()
	return true
}

// Conflict reports whether a conflict on a should be reported now: a is owned
// and no conflict was reported for it within every.
func (t *Table) Conflict(a netip.Addr, now time.Time, every time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.addrs[a]
	if !ok {
		return false
	}
	if !e.lastConflict.IsZero() && now.Sub(e.lastConflict) < every {
		return false
	}
	e.lastConflict = now
	return true
}

// Due returns the addresses whose round is due at now, advancing their
// schedule, and when the next round after that is due (zero if none).
func (t *Table) Due(now time.Time) (due []netip.Addr, next time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for a, e := range t.addrs {
		if e.next.IsZero() {
			continue
		}
		if !e.next.After(now) {
			due = append(due, a)
			switch {
			case e.left > 1:
				e.left--
				e.next = now.Add(t.pacing.BurstInterval)
			case t.pacing.Refresh > 0:
				e.left = 0
				e.next = now.Add(t.pacing.Refresh)
			default:
				e.left = 0
				e.next = time.Time{}
				continue
			}
		}
		if next.IsZero() || e.next.Before(next) {
			next = e.next
		}
	}
	slices.SortFunc(due, netip.Addr.Compare)
	return due, next
}

// Run sends rounds as they fall due until ctx ends. send is called without
// the table held; it should use IfOwned so that a round racing a removal is
// dropped.
func (t *Table) Run(ctx context.Context, send func(netip.Addr)) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		due, next := t.Due(time.Now())
		for _, a := range due {
			send(a)
		}
		var fire <-chan time.Time
		if !next.IsZero() {
			timer.Reset(time.Until(next))
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			return
		case <-t.wake:
		case <-fire:
		}
	}
}

func (t *Table) poke() {
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

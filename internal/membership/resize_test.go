package membership

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestCurveStep(t *testing.T) {
	tests := []struct {
		members, want int
	}{
		{0, 0}, {2, 0}, {32, 0}, {33, 1}, {64, 1}, {65, 2}, {128, 2}, {129, 3},
		{256, 3}, {257, 4}, {512, 4}, {513, 5}, {5000, 5},
	}
	for _, tc := range tests {
		if got := curveStep(tc.members); got != tc.want {
			t.Errorf("curveStep(%d) = %d, want %d", tc.members, got, tc.want)
		}
	}
}

func TestNextStep(t *testing.T) {
	tests := []struct {
		name               string
		cur, members, want int
	}{
		{"stays within its step", 1, 40, 1},
		{"moves up past the limit", 0, 33, 1},
		{"moves up several steps at once", 0, 300, 4},
		{"stays just below the lower step's limit", 1, 32, 1},
		{"stays at three quarters plus one", 1, 25, 1},
		{"moves down at three quarters of the lower limit", 1, 24, 0},
		{"moves down several steps at once", 4, 10, 0},
		{"moves down to the step that fits", 4, 90, 2},
		{"hysteresis applies to the step that fits", 4, 100, 4},
	}
	for _, tc := range tests {
		if got := nextStep(tc.cur, tc.members); got != tc.want {
			t.Errorf("%s: nextStep(%d, %d) = %d, want %d", tc.name, tc.cur, tc.members, got, tc.want)
		}
	}
}

// Every step lengthens, never shortens, what the previous one allowed: a
// larger cluster never probes or gossips more often per member.
func TestCurveIsMonotonic(t *testing.T) {
	for i := 1; i < len(fastCurve); i++ {
		p, s := fastCurve[i-1], fastCurve[i]
		if s.probe < p.probe || s.probeTimeout < p.probeTimeout || s.gossip < p.gossip || s.suspicionMult < p.suspicionMult {
			t.Errorf("step %d (%s) is shorter than step %d (%s)", i, s, i-1, p)
		}
		if s.probeTimeout >= s.probe {
			t.Errorf("step %d: probe timeout %s not below the interval %s", i, s.probeTimeout, s.probe)
		}
		if p.upTo == 0 || (s.upTo != 0 && s.upTo <= p.upTo) {
			t.Errorf("step %d: limits not increasing", i)
		}
	}
	if fastCurve[len(fastCurve)-1].upTo != 0 {
		t.Error("the last step has a limit")
	}
}

// A member that lists many peers starts on the step that fits them, before
// it joins anyone.
func TestStartsOnTheStepOfItsPeers(t *testing.T) {
	log := newLogs(t)
	a := start(t, log, Config{NodeName: "a", BindAddr: testAddr(t, 110, 1), JoinTimeout: time.Hour})
	// 40 more addresses where nothing listens: nodes without a speaker.
	list := []string{addrOf(110, 1)}
	for i := range 40 {
		list = append(list, addrOf(110, 100+i))
	}
	b := start(t, log, Config{NodeName: "b", BindAddr: testAddr(t, 110, 2), JoinTimeout: time.Hour, Peers: peers(list...)})
	waitMembers(t, a, "a", "b")
	waitMembers(t, b, "a", "b")
	if got := stepOf(b); got != 1 {
		t.Errorf("b: step %d, want 1 (42 members known)", got)
	}
	if got := stepOf(a); got != 0 {
		t.Errorf("a: step %d, want 0 (alone, no peers listed)", got)
	}
}

// Moving a member of a running cluster to another step re-creates its
// memberlist. Nobody may notice: the others never drop it, and its own
// Members never loses anyone, on the way up and on the way down.
func TestResizeInACluster(t *testing.T) {
	ms := cluster(t, newLogs(t), 111, ProfileFast, []byte("0123456789abcdef"))
	c := ms[2]
	all := []string{"a", "b", "c"}

	ctx, stop := context.WithCancel(t.Context())
	var (
		mu     sync.Mutex
		faults []string
		wg     sync.WaitGroup
	)
	for _, m := range ms {
		wg.Go(func() {
			for ctx.Err() == nil {
				if got := m.Members(); !slices.Equal(got, all) {
					mu.Lock()
					faults = append(faults, fmt.Sprintf("%s saw %v", m.cfg.NodeName, got))
					mu.Unlock()
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
	for _, step := range []struct{ members, want int }{{300, 4}, {3, 0}} {
		c.resize(step.members)
		if got := stepOf(c); got != step.want {
			t.Errorf("after resize(%d): step %d, want %d", step.members, got, step.want)
		}
		// Long enough for a member that missed probes to be suspected and
		// declared dead (200 ms of suspicion with 3 members, or 1 s at
		// the step of 300).
		time.Sleep(3 * time.Second)
	}
	stop()
	wg.Wait()
	if len(faults) > 0 {
		t.Errorf("members changed while c resized: %d samples, first %q", len(faults), faults[0])
	}
	// The new memberlist works: a death of c is noticed.
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitMembers(t, ms[0], "a", "b")
}

// stepOf returns the step m's memberlist runs with.
func stepOf(m *Membership) int {
	m.life.Lock()
	defer m.life.Unlock()
	return m.step
}

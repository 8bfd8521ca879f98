package membership

import (
	"testing"
	"time"
)

func TestProfileTiming(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		profile             string
		members             int
		wantSuspicionMin    time.Duration
		wantSuspicionMax    time.Duration
		wantWorst, wantTypl time.Duration
	}{
		// Every row ends with the settle time: 3 gossip rounds (600 ms)
		// for lan, 100 ms for fast up to 128 members, 3 rounds beyond.
		// Stock LAN (MetalLB): 3 members need no confirmations, so 4 s of
		// suspicion; worst 3 s + 1 s + 4 s + 0.2 s = 8.2 s, which is
		// MetalLB's observed "5-8 s".
		{ProfileLAN, 3, 4 * time.Second, 4 * time.Second, 8200*ms + 600*ms, 666*ms + 1000*ms + 4000*ms + 100*ms + 600*ms},
		// From 4 members, 2 confirmations are expected: the timeout starts
		// at 6 × 4 s.
		{ProfileLAN, 10, 4 * time.Second, 24 * time.Second, 17*time.Second + time.Second + 24*time.Second + 200*ms + 600*ms, 900*ms + 1000*ms + 4000*ms + 100*ms + 600*ms},
		// Fast: never any confirmation to wait for; 2 × 100 ms of
		// suspicion up to 10 members, scaled by log10 n beyond.
		{ProfileFast, 2, 200 * ms, 200 * ms, 100*ms + 100*ms + 200*ms + 30*ms + 100*ms, 50*ms + 100*ms + 200*ms + 15*ms + 100*ms},
		{ProfileFast, 3, 200 * ms, 200 * ms, 300*ms + 100*ms + 200*ms + 30*ms + 100*ms, 66*ms + 100*ms + 200*ms + 15*ms + 100*ms},
		{ProfileFast, 10, 200 * ms, 200 * ms, 1700*ms + 100*ms + 200*ms + 30*ms + 100*ms, 90*ms + 100*ms + 200*ms + 15*ms + 100*ms},
		// Past 32 members (fastCurve), one confirmation is expected: the
		// suspicion lasts 3 × log10 n probe intervals once confirmed, six
		// times that until then.
		{ProfileFast, 100, 600 * ms, 3600 * ms, 19700*ms + 100*ms + 3600*ms + 80*ms + 100*ms, 99*ms + 100*ms + 600*ms + 40*ms + 100*ms},
		// Past 512, 500 ms probes: 6.9 s typical at 1000 members.
		{ProfileFast, 1000, 4500 * ms, 27000 * ms, 1997*500*ms + 500*ms + 27000*ms + 400*ms + 1200*ms, 5699*ms + 1200*ms},
	}
	for _, tc := range tests {
		got, err := ProfileTiming(tc.profile, tc.members)
		if err != nil {
			t.Fatalf("%s/%d: %v", tc.profile, tc.members, err)
		}
		if got.SuspicionMin != tc.wantSuspicionMin || got.SuspicionMax != tc.wantSuspicionMax {
			t.Errorf("%s/%d: suspicion %s..%s, want %s..%s", tc.profile, tc.members,
				got.SuspicionMin, got.SuspicionMax, tc.wantSuspicionMin, tc.wantSuspicionMax)
		}
		// Typical's probe wait is a fraction of an interval: compare to
		// the millisecond.
		if got.Worst() != tc.wantWorst || got.Typical().Truncate(ms) != tc.wantTypl {
			t.Errorf("%s/%d: worst %s typical %s, want %s and %s", tc.profile, tc.members,
				got.Worst(), got.Typical(), tc.wantWorst, tc.wantTypl)
		}
	}
}

// The point of the fast profile: a hard death is noticed well within a
// second, typically up to 128 members (fastCurve), and even in the worst
// probe schedule for small clusters.
func TestFastProfileIsSubSecond(t *testing.T) {
	for n := 2; n <= 128; n++ {
		tm, err := ProfileTiming(ProfileFast, n)
		if err != nil {
			t.Fatal(err)
		}
		if tm.Typical() >= time.Second {
			t.Errorf("%d members: typical detection %s", n, tm.Typical())
		}
		if n <= 4 && tm.Worst() >= time.Second {
			t.Errorf("%d members: worst detection %s", n, tm.Worst())
		}
	}
}

func TestProfileTimingErrors(t *testing.T) {
	if _, err := ProfileTiming(ProfileFast, 1); err == nil {
		t.Error("1 member: no error")
	}
	if _, err := ProfileTiming("wan", 3); err == nil {
		t.Error("unknown profile: no error")
	}
}

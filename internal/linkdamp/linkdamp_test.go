package linkdamp

import (
	"testing"
	"time"
)

func TestDamper(t *testing.T) {
	s := time.Second
	tests := []struct {
		name  string
		d     Damper
		downs []time.Duration // offsets of each down from the start
		want  time.Duration   // Up() after the last
	}{
		{name: "never down", want: 0},
		{name: "one pull", downs: []time.Duration{0}, want: 4 * s},
		{name: "flapping every 4 s", downs: []time.Duration{0, 4 * s, 8 * s, 12 * s}, want: 32 * s},
		{name: "a minute of flapping hits the cap", downs: steps(0, 4*s, 15), want: 60 * s},
		{name: "one quiet minute halves it", downs: []time.Duration{0, 4 * s, 8 * s, 68 * s}, want: 16 * s},
		{name: "a quiet hour starts over", downs: append(steps(0, 4*s, 15), time.Hour), want: 4 * s},
		{name: "own limits", d: Damper{Min: s, Max: 3 * s, Decay: 10 * s}, downs: []time.Duration{0, s, 2 * s, 3 * s}, want: 3 * s},
		{name: "max below min means the default max", d: Damper{Min: 5 * s, Max: s}, downs: steps(0, s, 10), want: 60 * s},
	}
	t0 := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.d
			for _, off := range tt.downs {
				d.Down(t0.Add(off))
			}
			if got := d.Up(); got != tt.want {
				t.Errorf("Up() = %s after downs at %v, want %s (%s)", got, tt.downs, tt.want, &d)
			}
		})
	}
}

// steps returns n offsets from start, every apart.
func steps(start, every time.Duration, n int) []time.Duration {
	var out []time.Duration
	for i := range n {
		out = append(out, start+time.Duration(i)*every)
	}
	return out
}

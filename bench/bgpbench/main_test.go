package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	tests := []struct {
		name string
		in   []time.Duration
		want summary
	}{
		{"empty", nil, summary{}},
		{"one", ms(7), summary{n: 1, min: ms(7)[0], median: ms(7)[0], p95: ms(7)[0], max: ms(7)[0]}},
		{"even count takes the mean of the middle two", ms(40, 10, 30, 20),
			summary{n: 4, min: ms(10)[0], median: ms(25)[0], p95: ms(40)[0], max: ms(40)[0]}},
		{"p95 of 20 is the 19th", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20),
			summary{n: 20, min: ms(1)[0], median: 10500 * time.Microsecond, p95: ms(19)[0], max: ms(20)[0]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := summarize(tt.in); got != tt.want {
				t.Errorf("summarize(%v) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestHeraldConfig(t *testing.T) {
	tests := []struct {
		name      string
		bfd       bool
		hold      time.Duration
		want, not []string
	}{
		{"BFD, negotiated hold time", true, 0,
			[]string{"bfdProfile: fast", "peerAddress: 192.0.2.1", "peerAddress: 2001:db8::1", "- " + bulkPool, "autoAssign: false"},
			[]string{"holdTime"}},
		{"no BFD, holdTime 3s", false, 3 * time.Second,
			[]string{"holdTime: 3s"},
			[]string{"bfdProfile:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := heraldConfig(tt.bfd, tt.hold)
			for _, w := range tt.want {
				if !strings.Contains(y, w) {
					t.Errorf("missing %q in:\n%s", w, y)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(y, n) {
					t.Errorf("unexpected %q in:\n%s", n, y)
				}
			}
			if got := strings.Count(y, "kind: BGPPeer"); got != 2 {
				t.Errorf("%d BGPPeers, want 2", got)
			}
		})
	}
}

func TestReadMemory(t *testing.T) {
	// This process's own status fills both fields, in the right place.
	m, err := readMemory(os.Getpid())
	if err != nil || m.rss == 0 || m.hwm < m.rss {
		t.Errorf("readMemory = %+v, %v", m, err)
	}
}

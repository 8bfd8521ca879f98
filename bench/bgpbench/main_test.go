package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

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

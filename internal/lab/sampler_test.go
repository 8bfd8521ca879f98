package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"testing"
	"time"
)

// samplerLAN is a bridge with a client and two hosts, a and b, that the
// test makes answer ARP (with their kernels) for one address.
type samplerLAN struct {
	client     string // namespace
	a, b       string // namespaces
	macA, macB net.HardwareAddr
}

func newSamplerLAN(t *testing.T) samplerLAN {
	t.Helper()
	if os.Geteuid() != 0 {
		unavailable(t, "the sampler test needs root (network namespaces)")
	}
	for _, tool := range []string{"ip", "arping"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, "the sampler test needs %s", tool)
		}
	}
	id, err := newID()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	prefix := "hs" + id + "-"
	lan := prefix + "lan"
	s := samplerLAN{client: prefix + "client", a: prefix + "a", b: prefix + "b"}
	for _, ns := range []string{lan, s.client, s.a, s.b} {
		h, err := addNamespace(ctx, ns)
		if err != nil {
			t.Fatal(err)
		}
		h.Close()
		t.Cleanup(func() {
			if err := deleteNamespace(ns); err != nil {
				t.Errorf("remove namespace %s: %v", ns, err)
			}
		})
	}
	run := func(args ...string) {
		t.Helper()
		if err := runIP(ctx, args...); err != nil {
			t.Fatal(err)
		}
	}
	run("-n", lan, "link", "add", "br0", "type", "bridge")
	run("-n", lan, "link", "set", "br0", "up")
	for i, m := range []struct {
		ns   string
		mac  *net.HardwareAddr
		addr string
	}{{s.client, nil, "192.0.2.100/24"}, {s.a, &s.macA, "192.0.2.11/24"}, {s.b, &s.macB, "192.0.2.12/24"}} {
		port := fmt.Sprintf("p%d", i)
		mac := labMAC(byte(0x10 + i))
		if m.mac != nil {
			*m.mac = mac
		}
		run("-n", lan, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", m.ns)
		run("-n", lan, "link", "set", port, "master", "br0", "up")
		run("-n", m.ns, "link", "set", "eth0", "address", mac.String(), "up")
		run("-n", m.ns, "addr", "add", m.addr, "dev", "eth0")
	}
	return s
}

// TestAnswerSampler: one host answering is clean; two hosts answering, even
// for a moment and long before the end, is the fault, and the sampler keeps
// it although the last answers come from one host again (which is all a
// check that retries until one MAC answers would see).
func TestAnswerSampler(t *testing.T) {
	lan := newSamplerLAN(t)
	addr := netip.MustParseAddr("192.0.2.50")
	holds := func(ns string, yes bool) {
		t.Helper()
		op := "del"
		if yes {
			op = "add"
		}
		if err := runIP(context.Background(), "-n", ns, "addr", op, addr.String()+"/32", "dev", "eth0"); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		// act runs while the sampler runs, with a already holding addr.
		act       func()
		wantFault bool
	}{
		{"one host", func() { time.Sleep(time.Second) }, false},
		{"two hosts", func() { holds(lan.b, true); time.Sleep(time.Second); holds(lan.b, false) }, true},
		{"a second host for 300 ms", func() {
			time.Sleep(500 * time.Millisecond)
			holds(lan.b, true)
			time.Sleep(300 * time.Millisecond)
			holds(lan.b, false)
			time.Sleep(time.Second)
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			holds(lan.a, true)
			defer holds(lan.a, false)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := StartAnswerSampler(ctx, lan.client, "eth0", netip.MustParseAddr("192.0.2.99"), addr, 20*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if _, err := s.WaitRound(ctx, start, func(r Round) bool { return r.AnsweredOnlyBy(lan.macA) }); err != nil {
				s.Stop()
				t.Fatalf("no round answered by a alone: %v", err)
			}
			tt.act()
			rounds, err := s.Stop()
			var double *DoubleAnswerError
			if errors.As(err, &double) != tt.wantFault || (!tt.wantFault && err != nil) {
				t.Fatalf("Stop: %v, want a double answer: %v", err, tt.wantFault)
			}
			answered := 0
			for _, r := range rounds {
				if len(r.MACs) > 0 {
					answered++
				}
			}
			// Every request is answered: the sampler sees what the LAN says.
			if len(rounds) < 30 || answered < len(rounds)*9/10 {
				t.Errorf("%d of %d rounds answered", answered, len(rounds))
			}
			if tt.wantFault {
				if len(double.MACs) != 2 {
					t.Errorf("fault %v, want a's and b's MACs", double)
				}
				if last := rounds[len(rounds)-1]; tt.name != "two hosts" && !last.AnsweredOnlyBy(lan.macA) {
					t.Errorf("last round answered by %v, want a alone again", last.MACs)
				}
				// What e2e's announcedBy used to rely on: arping for a
				// second, after the fact, sees one MAC and passes.
				out, _ := exec.Command("ip", "netns", "exec", lan.client, "arping", "-w", "1", "-I", "eth0", addr.String()).Output()
				if macs := parseMACs(string(out)); tt.name != "two hosts" && len(macs) != 1 {
					t.Errorf("arping afterwards saw %v, want only a (the check the sampler replaces)", macs)
				}
			}
			t.Logf("%d rounds, %d answered; fault: %v", len(rounds), answered, err)
		})
	}
}

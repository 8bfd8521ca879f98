package announce

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// fake is a mode that announces what it is told: every Service for a mode
// where all nodes announce, the ones this node owns for a single-owner one.
type fake struct {
	protocol string
	stopIn   time.Duration
	err      error

	mu      sync.Mutex
	got     []Desired
	stopped time.Time
}

func (f *fake) Protocol() string { return f.protocol }

func (f *fake) Announce(_ context.Context, d Desired) (Announced, error) {
	f.mu.Lock()
	f.got = append(f.got, d)
	f.mu.Unlock()
	out := Announced{}
	for _, s := range d.Inputs.Services {
		out[s.Key] = s.Addrs
	}
	return out, f.err
}

func (f *fake) Shutdown(context.Context) {
	time.Sleep(f.stopIn)
	f.mu.Lock()
	f.stopped = time.Now()
	f.mu.Unlock()
}

// fakeOwner is a single-owner fake: every live node may own everything,
// and it announces what it owns.
type fakeOwner struct{ fake }

func (f *fakeOwner) ElectionKey(s Service) string { return s.Addrs[0].String() }

func (f *fakeOwner) Candidates(in Inputs, _ []Service) Candidates {
	var c Candidates
	for n := range in.Live {
		c.Nodes = append(c.Nodes, n)
	}
	slices.Sort(c.Nodes)
	return c
}

func (f *fakeOwner) Announce(ctx context.Context, d Desired) (Announced, error) {
	f.mu.Lock()
	f.got = append(f.got, d)
	f.mu.Unlock()
	out := Announced{}
	for _, a := range d.Owned {
		out[a.Service] = a.Addrs
	}
	return out, f.err
}

type event struct{ svc, reason, msg string }

func newTestLoop(modes ...Announcer) (*Loop, *prometheus.Registry, *[]event) {
	reg := prometheus.NewRegistry()
	g := NewAnnouncedGauge()
	reg.MustRegister(g)
	var events []event
	l := NewLoop("n1", modes, g, func(svc, typ, reason, msg string) { events = append(events, event{svc, reason, msg}) })
	return l, reg, &events
}

func inputs(live []string, svcs ...Service) Inputs {
	in := Inputs{Nodes: map[string]Node{}, Live: map[string]bool{}, Services: svcs}
	for _, n := range live {
		in.Nodes[n] = Node{Name: n}
		in.Live[n] = true
	}
	return in
}

// svc is a Service with a ready endpoint on n1 and n2.
func svc(key, ip string) Service {
	return Service{Key: key, Addrs: []netip.Addr{netip.MustParseAddr(ip)}, EndpointNodes: map[string]bool{"n1": true, "n2": true}}
}

// TestLoopReadyGate: until the node may announce, a single-owner mode owns
// nothing, while a mode where every node announces is not held back.
func TestLoopReadyGate(t *testing.T) {
	l2 := &fakeOwner{fake{protocol: "layer2"}}
	bgp := &fake{protocol: "bgp"}
	l, reg, _ := newTestLoop(l2, bgp)
	in := inputs([]string{"n1"}, svc("a/x", "192.0.2.1"))
	tests := []struct {
		ready  bool
		owned  int
		series []string
	}{
		{false, 0, []string{"a/x bgp 192.0.2.1"}},
		{true, 1, []string{"a/x bgp 192.0.2.1", "a/x layer2 192.0.2.1"}},
	}
	for _, tc := range tests {
		if err := l.Sync(context.Background(), in, nil, tc.ready); err != nil {
			t.Fatal(err)
		}
		last := l2.got[len(l2.got)-1]
		if len(last.Owned) != tc.owned {
			t.Errorf("ready=%v: single-owner mode given %d owned, want %d", tc.ready, len(last.Owned), tc.owned)
		}
		if got := bgp.got[len(bgp.got)-1]; got.Owned != nil || len(got.Inputs.Services) != 1 {
			t.Errorf("ready=%v: every-node mode given %+v", tc.ready, got)
		}
		if got := announcedSeriesOf(t, reg); !slices.Equal(got, tc.series) {
			t.Errorf("ready=%v: series %q, want %q", tc.ready, got, tc.series)
		}
	}
}

// TestLoopElectsOnce: the loop elects and hands the single-owner mode only
// this node's share; the other live node's addresses are not its.
func TestLoopElectsOnce(t *testing.T) {
	m := &fakeOwner{fake{protocol: "cloud"}}
	l, _, _ := newTestLoop(m)
	var svcs []Service
	for i := range 40 {
		svcs = append(svcs, svc(fmt.Sprintf("a/s%d", i), fmt.Sprintf("192.0.2.%d", i+1)))
	}
	in := inputs([]string{"n1", "n2"}, svcs...)
	if err := l.Sync(context.Background(), in, nil, true); err != nil {
		t.Fatal(err)
	}
	want := Owned(Elect(in, m), "n1")
	got := m.got[0].Owned
	if len(got) == 0 || len(got) == len(svcs) || !slices.EqualFunc(got, want, func(a, b Announcement) bool { return a.Service == b.Service }) {
		t.Fatalf("owned %d of %d, want the election's %d", len(got), len(svcs), len(want))
	}
}

// TestLoopEventsOncePerChange: nodeAssigned when the node starts
// announcing a Service, nodeUnassigned when it stops, each once, per mode.
func TestLoopEventsOncePerChange(t *testing.T) {
	bgp := &fake{protocol: "bgp"}
	l, _, events := newTestLoop(bgp)
	ctx := context.Background()
	steps := []struct {
		svcs []Service
		want []event
	}{
		{[]Service{svc("a/x", "192.0.2.1")}, []event{{"a/x", "nodeAssigned", `announcing from node "n1" with protocol "bgp"`}}},
		{[]Service{svc("a/x", "192.0.2.1")}, nil},
		{[]Service{svc("a/x", "192.0.2.1"), svc("a/y", "192.0.2.2")}, []event{{"a/y", "nodeAssigned", `announcing from node "n1" with protocol "bgp"`}}},
		{[]Service{svc("a/y", "192.0.2.2")}, []event{{"a/x", "nodeUnassigned", `no longer announcing from node "n1" with protocol "bgp"`}}},
	}
	for i, st := range steps {
		*events = nil
		if err := l.Sync(ctx, inputs([]string{"n1"}, st.svcs...), nil, true); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(*events, st.want) {
			t.Errorf("step %d: events %v, want %v", i, *events, st.want)
		}
	}
}

// TestLoopErrorKeepsOthers: a mode that fails is reported, what it does
// announce still counts, and the next mode still syncs.
func TestLoopErrorKeepsOthers(t *testing.T) {
	broken := &fake{protocol: "bgp", err: errors.New("router gone")}
	l2 := &fakeOwner{fake{protocol: "layer2"}}
	l, reg, _ := newTestLoop(broken, l2)
	err := l.Sync(context.Background(), inputs([]string{"n1"}, svc("a/x", "192.0.2.1")), nil, true)
	if err == nil || err.Error() != "bgp: router gone" {
		t.Fatalf("error %v, want the failing mode's, named", err)
	}
	if got := announcedSeriesOf(t, reg); len(got) != 2 {
		t.Fatalf("series %q, want both modes'", got)
	}
}

// TestLoopShutdown: every mode stops at once, so a stop takes as long as
// the slowest mode, not the sum; a single-owner mode stops only once the
// node has left the membership, the others without waiting for it; the
// metric is cleared.
func TestLoopShutdown(t *testing.T) {
	l2 := &fakeOwner{fake{protocol: "layer2", stopIn: 500 * time.Millisecond}}
	bgp := &fake{protocol: "bgp", stopIn: 0}
	l, reg, events := newTestLoop(l2, bgp)
	if err := l.Sync(context.Background(), inputs([]string{"n1"}, svc("a/x", "192.0.2.1")), nil, true); err != nil {
		t.Fatal(err)
	}
	*events = nil
	const leaving = 300 * time.Millisecond
	var left time.Time
	start := time.Now()
	l.Shutdown(context.Background(), func() { time.Sleep(leaving); left = time.Now() })
	took := time.Since(start)
	if l2.stopped.IsZero() || bgp.stopped.IsZero() {
		t.Fatal("a mode was not shut down")
	}
	if !bgp.stopped.Before(left) {
		t.Errorf("BGP stopped %s after the node left: its Cease waited for the membership", bgp.stopped.Sub(left))
	}
	if l2.stopped.Sub(left) < l2.stopIn {
		t.Errorf("Layer 2 stopped %s after the node left, before its %s handover ran out", l2.stopped.Sub(left), l2.stopIn)
	}
	if took >= leaving+l2.stopIn+400*time.Millisecond {
		t.Errorf("shutdown took %s", took)
	}
	if got := announcedSeriesOf(t, reg); len(got) != 0 {
		t.Errorf("series left after shutdown: %q", got)
	}
	if len(*events) != 0 {
		t.Errorf("events at shutdown: %v", *events)
	}
}

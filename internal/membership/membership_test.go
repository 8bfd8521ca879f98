package membership

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// Tests run real memberlist instances on loopback addresses: Linux routes
// all of 127.0.0.0/8 to lo, so every member gets its own address and the
// same port, as on a real network. Each test uses its own 127.77.<net>.0/24.
const testPort = 27946

// waitFor bounds every wait; detection itself takes well under a second.
const waitFor = 20 * time.Second

// addrOf returns 127.77.<network>.<host>.
func addrOf(network, host int) string {
	return fmt.Sprintf("127.77.%d.%d", network, host)
}

// testAddr returns addrOf(network, host) for a new member, failing the test
// if its port is taken.
func testAddr(t *testing.T, network, host int) string {
	t.Helper()
	addr := addrOf(network, host)
	hp := net.JoinHostPort(addr, fmt.Sprint(testPort))
	l, err := net.Listen("tcp", hp)
	if err != nil {
		t.Fatalf("test address %s unavailable: %v", hp, err)
	}
	l.Close()
	return addr
}

// logs collects a member's log records, and prints them if the test fails.
type logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func newLogs(t *testing.T) *logs {
	l := &logs{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", l.String())
		}
	})
	return l
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logs) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// start creates and starts a member; it leaves no trace after the test.
func start(t *testing.T, log *logs, cfg Config) *Membership {
	t.Helper()
	if cfg.BindPort == 0 {
		cfg.BindPort = testPort
	}
	cfg.Logger = log.logger()
	m, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%s): %v", cfg.NodeName, err)
	}
	if err := m.Start(t.Context()); err != nil {
		t.Fatalf("Start(%s): %v", cfg.NodeName, err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return m
}

func peers(addrs ...string) func() []string {
	return func() []string { return addrs }
}

// waitMembers waits, on Changes, until m's members are want.
func waitMembers(t *testing.T, m *Membership, want ...string) {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		got := m.Members()
		if slices.Equal(got, want) {
			return
		}
		select {
		case <-m.Changes():
		case <-deadline:
			t.Fatalf("%s: members %v, want %v", m.cfg.NodeName, got, want)
		}
	}
}

func waitReady(t *testing.T, m *Membership) {
	t.Helper()
	select {
	case <-m.Ready():
	case <-time.After(waitFor):
		t.Fatalf("%s: not ready after %s", m.cfg.NodeName, waitFor)
	}
}

func isReady(m *Membership) bool {
	select {
	case <-m.Ready():
		return true
	default:
		return false
	}
}

// cluster starts members a, b, c on network; b joins a and c joins b, so
// c learns of a only through gossip.
func cluster(t *testing.T, log *logs, network int, profile string, key []byte) []*Membership {
	t.Helper()
	var addrs []string
	for i := range 3 {
		addrs = append(addrs, testAddr(t, network, i+1))
	}
	var ms []*Membership
	for i, name := range []string{"a", "b", "c"} {
		cfg := Config{NodeName: name, BindAddr: addrs[i], SecretKey: key, Profile: profile, JoinTimeout: time.Hour}
		if i > 0 {
			cfg.Peers = peers(addrs[i-1])
		}
		ms = append(ms, start(t, log, cfg))
	}
	for _, m := range ms {
		waitMembers(t, m, "a", "b", "c")
		waitReady(t, m)
	}
	return ms
}

func TestNew(t *testing.T) {
	valid := Config{NodeName: "a", BindAddr: "198.51.100.1"}
	tests := []struct {
		name    string
		edit    func(*Config)
		wantErr string
	}{
		{"defaults", func(*Config) {}, ""},
		{"IPv6 address", func(c *Config) { c.BindAddr = "2001:db8::1" }, ""},
		{"AES-128 key", func(c *Config) { c.SecretKey = make([]byte, 16) }, ""},
		{"AES-256 key", func(c *Config) { c.SecretKey = make([]byte, 32) }, ""},
		{"lan profile", func(c *Config) { c.Profile = ProfileLAN }, ""},
		{"no name", func(c *Config) { c.NodeName = "" }, "node name"},
		{"host name as bind address", func(c *Config) { c.BindAddr = "node-a" }, "bind address"},
		{"port too high", func(c *Config) { c.BindPort = 70000 }, "port"},
		{"key of 22 bytes", func(c *Config) { c.SecretKey = make([]byte, 22) }, "22 bytes"},
		{"negative join timeout", func(c *Config) { c.JoinTimeout = -time.Second }, "join timeout"},
		{"unknown profile", func(c *Config) { c.Profile = "wan" }, "profile"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid
			tc.edit(&cfg)
			m, err := New(cfg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New: error %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if m.cfg.BindPort != DefaultPort || m.cfg.JoinTimeout != DefaultJoinTimeout {
				t.Errorf("defaults: port %d, join timeout %s", m.cfg.BindPort, m.cfg.JoinTimeout)
			}
			if cfg.Profile == "" && m.cfg.Profile != ProfileFast {
				t.Errorf("default profile %q, want %q", m.cfg.Profile, ProfileFast)
			}
			if m.Members() != nil {
				t.Errorf("Members before Start = %v, want nil", m.Members())
			}
		})
	}
}

func TestPeerAddr(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"198.51.100.7", "198.51.100.7:7946", false},
		{"198.51.100.7:8000", "198.51.100.7:8000", false},
		{"2001:db8::7", "[2001:db8::7]:7946", false},
		{"2001:0db8:0::7", "[2001:db8::7]:7946", false},
		{"[2001:db8::7]:8000", "[2001:db8::7]:8000", false},
		{"::ffff:198.51.100.7", "198.51.100.7:7946", false},
		{"node-a.example", "node-a.example:7946", false},
		{"", "", true},
		{":7946", "", true},
	}
	for _, tc := range tests {
		got, err := peerAddr(tc.in, DefaultPort)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("peerAddr(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestConverge(t *testing.T) {
	tests := []struct {
		name string
		key  []byte
	}{
		{"plain", nil},
		{"encrypted", []byte("0123456789abcdef0123456789abcdef")},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cluster(t, newLogs(t), 10+i, ProfileFast, tc.key)
		})
	}
}

// A member without the cluster's key gets nowhere: its join fails, and no
// member counts it, nor it them.
func TestWrongKeyCannotJoin(t *testing.T) {
	key := []byte("0123456789abcdef")
	tests := []struct {
		name string
		key  []byte
	}{
		{"other key", []byte("fedcba9876543210")},
		{"no key", nil},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			log := newLogs(t)
			network := 20 + i
			ms := cluster(t, log, network, ProfileFast, key)
			// Wait for the intruder's second join round: the first one
			// has then completed, and failed.
			var calls atomic.Int32
			round2 := make(chan struct{})
			seed := addrOf(network, 1)
			intruder := start(t, log, Config{
				NodeName: "intruder", BindAddr: testAddr(t, network, 9), SecretKey: tc.key, JoinTimeout: time.Hour,
				Peers: func() []string {
					if calls.Add(1) == 2 {
						close(round2)
					}
					return []string{seed}
				},
			})
			select {
			case <-round2:
			case <-time.After(waitFor):
				t.Fatal("intruder made no second join attempt")
			}
			if got := intruder.Members(); !slices.Equal(got, []string{"intruder"}) {
				t.Errorf("intruder's members %v, want only itself", got)
			}
			if isReady(intruder) {
				t.Error("intruder is ready: it joined someone")
			}
			for _, m := range ms {
				if got := m.Members(); !slices.Equal(got, []string{"a", "b", "c"}) {
					t.Errorf("%s's members %v, want a, b, c", m.cfg.NodeName, got)
				}
			}
		})
	}
}

// A member that dies without a word (Shutdown, no Leave) stops answering;
// the others must drop it. How fast is bench/membershipdetect's business;
// the time is only logged here.
func TestHardDeathDetected(t *testing.T) {
	ms := cluster(t, newLogs(t), 30, ProfileFast, nil)
	began := time.Now()
	if err := ms[2].Shutdown(); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got := ms[2].Members(); got != nil {
		t.Errorf("members after Shutdown = %v, want nil", got)
	}
	waitMembers(t, ms[0], "a", "b")
	waitMembers(t, ms[1], "a", "b")
	t.Logf("hard death noticed by both survivors after %s", time.Since(began))
}

// A member that leaves, by Leave or by its context ending, is dropped by
// the others before failure detection could have noticed it: with the
// stock LAN profile, that takes at least one failed probe and the minimum
// suspicion (5 s with 3 members).
func TestGracefulLeave(t *testing.T) {
	timing, err := ProfileTiming(ProfileLAN, 3)
	if err != nil {
		t.Fatal(err)
	}
	floor := timing.Probe + timing.SuspicionMin
	tests := []struct {
		name  string
		leave func(m *Membership, cancel context.CancelFunc) error
	}{
		{"Leave", func(m *Membership, _ context.CancelFunc) error { return m.Leave(time.Second) }},
		{"context ends", func(_ *Membership, cancel context.CancelFunc) error { cancel(); return nil }},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			log := newLogs(t)
			network := 40 + i
			ms := cluster(t, log, network, ProfileLAN, nil)
			// A fourth member with its own context, to leave.
			ctx, cancel := context.WithCancel(t.Context())
			d, err := New(Config{NodeName: "d", BindAddr: testAddr(t, network, 4), BindPort: testPort,
				Profile: ProfileLAN, Peers: peers(addrOf(network, 1)), Logger: log.logger()})
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Start(ctx); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = d.Shutdown() })
			for _, m := range append(ms, d) {
				waitMembers(t, m, "a", "b", "c", "d")
			}

			began := time.Now()
			if err := tc.leave(d, cancel); err != nil {
				t.Fatalf("leave: %v", err)
			}
			for _, m := range ms {
				waitMembers(t, m, "a", "b", "c")
			}
			took := time.Since(began)
			t.Logf("graceful leave seen by all after %s", took)
			if took >= floor {
				t.Errorf("leave took %s to be seen: no faster than failure detection (%s), so the announcement was lost", took, floor)
			}
		})
	}
}

func TestReady(t *testing.T) {
	t.Run("alone, after the join timeout", func(t *testing.T) {
		log := newLogs(t)
		const timeout = 2 * time.Second
		began := time.Now()
		m := start(t, log, Config{NodeName: "solo", BindAddr: testAddr(t, 50, 1), JoinTimeout: timeout,
			Peers: peers(addrOf(50, 2))}) // nobody there
		if isReady(m) && time.Since(began) < timeout {
			t.Fatal("ready before the join timeout, alone")
		}
		waitReady(t, m)
		if took := time.Since(began); took < timeout {
			t.Errorf("ready after %s, before the join timeout %s", took, timeout)
		}
		if got := m.Members(); !slices.Equal(got, []string{"solo"}) {
			t.Errorf("members %v, want [solo]", got)
		}
	})
	t.Run("on joining, both sides", func(t *testing.T) {
		log := newLogs(t)
		// An hour of join timeout: only a join can make them ready.
		a := start(t, log, Config{NodeName: "a", BindAddr: testAddr(t, 51, 1), JoinTimeout: time.Hour})
		b := start(t, log, Config{NodeName: "b", BindAddr: testAddr(t, 51, 2), JoinTimeout: time.Hour,
			Peers: peers(addrOf(51, 1))})
		waitReady(t, b)
		waitReady(t, a)
	})
}

// A member whose peers are not up yet keeps trying, and joins them once
// they are.
func TestRetriesUntilPeerUp(t *testing.T) {
	log := newLogs(t)
	bAddr := testAddr(t, 60, 2)
	tried := make(chan struct{})
	var once sync.Once
	a := start(t, log, Config{NodeName: "a", BindAddr: testAddr(t, 60, 1), JoinTimeout: time.Hour,
		Peers: func() []string {
			once.Do(func() { close(tried) })
			return []string{bAddr}
		}})
	select {
	case <-tried:
	case <-time.After(waitFor):
		t.Fatal("a never tried to join")
	}
	// b knows no peers: only a's retry can bring them together.
	b := start(t, log, Config{NodeName: "b", BindAddr: bAddr, JoinTimeout: time.Hour})
	waitMembers(t, a, "a", "b")
	waitMembers(t, b, "a", "b")
}

// A memberlist node that is not a Herald speaker (no metadata marker) is
// refused even when it joins us itself.
func TestForeignNodeRefused(t *testing.T) {
	log := newLogs(t)
	ours := start(t, log, Config{NodeName: "a", BindAddr: testAddr(t, 70, 1), JoinTimeout: time.Hour})

	c := memberlist.DefaultLANConfig()
	c.Name = "foreign"
	c.BindAddr = testAddr(t, 70, 2)
	c.BindPort = testPort
	c.AdvertisePort = testPort
	c.LogOutput = log
	foreign, err := memberlist.Create(c)
	if err != nil {
		t.Fatalf("foreign memberlist: %v", err)
	}
	t.Cleanup(func() { _ = foreign.Shutdown() })
	if _, err := foreign.Join([]string{net.JoinHostPort(addrOf(70, 1), fmt.Sprint(testPort))}); err != nil {
		t.Fatalf("foreign join: %v", err)
	}
	// The refusal is logged; wait for it, then look.
	deadline := time.Now().Add(waitFor)
	for !strings.Contains(log.String(), "is not a Herald speaker") {
		if time.Now().After(deadline) {
			t.Fatal("the foreign node was never refused")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := ours.Members(); !slices.Equal(got, []string{"a"}) {
		t.Errorf("members %v, want only a", got)
	}
	if isReady(ours) {
		t.Error("ready: counted the foreign node as a peer")
	}
}

func TestStartTwice(t *testing.T) {
	m := start(t, newLogs(t), Config{NodeName: "a", BindAddr: testAddr(t, 80, 1)})
	if err := m.Start(t.Context()); err == nil {
		t.Error("second Start: no error")
	}
	if err := m.Leave(time.Second); err != nil {
		t.Errorf("Leave alone: %v", err)
	}
	if err := m.Leave(time.Second); err != nil {
		t.Errorf("second Leave: %v", err)
	}
	if err := m.Start(t.Context()); err == nil {
		t.Error("Start after Leave: no error")
	}
}

// A speaker that restarts on its node (same name, same address) is a
// member again, whether or not the others had noticed it was gone.
func TestRestartRejoins(t *testing.T) {
	tests := []struct {
		name      string
		waitDeath bool
	}{
		{"after its death was noticed", true},
		{"before its death was noticed", false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			log := newLogs(t)
			network := 90 + i
			ms := cluster(t, log, network, ProfileFast, nil)
			if err := ms[2].Shutdown(); err != nil {
				t.Fatal(err)
			}
			if tc.waitDeath {
				waitMembers(t, ms[0], "a", "b")
			}
			again := start(t, log, Config{NodeName: "c", BindAddr: addrOf(network, 3), JoinTimeout: time.Hour,
				Peers: peers(addrOf(network, 1))})
			for _, m := range []*Membership{ms[0], ms[1], again} {
				waitMembers(t, m, "a", "b", "c")
			}
		})
	}
}

// A member whose data plane goes down stays in the cluster but is left out
// of Members() everywhere, and comes back when it is up again.
func TestDataPlaneDown(t *testing.T) {
	ms := cluster(t, newLogs(t), 60, ProfileFast, nil)
	if err := ms[2].SetDataPlane(false); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		waitMembers(t, m, "a", "b")
	}
	if err := ms[2].SetDataPlane(true); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		waitMembers(t, m, "a", "b", "c")
	}
}

package membership

import (
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// blackHole accepts TCP connections on addr:testPort and answers nothing,
// as a peer behind a partition that drops the replies would. Until healed;
// then, if to is set, new connections are relayed to to:testPort (the
// partition is over). Connections held before the heal stay held, as a
// dropped SYN's connection attempt does.
type blackHole struct {
	l      net.Listener
	to     string
	healed atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

func newBlackHole(t *testing.T, addr, to string) *blackHole {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(addr, fmt.Sprint(testPort)))
	if err != nil {
		t.Fatal(err)
	}
	b := &blackHole{l: l, to: to}
	go b.serve()
	t.Cleanup(b.close)
	return b
}

func (b *blackHole) serve() {
	for {
		c, err := b.l.Accept()
		if err != nil {
			return
		}
		if !b.healed.Load() || b.to == "" {
			b.mu.Lock()
			b.conns = append(b.conns, c)
			b.mu.Unlock()
			continue
		}
		go relay(c, net.JoinHostPort(b.to, fmt.Sprint(testPort)))
	}
}

func relay(c net.Conn, to string) {
	defer c.Close()
	up, err := net.Dial("tcp", to)
	if err != nil {
		return
	}
	defer up.Close()
	go func() { _, _ = io.Copy(up, c) }()
	_, _ = io.Copy(c, up)
}

func (b *blackHole) close() {
	b.l.Close()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range b.conns {
		c.Close()
	}
}

// TestJoinAfterHeal: a member cut off from its peers (their TCP swallows
// its joins) merges with them soon after the partition heals, although a
// join that began during the partition is still waiting for its timeout.
// Its peers list holds three addresses that swallow connections, one of
// which is relayed to the real peer from the heal on. Joined one after the
// other with a 2 s TCP timeout, as before, a round took 6 s and the merge
// came 3 to 7 s after the heal.
func TestJoinAfterHeal(t *testing.T) {
	log := newLogs(t)
	bAddr := testAddr(t, 61, 2)
	b := start(t, log, Config{NodeName: "b", BindAddr: bAddr, JoinTimeout: 100 * time.Millisecond})
	waitReady(t, b)
	gate := newBlackHole(t, addrOf(61, 10), bAddr)
	newBlackHole(t, addrOf(61, 11), "")
	newBlackHole(t, addrOf(61, 12), "")
	a := start(t, log, Config{NodeName: "a", BindAddr: testAddr(t, 61, 1), JoinTimeout: 100 * time.Millisecond,
		Peers: peers(addrOf(61, 10), addrOf(61, 11), addrOf(61, 12))})
	waitReady(t, a)

	// Heal at an arbitrary point of a's join rounds.
	time.Sleep(2300 * time.Millisecond)
	if got := a.Members(); len(got) != 1 {
		t.Fatalf("a has members %v through a partition", got)
	}
	gate.healed.Store(true)
	healed := time.Now()
	waitMembers(t, a, "a", "b")
	took := time.Since(healed)
	t.Logf("a merged with b %s after the heal", took.Round(time.Millisecond))
	// The goal is 2 s (issue 14); the bound leaves room for a loaded
	// machine and still fails the sequential joins.
	if bound := 2500 * time.Millisecond; took > bound {
		t.Errorf("a merged with b %s after the heal, want within %s", took.Round(time.Millisecond), bound)
	}
}

// TestJoinSomeAtOnce: a batch of peers that swallow connections costs one
// TCP timeout, not one per peer.
func TestJoinSomeAtOnce(t *testing.T) {
	log := newLogs(t)
	a := start(t, log, Config{NodeName: "a", BindAddr: testAddr(t, 62, 1), JoinTimeout: 100 * time.Millisecond})
	var addrs []string
	for h := 10; h < 10+2*joinBatch; h++ {
		newBlackHole(t, addrOf(62, h), "")
		addrs = append(addrs, net.JoinHostPort(addrOf(62, h), fmt.Sprint(testPort)))
	}
	begin := time.Now()
	n, tried, err := joinSome(a.memberlist(), addrs)
	took := time.Since(begin)
	if n != 0 || tried != len(addrs) || err == nil {
		t.Errorf("joinSome = %d contacted, %d tried, err %v; want 0, %d, an error", n, tried, err, len(addrs))
	}
	// Two batches, each one TCP timeout (1 s in a small cluster).
	if bound := 2*fastCurve[0].tcpTimeout + 500*time.Millisecond; took > bound {
		t.Errorf("joining %d black-holed peers took %s, want within %s", len(addrs), took.Round(time.Millisecond), bound)
	}
}

// TestRejoinAfterFailure: a member that saw its peer fail keeps trying the
// peer's address, soon, so that a peer that was cut off rather than dead
// merges again within a second or two of coming back, even if it knows no
// peer itself. Before, the member was in its 15 s wait between rejoins
// when the peer failed, and merged up to 15 s later.
func TestRejoinAfterFailure(t *testing.T) {
	log := newLogs(t)
	aAddr, bAddr := testAddr(t, 63, 1), testAddr(t, 63, 2)
	a := start(t, log, Config{NodeName: "a", BindAddr: aAddr, JoinTimeout: time.Hour, Peers: peers(bAddr)})
	b := start(t, log, Config{NodeName: "b", BindAddr: bAddr, JoinTimeout: time.Hour, Peers: peers(aAddr)})
	waitMembers(t, a, "a", "b")
	waitMembers(t, b, "a", "b")
	// Past the fast rounds that follow a successful join.
	time.Sleep(2 * time.Second)
	if err := b.Shutdown(); err != nil {
		t.Fatal(err)
	}
	waitMembers(t, a, "a")
	back := start(t, log, Config{NodeName: "b", BindAddr: bAddr, JoinTimeout: time.Hour})
	began := time.Now()
	waitMembers(t, a, "a", "b")
	waitMembers(t, back, "a", "b")
	took := time.Since(began)
	t.Logf("merged %s after the peer came back", took.Round(time.Millisecond))
	if bound := 3 * time.Second; took > bound {
		t.Errorf("merged %s after the peer came back, want within %s", took.Round(time.Millisecond), bound)
	}
}

// TestDeathSettles: a member declared dead still counts for the settle
// time (100 ms in a small cluster), so a refutation that comes within it
// moves nothing; then it is gone. Before, it went the moment memberlist
// declared it dead.
func TestDeathSettles(t *testing.T) {
	log := newLogs(t)
	aAddr, bAddr := testAddr(t, 64, 1), testAddr(t, 64, 2)
	a := start(t, log, Config{NodeName: "a", BindAddr: aAddr, JoinTimeout: time.Hour, Peers: peers(bAddr)})
	b := start(t, log, Config{NodeName: "b", BindAddr: bAddr, JoinTimeout: time.Hour, Peers: peers(aAddr)})
	waitMembers(t, a, "a", "b")
	if err := b.Shutdown(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(waitFor)
	var dropped time.Time
	for time.Now().Before(deadline) {
		if !slices.Contains(a.Members(), "b") {
			dropped = time.Now()
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	if dropped.IsZero() {
		t.Fatal("a never dropped b")
	}
	declared, ok := loggedAt(log.String(), `msg="member left or failed"`, "member=b")
	if !ok {
		t.Fatalf("no record of b's death in a's log")
	}
	settle := dropped.Sub(declared)
	t.Logf("b declared dead, then dropped from Members %s later", settle.Round(time.Millisecond))
	if want := settleFor(fastConfig(fastCurve[0])); settle < want-10*time.Millisecond {
		t.Errorf("b dropped %s after it was declared dead, want at least %s", settle.Round(time.Millisecond), want)
	}
}

// loggedAt returns the time of the first log record holding every one of
// parts.
func loggedAt(logs string, parts ...string) (time.Time, bool) {
	for line := range strings.Lines(logs) {
		match := true
		for _, p := range parts {
			match = match && strings.Contains(line, p)
		}
		if !match {
			continue
		}
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], "time=") {
			continue
		}
		at, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(f[0], "time="))
		return at, err == nil
	}
	return time.Time{}, false
}

// Package membership tells a speaker which speakers are alive, using
// hashicorp/memberlist (SWIM gossip with Lifeguard's refinements). The set
// of live members is an input of the election: an address is announced by
// the first live candidate of its ranking, so how fast a dead speaker drops
// out of this set is how fast its addresses fail over.
//
// The default "fast" profile detects a speaker that dies hard in a few
// hundred milliseconds on a LAN instead of memberlist's stock 5 to 8
// seconds; see timing.go for the arithmetic and bench/membershipdetect for
// measurements. It fits its timers to the cluster's size by itself (see
// fastCurve in profile.go, and bench/scalebench). The package knows nothing
// of Kubernetes: the caller supplies the addresses of the peers to join.
package membership

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"
)

// Defaults and fixed intervals.
const (
	DefaultPort        = 7946
	DefaultJoinTimeout = 3 * time.Second

	// ProfileFast is the default: sub-second detection of a dead member.
	ProfileFast = "fast"
	// ProfileLAN is memberlist's stock LAN configuration, the one MetalLB
	// runs with; kept for comparison.
	ProfileLAN = "lan"

	// While alone, peers are retried often: a speaker that starts first
	// must find the others as soon as they come up, and one that was cut
	// off must merge again soon after the partition heals (within 2 s is
	// the goal; a join that began during the partition first waits out
	// the TCP timeout of the profile, 1 s in small clusters).
	retryAlone = 500 * time.Millisecond
	// Otherwise, peers that are not members are retried now and then: a
	// partition that healed leaves two groups that each declared the other
	// dead, and only a new join merges them again. For rejoinFastFor
	// after a member was declared dead they are retried as often as when
	// alone: the dead member may have been cut off, not dead.
	rejoinEvery   = 15 * time.Second
	rejoinFastFor = 30 * time.Second
	// leaveOnCancel bounds the graceful leave done when Start's context
	// ends.
	leaveOnCancel = time.Second
)

// metaMarker is this package's node metadata. Peers without it are refused,
// so a foreign memberlist on the same port (Docker Swarm uses 7946 too, or
// MetalLB speakers during a migration) cannot merge into ours and be taken
// for live Herald speakers.
const metaMarker = "herald"

// metaDown marks a member whose data plane is down: it is alive, but its
// announcing interfaces have no carrier, so it must not be elected.
const metaDown = metaMarker + ";down"

// Config configures a Membership.
type Config struct {
	// NodeName is this member's unique name: the Kubernetes node name.
	NodeName string
	// BindAddr is the node's address; memberlist binds TCP and UDP to it
	// and advertises it to peers.
	BindAddr string
	// BindPort is the TCP and UDP port; 0 means DefaultPort. Every member
	// of a cluster uses the same port.
	BindPort int
	// SecretKey is the AES key (16, 24 or 32 bytes) that encrypts all
	// traffic; nil means no encryption. Members with another key, or
	// none, cannot join.
	SecretKey []byte
	// Peers returns the addresses (host or host:port) of the speakers to
	// join. It is called, from a goroutine of its own, at start and
	// periodically after: every half second while this member is alone or
	// for 30 s after a member failed, every 15 s otherwise, when addresses
	// that are not members' are joined again (a partition heals that way). With the fast profile, their
	// number (plus this member) is also the cluster size its timers are
	// fitted to, if the live members are not more (see fastCurve). It
	// may be nil.
	Peers func() []string
	// JoinTimeout is how long a member that has found no peer waits
	// before it considers itself alone and Ready; 0 means
	// DefaultJoinTimeout.
	JoinTimeout time.Duration
	// Profile is ProfileFast (the default when empty) or ProfileLAN.
	Profile string
	// Logger receives this package's and memberlist's logs; nil discards.
	Logger *slog.Logger
}

// Membership is one member of the speakers' memberlist cluster.
type Membership struct {
	cfg     Config
	log     *slog.Logger
	ready   chan struct{}
	changes chan struct{}

	readyOnce sync.Once

	// life serializes Start, Leave, Shutdown and resize, which replaces
	// the memberlist: none of them sees another half done.
	life    sync.Mutex
	started bool
	step    int // fastCurve's step the memberlist runs with; 0 for lan

	mu       sync.Mutex
	ml       *memberlist.Memberlist // nil before Start and while resizing
	resizing bool                   // Members serves frozen meanwhile
	frozen   []string
	stopped  chan struct{} // closed by Leave or Shutdown
	stop     sync.Once

	delegate delegate

	// down holds the members whose data plane is down, from their
	// metadata as memberlist reports it to events, under its own lock:
	// the nodes ml.Members() returns are memberlist's, and it rewrites
	// their metadata while we would read it.
	downMu sync.Mutex
	down   map[string]bool
	// dying holds the members declared dead less than deathSettle ago,
	// under downMu: they still count, so that a death refuted within
	// milliseconds moves nothing (see deathSettle).
	dying map[string]time.Time
	// settle is deathSettle, set with the timers by create.
	settle atomic.Int64

	// lastLeft is when a member was last declared dead or left, in Unix
	// nanoseconds; the join loop retries fast for a while after it, and
	// lost wakes it at once.
	lastLeft atomic.Int64
	lost     chan struct{}
}

// New validates cfg and fills in its defaults. Nothing listens before Start.
func New(cfg Config) (*Membership, error) {
	if cfg.NodeName == "" {
		return nil, errors.New("membership: node name is required")
	}
	if _, err := netip.ParseAddr(cfg.BindAddr); err != nil {
		return nil, fmt.Errorf("membership: bind address %q: %w", cfg.BindAddr, err)
	}
	if cfg.BindPort == 0 {
		cfg.BindPort = DefaultPort
	}
	if cfg.BindPort < 1 || cfg.BindPort > 65535 {
		return nil, fmt.Errorf("membership: bind port %d out of range", cfg.BindPort)
	}
	switch len(cfg.SecretKey) {
	case 0, 16, 24, 32:
	default:
		return nil, fmt.Errorf("membership: secret key is %d bytes, want 16, 24 or 32", len(cfg.SecretKey))
	}
	switch {
	case cfg.JoinTimeout == 0:
		cfg.JoinTimeout = DefaultJoinTimeout
	case cfg.JoinTimeout < 0:
		return nil, fmt.Errorf("membership: negative join timeout %s", cfg.JoinTimeout)
	}
	if cfg.Profile == "" {
		cfg.Profile = ProfileFast
	}
	if _, err := profileConfig(cfg.Profile, 0); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.SecretKey = slices.Clone(cfg.SecretKey)
	return &Membership{
		cfg:     cfg,
		log:     cfg.Logger.With("node", cfg.NodeName),
		ready:   make(chan struct{}),
		changes: make(chan struct{}, 1),
		lost:    make(chan struct{}, 1),
		stopped: make(chan struct{}),
		down:    map[string]bool{},
		dying:   map[string]time.Time{},
	}, nil
}

// Start creates the memberlist and begins joining the peers, retrying in
// the background, then returns. The member runs until ctx ends, when it
// leaves gracefully (within a second), or until Leave or Shutdown.
func (m *Membership) Start(ctx context.Context) error {
	m.life.Lock()
	defer m.life.Unlock()
	if m.started {
		return errors.New("membership: already started")
	}
	select {
	case <-m.stopped:
		return errors.New("membership: already stopped")
	default:
	}
	ml, err := m.create(m.step)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.ml, m.started = ml, true
	m.mu.Unlock()
	m.log.Info("memberlist started", "addr", ml.LocalNode().Address(), "profile", m.cfg.Profile,
		"encrypted", len(m.cfg.SecretKey) > 0)

	alone := time.AfterFunc(m.cfg.JoinTimeout, func() {
		m.markReady("no peer joined within the join timeout; alone")
	})
	go m.joinLoop()
	go func() {
		select {
		case <-ctx.Done():
			if err := m.Leave(leaveOnCancel); err != nil {
				m.log.Warn("graceful leave", "err", err)
			}
		case <-m.stopped:
		}
		alone.Stop()
	}()
	return nil
}

// create creates and starts a memberlist with the timers of the profile's
// step (see fastCurve).
func (m *Membership) create(step int) (*memberlist.Memberlist, error) {
	c := stepConfig(m.cfg.Profile, step)
	m.settle.Store(int64(settleFor(c)))
	c.Name = m.cfg.NodeName
	c.BindAddr = m.cfg.BindAddr
	c.BindPort = m.cfg.BindPort
	c.AdvertisePort = m.cfg.BindPort
	c.SecretKey = m.cfg.SecretKey
	c.Delegate = &m.delegate
	c.Events = (*events)(m)
	c.Alive = aliveFilter{}
	c.Logger = log.New(logWriter{m.log}, "", 0)
	ml, err := memberlist.Create(c)
	if err != nil {
		return nil, fmt.Errorf("membership: start on %s: %w",
			net.JoinHostPort(m.cfg.BindAddr, strconv.Itoa(m.cfg.BindPort)), err)
	}
	return ml, nil
}

// Ready is closed once this member has joined at least one peer (or a peer
// joined it), or once JoinTimeout has passed with no peer.
func (m *Membership) Ready() <-chan struct{} { return m.ready }

// Changes receives a value after any member joins, leaves, fails or updates.
// It holds at most one pending value: a reader that falls behind sees one
// notification for many changes, and should read Members again.
func (m *Membership) Changes() <-chan struct{} { return m.changes }

// Members returns the names of the live members, this one included, sorted.
// A member under suspicion still counts until it is declared dead, so one
// lost datagram does not move addresses. Before Start, and after Leave or
// Shutdown, it returns nil: a member that is out must not elect itself.
// While the memberlist is re-created for another cluster size (resize), it
// returns the members as they were just before.
func (m *Membership) Members() []string {
	if !m.running() {
		return nil
	}
	m.mu.Lock()
	ml, resizing, frozen := m.ml, m.resizing, m.frozen
	m.mu.Unlock()
	if resizing {
		return slices.Clone(frozen)
	}
	if ml == nil {
		return nil
	}
	nodes := ml.Members()
	m.downMu.Lock()
	defer m.downMu.Unlock()
	names := make([]string, 0, len(nodes)+len(m.dying))
	for _, n := range nodes {
		if m.down[n.Name] {
			continue
		}
		names = append(names, n.Name)
	}
	settle := m.deathSettle()
	for name, at := range m.dying {
		if time.Since(at) >= settle {
			delete(m.dying, name)
		} else if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// deathSettle is how long a member declared dead still counts. A cut-off
// member that comes back sends the deaths it declared while alone (the
// kernel held them until its link or route returned), and a live member
// declared dead refutes within a gossip round or two; counted at once,
// each such death moved addresses for a few milliseconds (two nodes
// answering, a gratuitous ARP each way). 100 ms in clusters of up to 128
// (settleFor) is what a real death costs in failover time.
func (m *Membership) deathSettle() time.Duration { return time.Duration(m.settle.Load()) }

// Leave announces this member's departure, so that peers drop it at once
// instead of waiting for failure detection, waits up to timeout for the
// announcement to go out, then shuts down. It returns the announcement's
// error, if any, after shutting down anyway.
func (m *Membership) Leave(timeout time.Duration) error {
	m.life.Lock()
	defer m.life.Unlock()
	ml := m.memberlist()
	if ml == nil {
		return nil
	}
	var err error
	m.stop.Do(func() {
		// Stopped first: from now on Members is nil, so this speaker
		// stops electing itself while its peers learn it is gone.
		close(m.stopped)
		m.notify()
		if err = ml.Leave(timeout); err != nil {
			err = fmt.Errorf("membership: leave: %w", err)
		}
		m.log.Info("left the memberlist")
		if serr := ml.Shutdown(); serr != nil {
			err = errors.Join(err, fmt.Errorf("membership: shutdown: %w", serr))
		}
	})
	return err
}

// Shutdown stops at once without announcing the departure: peers notice
// only through failure detection, as they would a crash. Leave is the way
// out in normal operation; Shutdown serves tests and benchmarks, which use
// it to simulate a node dying.
func (m *Membership) Shutdown() error {
	m.life.Lock()
	defer m.life.Unlock()
	ml := m.memberlist()
	if ml == nil {
		return nil
	}
	var err error
	m.stop.Do(func() {
		close(m.stopped)
		m.notify()
		if err = ml.Shutdown(); err != nil {
			err = fmt.Errorf("membership: shutdown: %w", err)
		}
	})
	return err
}

// memberlist returns the running memberlist, or nil before Start, after a
// stop and while resizing.
func (m *Membership) memberlist() *memberlist.Memberlist {
	if !m.running() {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ml
}

// running reports whether neither Leave nor Shutdown was called.
func (m *Membership) running() bool {
	select {
	case <-m.stopped:
		return false
	default:
		return true
	}
}

func (m *Membership) markReady(why string) {
	m.readyOnce.Do(func() {
		m.log.Info("membership ready", "reason", why)
		close(m.ready)
	})
}

func (m *Membership) notify() {
	select {
	case m.changes <- struct{}{}:
	default: // a notification is already pending; it covers this change
	}
}

// events receives memberlist's notifications. memberlist calls it with its
// own locks held, so it must not block.
type events Membership

func (e *events) NotifyJoin(n *memberlist.Node) {
	m := (*Membership)(e)
	m.setDown(n)
	m.downMu.Lock()
	delete(m.dying, n.Name)
	m.downMu.Unlock()
	if n.Name != m.cfg.NodeName {
		m.log.Info("member joined", "member", n.Name, "addr", n.Address())
		m.markReady("joined a peer")
	}
	m.notify()
}

func (e *events) NotifyLeave(n *memberlist.Node) {
	m := (*Membership)(e)
	// memberlist does not tell a graceful leave from a failure here.
	m.log.Info("member left or failed", "member", n.Name, "addr", n.Address())
	m.lastLeft.Store(time.Now().UnixNano())
	select {
	case m.lost <- struct{}{}:
	default:
	}
	m.downMu.Lock()
	if !m.down[n.Name] && n.Name != m.cfg.NodeName {
		// It counts after deathSettle, unless refuted first (NotifyJoin).
		// memberlist does not say here whether it was a graceful leave
		// (n.State is not kept up to date); a leaving speaker answers for
		// its handover delay anyway, far longer.
		m.dying[n.Name] = time.Now()
		time.AfterFunc(m.deathSettle(), m.notify)
	}
	delete(m.down, n.Name)
	m.downMu.Unlock()
	m.notify()
}

func (e *events) NotifyUpdate(n *memberlist.Node) {
	m := (*Membership)(e)
	m.log.Debug("member updated", "member", n.Name, "addr", n.Address())
	m.setDown(n)
	m.notify()
}

// setDown records whether n's data plane is down; memberlist calls events
// with its lock held, so n's metadata is read safely here.
func (m *Membership) setDown(n *memberlist.Node) {
	m.downMu.Lock()
	defer m.downMu.Unlock()
	if string(n.Meta) == metaDown {
		m.down[n.Name] = true
	} else {
		delete(m.down, n.Name)
	}
}

// aliveFilter refuses peers that are not Herald speakers (see metaMarker).
// memberlist consults it for every alive message, including those merged
// from a push-pull, so no path lets a foreign node in.
type aliveFilter struct{}

func (aliveFilter) NotifyAlive(n *memberlist.Node) error {
	if meta := string(n.Meta); meta != metaMarker && meta != metaDown {
		return fmt.Errorf("node %q at %s is not a Herald speaker", n.Name, n.Address())
	}
	return nil
}

// delegate only supplies the metadata (the marker, and whether the data
// plane is down); speakers exchange no other data over memberlist.
type delegate struct{ down atomic.Bool }

func (d *delegate) NodeMeta(limit int) []byte {
	meta := metaMarker
	if d.down.Load() {
		meta = metaDown
	}
	if len(meta) > limit {
		return nil
	}
	return []byte(meta)
}
func (*delegate) NotifyMsg([]byte)                           {}
func (*delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (*delegate) LocalState(join bool) []byte                { return nil }
func (*delegate) MergeRemoteState(buf []byte, join bool)     {}

// SetDataPlane tells the other members whether this node can carry
// traffic. A member whose data plane is down stays a member (it keeps
// gossiping over whatever path it has) but is left out of Members(), here
// and on every peer, so that the addresses it owned move at once.
func (m *Membership) SetDataPlane(up bool) error {
	if m.delegate.down.Swap(!up) == !up {
		return nil
	}
	m.notify()
	ml := m.memberlist()
	if ml == nil {
		return nil
	}
	return ml.UpdateNode(time.Second)
}

// Rejoin tries the peers at once, for a node whose link has just come back:
// it must hear of the others before it claims addresses again.
func (m *Membership) Rejoin() {
	ml := m.memberlist()
	if ml == nil || m.cfg.Peers == nil {
		return
	}
	go func() { _ = m.join(ml, m.cfg.Peers(), false) }()
}

// logWriter turns memberlist's "[LEVEL] memberlist: message" lines into
// slog records at the matching level.
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\n")
	level := slog.LevelInfo
	for _, l := range []struct {
		prefix string
		level  slog.Level
	}{
		{"[DEBUG] ", slog.LevelDebug},
		{"[INFO] ", slog.LevelInfo},
		{"[WARN] ", slog.LevelWarn},
		{"[ERR] ", slog.LevelError},
		{"[ERROR] ", slog.LevelError},
	} {
		if rest, ok := strings.CutPrefix(line, l.prefix); ok {
			level, line = l.level, rest
			break
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	w.log.Log(context.Background(), level, line, "component", "memberlist")
	return len(p), nil
}

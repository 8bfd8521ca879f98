package membership

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/hashicorp/memberlist"
)

// joinBatch is how many peers one Join contacts at a time. One that
// answers is enough: the push-pull of a join gives its whole member list,
// and the rest are met through gossip. Joining every listed peer at once
// would make each speaker of an n-node cluster exchange the full state
// with n−1 others when they all start: n² transfers of n members.
const joinBatch = 3

// joinLoop, at once and then every retryAlone while alone, while joins
// succeed or soon after a member failed, and every rejoinEvery otherwise,
// fits the timers to the cluster's size (resize) and joins peers that are
// not members.
func (m *Membership) joinLoop() {
	t := time.NewTimer(0)
	defer t.Stop()
	attempts := 0
	for {
		select {
		case <-m.stopped:
			return
		case <-t.C:
		case <-m.lost:
			// A member failed: it may be cut off rather than dead, so the
			// fast retries start now, not at the end of a long wait.
			t.Stop()
		}
		attempts++
		var peers []string
		if m.cfg.Peers != nil {
			peers = m.cfg.Peers()
		}
		// Every listed peer is a node that may run a speaker: the cluster
		// is that large, or about to be.
		m.resize(len(peers) + 1)
		ml := m.memberlist()
		if ml == nil {
			return
		}
		// A join that reached someone may have merged two small groups
		// that started together (each joined the other): the next round
		// comes soon, until one reaches nobody new.
		recentLoss := time.Since(time.Unix(0, m.lastLeft.Load())) < rejoinFastFor
		if joined := m.join(ml, peers, attempts == 1); joined == 0 && ml.NumMembers() > 1 && !recentLoss {
			t.Reset(rejoinEvery)
		} else {
			t.Reset(retryAlone)
		}
	}
}

// join joins peer addresses that are not live members', a few at a time in
// random order until one answers, and returns how many answered. Failures
// are expected (peers not yet started, nodes without a speaker), so only
// the first round logs them above debug level.
func (m *Membership) join(ml *memberlist.Memberlist, peers []string, first bool) int {
	known := map[string]bool{}
	for _, n := range ml.Members() {
		known[n.Address()] = true
	}
	var todo []string
	for _, p := range peers {
		addr, err := peerAddr(p, m.cfg.BindPort)
		if err != nil {
			m.log.Warn("ignoring peer address", "peer", p, "err", err)
			continue
		}
		if !known[addr] && !slices.Contains(todo, addr) {
			todo = append(todo, addr)
		}
	}
	if len(todo) == 0 {
		return 0
	}
	n, tried, err := joinSome(ml, todo)
	level := slog.LevelDebug
	if first {
		level = slog.LevelInfo
	}
	m.log.Log(context.Background(), level, "joined peers", "contacted", n, "tried", tried, "of", len(todo), "err", err)
	return n
}

// joinSome joins addrs joinBatch at a time, in random order, until one
// answers, trying at most joinBatches batches. It returns how many
// answered, how many were tried, and the errors of those that did not
// answer.
//
// The peers of a batch are joined at once: memberlist's Join tries its
// addresses one after another, so a batch of black-holed peers (a
// partition, nodes that are gone) would cost the TCP timeout for each.
// The cap on batches bounds one round the same way when most listed peers
// run no speaker; the next round tries others.
func joinSome(ml *memberlist.Memberlist, addrs []string) (contacted, tried int, err error) {
	addrs = slices.Clone(addrs)
	rand.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
	var errs []error
	batches := 0
	for batch := range slices.Chunk(addrs, joinBatch) {
		n, err := joinBatchAtOnce(ml, batch)
		contacted, tried = contacted+n, tried+len(batch)
		if err != nil {
			errs = append(errs, err)
		}
		if batches++; n > 0 || batches == joinBatches {
			break
		}
	}
	return contacted, tried, errors.Join(errs...)
}

// joinBatches bounds the batches of one joinSome.
const joinBatches = 3

// joinBatchAtOnce joins each of addrs in a goroutine of its own and returns
// how many answered and the errors of the others.
func joinBatchAtOnce(ml *memberlist.Memberlist, addrs []string) (int, error) {
	type result struct {
		n   int
		err error
	}
	results := make(chan result, len(addrs))
	for _, a := range addrs {
		go func() {
			n, err := ml.Join([]string{a})
			results <- result{n, err}
		}()
	}
	n, errs := 0, []error(nil)
	for range addrs {
		r := <-results
		n += r.n
		if r.err != nil {
			errs = append(errs, r.err)
		}
	}
	return n, errors.Join(errs...)
}

// resize moves the fast profile's timers to the step of fastCurve that fits
// the cluster: known members (the peers listed plus this one) or the live
// members, whichever is more. memberlist reads its timers only when it is
// created, so a new step means a new memberlist: the old one stops without
// a word (a Leave would make the others drop this member and move its
// addresses), a new one starts on the same address and joins the members
// the old one knew. The others never see it gone: it answers probes again
// within milliseconds, and refutes, with a higher incarnation, the state
// they hold of its previous self. Meanwhile Members gives the members as
// they were. Steps are a factor of 2 apart and move down only well below
// the limit (nextStep), so this happens a few times in a cluster's life,
// and at once after Start, before any peer is joined, when the peers are
// many.
func (m *Membership) resize(known int) {
	if m.cfg.Profile != ProfileFast {
		return
	}
	m.life.Lock()
	defer m.life.Unlock()
	ml := m.memberlist()
	if ml == nil {
		return
	}
	members := max(known, ml.NumMembers())
	next := nextStep(m.step, members)
	if next == m.step {
		return
	}
	var others []string
	for _, n := range ml.Members() {
		if n.Name != m.cfg.NodeName {
			others = append(others, n.Address())
		}
	}
	m.log.Info("memberlist timers follow the cluster size", "members", members, "from", fastCurve[m.step].String(),
		"to", fastCurve[next].String())
	frozen := m.Members()
	m.mu.Lock()
	m.ml, m.resizing, m.frozen = nil, true, frozen
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.resizing, m.frozen = false, nil
		m.mu.Unlock()
		m.notify()
	}()

	if err := ml.Shutdown(); err != nil {
		m.log.Warn("memberlist shutdown before resizing", "err", err)
	}
	nl, err := m.create(next)
	if err != nil {
		m.log.Error("memberlist with new timers", "err", err)
		next = m.step
		if nl, err = m.create(next); err != nil {
			// The address was ours a moment ago: nothing should hold it.
			// Out of the cluster, this member must not elect itself.
			m.log.Error("memberlist lost: this member is out of the cluster until it restarts", "err", err)
			m.stop.Do(func() { close(m.stopped) })
			return
		}
	}
	m.step = next
	if len(others) > 0 {
		// Members is frozen until this returns: a few tries, not every
		// member (a partition that began meanwhile could make each try
		// wait for TCPTimeout); the join loop does the rest.
		rand.Shuffle(len(others), func(i, j int) { others[i], others[j] = others[j], others[i] })
		others = others[:min(len(others), 3*joinBatch)]
		if n, tried, err := joinSome(nl, others); n == 0 {
			m.log.Warn("rejoining after resizing: no member answered; retrying", "tried", tried, "err", err)
		}
	}
	m.mu.Lock()
	m.ml = nl
	m.mu.Unlock()
}

// String describes a step's timers for logs.
func (s step) String() string {
	return "probe " + s.probe.String() + ", gossip " + s.gossip.String() + ", suspicion ×" + strconv.Itoa(s.suspicionMult)
}

// peerAddr returns p as host:port, with the default port when p has none
// and IP addresses in canonical form, to compare with members' addresses.
func peerAddr(p string, defaultPort int) (string, error) {
	host, port, err := net.SplitHostPort(p)
	if err != nil {
		// No port: a host name, an IPv4 or a bare IPv6 address.
		host, port = p, strconv.Itoa(defaultPort)
	}
	if host == "" {
		return "", errors.New("empty host")
	}
	if a, err := netip.ParseAddr(host); err == nil {
		host = a.Unmap().String()
	}
	return net.JoinHostPort(host, port), nil
}

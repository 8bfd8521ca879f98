// Package ndp answers IPv6 Neighbor Solicitations for the addresses this node
// announces on one interface, announces them with unsolicited Neighbor
// Advertisements when taken and at a regular interval after, and reports
// other hosts claiming them.
//
// Frames are received and sent on an AF_PACKET socket, so nothing depends on
// the interface's IPv6 configuration: it works without a link-local address.
// It needs CAP_NET_RAW.
package ndp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"github.com/herald-lb/herald/internal/l2frame"
)

// Defaults for the zero values of Options.
const (
	DefaultRefreshInterval = 60 * time.Second
	DefaultBurstCount      = 3
	// DefaultBurstInterval spreads a burst over one second: the first
	// advertisement goes out at once for fast failover, the others cover a
	// lost frame or a switch port that is still coming up.
	DefaultBurstInterval = 500 * time.Millisecond
)

// conflictEvery limits OnConflict to one call per address in this interval.
const conflictEvery = 10 * time.Second

// Options configure a Responder.
type Options struct {
	// Interface is the Ethernet interface to answer on. Required.
	Interface *net.Interface
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// RefreshInterval separates the single unsolicited advertisements
	// repeated for every owned address (default 60 s; negative disables).
	RefreshInterval time.Duration
	// BurstCount is the number of unsolicited advertisements sent when an
	// address is taken or announced (default 3).
	BurstCount int
	// BurstInterval separates the advertisements of a burst (default 500 ms).
	BurstInterval time.Duration

	// Callbacks run on the responder's goroutines and must not block.

	// OnConflict is called when another MAC claims an owned address, at most
	// once per address every 10 s.
	OnConflict func(addr netip.Addr, otherMAC net.HardwareAddr)
	// OnRequest is called for each solicitation for an owned address.
	OnRequest func(addr netip.Addr)
	// OnReply is called for each solicited advertisement sent.
	OnReply func(addr netip.Addr)
	// OnGratuitous is called for each unsolicited advertisement sent.
	OnGratuitous func(addr netip.Addr)
}

// Responder answers NDP on one interface. Create it with NewResponder, start
// it with Run and give it addresses with SetAddresses, in any order.
type Responder struct {
	opts  Options
	mac   net.HardwareAddr
	log   *slog.Logger
	table *l2frame.Table

	conn      *packet.Conn
	groups    *memberships
	mld       int // AF_INET6 socket holding kernel group memberships; -1 if none
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// NewResponder opens the raw socket on opts.Interface. The sockets belong to
// the network namespace of the calling thread.
func NewResponder(opts Options) (*Responder, error) {
	r, err := newResponder(opts)
	if err != nil {
		return nil, err
	}
	ifname := opts.Interface.Name
	filter, err := l2frame.Filter(
		l2frame.Match{Offset: 12, Size: 2, Values: []uint32{uint32(l2frame.EtherTypeIPv6)}},
		l2frame.Match{Offset: l2frame.HeaderLen + 6, Size: 1, Values: []uint32{protoICMPv6}},
		l2frame.Match{Offset: l2frame.HeaderLen + 7, Size: 1, Values: []uint32{ndHopLimit}},
		l2frame.Match{Offset: l2frame.HeaderLen + ipv6HeaderLen, Size: 1,
			Values: []uint32{uint32(TypeNeighborSolicitation), uint32(TypeNeighborAdvertisement)}},
	)
	if err != nil {
		return nil, fmt.Errorf("ndp on %s: %w", ifname, err)
	}
	r.conn, err = packet.Listen(opts.Interface, packet.Raw, int(l2frame.EtherTypeIPv6), &packet.Config{Filter: filter})
	if err != nil {
		return nil, fmt.Errorf("ndp on %s: open raw socket: %w", ifname, err)
	}
	// Joining the solicited-node groups through the IPv6 stack as well makes
	// the kernel send MLD reports, so snooping switches forward the
	// solicitations to us. It is best effort: without IPv6 on the
	// interface the packet-socket membership still opens the NIC filter.
	r.mld, err = unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		r.log.Warn("no IPv6 socket for MLD; multicast snooping switches may not forward solicitations", "error", err)
		r.mld = -1
	}
	r.groups = &memberships{count: map[netip.Addr]int{}, join: r.joinGroup, leave: r.leaveGroup}
	return r, nil
}

func newResponder(opts Options) (*Responder, error) {
	if opts.Interface == nil {
		return nil, errors.New("ndp: no interface")
	}
	if len(opts.Interface.HardwareAddr) != 6 {
		return nil, fmt.Errorf("ndp on %s: not an Ethernet interface (hardware address %q)",
			opts.Interface.Name, opts.Interface.HardwareAddr)
	}
	if opts.RefreshInterval == 0 {
		opts.RefreshInterval = DefaultRefreshInterval
	}
	if opts.BurstCount <= 0 {
		opts.BurstCount = DefaultBurstCount
	}
	if opts.BurstInterval <= 0 {
		opts.BurstInterval = DefaultBurstInterval
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Responder{
		opts: opts,
		mac:  slices.Clone(opts.Interface.HardwareAddr),
		log:  log.With("interface", opts.Interface.Name, "protocol", "ndp"),
		mld:  -1,
		table: l2frame.NewTable(l2frame.Pacing{
			BurstCount:    opts.BurstCount,
			BurstInterval: opts.BurstInterval,
			Refresh:       opts.RefreshInterval,
		}),
	}, nil
}

// Run answers solicitations and sends announcements until ctx ends or Close
// is called, then closes the sockets. It returns nil in both cases.
func (r *Responder) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() {
		<-ctx.Done()
		_ = r.Close()
	})
	wg.Go(func() { r.table.Run(ctx, r.announce) })

	buf := make([]byte, 1<<16)
	for {
		n, _, err := r.conn.ReadFrom(buf)
		if err != nil {
			if r.closed.Load() {
				return nil
			}
			// The kernel reports a link going down once on packet sockets;
			// the socket keeps working when the link comes back.
			if errors.Is(err, unix.ENETDOWN) {
				r.log.Info("link down")
				continue
			}
			return fmt.Errorf("ndp on %s: read: %w", r.opts.Interface.Name, err)
		}
		r.handle(buf[:n], time.Now())
	}
}

// Close closes the sockets, which drops their group memberships; Run then
// returns.
func (r *Responder) Close() error {
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		var errs []error
		if r.groups != nil {
			r.groups.mu.Lock()
			if r.mld >= 0 {
				errs = append(errs, unix.Close(r.mld))
				r.mld = -1
			}
			r.groups.mu.Unlock()
		}
		if r.conn != nil {
			errs = append(errs, r.conn.Close())
		}
		r.closeErr = errors.Join(errs...)
	})
	return r.closeErr
}

// SetAddresses replaces the set of owned IPv6 addresses. Added ones get their
// solicited-node group joined and are announced at once (once Run is
// running); removed ones are neither answered nor announced after
// SetAddresses returns, and their group is left when no other owned address
// shares it. Addresses that are not IPv6, or are multicast, are ignored.
func (r *Responder) SetAddresses(addrs []netip.Addr) {
	own := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		a = a.WithZone("")
		if !a.Is6() || a.Is4In6() || a.IsMulticast() || a.IsUnspecified() {
			r.log.Debug("ignoring address", "address", a)
			continue
		}
		own = append(own, a)
	}
	added, removed := r.table.Replace(own, time.Now())
	if len(added) > 0 || len(removed) > 0 {
		r.log.Info("addresses changed", "added", added, "removed", removed)
	}
	if r.groups != nil {
		for _, err := range r.groups.update(added, removed) {
			r.log.Warn("multicast membership", "error", err)
		}
	}
}

// Addresses returns the owned addresses, sorted.
func (r *Responder) Addresses() []netip.Addr { return r.table.Addrs() }

// Announce sends a fresh burst of unsolicited advertisements for addr if it
// is owned, for example after the link came back up.
func (r *Responder) Announce(addr netip.Addr) { r.table.Announce(addr.WithZone(""), time.Now()) }

// AnnounceAll sends a fresh burst for every owned address.
func (r *Responder) AnnounceAll() { r.table.AnnounceAll(time.Now()) }

// handle processes one received frame.
func (r *Responder) handle(frame []byte, now time.Time) {
	reply, addr := r.answer(frame, now)
	if reply == nil {
		return
	}
	if r.opts.OnRequest != nil {
		r.opts.OnRequest(addr)
	}
	var err error
	sent := r.table.IfOwned(addr, func() {
		_, err = r.conn.WriteTo(reply, &packet.Addr{HardwareAddr: net.HardwareAddr(reply[0:6])})
	})
	switch {
	case !sent:
	case err != nil:
		r.log.Warn("sending advertisement", "address", addr, "error", err)
	default:
		r.log.Debug("replied", "address", addr, "to", net.HardwareAddr(reply[0:6]))
		if r.opts.OnReply != nil {
			r.opts.OnReply(addr)
		}
	}
}

// answer decides what to do with a received frame: it reports a conflict if
// the frame claims an owned address for another MAC, and returns the
// advertisement answering it and the address asked for if the frame is a
// solicitation for an owned address. It sends nothing.
func (r *Responder) answer(frame []byte, now time.Time) (reply []byte, addr netip.Addr) {
	h, payload, err := l2frame.ParseHeader(frame)
	if err != nil || h.EtherType != l2frame.EtherTypeIPv6 || bytes.Equal(h.Src, r.mac) {
		return nil, netip.Addr{}
	}
	m, err := ParseIPv6(payload)
	if err != nil {
		return nil, netip.Addr{}
	}
	// The link-layer address the message asks its receivers to use.
	claimed := m.LinkAddr
	if claimed == nil {
		claimed = h.Src
	}
	switch m.Type {
	case TypeNeighborAdvertisement:
		r.conflict(m.Target, claimed, now)
		return nil, netip.Addr{}
	case TypeNeighborSolicitation:
		// A solicitation from an owned address updates its receivers'
		// caches with the sender's link-layer address.
		if !m.Src.IsUnspecified() {
			r.conflict(m.Src, claimed, now)
		}
	default:
		return nil, netip.Addr{}
	}
	if !bytes.Equal(h.Dst, r.mac) && h.Dst[0]&1 == 0 {
		return nil, netip.Addr{}
	}
	if !r.table.Owns(m.Target) {
		return nil, netip.Addr{}
	}
	na := Message{
		Type:     TypeNeighborAdvertisement,
		Src:      m.Target,
		Override: true,
		Target:   m.Target,
		LinkAddr: r.mac,
	}
	var dst net.HardwareAddr
	if m.Src.IsUnspecified() {
		// Duplicate address detection by another host: defend the address
		// to all nodes, unsolicited (RFC 4861 §7.2.4).
		na.Dst, dst = AllNodes, MulticastMAC(AllNodes)
	} else {
		// Unicast NUD probes often carry no source link-layer option; the
		// frame's source is then the solicitor's address.
		na.Dst, na.Solicited, dst = m.Src, true, claimed
	}
	return Frame(dst, r.mac, na), m.Target
}

func (r *Responder) conflict(addr netip.Addr, mac net.HardwareAddr, now time.Time) {
	if bytes.Equal(mac, r.mac) || !r.table.Conflict(addr, now, conflictEvery) {
		return
	}
	other := slices.Clone(mac)
	r.log.Warn("another host claims an owned address", "address", addr, "mac", other)
	if r.opts.OnConflict != nil {
		r.opts.OnConflict(addr, other)
	}
}

// announce sends one unsolicited advertisement for addr to all nodes.
func (r *Responder) announce(addr netip.Addr) {
	frame := Frame(MulticastMAC(AllNodes), r.mac, Message{
		Type:     TypeNeighborAdvertisement,
		Src:      addr,
		Dst:      AllNodes,
		Override: true,
		Target:   addr,
		LinkAddr: r.mac,
	})
	var err error
	sent := r.table.IfOwned(addr, func() {
		_, err = r.conn.WriteTo(frame, &packet.Addr{HardwareAddr: MulticastMAC(AllNodes)})
	})
	switch {
	case !sent:
	case err != nil:
		r.log.Warn("sending unsolicited advertisement", "address", addr, "error", err)
	case r.opts.OnGratuitous != nil:
		r.opts.OnGratuitous(addr)
	}
}

// joinGroup makes the interface accept group's frames and, when possible,
// has the kernel report the membership with MLD. Called with groups.mu held.
func (r *Responder) joinGroup(group netip.Addr) error {
	if r.closed.Load() {
		return nil
	}
	if err := r.conn.JoinGroup(MulticastMAC(group)); err != nil {
		return fmt.Errorf("join %s: %w", group, err)
	}
	if r.mld < 0 {
		return nil
	}
	mreq := &unix.IPv6Mreq{Multiaddr: group.As16(), Interface: uint32(r.opts.Interface.Index)}
	if err := unix.SetsockoptIPv6Mreq(r.mld, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, mreq); err != nil {
		return fmt.Errorf("join %s for MLD: %w", group, err)
	}
	return nil
}

// leaveGroup undoes joinGroup. Called with groups.mu held.
func (r *Responder) leaveGroup(group netip.Addr) error {
	if r.closed.Load() {
		return nil
	}
	var errs []error
	if err := r.conn.LeaveGroup(MulticastMAC(group)); err != nil {
		errs = append(errs, fmt.Errorf("leave %s: %w", group, err))
	}
	if r.mld >= 0 {
		mreq := &unix.IPv6Mreq{Multiaddr: group.As16(), Interface: uint32(r.opts.Interface.Index)}
		// EADDRNOTAVAIL: the join failed earlier (no IPv6 on the link).
		if err := unix.SetsockoptIPv6Mreq(r.mld, unix.IPPROTO_IPV6, unix.IPV6_LEAVE_GROUP, mreq); err != nil &&
			!errors.Is(err, unix.EADDRNOTAVAIL) {
			errs = append(errs, fmt.Errorf("leave %s for MLD: %w", group, err))
		}
	}
	return errors.Join(errs...)
}

// memberships counts owned addresses per solicited-node group: addresses
// sharing their low 24 bits share a group, which is joined with the first and
// left with the last.
type memberships struct {
	mu          sync.Mutex
	count       map[netip.Addr]int
	join, leave func(group netip.Addr) error
}

// update accounts for added and removed addresses and returns the errors of
// the joins and leaves it made.
func (m *memberships) update(added, removed []netip.Addr) []error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, a := range added {
		g := SolicitedNode(a)
		m.count[g]++
		if m.count[g] == 1 {
			if err := m.join(g); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for _, a := range removed {
		g := SolicitedNode(a)
		if m.count[g] == 0 {
			continue
		}
		m.count[g]--
		if m.count[g] == 0 {
			delete(m.count, g)
			if err := m.leave(g); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

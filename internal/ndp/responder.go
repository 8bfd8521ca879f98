// Package ndp answers IPv6 Neighbor Solicitations for the addresses this node
// announces on one interface, announces them with unsolicited Neighbor
// Advertisements when taken and at a regular interval after, and reports
// other hosts claiming them.
//
// Frames are received and sent on an AF_PACKET socket, so nothing depends on
// the interface's IPv6 configuration: it works without a link-local address.
// It needs CAP_NET_RAW. The socket, pacing and conflict reporting are
// l2frame's; this package decides what a neighbor message asks, how to
// answer it, and which multicast groups to be in.
package ndp

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"github.com/herald-lb/herald/internal/l2frame"
)

// Defaults for the zero values of Options.
const (
	DefaultRefreshInterval = l2frame.DefaultRefreshInterval
	DefaultBurstCount      = l2frame.DefaultBurstCount
	DefaultBurstInterval   = l2frame.DefaultBurstInterval
)

// Options configure a Responder. A gratuitous round is one unsolicited
// Neighbor Advertisement; a request is a Neighbor Solicitation and a reply a
// solicited advertisement.
type Options = l2frame.Options

// Responder answers NDP on one interface. Create it with NewResponder, start
// it with Run and give it addresses with SetAddresses, in any order.
// SetAddresses joins the solicited-node group of each added address and
// leaves it when no other owned address shares it; it ignores addresses
// that are not IPv6, or are multicast. Close drops the memberships.
type Responder = l2frame.Responder

// NewResponder opens the raw socket on opts.Interface. The sockets belong to
// the network namespace of the calling thread.
func NewResponder(opts Options) (*Responder, error) {
	return l2frame.Listen(opts, &protocol{mld: -1})
}

// newResponder validates opts and builds a responder without a socket.
func newResponder(opts Options) (*Responder, error) {
	return l2frame.New(opts, &protocol{mld: -1})
}

// protocol is NDP for l2frame.Responder. Its state is the group memberships
// of one responder.
type protocol struct {
	conn    *packet.Conn
	ifindex int
	groups  *memberships // nil until Open
	mld     int          // AF_INET6 socket holding kernel group memberships; -1 if none
	closed  bool         // guarded by groups.mu
}

func (*protocol) Name() string      { return "ndp" }
func (*protocol) EtherType() uint16 { return l2frame.EtherTypeIPv6 }

func (*protocol) Filter() []l2frame.Match {
	return []l2frame.Match{
		{Offset: 12, Size: 2, Values: []uint32{uint32(l2frame.EtherTypeIPv6)}},
		{Offset: l2frame.HeaderLen + 6, Size: 1, Values: []uint32{protoICMPv6}},
		{Offset: l2frame.HeaderLen + 7, Size: 1, Values: []uint32{ndHopLimit}},
		{Offset: l2frame.HeaderLen + ipv6HeaderLen, Size: 1,
			Values: []uint32{uint32(TypeNeighborSolicitation), uint32(TypeNeighborAdvertisement)}},
	}
}

func (*protocol) Accept(a netip.Addr) (netip.Addr, bool) {
	a = a.WithZone("")
	return a, a.Is6() && !a.Is4In6() && !a.IsMulticast() && !a.IsUnspecified()
}

func (*protocol) Inspect(frame []byte, self net.HardwareAddr, owns func(netip.Addr) bool) l2frame.Inspection {
	h, payload, err := l2frame.ParseHeader(frame)
	if err != nil || h.EtherType != l2frame.EtherTypeIPv6 || bytes.Equal(h.Src, self) {
		return l2frame.Inspection{}
	}
	m, err := ParseIPv6(payload)
	if err != nil {
		return l2frame.Inspection{}
	}
	// The link-layer address the message asks its receivers to use.
	claimed := m.LinkAddr
	if claimed == nil {
		claimed = h.Src
	}
	var in l2frame.Inspection
	switch m.Type {
	case TypeNeighborAdvertisement:
		return l2frame.Inspection{Claimed: m.Target, ClaimedBy: claimed}
	case TypeNeighborSolicitation:
		// A solicitation from an owned address updates its receivers'
		// caches with the sender's link-layer address.
		if !m.Src.IsUnspecified() {
			in.Claimed, in.ClaimedBy = m.Src, claimed
		}
	default:
		return l2frame.Inspection{}
	}
	if !bytes.Equal(h.Dst, self) && h.Dst[0]&1 == 0 {
		return in
	}
	if !owns(m.Target) {
		return in
	}
	na := Message{
		Type:     TypeNeighborAdvertisement,
		Src:      m.Target,
		Override: true,
		Target:   m.Target,
		LinkAddr: self,
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
	in.Asked, in.Reply = m.Target, Frame(dst, self, na)
	return in
}

// Gratuitous is one unsolicited advertisement for addr to all nodes.
func (*protocol) Gratuitous(self net.HardwareAddr, addr netip.Addr) (net.HardwareAddr, [][]byte) {
	frame := Frame(MulticastMAC(AllNodes), self, Message{
		Type:     TypeNeighborAdvertisement,
		Src:      addr,
		Dst:      AllNodes,
		Override: true,
		Target:   addr,
		LinkAddr: self,
	})
	return MulticastMAC(AllNodes), [][]byte{frame}
}

// Open starts counting group memberships on conn. Joining the
// solicited-node groups through the IPv6 stack as well makes the kernel
// send MLD reports, so snooping switches forward the solicitations to us.
// It is best effort: without IPv6 on the interface the packet-socket
// membership still opens the NIC filter.
func (p *protocol) Open(conn *packet.Conn, ifi *net.Interface, log *slog.Logger) {
	p.conn, p.ifindex = conn, ifi.Index
	mld, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		log.Warn("no IPv6 socket for MLD; multicast snooping switches may not forward solicitations", "error", err)
		mld = -1
	}
	p.mld = mld
	p.groups = &memberships{count: map[netip.Addr]int{}, join: p.joinGroup, leave: p.leaveGroup}
}

// Update joins and leaves solicited-node groups for the addresses added and
// removed.
func (p *protocol) Update(added, removed []netip.Addr) []error {
	if p.groups == nil {
		return nil
	}
	return p.groups.update(added, removed)
}

// Close closes the MLD socket, which drops its memberships; joins and leaves
// after it do nothing.
func (p *protocol) Close() error {
	if p.groups == nil {
		return nil
	}
	p.groups.mu.Lock()
	defer p.groups.mu.Unlock()
	p.closed = true
	if p.mld < 0 {
		return nil
	}
	err := unix.Close(p.mld)
	p.mld = -1
	return err
}

// joinGroup makes the interface accept group's frames and, when possible,
// has the kernel report the membership with MLD. Called with groups.mu held.
func (p *protocol) joinGroup(group netip.Addr) error {
	if p.closed {
		return nil
	}
	if err := p.conn.JoinGroup(MulticastMAC(group)); err != nil {
		return fmt.Errorf("join %s: %w", group, err)
	}
	if p.mld < 0 {
		return nil
	}
	mreq := &unix.IPv6Mreq{Multiaddr: group.As16(), Interface: uint32(p.ifindex)}
	if err := unix.SetsockoptIPv6Mreq(p.mld, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, mreq); err != nil {
		return fmt.Errorf("join %s for MLD: %w", group, err)
	}
	return nil
}

// leaveGroup undoes joinGroup. Called with groups.mu held.
func (p *protocol) leaveGroup(group netip.Addr) error {
	if p.closed {
		return nil
	}
	var errs []error
	if err := p.conn.LeaveGroup(MulticastMAC(group)); err != nil {
		errs = append(errs, fmt.Errorf("leave %s: %w", group, err))
	}
	if p.mld >= 0 {
		mreq := &unix.IPv6Mreq{Multiaddr: group.As16(), Interface: uint32(p.ifindex)}
		// EADDRNOTAVAIL: the join failed earlier (no IPv6 on the link).
		if err := unix.SetsockoptIPv6Mreq(p.mld, unix.IPPROTO_IPV6, unix.IPV6_LEAVE_GROUP, mreq); err != nil &&
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

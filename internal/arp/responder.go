// Package arp answers ARP requests for the IPv4 addresses this node announces
// on one interface, announces them with gratuitous ARP when taken and at a
// regular interval after, and reports other hosts claiming them.
//
// It uses an AF_PACKET socket for both directions, so it works whatever IP
// configuration the interface has (none at all included). It needs
// CAP_NET_RAW.
package arp

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
	// DefaultBurstInterval spreads a burst over one second: the first round
	// goes out at once for fast failover, the others cover a lost frame or
	// a switch port that is still coming up.
	DefaultBurstInterval = 500 * time.Millisecond
)

// conflictEvery limits OnConflict to one call per address in this interval,
// so that a flapping neighbour cannot flood logs and events.
const conflictEvery = 10 * time.Second

// Options configure a Responder.
type Options struct {
	// Interface is the Ethernet interface to answer on. Required.
	Interface *net.Interface
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// RefreshInterval separates the single gratuitous rounds repeated for
	// every owned address (default 60 s; negative disables).
	RefreshInterval time.Duration
	// BurstCount is the number of gratuitous rounds sent when an address is
	// taken or announced (default 3). A round is an ARP request and an ARP
	// reply.
	BurstCount int
	// BurstInterval separates the rounds of a burst (default 500 ms).
	BurstInterval time.Duration

	// Callbacks run on the responder's goroutines and must not block.

	// OnConflict is called when another MAC claims an owned address, at most
	// once per address every 10 s.
	OnConflict func(addr netip.Addr, otherMAC net.HardwareAddr)
	// OnRequest is called for each request for an owned address.
	OnRequest func(addr netip.Addr)
	// OnReply is called for each reply sent.
	OnReply func(addr netip.Addr)
	// OnGratuitous is called for each gratuitous frame sent.
	OnGratuitous func(addr netip.Addr)
}

// Responder answers ARP on one interface. Create it with NewResponder, start
// it with Run and give it addresses with SetAddresses, in any order.
type Responder struct {
	opts  Options
	mac   net.HardwareAddr
	log   *slog.Logger
	table *l2frame.Table

	conn      *packet.Conn
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// NewResponder opens the raw socket on opts.Interface. The socket belongs to
// the network namespace of the calling thread.
func NewResponder(opts Options) (*Responder, error) {
	r, err := newResponder(opts)
	if err != nil {
		return nil, err
	}
	filter, err := l2frame.Filter(
		l2frame.Match{Offset: 12, Size: 2, Values: []uint32{uint32(l2frame.EtherTypeARP)}},
		l2frame.Match{Offset: 14, Size: 2, Values: []uint32{hwEthernet}},
		l2frame.Match{Offset: 16, Size: 2, Values: []uint32{uint32(l2frame.EtherTypeIPv4)}},
		l2frame.Match{Offset: 18, Size: 2, Values: []uint32{0x0604}}, // address lengths
	)
	if err != nil {
		return nil, fmt.Errorf("arp on %s: %w", opts.Interface.Name, err)
	}
	r.conn, err = packet.Listen(opts.Interface, packet.Raw, int(l2frame.EtherTypeARP), &packet.Config{Filter: filter})
	if err != nil {
		return nil, fmt.Errorf("arp on %s: open raw socket: %w", opts.Interface.Name, err)
	}
	return r, nil
}

// newResponder validates opts and builds a responder without a socket.
func newResponder(opts Options) (*Responder, error) {
	if opts.Interface == nil {
		return nil, errors.New("arp: no interface")
	}
	if len(opts.Interface.HardwareAddr) != 6 {
		return nil, fmt.Errorf("arp on %s: not an Ethernet interface (hardware address %q)",
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
		log:  log.With("interface", opts.Interface.Name, "protocol", "arp"),
		table: l2frame.NewTable(l2frame.Pacing{
			BurstCount:    opts.BurstCount,
			BurstInterval: opts.BurstInterval,
			Refresh:       opts.RefreshInterval,
		}),
	}, nil
}

// Run answers requests and sends announcements until ctx ends or Close is
// called, then closes the socket. It returns nil in both cases.
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
			return fmt.Errorf("arp on %s: read: %w", r.opts.Interface.Name, err)
		}
		r.handle(buf[:n], time.Now())
	}
}

// Close closes the socket; Run then returns.
func (r *Responder) Close() error {
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		if r.conn != nil {
			r.closeErr = r.conn.Close()
		}
	})
	return r.closeErr
}

// SetAddresses replaces the set of owned IPv4 addresses. Added ones are
// announced at once (once Run is running); removed ones are neither answered
// nor announced after SetAddresses returns. Addresses that are not IPv4 are
// ignored.
func (r *Responder) SetAddresses(addrs []netip.Addr) {
	own := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		a = a.Unmap()
		if !a.Is4() {
			r.log.Debug("ignoring non-IPv4 address", "address", a)
			continue
		}
		own = append(own, a)
	}
	added, removed := r.table.Replace(own, time.Now())
	if len(added) > 0 || len(removed) > 0 {
		r.log.Info("addresses changed", "added", added, "removed", removed)
	}
}

// Addresses returns the owned addresses, sorted.
func (r *Responder) Addresses() []netip.Addr { return r.table.Addrs() }

// Announce sends a fresh gratuitous burst for addr if it is owned, for
// example after the link came back up.
func (r *Responder) Announce(addr netip.Addr) {
	r.table.Announce(addr.Unmap(), time.Now())
}

// AnnounceAll sends a fresh gratuitous burst for every owned address.
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
		r.log.Warn("sending reply", "address", addr, "error", err)
	default:
		r.log.Debug("replied", "address", addr, "to", net.HardwareAddr(reply[0:6]))
		if r.opts.OnReply != nil {
			r.opts.OnReply(addr)
		}
	}
}

// answer decides what to do with a received frame: it reports a conflict if
// the frame claims an owned address for another MAC, and returns the reply
// frame and the address asked for if the frame is a request for an owned
// address. It sends nothing.
func (r *Responder) answer(frame []byte, now time.Time) (reply []byte, addr netip.Addr) {
	h, payload, err := l2frame.ParseHeader(frame)
	if err != nil || h.EtherType != l2frame.EtherTypeARP {
		return nil, netip.Addr{}
	}
	p, err := ParsePacket(payload)
	if err != nil || bytes.Equal(p.SenderMAC, r.mac) {
		return nil, netip.Addr{}
	}
	// Any ARP packet, request or reply, whose sender is an owned address
	// tells its receivers to send that address's traffic to another MAC.
	if r.table.Conflict(p.SenderIP, now, conflictEvery) {
		other := slices.Clone(p.SenderMAC)
		r.log.Warn("another host claims an owned address", "address", p.SenderIP, "mac", other)
		if r.opts.OnConflict != nil {
			r.opts.OnConflict(p.SenderIP, other)
		}
	}
	if p.Op != OpRequest || !(l2frame.IsBroadcast(h.Dst) || bytes.Equal(h.Dst, r.mac)) {
		return nil, netip.Addr{}
	}
	// A request with sender = target is an announcement, not a question.
	if p.SenderIP == p.TargetIP || !r.table.Owns(p.TargetIP) {
		return nil, netip.Addr{}
	}
	return Frame(p.SenderMAC, r.mac, Packet{
		Op:        OpReply,
		SenderMAC: r.mac,
		SenderIP:  p.TargetIP,
		TargetMAC: p.SenderMAC,
		TargetIP:  p.SenderIP,
	}), p.TargetIP
}

// announce sends one gratuitous round for addr.
func (r *Responder) announce(addr netip.Addr) {
	request, reply := GratuitousFrames(r.mac, addr)
	sent := 0
	var err error
	r.table.IfOwned(addr, func() {
		for _, f := range [][]byte{request, reply} {
			if _, err = r.conn.WriteTo(f, &packet.Addr{HardwareAddr: l2frame.Broadcast}); err != nil {
				return
			}
			sent++
		}
	})
	if err != nil {
		r.log.Warn("sending gratuitous ARP", "address", addr, "error", err)
	}
	if r.opts.OnGratuitous != nil {
		for range sent {
			r.opts.OnGratuitous(addr)
		}
	}
}

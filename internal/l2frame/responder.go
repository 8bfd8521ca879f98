package l2frame

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
	// taken or announced (default 3). A round is what the protocol sends
	// for one announcement: an ARP request and reply, or one unsolicited
	// Neighbor Advertisement.
	BurstCount int
	// BurstInterval separates the rounds of a burst (default 500 ms).
	BurstInterval time.Duration

	// Callbacks run on the responder's goroutines and must not block.

	// OnConflict is called when another MAC claims an owned address, at most
	// once per address every 10 s.
	OnConflict func(addr netip.Addr, otherMAC net.HardwareAddr)
	// OnRequest is called for each request (ARP request, Neighbor
	// Solicitation) for an owned address.
	OnRequest func(addr netip.Addr)
	// OnReply is called for each reply sent.
	OnReply func(addr netip.Addr)
	// OnGratuitous is called for each gratuitous frame sent.
	OnGratuitous func(addr netip.Addr)
}

// Protocol is what a Responder needs to know of the protocol it speaks.
// Its methods must be safe for concurrent use.
type Protocol interface {
	// Name names the protocol in logs and errors, such as "arp".
	Name() string
	// EtherType is the EtherType the socket is bound to.
	EtherType() uint16
	// Filter is the socket filter's matches beyond the frame's direction.
	Filter() []Match
	// Accept reports whether the protocol serves addr, and the form the
	// table keeps it in.
	Accept(addr netip.Addr) (netip.Addr, bool)
	// Inspect reads a received frame. It reports the address the frame
	// claims for another link-layer address, if any, and, if the frame asks
	// for an address owns reports owned, the reply and that address. It
	// sends nothing.
	Inspect(frame []byte, self net.HardwareAddr, owns func(netip.Addr) bool) Inspection
	// Gratuitous returns the frames of one announcement of addr at self and
	// the link-layer address they go to.
	Gratuitous(self net.HardwareAddr, addr netip.Addr) (dst net.HardwareAddr, frames [][]byte)
}

// Inspection is what Protocol.Inspect found in a frame.
type Inspection struct {
	// Claimed is an address the frame tells its receivers to reach at
	// ClaimedBy; invalid when it claims none.
	Claimed   netip.Addr
	ClaimedBy net.HardwareAddr
	// Reply answers a request for the owned address Asked; nil for none.
	// Its first six bytes are the destination MAC.
	Reply []byte
	Asked netip.Addr
}

// Memberships is implemented by a Protocol that must join link-layer groups
// for the addresses it owns, as NDP does for solicited-node groups.
type Memberships interface {
	// Open is called once, by Listen, with the socket just opened on ifi.
	Open(conn *packet.Conn, ifi *net.Interface, log *slog.Logger)
	// Update is called by SetAddresses after the owned set changed, and
	// returns the errors of the joins and leaves it made. It does nothing
	// before Open or after Close.
	Update(added, removed []netip.Addr) []error
	// Close is called once, by Close, before the socket is closed.
	Close() error
}

// Responder answers one protocol on one interface. Create it with Listen,
// start it with Run and give it addresses with SetAddresses, in any order.
type Responder struct {
	opts  Options
	proto Protocol
	mac   net.HardwareAddr
	log   *slog.Logger
	table *Table
	owns  func(netip.Addr) bool // table.Owns, bound once rather than per frame

	conn      *packet.Conn
	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// New validates opts, applies the defaults and returns a responder without
// a socket: Answer works, Run does not. Listen is New with the socket.
func New(opts Options, p Protocol) (*Responder, error) {
	if opts.Interface == nil {
		return nil, fmt.Errorf("%s: no interface", p.Name())
	}
	if len(opts.Interface.HardwareAddr) != 6 {
		return nil, fmt.Errorf("%s on %s: not an Ethernet interface (hardware address %q)",
			p.Name(), opts.Interface.Name, opts.Interface.HardwareAddr)
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
	r := &Responder{
		opts:  opts,
		proto: p,
		mac:   slices.Clone(opts.Interface.HardwareAddr),
		log:   log.With("interface", opts.Interface.Name, "protocol", p.Name()),
		table: NewTable(Pacing{
			BurstCount:    opts.BurstCount,
			BurstInterval: opts.BurstInterval,
			Refresh:       opts.RefreshInterval,
		}),
	}
	r.owns = r.table.Owns
	return r, nil
}

// Listen builds a responder and opens its raw socket on opts.Interface. The
// socket belongs to the network namespace of the calling thread.
func Listen(opts Options, p Protocol) (*Responder, error) {
	r, err := New(opts, p)
	if err != nil {
		return nil, err
	}
	ifname := opts.Interface.Name
	filter, err := Filter(p.Filter()...)
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", p.Name(), ifname, err)
	}
	r.conn, err = packet.Listen(opts.Interface, packet.Raw, int(p.EtherType()), &packet.Config{Filter: filter})
	if err != nil {
		return nil, fmt.Errorf("%s on %s: open raw socket: %w", p.Name(), ifname, err)
	}
	if m, ok := p.(Memberships); ok {
		m.Open(r.conn, opts.Interface, r.log)
	}
	return r, nil
}

// Options returns the options in effect, defaults applied.
func (r *Responder) Options() Options { return r.opts }

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
			return fmt.Errorf("%s on %s: read: %w", r.proto.Name(), r.opts.Interface.Name, err)
		}
		r.handle(buf[:n], time.Now())
	}
}

// Close closes the socket, and with it any group memberships; Run then
// returns.
func (r *Responder) Close() error {
	r.closeOnce.Do(func() {
		r.closed.Store(true)
		var errs []error
		if m, ok := r.proto.(Memberships); ok && r.conn != nil {
			errs = append(errs, m.Close())
		}
		if r.conn != nil {
			errs = append(errs, r.conn.Close())
		}
		r.closeErr = errors.Join(errs...)
	})
	return r.closeErr
}

// SetAddresses replaces the set of owned addresses. Added ones are announced
// at once (once Run is running); removed ones are neither answered nor
// announced after SetAddresses returns. Addresses the protocol does not
// serve are ignored.
func (r *Responder) SetAddresses(addrs []netip.Addr) {
	own := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		b, ok := r.proto.Accept(a)
		if !ok {
			r.log.Debug("ignoring address", "address", a)
			continue
		}
		own = append(own, b)
	}
	added, removed := r.table.Replace(own, time.Now())
	if len(added) > 0 || len(removed) > 0 {
		r.log.Info("addresses changed", "added", added, "removed", removed)
	}
	if m, ok := r.proto.(Memberships); ok {
		for _, err := range m.Update(added, removed) {
			r.log.Warn("multicast membership", "error", err)
		}
	}
}

// Addresses returns the owned addresses, sorted.
func (r *Responder) Addresses() []netip.Addr { return r.table.Addrs() }

// Announce sends a fresh gratuitous burst for addr if it is owned, for
// example after the link came back up.
func (r *Responder) Announce(addr netip.Addr) {
	if a, ok := r.proto.Accept(addr); ok {
		r.table.Announce(a, time.Now())
	}
}

// AnnounceAll sends a fresh gratuitous burst for every owned address.
func (r *Responder) AnnounceAll() { r.table.AnnounceAll(time.Now()) }

// handle processes one received frame.
func (r *Responder) handle(frame []byte, now time.Time) {
	reply, addr := r.Answer(frame, now)
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

// Answer decides what to do with a received frame: it reports a conflict if
// the frame claims an owned address for another MAC, and returns the reply
// frame and the address asked for if the frame is a request for an owned
// address. It sends nothing.
func (r *Responder) Answer(frame []byte, now time.Time) (reply []byte, addr netip.Addr) {
	in := r.proto.Inspect(frame, r.mac, r.owns)
	if in.Claimed.IsValid() && !bytes.Equal(in.ClaimedBy, r.mac) && r.table.Conflict(in.Claimed, now, conflictEvery) {
		other := slices.Clone(in.ClaimedBy)
		r.log.Warn("another host claims an owned address", "address", in.Claimed, "mac", other.String())
		if r.opts.OnConflict != nil {
			r.opts.OnConflict(in.Claimed, other)
		}
	}
	if in.Reply == nil {
		return nil, netip.Addr{}
	}
	return in.Reply, in.Asked
}

// announce sends one gratuitous round for addr.
func (r *Responder) announce(addr netip.Addr) {
	dst, frames := r.proto.Gratuitous(r.mac, addr)
	sent := 0
	var err error
	r.table.IfOwned(addr, func() {
		for _, f := range frames {
			if _, err = r.conn.WriteTo(f, &packet.Addr{HardwareAddr: dst}); err != nil {
				return
			}
			sent++
		}
	})
	if err != nil {
		r.log.Warn("sending gratuitous frame", "address", addr, "error", err)
	}
	if r.opts.OnGratuitous != nil {
		for range sent {
			r.opts.OnGratuitous(addr)
		}
	}
}

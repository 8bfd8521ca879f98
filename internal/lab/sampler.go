package lab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/mdlayher/packet"
	"github.com/vishvananda/netns"
)

// An AnswerSampler asks the LAN who has one IPv4 address, over and over for
// as long as it runs, and records which MAC addresses answer each request.
// Two MACs answering one request is the fault Layer 2 mode must never show,
// even for an instant: the sampler keeps the first such round, and waiting
// for the answers to settle down is no way around it.
//
// Each request comes from a MAC address of its own (the round's tag), so
// every reply, unicast back to that MAC, names its round exactly however
// late it arrives. The requests come from an address no host holds
// (SamplerIPv4 in a lab), so no host's neighbour cache learns the made-up
// MACs for a real address.
type AnswerSampler struct {
	addr                  netip.Addr
	conn                  *packet.Conn
	stopSend, stopReceive context.CancelFunc
	sending, receiving    sync.WaitGroup
	stopOnce              sync.Once
	closeErr              error

	mu     sync.Mutex
	rounds []Round
	fault  *DoubleAnswerError
	ioErr  error
}

// Round is one request and the MAC addresses that answered it, in order of
// arrival.
type Round struct {
	Sent time.Time
	MACs []net.HardwareAddr
}

// DoubleAnswerError is the first round that two or more MACs answered.
type DoubleAnswerError struct {
	Addr  netip.Addr
	Round int // index in the rounds the sampler returns
	Sent  time.Time
	MACs  []net.HardwareAddr
}

func (e *DoubleAnswerError) Error() string {
	return fmt.Sprintf("%s answered by %d MACs %v to one ARP request (round %d, sent %s)",
		e.Addr, len(e.MACs), e.MACs, e.Round, e.Sent.Format("15:04:05.000"))
}

// SamplerIPv4 is the sender address of a lab sampler's requests: on the LAN,
// held by no member.
var SamplerIPv4 = netip.MustParseAddr("192.0.2.99")

// samplerTags is how many distinct request MACs a sampler cycles through:
// a reply to a tag is credited to its latest round, so a tag is reused only
// after tens of seconds, and the bridge learns no more than this many MACs.
const samplerTags = 4096

// samplerSettle is how long a request's answers are waited for before
// WaitRound looks at its round.
const samplerSettle = 200 * time.Millisecond

// SampleAnswers starts an AnswerSampler on the client's eth0, asking for
// addr every interval.
func (l *Lab) SampleAnswers(ctx context.Context, addr netip.Addr, every time.Duration) (*AnswerSampler, error) {
	return StartAnswerSampler(ctx, l.clientM.Namespace, "eth0", SamplerIPv4, addr, every)
}

// StartAnswerSampler starts a sampler in the named network namespace, on
// interface ifname, asking for addr from the address from every interval.
func StartAnswerSampler(ctx context.Context, namespace, ifname string, from, addr netip.Addr, every time.Duration) (*AnswerSampler, error) {
	if !addr.Is4() || !from.Is4() {
		return nil, fmt.Errorf("answer sampler for %s from %s: ARP only, both addresses must be IPv4", addr, from)
	}
	ns, err := netns.GetFromName(namespace)
	if err != nil {
		return nil, fmt.Errorf("answer sampler: namespace %s: %w", namespace, err)
	}
	defer ns.Close()
	var conn *packet.Conn
	err = inNetns(ns, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		conn, err = packet.Listen(ifi, packet.Raw, etherTypeARP, nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("answer sampler on %s in %s: %w", ifname, namespace, err)
	}
	sendCtx, stopSend := context.WithCancel(ctx)
	recvCtx, stopReceive := context.WithCancel(ctx)
	s := &AnswerSampler{addr: addr, conn: conn, stopSend: stopSend, stopReceive: stopReceive}
	s.receiving.Go(func() { s.receive(recvCtx) })
	s.sending.Go(func() { s.send(sendCtx, from, every) })
	return s, nil
}

const (
	etherTypeARP = 0x0806
	arpFrameLen  = 14 + 28
)

// tagMAC is the locally administered source MAC of round i.
func tagMAC(i int) net.HardwareAddr {
	t := i % samplerTags
	return net.HardwareAddr{0x02, 0x53, 0x41, 0x4d, byte(t >> 8), byte(t)}
}

func tagOf(mac net.HardwareAddr) (int, bool) {
	if len(mac) != 6 || mac[0] != 0x02 || mac[1] != 0x53 || mac[2] != 0x41 || mac[3] != 0x4d {
		return 0, false
	}
	return int(mac[4])<<8 | int(mac[5]), true
}

func (s *AnswerSampler) send(ctx context.Context, from netip.Addr, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	bcast := net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	for i := 0; ; i++ {
		src := tagMAC(i)
		f := make([]byte, arpFrameLen)
		copy(f[0:6], bcast)
		copy(f[6:12], src)
		binary.BigEndian.PutUint16(f[12:14], etherTypeARP)
		binary.BigEndian.PutUint16(f[14:16], 1)      // Ethernet
		binary.BigEndian.PutUint16(f[16:18], 0x0800) // IPv4
		f[18], f[19] = 6, 4
		binary.BigEndian.PutUint16(f[20:22], 1) // request
		copy(f[22:28], src)
		a, t := from.As4(), s.addr.As4()
		copy(f[28:32], a[:])
		copy(f[38:42], t[:]) // target MAC left zero
		s.mu.Lock()
		s.rounds = append(s.rounds, Round{Sent: time.Now()})
		s.mu.Unlock()
		if _, err := s.conn.WriteTo(f, &packet.Addr{HardwareAddr: bcast}); err != nil && ctx.Err() == nil {
			s.setIOErr(fmt.Errorf("send ARP request for %s: %w", s.addr, err))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *AnswerSampler) receive(ctx context.Context) {
	buf := make([]byte, 1500)
	for ctx.Err() == nil {
		if err := s.conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond)); err != nil {
			s.setIOErr(fmt.Errorf("answer sampler: %w", err))
			return
		}
		n, _, err := s.conn.ReadFrom(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			if ctx.Err() == nil {
				s.setIOErr(fmt.Errorf("answer sampler: read: %w", err))
			}
			return
		}
		s.record(buf[:n])
	}
}

// record credits an ARP reply for the sampled address to the round its
// target MAC names.
func (s *AnswerSampler) record(f []byte) {
	if len(f) < arpFrameLen || binary.BigEndian.Uint16(f[12:14]) != etherTypeARP ||
		binary.BigEndian.Uint16(f[20:22]) != 2 || netip.AddrFrom4([4]byte(f[28:32])) != s.addr {
		return
	}
	tag, ok := tagOf(net.HardwareAddr(f[32:38]))
	if !ok {
		return
	}
	sender := slices.Clone(net.HardwareAddr(f[22:28]))
	s.mu.Lock()
	defer s.mu.Unlock()
	i := len(s.rounds) - 1
	for ; i >= 0 && i%samplerTags != tag; i-- {
	}
	if i < 0 {
		return
	}
	r := &s.rounds[i]
	if slices.ContainsFunc(r.MACs, func(m net.HardwareAddr) bool { return m.String() == sender.String() }) {
		return
	}
	r.MACs = append(r.MACs, sender)
	if len(r.MACs) > 1 && (s.fault == nil || i < s.fault.Round) {
		s.fault = &DoubleAnswerError{Addr: s.addr, Round: i, Sent: r.Sent, MACs: slices.Clone(r.MACs)}
	}
}

func (s *AnswerSampler) setIOErr(err error) {
	s.mu.Lock()
	if s.ioErr == nil {
		s.ioErr = err
	}
	s.mu.Unlock()
}

// Fault returns the first round two MACs answered, or nil.
func (s *AnswerSampler) Fault() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fault == nil {
		return nil
	}
	return s.fault
}

// Rounds returns a copy of the rounds so far.
func (s *AnswerSampler) Rounds() []Round {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Round, len(s.rounds))
	for i, r := range s.rounds {
		out[i] = Round{Sent: r.Sent, MACs: slices.Clone(r.MACs)}
	}
	return out
}

// WaitRound waits for a round sent after since, whose answers have had time
// to arrive, that satisfies ok, and returns it. It returns the sampler's
// fault as soon as there is one: a double answer is never waited out.
func (s *AnswerSampler) WaitRound(ctx context.Context, since time.Time, ok func(Round) bool) (Round, error) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	next := 0
	for {
		settled := time.Now().Add(-samplerSettle)
		s.mu.Lock()
		fault, ioErr := s.fault, s.ioErr
		var fresh []Round
		for ; next < len(s.rounds) && s.rounds[next].Sent.Before(settled); next++ {
			if r := s.rounds[next]; r.Sent.After(since) {
				fresh = append(fresh, Round{Sent: r.Sent, MACs: slices.Clone(r.MACs)})
			}
		}
		s.mu.Unlock()
		switch {
		case fault != nil:
			return Round{}, fault
		case ioErr != nil:
			return Round{}, ioErr
		}
		for _, r := range fresh {
			if ok(r) {
				return r, nil
			}
		}
		select {
		case <-ctx.Done():
			return Round{}, fmt.Errorf("waiting for an answer for %s: %w", s.addr, ctx.Err())
		case <-tick.C:
		}
	}
}

// Stop ends the sampler, waits for the last answers, and returns every
// round and the first fault: a double answer, or a failure to send or
// receive (which would make a clean record meaningless).
func (s *AnswerSampler) Stop() ([]Round, error) {
	s.stopOnce.Do(func() {
		s.stopSend()
		s.sending.Wait()
		time.Sleep(samplerSettle) // the last requests' answers
		s.stopReceive()
		s.receiving.Wait()
		s.closeErr = s.conn.Close()
	})
	s.mu.Lock()
	fault, ioErr := s.fault, s.ioErr
	s.mu.Unlock()
	rounds := s.Rounds()
	if fault != nil {
		return rounds, fault
	}
	return rounds, errors.Join(ioErr, s.closeErr)
}

// AnsweredOnlyBy reports whether exactly mac answered the round.
func (r Round) AnsweredOnlyBy(mac net.HardwareAddr) bool {
	return len(r.MACs) == 1 && r.MACs[0].String() == mac.String()
}

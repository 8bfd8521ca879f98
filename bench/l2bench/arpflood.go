package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/internal/arp"
	"github.com/herald-lb/herald/internal/l2frame"
	"github.com/herald-lb/herald/internal/lab"
)

// floodResult is what an ARP flood at one owned address showed.
type floodResult struct {
	addr       netip.Addr
	owner      string
	sent       int
	sendFor    time.Duration // first to last request sent
	replies    int           // from the owner, to the client, for addr
	others     int           // replies for addr from any other MAC
	sockDrops  uint32        // frames the client's own socket dropped
	received   float64       // metallb_layer2_requests_received, delta
	responded  float64       // metallb_layer2_responses_sent, delta
	idle       []usage       // every speaker, before the flood
	flood      []usage       // every speaker, over the flood
	floodWall  time.Duration // the CPU window of the flood
	idleWindow time.Duration
}

// arpRequest is a broadcast request from the client for target.
func arpRequest(client lab.Node, target netip.Addr) []byte {
	return arp.Frame(l2frame.Broadcast, client.MAC, arp.Packet{
		Op: arp.OpRequest, SenderMAC: client.MAC, SenderIP: client.IPv4,
		TargetMAC: make(net.HardwareAddr, 6), TargetIP: target,
	})
}

// replyFor reports whether frame answers the client's request for target,
// and from which MAC.
func replyFor(frame []byte, client lab.Node, target netip.Addr) (net.HardwareAddr, bool) {
	h, payload, err := l2frame.ParseHeader(frame)
	if err != nil || h.EtherType != l2frame.EtherTypeARP || !bytes.Equal(h.Dst, client.MAC) {
		return nil, false
	}
	p, err := arp.ParsePacket(payload)
	if err != nil || p.Op != arp.OpReply || p.SenderIP != target || p.TargetIP != client.IPv4 ||
		!bytes.Equal(p.TargetMAC, client.MAC) {
		return nil, false
	}
	return p.SenderMAC, true
}

// arpFlood sends rate ARP requests per second for addr from the client for
// dur, counts the answers on the same socket, and measures every speaker's
// CPU while idle (for dur, just before) and during the flood.
func (b *bench) arpFlood(ctx context.Context, addr netip.Addr, owner string, rate int, dur time.Duration) (floodResult, error) {
	res := floodResult{addr: addr, owner: owner}
	client := b.lab.ClientNode()
	ownerMAC, err := b.lab.NodeMAC(owner)
	if err != nil {
		return res, err
	}
	var ownerNS string
	for _, n := range b.lab.Nodes() {
		if n.Name == owner {
			ownerNS = n.Namespace
		}
	}

	var conn *packet.Conn
	err = inNamespace(client.Namespace, func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		conn, err = packet.Listen(ifi, packet.Raw, int(l2frame.EtherTypeARP), nil)
		return err
	})
	if err != nil {
		return res, fmt.Errorf("raw socket in %s: %w", client.Namespace, err)
	}
	defer conn.Close()
	// Room for every reply of a burst, so the count is the speaker's and
	// not this socket's.
	if rc, err := conn.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 16<<20)
		})
	}
	_, _ = conn.Stats() // reading resets the kernel's counters

	// Idle first, with the socket open but quiet.
	res.idleWindow = dur
	res.idle, err = b.idleUsage(ctx, dur)
	if err != nil {
		return res, err
	}

	var mu sync.Mutex
	readDone := make(chan error, 1)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					err = nil
				}
				readDone <- err
				return
			}
			mac, ok := replyFor(buf[:n], client, addr)
			if !ok {
				continue
			}
			mu.Lock()
			if bytes.Equal(mac, ownerMAC) {
				res.replies++
			} else {
				res.others++
			}
			mu.Unlock()
		}
	}()

	before, err := scrapeSpeaker(ctx, ownerNS)
	if err != nil {
		return res, err
	}
	ipLabel := fmt.Sprintf(`ip="%s"`, addr)
	from, err := b.snapCPU()
	if err != nil {
		return res, err
	}
	frame := arpRequest(client, addr)
	to := &packet.Addr{HardwareAddr: l2frame.Broadcast}
	// Every tick sends what the schedule owes by then: a late tick is made
	// up, so the average rate holds even when the machine is busy.
	tick := time.NewTicker(10 * time.Millisecond)
	start := time.Now()
	var sendErr error
	for sendErr == nil {
		elapsed := time.Since(start)
		due := int(float64(rate) * min(elapsed, dur).Seconds())
		for ; res.sent < due; res.sent++ {
			if _, err := conn.WriteTo(frame, to); err != nil {
				sendErr = fmt.Errorf("send request %d: %w", res.sent+1, err)
				break
			}
		}
		if elapsed >= dur {
			break
		}
		select {
		case <-ctx.Done():
			sendErr = ctx.Err()
		case <-tick.C:
		}
	}
	tick.Stop()
	res.sendFor = time.Since(start)
	if sendErr != nil {
		_ = conn.SetReadDeadline(time.Now())
		<-readDone
		return res, sendErr
	}
	// The speaker may still be working through its socket's queue.
	if err := lab.Sleep(ctx, 500*time.Millisecond); err != nil {
		return res, err
	}
	toSnap, err := b.snapCPU()
	if err != nil {
		return res, err
	}
	res.floodWall = toSnap.at.Sub(from.at)
	res.flood, err = b.usageBetween(ctx, from, toSnap)
	if err != nil {
		return res, err
	}
	if err := lab.Sleep(ctx, 500*time.Millisecond); err != nil {
		return res, err
	}
	_ = conn.SetReadDeadline(time.Now())
	if err := <-readDone; err != nil {
		return res, fmt.Errorf("reading replies: %w", err)
	}
	if st, err := conn.Stats(); err == nil {
		res.sockDrops = st.Drops
	}
	after, err := scrapeSpeaker(ctx, ownerNS)
	if err != nil {
		return res, err
	}
	res.received = after.Sum("metallb_layer2_requests_received", ipLabel) - before.Sum("metallb_layer2_requests_received", ipLabel)
	res.responded = after.Sum("metallb_layer2_responses_sent", ipLabel) - before.Sum("metallb_layer2_responses_sent", ipLabel)
	mu.Lock()
	defer mu.Unlock()
	b.log.Info("ARP flood", "address", addr, "owner", owner, "sent", res.sent, "in", res.sendFor.Round(time.Millisecond),
		"replies", res.replies, "other replies", res.others, "speaker counted requests", res.received, "responses", res.responded,
		"socket drops", res.sockDrops)
	return res, nil
}

// spreadIPv4 creates IPv4 Services until every node announces at least one
// IPv4 address besides owner's, so that every speaker has its ARP socket
// open during the flood, as on a cluster where every node announces
// something: the speakers that do not own the flooded address then read
// and drop every request. It returns the Services it created.
func (b *bench) spreadIPv4(ctx context.Context, owner string) ([]string, error) {
	owners := map[string]bool{owner: true}
	var created []string
	for i := 1; len(owners) < len(b.lab.Nodes()) && i <= 12; i++ {
		name := fmt.Sprintf("arp-%d", i)
		if _, err := b.lab.CreateService(ctx, lab.Service{Name: name, Families: []corev1.IPFamily{corev1.IPv4Protocol}}); err != nil {
			return created, err
		}
		created = append(created, name)
		wctx, cancel := context.WithTimeout(ctx, time.Minute)
		addrs, err := b.lab.WaitAddresses(wctx, "default", name)
		cancel()
		if err != nil {
			return created, err
		}
		node, err := b.settled(ctx, addrs[0], "")
		if err != nil {
			return created, err
		}
		owners[node] = true
	}
	if len(owners) < len(b.lab.Nodes()) {
		b.log.Warn("not every node announces an IPv4 address for the flood", "nodes", owners)
	}
	return created, nil
}

func (b *bench) deleteServices(ctx context.Context, names []string) error {
	for _, name := range names {
		if err := b.lab.Client().CoreV1().Services("default").Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			return fmt.Errorf("delete service %s: %w", name, err)
		}
	}
	return nil
}

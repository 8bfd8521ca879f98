package l2frame_test

import (
	"bytes"
	"errors"
	"net"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/mdlayher/packet"

	"github.com/herald-lb/herald/internal/l2frame"
	"github.com/herald-lb/herald/internal/l2frame/nstest"
)

// TestFilterKernel loads Filter's program into a real packet socket, so the
// packet-type prologue, which x/net/bpf's VM cannot run, is checked where
// it matters: the node's interface is promiscuous (as a bridge port is) and
// the socket takes every EtherType, so without the prologue it would also
// read other hosts' unicast and its own transmissions.
func TestFilterKernel(t *testing.T) {
	nstest.Require(t)
	node, client := nstest.NewPair(t, "hl-bpf")
	nstest.MustExec(t, node.NS, "ip", "link", "set", node.Name, "promisc", "on")

	const etherType = 0x88b5 // IEEE 802 local experimental
	filter, err := l2frame.Filter(l2frame.Match{Offset: 12, Size: 2, Values: []uint32{etherType}},
		l2frame.Match{Offset: 14, Size: 1, Values: []uint32{'k'}})
	if err != nil {
		t.Fatal(err)
	}
	const ethPAll = 0x0003
	listen := func(l nstest.Link, cfg *packet.Config) *packet.Conn {
		var c *packet.Conn
		if err := nstest.Do(l.NS, func() error {
			ifi, err := net.InterfaceByName(l.Name)
			if err != nil {
				return err
			}
			c, err = packet.Listen(ifi, packet.Raw, ethPAll, cfg)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	rx := listen(node, &packet.Config{Filter: filter})
	tx := listen(client, nil)
	// The kernel never loops a frame back to the socket that sent it, so
	// the node's own transmission comes from a second socket, as the
	// kernel's would.
	own := listen(node, nil)

	other := nstest.MustMAC("00:00:5e:00:53:77")
	send := func(c *packet.Conn, src, dst net.HardwareAddr, payload string) {
		t.Helper()
		f := l2frame.Pad(append(l2frame.Header{Dst: dst, Src: src, EtherType: etherType}.Append(nil), payload...))
		if _, err := c.WriteTo(f, &packet.Addr{HardwareAddr: dst}); err != nil {
			t.Fatalf("sending %q: %v", payload, err)
		}
	}
	send(tx, client.MAC, l2frame.Broadcast, "kept: broadcast")
	send(tx, client.MAC, node.MAC, "kept: unicast to the node")
	send(tx, client.MAC, other, "kept? unicast to another host")
	send(tx, client.MAC, l2frame.Broadcast, "dropped: the match refuses")
	send(own, node.MAC, l2frame.Broadcast, "kept? the node's own transmission")

	var got []string
	buf := make([]byte, 1500)
	if err := rx.SetReadDeadline(time.Now().Add(500 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	for {
		n, _, err := rx.ReadFrom(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		h, payload, err := l2frame.ParseHeader(buf[:n])
		if err != nil || h.EtherType != etherType {
			t.Fatalf("socket read a frame the filter refuses: %x (%v)", buf[:n], err)
		}
		got = append(got, string(bytes.TrimRight(payload, "\x00"))) // Pad's zeros
	}
	want := []string{"kept: broadcast", "kept: unicast to the node"}
	if !slices.Equal(got, want) {
		t.Errorf("read %q, want %q", got, want)
	}
}

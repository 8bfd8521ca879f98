package lab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Jitter delays each IPv4 packet a node sends by a random time, as netem's
// "delay 0ms <jitter>" does (uniform in ±jitter around 0, so about half go
// at once and the rest up to jitter late, out of order), on kernels
// without netem: iptables hands the node's outgoing packets to an NFQUEUE
// that this process holds, and each verdict comes after the packet's
// delay. Like DropOutgoing it covers IP, not ARP. Stop (or the lab's Close)
// takes it away.
type Jitter struct {
	stop func() error
}

// jitterQueue is the NFQUEUE number in every node namespace.
const jitterQueue = 14

// nfnetlink's queue messages and attributes (linux/netfilter/nfnetlink_queue.h).
const (
	nfnlSubsysQueue   = 3
	nfqnlMsgPacket    = 0
	nfqnlMsgVerdict   = 1
	nfqnlMsgConfig    = 2
	nfqaCfgCmd        = 1
	nfqaCfgParams     = 2
	nfqaPacketHdr     = 1
	nfqaVerdictHdr    = 2
	nfqnlCfgCmdBind   = 1
	nfqnlCfgCmdUnbind = 2
	nfqnlCopyMeta     = 1
	nfAccept          = 1
)

// JitterOutgoing starts delaying the node's outgoing IPv4 packets by up to
// jitter.
func (l *Lab) JitterOutgoing(ctx context.Context, node string, jitter time.Duration) (*Jitter, error) {
	n, err := l.node(node)
	if err != nil {
		return nil, err
	}
	var fd int
	err = inNetns(n.ns, func() (err error) {
		fd, err = unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
		if err != nil {
			return err
		}
		return unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
	})
	if err != nil {
		return nil, fmt.Errorf("%s: netfilter netlink socket: %w", node, err)
	}
	q := &nfqueue{fd: fd}
	tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, err
	}
	cmd := []byte{nfqnlCfgCmdBind, 0, 0, 0} // command, pad, pf (unspecified)
	params := binary.BigEndian.AppendUint32(nil, 0xffff)
	params = append(params, nfqnlCopyMeta)
	if err := q.send(nfqnlMsgConfig, attr(nfqaCfgCmd, cmd), attr(nfqaCfgParams, params)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("%s: bind NFQUEUE %d: %w", node, jitterQueue, err)
	}
	ipt := func(op string) error {
		out, err := exec.CommandContext(context.WithoutCancel(ctx), "ip", "netns", "exec", n.Namespace, "iptables", "-w", op, "OUTPUT",
			"-j", "NFQUEUE", "--queue-num", strconv.Itoa(jitterQueue), "--queue-bypass").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: iptables %s OUTPUT NFQUEUE: %w: %s", node, op, err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if err := ipt("-A"); err != nil {
		unix.Close(fd)
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { q.serve(rctx, jitter) })
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() {
			// Rule first: packets then go straight out, none is left queued.
			stopErr = ipt("-D")
			time.Sleep(jitter + 50*time.Millisecond) // the last verdicts
			cancel()
			wg.Wait()
			_ = q.send(nfqnlMsgConfig, attr(nfqaCfgCmd, []byte{nfqnlCfgCmdUnbind, 0, 0, 0}))
			unix.Close(fd)
		})
		return stopErr
	}
	l.onClose(stop)
	return &Jitter{stop: stop}, nil
}

// Stop removes the delay.
func (j *Jitter) Stop() error { return j.stop() }

type nfqueue struct {
	fd int
	mu sync.Mutex // one sender at a time
}

// attr encodes a netlink attribute, padded to 4 bytes.
func attr(typ uint16, payload []byte) []byte {
	b := binary.NativeEndian.AppendUint16(nil, uint16(4+len(payload)))
	b = binary.NativeEndian.AppendUint16(b, typ)
	b = append(b, payload...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// send sends one nfnetlink queue message with the given attributes.
func (q *nfqueue) send(msg uint16, attrs ...[]byte) error {
	body := []byte{unix.AF_UNSPEC, 0} // nfgenmsg: family, version
	body = binary.BigEndian.AppendUint16(body, jitterQueue)
	for _, a := range attrs {
		body = append(body, a...)
	}
	h := binary.NativeEndian.AppendUint32(nil, uint32(unix.SizeofNlMsghdr+len(body)))
	h = binary.NativeEndian.AppendUint16(h, nfnlSubsysQueue<<8|msg)
	h = binary.NativeEndian.AppendUint16(h, unix.NLM_F_REQUEST)
	h = binary.NativeEndian.AppendUint32(h, 0) // seq
	h = binary.NativeEndian.AppendUint32(h, 0) // pid: the kernel
	q.mu.Lock()
	defer q.mu.Unlock()
	return unix.Sendto(q.fd, append(h, body...), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
}

// serve receives queued packets and accepts each after its delay.
func (q *nfqueue) serve(ctx context.Context, jitter time.Duration) {
	buf := make([]byte, 1<<16)
	for ctx.Err() == nil {
		n, _, err := unix.Recvfrom(q.fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			continue
		}
		for _, m := range msgs {
			if m.Header.Type != nfnlSubsysQueue<<8|nfqnlMsgPacket {
				continue
			}
			id, ok := packetID(m.Data)
			if !ok {
				continue
			}
			verdict := binary.BigEndian.AppendUint32(nil, nfAccept)
			verdict = binary.BigEndian.AppendUint32(verdict, id)
			d := time.Duration(rand.Int64N(int64(2*jitter))) - jitter
			if d <= 0 {
				_ = q.send(nfqnlMsgVerdict, attr(nfqaVerdictHdr, verdict))
				continue
			}
			time.AfterFunc(d, func() { _ = q.send(nfqnlMsgVerdict, attr(nfqaVerdictHdr, verdict)) })
		}
	}
}

// packetID reads the packet id from a queued packet's attributes (after
// the 4-byte nfgenmsg).
func packetID(data []byte) (uint32, bool) {
	for b := data[min(4, len(data)):]; len(b) >= 4; {
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		typ := binary.NativeEndian.Uint16(b[2:4]) & 0x3fff // without the nested and byte-order flags
		if l < 4 || l > len(b) {
			return 0, false
		}
		if typ == nfqaPacketHdr && l >= 8 {
			return binary.BigEndian.Uint32(b[4:8]), true
		}
		b = b[min((l+3)&^3, len(b)):]
	}
	return 0, false
}

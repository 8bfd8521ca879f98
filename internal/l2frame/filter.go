package l2frame

import (
	"fmt"
	"math"

	"golang.org/x/net/bpf"
)

// Packet types as reported by the kernel for AF_PACKET sockets (packet(7)).
const (
	pktOtherHost = 3 // unicast to another host, seen only in promiscuous mode
	pktOutgoing  = 4 // our own transmissions looped back to packet sockets
)

// Match is one condition of a socket filter: the 1- or 2-byte big-endian
// field at Offset (from the start of the Ethernet frame) must equal one of
// Values.
type Match struct {
	Offset uint32
	Size   int
	Values []uint32
}

// keepLen is how much of an accepted frame the kernel copies to the socket.
const keepLen = 1 << 18

// Filter assembles a classic BPF program that accepts only frames received for
// this host (not our own transmissions, not other hosts' unicast) and
// satisfying every match. Filtering in the kernel keeps the rest of the
// interface's traffic from ever waking the responder.
func Filter(matches ...Match) ([]bpf.RawInstruction, error) {
	prog, err := program(true, matches)
	if err != nil {
		return nil, err
	}
	return bpf.Assemble(prog)
}

// program builds the instructions; the packet-type prologue can be left out
// because x/net/bpf's VM, used in tests, does not implement that extension.
func program(pktType bool, matches []Match) ([]bpf.Instruction, error) {
	n := 2 // the two returns
	if pktType {
		n += 4
	}
	for _, m := range matches {
		if len(m.Values) == 0 {
			return nil, fmt.Errorf("match at offset %d: no values", m.Offset)
		}
		if m.Size != 1 && m.Size != 2 {
			return nil, fmt.Errorf("match at offset %d: size %d, want 1 or 2", m.Offset, m.Size)
		}
		n += 1 + len(m.Values)
	}
	drop := n - 1
	// Classic BPF jumps are 8-bit: a longer one would wrap and land on
	// another match's comparisons, keeping frames the matches refuse.
	tooFar := false
	skip := func(from, to int) uint8 {
		tooFar = tooFar || to-from-1 > math.MaxUint8
		return uint8(to - from - 1)
	}

	prog := make([]bpf.Instruction, 0, n)
	if pktType {
		// The prologue has a drop of its own right after it, so that its
		// reach does not grow with the body: adding it never turns a body
		// that fits into one that does not.
		prog = append(prog,
			bpf.LoadExtension{Num: bpf.ExtType},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: pktOtherHost, SkipTrue: 1},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: pktOutgoing, SkipFalse: 1},
			bpf.RetConstant{Val: 0},
		)
	}
	for _, m := range matches {
		prog = append(prog, bpf.LoadAbsolute{Off: m.Offset, Size: m.Size})
		next := len(prog) + len(m.Values)
		for j, v := range m.Values {
			i := len(prog)
			jf := uint8(0)
			if j == len(m.Values)-1 {
				jf = skip(i, drop)
			}
			prog = append(prog, bpf.JumpIf{Cond: bpf.JumpEqual, Val: v, SkipTrue: skip(i, next), SkipFalse: jf})
		}
	}
	prog = append(prog, bpf.RetConstant{Val: keepLen}, bpf.RetConstant{Val: 0})
	if tooFar {
		return nil, fmt.Errorf("filter: %d instructions, too many for 8-bit jumps", n)
	}
	if len(prog) != n {
		return nil, fmt.Errorf("filter: built %d instructions, planned %d", len(prog), n)
	}
	return prog, nil
}

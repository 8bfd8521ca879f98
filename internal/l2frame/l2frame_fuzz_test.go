package l2frame

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"golang.org/x/net/bpf"
)

// FuzzParseHeader checks the Ethernet header decoder: never a panic, a frame
// shorter than the header is ErrShort, and a decoded header encodes back to
// the bytes it came from, with the rest of the frame as the payload.
func FuzzParseHeader(f *testing.F) {
	f.Add(Pad(Header{Dst: Broadcast, Src: Broadcast, EtherType: EtherTypeARP}.Append(nil)))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, payload, err := ParseHeader(b)
		if len(b) < HeaderLen {
			if !errors.Is(err, ErrShort) {
				t.Fatalf("%d bytes: err = %v, want ErrShort", len(b), err)
			}
			return
		}
		if err != nil {
			t.Fatalf("%d bytes: %v", len(b), err)
		}
		if enc := h.Append(nil); !bytes.Equal(enc, b[:HeaderLen]) || !bytes.Equal(payload, b[HeaderLen:]) {
			t.Fatalf("header re-encoded to %x, payload %x; frame %x", enc, payload, b)
		}
		if back, _, err := ParseHeader(h.Append(nil)); err != nil || !bytes.Equal(back.Dst, h.Dst) ||
			!bytes.Equal(back.Src, h.Src) || back.EtherType != h.EtherType {
			t.Fatalf("re-encoded header decodes to %+v, %v; want %+v", back, err, h)
		}
	})
}

// fuzzMatches reads matches from spec: per match, a 2-byte offset, a size
// byte (taken modulo 4, so that the invalid sizes 0 and 3 occur), a count
// and that many 2-byte values.
func fuzzMatches(spec []byte) []Match {
	var out []Match
	for len(spec) >= 4 {
		m := Match{Offset: uint32(binary.BigEndian.Uint16(spec)), Size: int(spec[2] % 4)}
		n := int(spec[3])
		spec = spec[4:]
		for ; n > 0 && len(spec) >= 2; n-- {
			m.Values = append(m.Values, uint32(binary.BigEndian.Uint16(spec)))
			spec = spec[2:]
		}
		out = append(out, m)
	}
	return out
}

// matchesFrame is what the filter's matches mean, evaluated in Go.
func matchesFrame(matches []Match, frame []byte) bool {
	for _, m := range matches {
		end := int(m.Offset) + m.Size
		if end > len(frame) {
			return false
		}
		var v uint32
		for _, c := range frame[m.Offset:end] {
			v = v<<8 | uint32(c)
		}
		found := false
		for _, want := range m.Values {
			found = found || v == want
		}
		if !found {
			return false
		}
	}
	return true
}

// FuzzFilter checks that the socket filter's program keeps exactly the
// frames its matches describe (run in x/net/bpf's VM, without the
// packet-type prologue it does not implement), and that Filter refuses
// matches it cannot express rather than building a wrong program.
func FuzzFilter(f *testing.F) {
	arp := Pad(Header{Dst: Broadcast, Src: Broadcast, EtherType: EtherTypeARP}.Append(nil))
	f.Add([]byte{0, 12, 2, 1, 0x08, 0x06, 0, 14, 1, 2, 0, 1, 0, 2}, arp)
	f.Add([]byte{0, 12, 2, 2, 0x86, 0xdd, 0x08, 0x06, 0, 20, 1, 1, 0, 58}, arp)
	f.Add([]byte{0, 12, 2, 0}, arp)
	// A long value list: the program's jumps are 8-bit.
	long := []byte{0, 12, 2, 1, 0x08, 0x06, 0, 14, 2, 130}
	for v := range 130 {
		long = append(long, 0, byte(v))
	}
	f.Add(long, arp)
	f.Fuzz(func(t *testing.T, spec, frame []byte) {
		matches := fuzzMatches(spec)
		prog, err := program(false, matches)
		_, ferr := Filter(matches...)
		if (err == nil) != (ferr == nil) {
			t.Fatalf("program: %v, but Filter: %v", err, ferr)
		}
		valid := true
		for _, m := range matches {
			valid = valid && len(m.Values) > 0 && (m.Size == 1 || m.Size == 2)
		}
		if err != nil {
			if valid && !strings.Contains(err.Error(), "8-bit jumps") {
				t.Fatalf("refused valid matches: %v", err)
			}
			return
		}
		if !valid {
			t.Fatalf("accepted invalid matches %+v", matches)
		}
		vm, err := bpf.NewVM(prog)
		if err != nil {
			t.Fatalf("program does not load: %v", err)
		}
		n, err := vm.Run(frame)
		if err != nil {
			t.Fatal(err)
		}
		if want := matchesFrame(matches, frame); (n > 0) != want {
			t.Fatalf("kept %d bytes of %x, want keep=%v, matches %+v", n, frame, want, matches)
		}
	})
}

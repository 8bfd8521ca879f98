package main

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// msList prints durations as whole milliseconds, for the notes.
func msList(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("%d", d.Round(time.Millisecond).Milliseconds())
	}
	return strings.Join(parts, ", ")
}

// rangesOverlap reports whether the prefix p shares an address with the
// inclusive range first-last.
func rangesOverlap(p netip.Prefix, first, last netip.Addr) bool {
	p = p.Masked()
	lo := p.Addr()
	hi := lastAddr(p)
	return !(hi.Less(first) || last.Less(lo))
}

// lastAddr is the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// parseRange parses "first-last".
func parseRange(s string) (first, last netip.Addr, err error) {
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return first, last, fmt.Errorf("range %q: want first-last", s)
	}
	if first, err = netip.ParseAddr(a); err != nil {
		return first, last, err
	}
	last, err = netip.ParseAddr(b)
	return first, last, err
}

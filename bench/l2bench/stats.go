package main

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// summary is the spread of a set of durations.
type summary struct {
	n                     int
	min, median, p95, max time.Duration
}

// summarize returns the spread of ds: the median is the mean of the two
// middle values for an even count, p95 the nearest-rank percentile (the
// 19th of 20).
func summarize(ds []time.Duration) summary {
	if len(ds) == 0 {
		return summary{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return summary{n: n, min: s[0], median: med, p95: percentile(s, 95), max: s[n-1]}
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 1) }
func mib(b uint64) float64       { return round(float64(b)/(1<<20), 1) }
func round(v float64, n int) float64 {
	p := math.Pow(10, float64(n))
	return math.Round(v*p) / p
}

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

package ipam

import (
	"fmt"
	"math/big"
	"math/bits"
	"net/netip"
	"strconv"
	"strings"
)

// Range is an inclusive run of addresses of one family, First <= Last.
// A pool entry, whether written as a CIDR or as "a-b", parses to one Range.
type Range struct {
	First, Last netip.Addr

	// entry is the text the range was parsed from, kept for error messages.
	entry string
}

// entryExample is the fix suggested by every parse error.
const entryExample = "write a CIDR such as 192.0.2.0/24 or 2001:db8::/64, or an inclusive range such as 192.0.2.10-192.0.2.20"

// ParseError reports a pool entry that cannot be parsed. Entry is the text as
// written; Problem says what is wrong and Hint how to fix it.
type ParseError struct {
	Entry   string
	Problem string
	Hint    string
}

func (e *ParseError) Error() string {
	msg := fmt.Sprintf("address entry %q: %s", e.Entry, e.Problem)
	if e.Hint != "" {
		msg += "; " + e.Hint
	}
	return msg
}

// ParseRange parses one IPAddressPool address entry: a CIDR ("192.0.2.0/24",
// "2001:db8::/64") or an inclusive range ("192.0.2.10-192.0.2.20"; spaces
// around the dash are ignored). A CIDR with host bits set ("192.0.2.7/24") is
// accepted and masked to its network (192.0.2.0/24), as MetalLB does. A bare
// address is refused: MetalLB refuses it too, and "/32" or "/128" says the
// same thing unambiguously.
func ParseRange(entry string) (Range, error) {
	s := strings.TrimSpace(entry)
	fail := func(problem, hint string) (Range, error) {
		return Range{}, &ParseError{Entry: entry, Problem: problem, Hint: hint}
	}
	if s == "" {
		return fail("the entry is empty", "remove it, or "+entryExample)
	}
	if startText, endText, ok := strings.Cut(s, "-"); ok {
		startText, endText = strings.TrimSpace(startText), strings.TrimSpace(endText)
		if strings.Contains(startText, "/") || strings.Contains(endText, "/") {
			return fail("a range is written with two plain addresses, not CIDRs", entryExample)
		}
		first, err := parseAddr(startText)
		if err != "" {
			return fail("range start "+err, entryExample)
		}
		last, err := parseAddr(endText)
		if err != "" {
			return fail("range end "+err, entryExample)
		}
		if first.Is4() != last.Is4() {
			return fail(fmt.Sprintf("the range mixes %s (%s) and %s (%s)", familyOf(first), first, familyOf(last), last),
				"a range must start and end in the same family; write one entry per family")
		}
		if last.Less(first) {
			return fail(fmt.Sprintf("the range end %s is below its start %s", last, first),
				fmt.Sprintf("write the lower address first: %s-%s", last, first))
		}
		return Range{First: first, Last: last, entry: entry}, nil
	}
	addrText, bitsText, ok := strings.Cut(s, "/")
	if !ok {
		if a, err := parseAddr(s); err == "" {
			return fail("a single address is not a CIDR or a range",
				fmt.Sprintf("write %s/%d for just this address", a, a.BitLen()))
		}
		return fail("it is neither a CIDR nor a range", entryExample)
	}
	addr, perr := parseAddr(strings.TrimSpace(addrText))
	if perr != "" {
		return fail("CIDR address "+perr, entryExample)
	}
	n, err := strconv.Atoi(strings.TrimSpace(bitsText))
	if err != nil || n < 0 || n > addr.BitLen() || strings.TrimSpace(bitsText) != strconv.Itoa(n) {
		return fail(fmt.Sprintf("prefix length %q is not a number from 0 to %d", bitsText, addr.BitLen()),
			entryExample)
	}
	p := netip.PrefixFrom(addr, n).Masked()
	return Range{First: p.Addr(), Last: lastOf(p), entry: entry}, nil
}

// parseAddr parses a plain address; on failure it returns a description that
// completes a sentence ("range start ...").
func parseAddr(s string) (netip.Addr, string) {
	if s == "" {
		return netip.Addr{}, "is missing"
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Sprintf("%q is not a valid IP address", s)
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Sprintf("%q has an IPv6 zone, which pool addresses cannot have", s)
	}
	return a, ""
}

func familyOf(a netip.Addr) Family {
	if a.Is4() {
		return IPv4
	}
	return IPv6
}

// FamiliesOf returns the families of a service that holds exactly addrs (one
// address, or two of different families), primary first: what Assign needs
// to reserve addresses found in a status when the service's own request
// cannot be read.
func FamiliesOf(addrs []netip.Addr) Families {
	if len(addrs) == 0 {
		return Families{}
	}
	f := Families{Primary: familyOf(addrs[0])}
	if len(addrs) == 2 && familyOf(addrs[1]) != f.Primary {
		f.Policy = RequireDualStack
	}
	return f
}

// lastOf returns the last address of a masked prefix.
func lastOf(p netip.Prefix) netip.Addr {
	a := p.Addr()
	host := a.BitLen() - p.Bits()
	v := addrU128(a)
	// Set the host bits to one.
	switch {
	case host >= 128:
		v = u128{^uint64(0), ^uint64(0)}
	case host >= 64:
		v = u128{v.hi | (1<<(host-64) - 1), ^uint64(0)}
	case host > 0:
		v = u128{v.hi, v.lo | (1<<host - 1)}
	}
	return u128Addr(v, a.Is4())
}

// Family reports the family of the range's addresses.
func (r Range) Family() Family { return familyOf(r.First) }

// Contains reports whether a lies in the range.
func (r Range) Contains(a netip.Addr) bool {
	return a.Is4() == r.First.Is4() && !a.Less(r.First) && !r.Last.Less(a)
}

// Overlaps reports whether the two ranges share an address.
func (r Range) Overlaps(o Range) bool {
	return r.First.Is4() == o.First.Is4() && !r.Last.Less(o.First) && !o.Last.Less(r.First)
}

// Size returns the number of addresses in the range, which for IPv6 can exceed
// any fixed-size integer (::/0 holds 2^128).
func (r Range) Size() *big.Int {
	n := addrU128(r.Last).sub(addrU128(r.First)).big()
	return n.Add(n, big.NewInt(1))
}

// Entry returns the text the range was parsed from, exactly as written (so
// callers can find it in the source list), or its canonical form if the
// range was built directly.
func (r Range) Entry() string {
	if r.entry != "" {
		return r.entry
	}
	return r.String()
}

// String returns the canonical form: a CIDR when the range is exactly one
// prefix, otherwise "first-last". ParseRange(r.String()) gives r back.
func (r Range) String() string {
	if !r.First.IsValid() {
		return "<invalid range>"
	}
	if ps := r.Prefixes(); len(ps) == 1 {
		return ps[0].String()
	}
	return r.First.String() + "-" + r.Last.String()
}

// Prefixes summarises the range into the minimal list of CIDRs covering it
// exactly, lowest first.
func (r Range) Prefixes() []netip.Prefix {
	is4 := r.First.Is4()
	width := 128
	if is4 {
		width = 32
	}
	lo, hi := addrU128(r.First), addrU128(r.Last)
	var out []netip.Prefix
	for {
		// The largest block starting at lo is limited by lo's alignment
		// (trailing zero bits) and by what remains up to hi.
		host := trailingZeros(lo)
		if host > width {
			host = width
		}
		for host > 0 && hi.less(lo.add(blockSize(host)).dec()) {
			host--
		}
		out = append(out, netip.PrefixFrom(u128Addr(lo, is4), width-host))
		end := lo.add(blockSize(host)).dec()
		if end.cmp(hi) >= 0 {
			return out
		}
		lo = end.inc()
	}
}

// blockSize returns 2^host, wrapping to zero for host=128 (so that
// lo.add(blockSize(128)).dec() is still the all-ones address).
func blockSize(host int) u128 {
	switch {
	case host >= 128:
		return u128{}
	case host >= 64:
		return u128{hi: 1 << (host - 64)}
	}
	return u128{lo: 1 << host}
}

func trailingZeros(v u128) int {
	if v.lo != 0 {
		return bits.TrailingZeros64(v.lo)
	}
	if v.hi != 0 {
		return 64 + bits.TrailingZeros64(v.hi)
	}
	return 128
}

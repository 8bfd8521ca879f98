package config

import (
	"fmt"
	"net/netip"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/herald-lb/herald/internal/ipam"
)

// reservedBlock is a block of addresses a pool should not hand out.
type reservedBlock struct {
	prefix string // as written in messages
	what   string // "multicast addresses"
	// refuse: no Service can ever use it. Otherwise it is merely odd
	// (MetalLB accepts it too) and only warned about.
	refuse bool
}

// reservedBlocks are checked against every pool entry. Whole families and
// entries wholly IPv4-mapped have messages of their own (checkPoolRange).
func reservedBlocks() []reservedBlock {
	return []reservedBlock{
		{"0.0.0.0/32", "the unspecified address 0.0.0.0", true},
		{"::/128", "the unspecified address ::", true},
		{"224.0.0.0/4", "multicast addresses (224.0.0.0/4)", true},
		{"ff00::/8", "multicast addresses (ff00::/8)", true},
		{"255.255.255.255/32", "the broadcast address 255.255.255.255", true},
		{"127.0.0.0/8", "loopback addresses (127.0.0.0/8)", false},
		{"::1/128", "the loopback address ::1", false},
		{"169.254.0.0/16", "link-local addresses (169.254.0.0/16)", false},
		{"fe80::/10", "link-local addresses (fe80::/10)", false},
	}
}

// mappedBlock is where IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) live.
const mappedBlock = "::ffff:0.0.0.0/96"

// blockRange turns one of the constant blocks above into a Range.
func blockRange(prefix string) ipam.Range {
	r, err := ipam.ParseRange(prefix)
	if err != nil {
		panic(fmt.Sprintf("config: reserved block %q: %v", prefix, err))
	}
	return r
}

// checkPoolRange refuses a pool entry holding addresses that no Service can
// use, and warns about ones that are merely odd. It reports whether the
// entry may be used.
func (b *builder) checkPoolRange(r ref, p *field.Path, rg ipam.Range) bool {
	entry := rg.Entry()
	if whole := wholeFamily(rg); whole != "" {
		b.fail(r, p, fmt.Sprintf("address entry %q is every %s address, including the unspecified, multicast and other addresses "+
			"no Service can use; list only the addresses the pool may hand out, such as 192.0.2.0/24 or 2001:db8::/120", entry, whole))
		return false
	}
	if un := unmappedEntry(rg); un != "" {
		b.fail(r, p, fmt.Sprintf("address entry %q holds IPv4-mapped IPv6 addresses (::ffff:0:0/96): they are IPv4 addresses "+
			"in IPv6 notation, so the pool would hand out the same address twice, once in each form; write %s instead", entry, un))
		return false
	}
	var refused, odd []string
	for _, blk := range append(reservedBlocks(), reservedBlock{mappedBlock, "IPv4-mapped IPv6 addresses (::ffff:0:0/96)", true}) {
		if !rg.Overlaps(blockRange(blk.prefix)) {
			continue
		}
		if blk.refuse {
			refused = append(refused, blk.what)
		} else {
			odd = append(odd, blk.what)
		}
	}
	if len(refused) > 0 {
		b.fail(r, p, fmt.Sprintf("address entry %q includes %s, which no Service can use; "+
			"leave them out (a range can stop short of them, or use two entries)", entry, strings.Join(refused, " and ")))
		return false
	}
	if len(odd) > 0 {
		b.warn(r, p, fmt.Sprintf("address entry %q includes %s, which clients outside the node cannot reach; check that this is meant",
			entry, strings.Join(odd, " and ")))
	}
	return true
}

// wholeFamily returns "IPv4" or "IPv6" when the range is the family's whole
// address space (0.0.0.0/0, ::/0), or "".
func wholeFamily(rg ipam.Range) string {
	for _, f := range []struct{ all, name string }{{"0.0.0.0/0", "IPv4"}, {"::/0", "IPv6"}} {
		if all := blockRange(f.all); rg.First == all.First && rg.Last == all.Last {
			return f.name
		}
	}
	return ""
}

// unmappedEntry writes a range that lies wholly in the IPv4-mapped block in
// its IPv4 form, as a CIDR when it was written as one; "" otherwise.
func unmappedEntry(rg ipam.Range) string {
	if !rg.First.Is4In6() || !rg.Last.Is4In6() {
		return ""
	}
	if pfx := rg.Prefixes(); strings.Contains(rg.Entry(), "/") && len(pfx) == 1 && pfx[0].Bits() >= 96 {
		return netip.PrefixFrom(pfx[0].Addr().Unmap(), pfx[0].Bits()-96).String()
	}
	return rg.First.Unmap().String() + "-" + rg.Last.Unmap().String()
}

// endpointProblem explains why a session can never be opened to or from
// address a, or returns "". name is the field, for the message.
func endpointProblem(name string, a netip.Addr) string {
	switch {
	case a.IsUnspecified():
		return fmt.Sprintf("%s %s is the unspecified address, not a host; write the address of the peer's interface", name, a)
	case a.IsMulticast():
		return fmt.Sprintf("%s %s is a multicast address; a BGP session runs over TCP to one host, so write that host's unicast address", name, a)
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return fmt.Sprintf("%s %s is the broadcast address; write the peer's unicast address", name, a)
	}
	return ""
}

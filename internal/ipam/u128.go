package ipam

import (
	"math/big"
	"math/bits"
	"net/netip"
)

// u128 is an unsigned 128-bit integer. IPv6 pools are indexed with it, since a
// single /64 already holds 2^64 addresses, one more than uint64 can count.
type u128 struct{ hi, lo uint64 }

func u64(v uint64) u128 { return u128{lo: v} }

func (a u128) cmp(b u128) int {
	switch {
	case a.hi < b.hi:
		return -1
	case a.hi > b.hi:
		return 1
	case a.lo < b.lo:
		return -1
	case a.lo > b.lo:
		return 1
	}
	return 0
}

func (a u128) less(b u128) bool { return a.cmp(b) < 0 }

func (a u128) isMax() bool { return a.hi == ^uint64(0) && a.lo == ^uint64(0) }

// add wraps on overflow; callers check bounds first.
func (a u128) add(b u128) u128 {
	lo, c := bits.Add64(a.lo, b.lo, 0)
	hi, _ := bits.Add64(a.hi, b.hi, c)
	return u128{hi, lo}
}

// sub wraps on underflow; callers check bounds first.
func (a u128) sub(b u128) u128 {
	lo, br := bits.Sub64(a.lo, b.lo, 0)
	hi, _ := bits.Sub64(a.hi, b.hi, br)
	return u128{hi, lo}
}

func (a u128) inc() u128 { return a.add(u64(1)) }
func (a u128) dec() u128 { return a.sub(u64(1)) }

func (a u128) big() *big.Int {
	b := new(big.Int).SetUint64(a.hi)
	b.Lsh(b, 64)
	return b.Or(b, new(big.Int).SetUint64(a.lo))
}

// addrU128 returns the address as a number; IPv4 addresses use the low 32 bits.
func addrU128(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u64(uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3]))
	}
	b := a.As16()
	var v u128
	for i := 0; i < 8; i++ {
		v.hi = v.hi<<8 | uint64(b[i])
		v.lo = v.lo<<8 | uint64(b[i+8])
	}
	return v
}

// u128Addr is the inverse of addrU128 for the given family.
func u128Addr(v u128, is4 bool) netip.Addr {
	if is4 {
		return netip.AddrFrom4([4]byte{byte(v.lo >> 24), byte(v.lo >> 16), byte(v.lo >> 8), byte(v.lo)})
	}
	var b [16]byte
	for i := 7; i >= 0; i-- {
		b[i] = byte(v.hi)
		b[i+8] = byte(v.lo)
		v.hi >>= 8
		v.lo >>= 8
	}
	return netip.AddrFrom16(b)
}

package v1beta1

import (
	"math"
	"math/big"
	"testing"
)

func TestSetAvailableIPv6(t *testing.T) {
	pow := func(bits uint) *big.Int { return new(big.Int).Lsh(big.NewInt(1), bits) }
	tests := []struct {
		name      string
		n         *big.Int
		wantInt   int64
		wantExact string
	}{
		{name: "nil", n: nil, wantInt: 0, wantExact: "0"},
		{name: "negative is clamped", n: big.NewInt(-5), wantInt: 0, wantExact: "0"},
		{name: "small /120 pool", n: big.NewInt(256), wantInt: 256, wantExact: "256"},
		{name: "largest exact int64", n: big.NewInt(math.MaxInt64), wantInt: math.MaxInt64, wantExact: "9223372036854775807"},
		{name: "2^63 saturates", n: pow(63), wantInt: math.MaxInt64, wantExact: "9223372036854775808"},
		{name: "empty /64 saturates", n: pow(64), wantInt: math.MaxInt64, wantExact: "18446744073709551616"},
		{name: "/64 with three in use", n: new(big.Int).Sub(pow(64), big.NewInt(3)), wantInt: math.MaxInt64, wantExact: "18446744073709551613"},
		{name: "whole IPv6 space fits the column", n: pow(128), wantInt: math.MaxInt64, wantExact: "340282366920938463463374607431768211456"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s IPAddressPoolStatus
			s.SetAvailableIPv6(tt.n)
			if s.AvailableIPv6 != tt.wantInt || s.AvailableIPv6Exact != tt.wantExact {
				t.Errorf("got (%d, %q), want (%d, %q)", s.AvailableIPv6, s.AvailableIPv6Exact, tt.wantInt, tt.wantExact)
			}
			// The CRD caps the string at 40 characters; 2^128 must fit.
			if len(s.AvailableIPv6Exact) > 40 {
				t.Errorf("exact count %q is longer than the CRD's maxLength 40", s.AvailableIPv6Exact)
			}
		})
	}
}

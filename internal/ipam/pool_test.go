package ipam

import (
	"errors"
	"strings"
	"testing"
)

// mkPool builds a Pool from entries, failing the test on a parse error.
func mkPool(t testing.TB, name string, autoAssign bool, entries ...string) Pool {
	t.Helper()
	rs, err := ParseRanges(entries)
	if err != nil {
		t.Fatalf("pool %q: %v", name, err)
	}
	return Pool{Name: name, Ranges: rs, AutoAssign: autoAssign}
}

func TestValidatePools(t *testing.T) {
	tests := []struct {
		name  string
		pools []Pool
		want  []string // substrings; none means valid
	}{
		{
			name: "disjoint pools of both families",
			pools: []Pool{
				mkPool(t, "a", true, "192.0.2.0/25", "2001:db8::/64"),
				mkPool(t, "b", true, "192.0.2.128-192.0.2.255", "2001:db8:0:1::/64"),
			},
		},
		{
			name: "adjacent ranges do not overlap",
			pools: []Pool{
				mkPool(t, "a", true, "192.0.2.0-192.0.2.9", "192.0.2.10-192.0.2.19"),
			},
		},
		{
			name: "overlap across pools names both pools and entries",
			pools: []Pool{
				mkPool(t, "web", true, "192.0.2.0/24"),
				mkPool(t, "db", true, "192.0.2.100-192.0.2.110"),
			},
			want: []string{`pool "db" entry "192.0.2.100-192.0.2.110" overlaps pool "web" entry "192.0.2.0/24"`},
		},
		{
			name: "overlap within one pool",
			pools: []Pool{
				mkPool(t, "web", true, "192.0.2.0/24", "192.0.2.7/30"),
			},
			want: []string{`pool "web": entry "192.0.2.7/30" overlaps its entry "192.0.2.0/24"`},
		},
		{
			name: "IPv6 overlap",
			pools: []Pool{
				mkPool(t, "a", true, "2001:db8::/48"),
				mkPool(t, "b", true, "2001:db8:0:5::1-2001:db8:0:5::9"),
			},
			want: []string{`pool "b" entry "2001:db8:0:5::1-2001:db8:0:5::9" overlaps pool "a" entry "2001:db8::/48"`},
		},
		{
			name: "a long range overlapping a later one is still found",
			pools: []Pool{
				mkPool(t, "a", true, "198.18.0.0/16"),
				mkPool(t, "b", true, "198.18.1.0/24"),
				mkPool(t, "c", true, "198.18.200.0/24"),
			},
			want: []string{`pool "b" entry "198.18.1.0/24" overlaps pool "a"`, `pool "c" entry "198.18.200.0/24" overlaps pool "a"`},
		},
		{
			name:  "duplicate name",
			pools: []Pool{mkPool(t, "a", true, "192.0.2.0/28"), mkPool(t, "a", true, "192.0.2.16/28")},
			want:  []string{`pool "a" is defined twice`},
		},
		{
			name:  "no addresses",
			pools: []Pool{{Name: "empty"}},
			want:  []string{`pool "empty" has no addresses`},
		},
		{
			name:  "no name",
			pools: []Pool{mkPool(t, "", true, "192.0.2.0/28")},
			want:  []string{"a pool has no name"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidatePools(tt.pools)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestValidatePoolsOverlapErrorIsTyped(t *testing.T) {
	err := ValidatePools([]Pool{mkPool(t, "a", true, "192.0.2.0/24"), mkPool(t, "b", true, "192.0.2.255/32")})
	var oe *OverlapError
	if !errors.As(err, &oe) {
		t.Fatalf("%v is not an *OverlapError", err)
	}
	if oe.PoolA != "a" || oe.PoolB != "b" || oe.EntryA != "192.0.2.0/24" || oe.EntryB != "192.0.2.255/32" {
		t.Errorf("got %+v", oe)
	}
}

package ipam

import (
	"errors"
	"math/big"
	"net/netip"
	"strings"
	"testing"
)

func TestParseRange(t *testing.T) {
	tests := []struct {
		entry       string
		first, last string
		canonical   string
	}{
		{"192.0.2.0/24", "192.0.2.0", "192.0.2.255", "192.0.2.0/24"},
		{"  198.51.100.0/30 ", "198.51.100.0", "198.51.100.3", "198.51.100.0/30"},
		{"192.0.2.7/24", "192.0.2.0", "192.0.2.255", "192.0.2.0/24"}, // host bits masked, as MetalLB does
		{"203.0.113.9/32", "203.0.113.9", "203.0.113.9", "203.0.113.9/32"},
		{"192.0.2.10-192.0.2.20", "192.0.2.10", "192.0.2.20", "192.0.2.10-192.0.2.20"},
		{"192.0.2.10 - 192.0.2.20", "192.0.2.10", "192.0.2.20", "192.0.2.10-192.0.2.20"},
		{"192.0.2.5-192.0.2.5", "192.0.2.5", "192.0.2.5", "192.0.2.5/32"},
		{"192.0.2.0-192.0.2.255", "192.0.2.0", "192.0.2.255", "192.0.2.0/24"},
		{"0.0.0.0/0", "0.0.0.0", "255.255.255.255", "0.0.0.0/0"},
		{"2001:db8::/64", "2001:db8::", "2001:db8::ffff:ffff:ffff:ffff", "2001:db8::/64"},
		{"2001:db8::1-2001:db8::ff", "2001:db8::1", "2001:db8::ff", "2001:db8::1-2001:db8::ff"},
		{"2001:db8::ffff:ffff:ffff:fffe-2001:db8:0:1::1", "2001:db8::ffff:ffff:ffff:fffe", "2001:db8:0:1::1", "2001:db8::ffff:ffff:ffff:fffe-2001:db8:0:1::1"},
		{"::/0", "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::/0"},
		{"2001:db8::1/128", "2001:db8::1", "2001:db8::1", "2001:db8::1/128"},
		{"10.4.11.0-10.4.15.254", "10.4.11.0", "10.4.15.254", "10.4.11.0-10.4.15.254"},
	}
	for _, tt := range tests {
		t.Run(tt.entry, func(t *testing.T) {
			r, err := ParseRange(tt.entry)
			if err != nil {
				t.Fatalf("ParseRange(%q): %v", tt.entry, err)
			}
			if r.First != netip.MustParseAddr(tt.first) || r.Last != netip.MustParseAddr(tt.last) {
				t.Errorf("got %s-%s, want %s-%s", r.First, r.Last, tt.first, tt.last)
			}
			if got := r.String(); got != tt.canonical {
				t.Errorf("String() = %q, want %q", got, tt.canonical)
			}
			if r.Entry() != tt.entry {
				t.Errorf("Entry() = %q, want the text as written %q", r.Entry(), tt.entry)
			}
		})
	}
}

func TestParseRangeErrors(t *testing.T) {
	tests := []struct {
		entry string
		want  []string // substrings of the message
	}{
		{"192.168.1.300/24", []string{`"192.168.1.300/24"`, `"192.168.1.300" is not a valid IP address`, "192.0.2.0/24"}},
		{"10.0.0.5-10.0.0.1", []string{"end 10.0.0.1 is below its start 10.0.0.5", "write the lower address first: 10.0.0.1-10.0.0.5"}},
		{"10.0.0.1-2001:db8::1", []string{"mixes IPv4 (10.0.0.1) and IPv6 (2001:db8::1)", "one entry per family"}},
		{"", []string{"empty", "remove it"}},
		{"   ", []string{"empty"}},
		{"192.0.2.1", []string{"single address", "192.0.2.1/32"}},
		{"2001:db8::1", []string{"single address", "2001:db8::1/128"}},
		{"192.0.2.0/33", []string{`prefix length "33" is not a number from 0 to 32`}},
		{"2001:db8::/129", []string{"0 to 128"}},
		{"192.0.2.0/x", []string{`prefix length "x"`}},
		{"192.0.2.0/", []string{"prefix length"}},
		{"192.0.2.0/024", []string{"prefix length"}},
		{"fe80::1%eth0/64", []string{"zone"}},
		{"192.0.2.0/24-192.0.3.0/24", []string{"two plain addresses"}},
		{"192.0.2.1-", []string{"range end is missing"}},
		{"-192.0.2.1", []string{"range start is missing"}},
		{"pool", []string{"neither a CIDR nor a range"}},
		{"192.0.2.1-192.0.2.x", []string{`"192.0.2.x" is not a valid IP address`}},
	}
	for _, tt := range tests {
		t.Run(tt.entry, func(t *testing.T) {
			_, err := ParseRange(tt.entry)
			if err == nil {
				t.Fatalf("ParseRange(%q) succeeded, want an error", tt.entry)
			}
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Entry != tt.entry {
				t.Errorf("error %v is not a *ParseError for entry %q", err, tt.entry)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseRanges(t *testing.T) {
	rs, err := ParseRanges([]string{"192.0.2.0/24", "bad", "2001:db8::/64", "10.0.0.9-10.0.0.1"})
	if err == nil || !strings.Contains(err.Error(), `"bad"`) || !strings.Contains(err.Error(), "10.0.0.9-10.0.0.1") {
		t.Errorf("want both bad entries reported, got %v", err)
	}
	if len(rs) != 2 {
		t.Errorf("got %d good ranges, want 2", len(rs))
	}
}

func TestPrefixes(t *testing.T) {
	tests := []struct {
		entry string
		want  string
	}{
		{"192.0.2.10-192.0.2.20", "192.0.2.10/31 192.0.2.12/30 192.0.2.16/30 192.0.2.20/32"},
		{"192.0.2.0/24", "192.0.2.0/24"},
		{"0.0.0.0-255.255.255.255", "0.0.0.0/0"},
		{"0.0.0.1-255.255.255.255", "0.0.0.1/32 0.0.0.2/31 0.0.0.4/30 0.0.0.8/29 0.0.0.16/28 0.0.0.32/27 0.0.0.64/26 0.0.0.128/25 0.0.1.0/24 0.0.2.0/23 0.0.4.0/22 0.0.8.0/21 0.0.16.0/20 0.0.32.0/19 0.0.64.0/18 0.0.128.0/17 0.1.0.0/16 0.2.0.0/15 0.4.0.0/14 0.8.0.0/13 0.16.0.0/12 0.32.0.0/11 0.64.0.0/10 0.128.0.0/9 1.0.0.0/8 2.0.0.0/7 4.0.0.0/6 8.0.0.0/5 16.0.0.0/4 32.0.0.0/3 64.0.0.0/2 128.0.0.0/1"},
		{"::/0", "::/0"},
		{"2001:db8::ffff:ffff:ffff:fffe-2001:db8:0:1::1", "2001:db8::ffff:ffff:ffff:fffe/127 2001:db8:0:1::/127"},
		{"255.255.255.255/32", "255.255.255.255/32"},
	}
	for _, tt := range tests {
		r, err := ParseRange(tt.entry)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, p := range r.Prefixes() {
			got = append(got, p.String())
		}
		if strings.Join(got, " ") != tt.want {
			t.Errorf("Prefixes(%s) = %v, want %s", tt.entry, got, tt.want)
		}
	}
}

func TestRangeSize(t *testing.T) {
	tests := []struct {
		entry string
		want  string
	}{
		{"192.0.2.0/24", "256"},
		{"10.0.0.0/8", "16777216"},
		{"2001:db8::/64", "18446744073709551616"},
		{"::/0", "340282366920938463463374607431768211456"},
		{"192.0.2.5-192.0.2.5", "1"},
	}
	for _, tt := range tests {
		r, _ := ParseRange(tt.entry)
		want, _ := new(big.Int).SetString(tt.want, 10)
		if r.Size().Cmp(want) != 0 {
			t.Errorf("Size(%s) = %s, want %s", tt.entry, r.Size(), want)
		}
	}
}

func TestRangeContainsOverlaps(t *testing.T) {
	r, _ := ParseRange("192.0.2.10-192.0.2.20")
	for _, tt := range []struct {
		a    string
		want bool
	}{{"192.0.2.9", false}, {"192.0.2.10", true}, {"192.0.2.20", true}, {"192.0.2.21", false}, {"::ffff:192.0.2.15", false}} {
		if got := r.Contains(netip.MustParseAddr(tt.a)); got != tt.want {
			t.Errorf("Contains(%s) = %v, want %v", tt.a, got, tt.want)
		}
	}
	for _, tt := range []struct {
		o    string
		want bool
	}{{"192.0.2.0/28", true}, {"192.0.2.20/32", true}, {"192.0.2.21-192.0.2.30", false}, {"::/0", false}} {
		o, _ := ParseRange(tt.o)
		if got := r.Overlaps(o); got != tt.want {
			t.Errorf("Overlaps(%s) = %v, want %v", tt.o, got, tt.want)
		}
	}
}

// FuzzParseRange checks that parsing never panics and that every accepted
// entry is a well-formed range whose canonical form and CIDR summary agree
// with it.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{
		"192.0.2.0/24", "192.0.2.7/24", "192.0.2.10 - 192.0.2.20", "2001:db8::/64", "::/0", "0.0.0.0/0",
		"2001:db8::ffff:ffff:ffff:fffe-2001:db8:0:1::1", "192.168.1.300/24", "10.0.0.5-10.0.0.1",
		"10.0.0.1-2001:db8::1", "", "fe80::1%eth0/64", "::ffff:192.0.2.1/120", "1.2.3.4--5",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRange(s)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Entry != s {
				t.Fatalf("error %v for %q is not a *ParseError naming the entry", err, s)
			}
			return
		}
		if !r.First.IsValid() || !r.Last.IsValid() || r.First.Zone() != "" || r.Last.Zone() != "" {
			t.Fatalf("%q: invalid bounds %v-%v", s, r.First, r.Last)
		}
		if r.First.Is4() != r.Last.Is4() {
			t.Fatalf("%q: mixed families %v-%v", s, r.First, r.Last)
		}
		if r.Last.Less(r.First) {
			t.Fatalf("%q: end %v below start %v", s, r.Last, r.First)
		}
		back, err := ParseRange(r.String())
		if err != nil || back.First != r.First || back.Last != r.Last {
			t.Fatalf("%q: canonical form %q does not round-trip: %v-%v, %v", s, r.String(), back.First, back.Last, err)
		}
		ps := r.Prefixes()
		if len(ps) == 0 || ps[0].Addr() != r.First || lastOf(ps[len(ps)-1]) != r.Last {
			t.Fatalf("%q: prefixes %v do not span %v-%v", s, ps, r.First, r.Last)
		}
		for i, p := range ps {
			if p.Masked() != p {
				t.Fatalf("%q: prefix %v has host bits", s, p)
			}
			if i > 0 && lastOf(ps[i-1]).Next() != p.Addr() {
				t.Fatalf("%q: prefixes %v are not contiguous", s, ps)
			}
		}
		total := new(big.Int)
		for _, p := range ps {
			total.Add(total, new(big.Int).Lsh(big.NewInt(1), uint(p.Addr().BitLen()-p.Bits())))
		}
		if total.Cmp(r.Size()) != 0 {
			t.Fatalf("%q: prefixes cover %s addresses, range has %s", s, total, r.Size())
		}
	})
}

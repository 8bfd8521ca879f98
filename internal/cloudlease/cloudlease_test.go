package cloudlease

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes/fake"
)

func TestLeaseName(t *testing.T) {
	tests := []struct {
		ip   string
		want string // the whole name, or its start before the hash
		hash bool
	}{
		{"198.51.100.24", "herald-fip-198.51.100.24", false},
		{"7", "herald-fip-7", false},
		{"fip-web", "herald-fip-fip-web", false},
		{"2001:db8::1", "herald-fip-2001-db8--1-", true},
		{"2001:DB8::/64", "herald-fip-2001-db8---64-", true},
		{"My FIP", "herald-fip-my-fip-", true},
		{"-", "herald-fip-", true},
		{strings.Repeat("a:", 100), "herald-fip-" + strings.Repeat("a-", 20)[:39] + "-", true},
	}
	seen := map[string]string{}
	for _, tc := range tests {
		got := LeaseName(tc.ip)
		if msgs := validation.IsDNS1123Subdomain(got); len(msgs) > 0 {
			t.Errorf("LeaseName(%q) = %q, not a valid name: %v", tc.ip, got, msgs)
		}
		if !tc.hash && got != tc.want {
			t.Errorf("LeaseName(%q) = %q, want %q", tc.ip, got, tc.want)
		}
		if tc.hash && (!strings.HasPrefix(got, tc.want) || len(got) != len(tc.want)+10) {
			t.Errorf("LeaseName(%q) = %q, want %q and a 10-digit hash", tc.ip, got, tc.want)
		}
		if LeaseName(tc.ip) != got {
			t.Errorf("LeaseName(%q) is not deterministic", tc.ip)
		}
		if other, dup := seen[got]; dup {
			t.Errorf("%q and %q share the Lease %q", other, tc.ip, got)
		}
		seen[got] = tc.ip
	}
	// Names that differ only where the name cannot show it still differ.
	if LeaseName("2001:db8::1") == LeaseName("2001-db8--1") || LeaseName("a:b") == LeaseName("a_b") {
		t.Error("two IPs share a Lease")
	}
}

func TestNew(t *testing.T) {
	c := fake.NewClientset().CoordinationV1()
	if _, err := New(nil, "ns", Options{}); err == nil {
		t.Error("no client: accepted")
	}
	if _, err := New(c, "", Options{}); err == nil {
		t.Error("no namespace: accepted")
	}
	if _, err := New(c, "ns", Options{HoldDown: -1}); err == nil {
		t.Error("negative hold-down: accepted")
	}
	a, err := New(c, "ns", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if a.opts.Duration != DefaultDuration || a.opts.HoldDown != DefaultHoldDown || a.opts.Now == nil {
		t.Errorf("defaults not applied: %+v", a.opts)
	}
	if _, err := a.Acquire(t.Context(), "198.51.100.24", ""); err == nil {
		t.Error("empty node name: accepted")
	}
}

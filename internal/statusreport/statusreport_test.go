package statusreport

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestWrite(t *testing.T) {
	tests := []struct {
		name string
		r    Report
		want []string
	}{
		{"nothing reported", Report{Namespace: "metallb-system"},
			[]string{"CONFIGURATION (namespace metallb-system)", "none reported"}},
		{"invalid configuration shows its problems", Report{Configs: []Config{{Name: "controller", Result: "Invalid", Summary: "IPAddressPool/a: overlaps b"}}},
			[]string{"controller  Invalid: IPAddressPool/a: overlaps b"}},
		{"valid configuration hides an old summary", Report{Configs: []Config{{Name: "speaker-n1", Result: "Valid", Summary: "old"}}},
			[]string{"speaker-n1  Valid\n"}},
		{"announced both ways", Report{Services: []Service{{Key: "a/b", Addresses: []string{"192.0.2.1"}, Pool: "p", Layer2: "n1 (eth0)", BGP: []string{"n2: r"}}}},
			[]string{"layer2 n1 (eth0); bgp n2: r"}},
		{"a floating IP's holder", Report{Services: []Service{{Key: "a/f", Addresses: []string{"203.0.113.10"}, Cloud: "n2 (server 2, floating IP 7)"}}},
			[]string{"a/f", "cloud n2 (server 2, floating IP 7)"}},
		{"a node that cannot hold floating IPs", Report{Configs: []Config{{Name: "speaker-n3", Result: "Valid", Notes: []string{"this node cannot hold floating IPs: no server"}}}},
			[]string{"speaker-n3  Valid; this node cannot hold floating IPs: no server"}},
		{"addressed, announced by nobody", Report{Services: []Service{{Key: "a/b", Addresses: []string{"192.0.2.1"}}}},
			[]string{"a/b", "192.0.2.1", "-", "nobody yet"}},
		{"no address", Report{Services: []Service{{Key: "a/c", Problem: "no pool has a free address"}}},
			[]string{"none: no pool has a free address"}},
		{"floating IPs and who holds them", Report{FloatingIPs: []FloatingIP{{ID: "7", Holder: "n1", Age: 2 * time.Second}, {ID: "8"}}},
			[]string{"FLOATING IPS", "  7 ", "n1", "2s ago", "nobody (released"}},
		{"session down", Report{Sessions: []SessionProblem{{Peer: "r", Message: "hold timer expired", Age: 90 * time.Second, Count: 2}}},
			[]string{"BGP SESSIONS DOWN", "r", "1m30s ago", "hold timer expired"}},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		if err := tt.r.Write(&b); err != nil {
			t.Fatal(err)
		}
		for _, w := range tt.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("%s: %q missing from\n%s", tt.name, w, b.String())
			}
		}
	}
}

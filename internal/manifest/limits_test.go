package manifest

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestLongLines checks that no line is too long to read: a line past a
// reader's limit once ended the file there in silence, so the invalid
// pool after it was never checked and the file passed.
func TestLongLines(t *testing.T) {
	// Past the 16 MiB the old line reader allowed. A long value is slow to
	// decode, so only the comment is that long; the value is over 1 MiB.
	const long, longValue = 17 << 20, 2 << 20
	good := poolYAML
	bad := "---\n" + strings.NewReplacer("name: pool", "name: bad", "192.0.2.0/24", "192.168.1.300/24").Replace(poolYAML)
	tests := []struct {
		name    string
		middle  string
		objects int
	}{
		{name: "long comment line", middle: "---\n# " + strings.Repeat("x", long) + "\n", objects: 2},
		{name: "long annotation value", middle: "---\n" + strings.NewReplacer("name: pool", "name: noted\n  annotations:\n    note: "+strings.Repeat("x", longValue),
			"192.0.2.0/24", "198.51.100.0/24").Replace(poolYAML), objects: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := good + tc.middle + bad
			badLine := strings.Count(good+tc.middle, "\n") + 2 // after the "---"
			r := validate(t, DefaultNamespace, "a.yaml", in)
			if r.Valid() {
				t.Fatalf("valid; the invalid pool after the long line was not read (objects: %d)", r.Objects)
			}
			want := fmt.Sprintf("a.yaml:%d: IPAddressPool/bad: spec.addresses[0]: ", badLine)
			if !hasFinding(r.Problems, want, "not a valid IP address") {
				t.Errorf("no problem %q in:\n%v", want, r.Problems)
			}
			if r.Objects != tc.objects {
				t.Errorf("objects = %d, want %d", r.Objects, tc.objects)
			}
		})
	}
}

// TestAliasBudget checks that a document whose YAML aliases expand it far
// beyond its own size is refused quickly and in bounded memory, while
// ordinary use of anchors still reads.
func TestAliasBudget(t *testing.T) {
	// 99 aliases of a 2 MB value: 200 MB once expanded, which took 14 s
	// and 1.66 GB before.
	var amplified strings.Builder
	amplified.WriteString("apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: big\n  annotations:\n")
	fmt.Fprintf(&amplified, "    a0: &v %s\n", strings.Repeat("x", 2<<20))
	for i := 1; i < 100; i++ {
		fmt.Fprintf(&amplified, "    a%d: *v\n", i)
	}
	amplified.WriteString("spec:\n  addresses: [192.0.2.0/24]\n")

	// A billion laughs: small, but nested aliases multiply.
	laughs := "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: lol\n  annotations:\n    l0: &a0 lol\n"
	for i := 1; i < 10; i++ {
		laughs += fmt.Sprintf("    l%d: &a%d [*a%[3]d, *a%[3]d, *a%[3]d, *a%[3]d, *a%[3]d, *a%[3]d, *a%[3]d, *a%[3]d, *a%[3]d, *a%[3]d]\n", i, i, i-1)
	}

	// Anchors as people use them: one selector shared by several items.
	shared := "apiVersion: v1\nkind: List\nitems:\n" +
		"- apiVersion: metallb.io/v1beta1\n  kind: IPAddressPool\n  metadata: {name: p}\n  spec: {addresses: [192.0.2.0/24]}\n"
	for i := range 20 {
		anchor := "*sel"
		if i == 0 {
			anchor = "&sel [{matchLabels: {rack: a, zone: z}}, {matchExpressions: [{key: role, operator: In, values: [edge, border]}]}]"
		}
		shared += fmt.Sprintf("- apiVersion: metallb.io/v1beta1\n  kind: L2Advertisement\n  metadata: {name: l%d}\n  spec: {interfaces: [eth%d], nodeSelectors: %s}\n", i, i, anchor)
	}

	tests := []struct {
		name      string
		in        string
		valid     bool
		fragments []string
	}{
		{name: "99 aliases of a 2 MB value", in: amplified.String(), fragments: []string{"a.yaml:1: ", "aliases", "expand"}},
		{name: "billion laughs", in: laughs, fragments: []string{"a.yaml:1: ", "alias"}},
		{name: "a shared selector", in: shared, valid: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			const limit, memLimit = 2 * time.Second, 128 << 20
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			done := make(chan Report, 1)
			go func() { done <- validate(t, DefaultNamespace, "a.yaml", tc.in) }()
			var r Report
			select {
			case r = <-done:
			case <-time.After(limit):
				// Fail at the bound; the decoding left running ends
				// with the test binary.
				t.Fatalf("still decoding after %s", limit)
			}
			runtime.ReadMemStats(&after)
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > memLimit {
				t.Errorf("allocated %d MiB, want at most %d MiB", alloc>>20, memLimit>>20)
			}
			if r.Valid() != tc.valid {
				t.Fatalf("valid = %v, want %v; problems:\n%v", r.Valid(), tc.valid, r.Problems)
			}
			if len(tc.fragments) > 0 && !hasFinding(r.Problems, tc.fragments...) {
				t.Errorf("no problem containing %q in:\n%v", tc.fragments, r.Problems)
			}
		})
	}
}

package ipam

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func newAllocator(t testing.TB, pools ...Pool) *Allocator {
	t.Helper()
	a := New()
	if _, err := a.SetPools(pools); err != nil {
		t.Fatal(err)
	}
	return a
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func ips(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = ip(s)
	}
	return out
}

// unpinned offers every given pool as an unpinned candidate.
func unpinned(names ...string) []Candidate {
	out := make([]Candidate, len(names))
	for i, n := range names {
		out[i] = Candidate{Pool: n}
	}
	return out
}

func svc4(key string) Service { return Service{Key: key} }

func svc6(key string) Service {
	return Service{Key: key, Families: Families{Policy: SingleStack, Primary: IPv6}}
}

func wantAlloc(t *testing.T, got Allocation, err error, pool string, addrs ...string) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	if got.Pool != pool || !slices.Equal(got.Addrs, ips(addrs...)) {
		t.Fatalf("got %s %v, want %s %v", got.Pool, got.Addrs, pool, addrs)
	}
}

func wantErr(t *testing.T, err error, reason Reason, contains ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s", reason)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%v is not an *ipam.Error", err)
	}
	if e.Reason != reason {
		t.Errorf("reason %s, want %s (%v)", e.Reason, reason, err)
	}
	for _, c := range contains {
		if !strings.Contains(err.Error(), c) {
			t.Errorf("error %q does not contain %q", err, c)
		}
	}
}

// seedFile checks that a seed manifest still says what a test encodes, so
// the tests notice when a seed changes. The seeds live beside the repository
// in shared/.
func seedFile(t *testing.T, name string, mustContain ...string) {
	t.Helper()
	path := filepath.Join("..", "..", "..", "shared", "seeds", "manifests", name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Logf("seed %s not readable (%v); using the values encoded here", name, err)
		return
	}
	for _, s := range mustContain {
		if !strings.Contains(string(data), s) {
			t.Errorf("seed %s no longer contains %q: update this test", name, s)
		}
	}
}

func TestSeedFirstAddress(t *testing.T) {
	tests := []struct {
		seed    string
		entry   string
		want    []string
		comment string
	}{
		{"001-goldentooth-l2-migration.yaml", "10.4.11.0-10.4.15.254", []string{"10.4.11.0", "10.4.11.1"}, "hands out 10.4.11.0 first, then 10.4.11.1"},
		{"002-bgp-flux-helm.yaml", "192.168.32.0/24", []string{"192.168.32.0"}, "the first Service gets 192.168.32.0"},
		{"004-talos-complete.yaml", "192.168.50.50-192.168.50.250", []string{"192.168.50.50"}, "nginx-test-lb gets 192.168.50.50"},
		{"000-hetzner-floating-ip.yaml", "116.202.177.24/32", []string{"116.202.177.24"}, "the first LoadBalancer Service gets 116.202.177.24"},
	}
	for _, tt := range tests {
		t.Run(tt.seed, func(t *testing.T) {
			seedFile(t, tt.seed, tt.entry, tt.comment)
			a := newAllocator(t, mkPool(t, "p", true, tt.entry))
			for i, w := range tt.want {
				got, err := a.Allocate(svc4(fmt.Sprintf("default/s%d", i)), unpinned("p"))
				wantAlloc(t, got, err, "p", w)
			}
		})
	}
}

// Seed 000: a /32 pool; the second service stays pending with an error
// naming the exhausted pool.
func TestSeedHetznerSecondServiceFails(t *testing.T) {
	seedFile(t, "000-hetzner-floating-ip.yaml", "116.202.177.24/32", "name: ip-address-pool")
	a := newAllocator(t, mkPool(t, "ip-address-pool", true, "116.202.177.24/32"))
	got, err := a.Allocate(svc4("default/first"), unpinned("ip-address-pool"))
	wantAlloc(t, got, err, "ip-address-pool", "116.202.177.24")
	_, err = a.Allocate(svc4("default/second"), unpinned("ip-address-pool"))
	wantErr(t, err, ReasonPoolExhausted, `no available IPs: pool "ip-address-pool" exhausted (1 of 1 IPv4 in use)`)
	if _, ok := a.Get("default/second"); ok {
		t.Error("the failed service holds an allocation")
	}
}

// Seed 003: an explicit spec.loadBalancerIP inside the pool.
func TestSeedMicrok8sRequested(t *testing.T) {
	seedFile(t, "003-microk8s-ingress.yaml", "192.168.88.40-192.168.88.60", "192.168.88.44")
	a := newAllocator(t, mkPool(t, "default-addresspool", true, "192.168.88.40-192.168.88.60"))
	got, err := a.Assign(svc4("ingress/ingress"), ips("192.168.88.44"), nil)
	wantAlloc(t, got, err, "default-addresspool", "192.168.88.44")
}

// Seed 004-talos-multiple-pools, applied in the order the seed gives.
func TestSeedTalosMultiplePools(t *testing.T) {
	seedFile(t, "004-talos-multiple-pools.yaml",
		"192.168.50.50-192.168.50.100", "192.168.50.101-192.168.50.150", "192.168.50.151-192.168.50.250",
		"name: reserved-manual", "autoAssign: false")
	pools := []Pool{
		mkPool(t, "web-services", true, "192.168.50.50-192.168.50.100"),
		mkPool(t, "database-services", true, "192.168.50.101-192.168.50.150"),
		mkPool(t, "reserved-manual", false, "192.168.50.151-192.168.50.250"),
	}
	// No pool has a serviceAllocation, so every one is an unpinned candidate.
	all := unpinned("web-services", "database-services", "reserved-manual")
	run := func() []Allocation {
		a := newAllocator(t, pools...)
		var out []Allocation
		got, err := a.AllocateFromPool(Service{Key: "default/my-db-service", Ports: []Port{{"TCP", 5432}}}, "database-services")
		wantAlloc(t, got, err, "database-services", "192.168.50.101")
		out = append(out, got)

		got, err = a.Assign(Service{Key: "default/my-web-service", Ports: []Port{{"TCP", 80}}}, ips("192.168.50.100"), nil)
		wantAlloc(t, got, err, "web-services", "192.168.50.100")
		out = append(out, got)

		got, err = a.Assign(Service{Key: "ingress-nginx/ingress-nginx-controller", Ports: []Port{{"TCP", 80}, {"TCP", 443}}}, ips("192.168.50.80"), nil)
		wantAlloc(t, got, err, "web-services", "192.168.50.80")
		out = append(out, got)

		_, err = a.Assign(Service{Key: "default/postgres-external", Ports: []Port{{"TCP", 5432}}}, ips("192.168.50.100"), nil)
		wantErr(t, err, ReasonAddressInUse, "192.168.50.100", `"default/my-web-service"`)
		var e *Error
		if errors.As(err, &e) && (e.Holder != "default/my-web-service" || e.Address != ip("192.168.50.100")) {
			t.Errorf("error names holder %q address %s", e.Holder, e.Address)
		}

		// Unpinned pools are tried by name: database-services comes first.
		got, err = a.Allocate(Service{Key: "default/my-webapp", Ports: []Port{{"TCP", 80}}}, all)
		wantAlloc(t, got, err, "database-services", "192.168.50.102")
		out = append(out, got)
		got, err = a.Allocate(Service{Key: "default/game-server", Ports: []Port{{"UDP", 7777}, {"UDP", 27015}}}, all)
		wantAlloc(t, got, err, "database-services", "192.168.50.103")
		out = append(out, got)

		if s, _ := a.Stats("reserved-manual"); s.IPv4.InUse != 0 {
			t.Errorf("reserved-manual was used automatically")
		}
		return out
	}
	first := run()
	for i := 0; i < 5; i++ {
		if again := run(); fmt.Sprint(again) != fmt.Sprint(first) {
			t.Fatalf("run %d gave %v, first run %v", i, again, first)
		}
	}
}

func TestLowestFreeWins(t *testing.T) {
	a := newAllocator(t, mkPool(t, "p", true, "198.18.0.10-198.18.0.20", "198.18.0.0/30"))
	for i, want := range []string{"198.18.0.0", "198.18.0.1", "198.18.0.2", "198.18.0.3", "198.18.0.10", "198.18.0.11"} {
		got, err := a.Allocate(svc4(fmt.Sprintf("ns/s%d", i)), unpinned("p"))
		wantAlloc(t, got, err, "p", want)
	}
	a.Release("ns/s1")
	a.Release("ns/s4")
	got, err := a.Allocate(svc4("ns/new1"), unpinned("p"))
	wantAlloc(t, got, err, "p", "198.18.0.1")
	got, err = a.Allocate(svc4("ns/new2"), unpinned("p"))
	wantAlloc(t, got, err, "p", "198.18.0.10")
	got, err = a.Allocate(svc4("ns/new3"), unpinned("p"))
	wantAlloc(t, got, err, "p", "198.18.0.12")
}

func TestAvoidBuggyIPs(t *testing.T) {
	t.Run("skips .0 and .255 across a /24 boundary", func(t *testing.T) {
		p := mkPool(t, "p", true, "198.18.0.254-198.18.1.2")
		p.AvoidBuggyIPs = true
		a := newAllocator(t, p)
		for i, want := range []string{"198.18.0.254", "198.18.1.1", "198.18.1.2"} {
			got, err := a.Allocate(svc4(fmt.Sprintf("ns/s%d", i)), unpinned("p"))
			wantAlloc(t, got, err, "p", want)
		}
		_, err := a.Allocate(svc4("ns/late"), unpinned("p"))
		wantErr(t, err, ReasonPoolExhausted, "3 of 3 IPv4 in use")
		_, err = a.Assign(svc4("ns/req"), ips("198.18.1.0"), nil)
		wantErr(t, err, ReasonNotInAnyPool, `pool "p"`, "avoidBuggyIPs")
		_, err = a.Assign(svc4("ns/req"), ips("198.18.0.255"), nil)
		wantErr(t, err, ReasonNotInAnyPool, "avoidBuggyIPs")
	})
	t.Run("only the last octet matters (MetalLB issue 674)", func(t *testing.T) {
		p := mkPool(t, "p", true, "198.18.0.32/27")
		p.AvoidBuggyIPs = true
		a := newAllocator(t, p)
		got, err := a.Allocate(svc4("ns/s"), unpinned("p"))
		wantAlloc(t, got, err, "p", "198.18.0.32")
		if s, _ := a.Stats("p"); s.IPv4.Capacity.Int64() != 32 {
			t.Errorf("capacity %s, want 32", s.IPv4.Capacity)
		}
	})
	t.Run("no effect on IPv6", func(t *testing.T) {
		p := mkPool(t, "p", true, "2001:db8::/126")
		p.AvoidBuggyIPs = true
		a := newAllocator(t, p)
		got, err := a.Allocate(svc6("ns/s"), unpinned("p"))
		wantAlloc(t, got, err, "p", "2001:db8::")
	})
	t.Run("a pool of only buggy addresses", func(t *testing.T) {
		p := mkPool(t, "p", true, "198.18.0.255-198.18.1.0")
		p.AvoidBuggyIPs = true
		a := newAllocator(t, p)
		_, err := a.Allocate(svc4("ns/s"), unpinned("p"))
		wantErr(t, err, ReasonNoPoolMatches, "avoidBuggyIPs excludes them all")
	})
	t.Run("capacity of a /8", func(t *testing.T) {
		p := mkPool(t, "p", true, "10.0.0.0/8")
		p.AvoidBuggyIPs = true
		a := newAllocator(t, p)
		if s, _ := a.Stats("p"); s.IPv4.Capacity.Int64() != 1<<24-2*(1<<16) {
			t.Errorf("capacity %s", s.IPv4.Capacity)
		}
	})
}

func TestPoolOrder(t *testing.T) {
	// Every pool holds one address, so each allocation exhausts the pool
	// it came from and the next goes to the next pool in order.
	prio := func(p Pool, n int) Pool { p.Priority = n; return p }
	pools := []Pool{
		prio(mkPool(t, "z-pinned-1", true, "198.18.0.1/32"), 1),
		prio(mkPool(t, "a-pinned-2", true, "198.18.0.2/32"), 2),
		mkPool(t, "m-pinned", true, "198.18.0.3/32"),
		mkPool(t, "b-pinned", true, "198.18.0.4/32"),
		prio(mkPool(t, "n-pinned-neg", true, "198.18.0.5/32"), -1),
		mkPool(t, "y-unpinned", true, "198.18.0.6/32"),
		mkPool(t, "c-unpinned", true, "198.18.0.7/32"),
		mkPool(t, "0-manual", false, "198.18.0.8/32"),
		prio(mkPool(t, "x-unpinned-prio", true, "198.18.0.9/32"), 1), // priority is ignored for unpinned pools
		mkPool(t, "not-offered", true, "198.18.0.10/32"),
	}
	cands := []Candidate{
		{Pool: "z-pinned-1", Pinned: true}, {Pool: "a-pinned-2", Pinned: true}, {Pool: "m-pinned", Pinned: true},
		{Pool: "b-pinned", Pinned: true}, {Pool: "n-pinned-neg", Pinned: true}, {Pool: "y-unpinned"}, {Pool: "c-unpinned"},
		{Pool: "0-manual"}, {Pool: "x-unpinned-prio"}, {Pool: "ghost"},
	}
	wantOrder := []string{"n-pinned-neg", "z-pinned-1", "a-pinned-2", "b-pinned", "m-pinned", "c-unpinned", "x-unpinned-prio", "y-unpinned"}
	rng := rand.New(rand.NewPCG(7, 7))
	for round := 0; round < 10; round++ {
		a := newAllocator(t, pools...)
		shuffled := slices.Clone(cands)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		for i, want := range wantOrder {
			got, err := a.Allocate(svc4(fmt.Sprintf("ns/s%d", i)), shuffled)
			if err != nil || got.Pool != want {
				t.Fatalf("round %d, allocation %d: got %v %v, want pool %s", round, i, got, err, want)
			}
		}
		_, err := a.Allocate(svc4("ns/last"), shuffled)
		wantErr(t, err, ReasonPoolExhausted,
			`no available IPs: pool "ghost" unknown; pool "n-pinned-neg" exhausted (1 of 1 IPv4 in use); pool "z-pinned-1" exhausted`,
			`pool "0-manual" autoAssign=false`, `pool "y-unpinned" exhausted (1 of 1 IPv4 in use)`)
		if strings.Contains(err.Error(), "not-offered") {
			t.Errorf("error mentions a pool that was not offered: %v", err)
		}
	}
}

func TestNoCandidates(t *testing.T) {
	a := newAllocator(t, mkPool(t, "manual", false, "198.18.0.0/24"))
	_, err := a.Allocate(svc4("ns/s"), nil)
	wantErr(t, err, ReasonNoPoolMatches, "no available IPs: no address pool is offered")
	_, err = a.Allocate(svc4("ns/s"), unpinned("manual"))
	wantErr(t, err, ReasonNoPoolMatches, `no available IPs: pool "manual" autoAssign=false`)
	_, err = a.Allocate(svc6("ns/s"), []Candidate{{Pool: "manual"}})
	wantErr(t, err, ReasonNoPoolMatches)
	// The named pool is allowed despite autoAssign=false.
	got, err := a.AllocateFromPool(svc4("ns/s"), "manual")
	wantAlloc(t, got, err, "manual", "198.18.0.0")
}

func TestAllocateFromPool(t *testing.T) {
	a := newAllocator(t, mkPool(t, "one", true, "198.18.0.7/32"), mkPool(t, "v4", true, "198.18.1.0/24"))
	_, err := a.AllocateFromPool(svc4("ns/a"), "nope")
	wantErr(t, err, ReasonUnknownPool, `unknown pool "nope"`)
	got, err := a.AllocateFromPool(svc4("ns/a"), "one")
	wantAlloc(t, got, err, "one", "198.18.0.7")
	_, err = a.AllocateFromPool(svc4("ns/b"), "one")
	wantErr(t, err, ReasonPoolExhausted, `no available IPs in pool "one": exhausted (1 of 1 IPv4 in use)`)
	_, err = a.AllocateFromPool(svc6("ns/c"), "v4")
	wantErr(t, err, ReasonFamilyMismatch, `no available IPs in pool "v4": has no IPv6 addresses`)
	// Idempotent; and changing the annotation moves the service.
	got, err = a.AllocateFromPool(svc4("ns/a"), "one")
	wantAlloc(t, got, err, "one", "198.18.0.7")
	got, err = a.AllocateFromPool(svc4("ns/a"), "v4")
	wantAlloc(t, got, err, "v4", "198.18.1.0")
	if s, _ := a.Stats("one"); s.IPv4.InUse != 0 {
		t.Errorf("old address still counted")
	}
}

func TestAssign(t *testing.T) {
	pools := []Pool{
		mkPool(t, "dual", true, "198.18.0.0/24", "2001:db8::/64"),
		mkPool(t, "other", true, "198.18.1.0/24", "2001:db8:1::/64"),
	}
	dual := Families{Policy: RequireDualStack}
	prefer6 := Families{Policy: PreferDualStack, Primary: IPv6}
	tests := []struct {
		name   string
		svc    Service
		addrs  []string
		accept func(string) error
		pool   string
		reason Reason
		msg    string
	}{
		{name: "one IPv4", svc: svc4("ns/a"), addrs: []string{"198.18.0.9"}, pool: "dual"},
		{name: "dual", svc: Service{Key: "ns/a", Families: dual}, addrs: []string{"198.18.0.9", "2001:db8::9"}, pool: "dual"},
		{name: "prefer with one address", svc: Service{Key: "ns/a", Families: prefer6}, addrs: []string{"198.18.0.9"}, pool: "dual"},
		{name: "outside every pool", svc: svc4("ns/a"), addrs: []string{"203.0.113.1"}, reason: ReasonNotInAnyPool, msg: `["203.0.113.1"] is not allowed in config`},
		{name: "three addresses", svc: Service{Key: "ns/a", Families: dual}, addrs: []string{"198.18.0.1", "2001:db8::1", "198.18.0.2"}, reason: ReasonTooManyAddresses, msg: "more than two addresses"},
		{name: "same family twice", svc: Service{Key: "ns/a", Families: dual}, addrs: []string{"198.18.0.1", "198.18.0.2"}, reason: ReasonFamilyMismatch, msg: "have the same family"},
		{name: "wrong family", svc: svc6("ns/a"), addrs: []string{"198.18.0.1"}, reason: ReasonFamilyMismatch, msg: "does not match the ipFamily of the service"},
		{name: "require dual with one", svc: Service{Key: "ns/a", Families: dual}, addrs: []string{"198.18.0.1"}, reason: ReasonFamilyMismatch},
		{name: "two for single stack", svc: svc4("ns/a"), addrs: []string{"198.18.0.1", "2001:db8::1"}, reason: ReasonFamilyMismatch},
		{name: "split across pools", svc: Service{Key: "ns/a", Families: dual}, addrs: []string{"198.18.0.1", "2001:db8:1::1"}, reason: ReasonPoolMismatch, msg: `pool "dual" but 2001:db8:1::1 is in pool "other"`},
		{name: "none", svc: svc4("ns/a"), reason: ReasonInvalidRequest},
		{name: "no key", svc: Service{}, addrs: []string{"198.18.0.1"}, reason: ReasonInvalidRequest},
		{name: "refused pool", svc: svc4("ns/a"), addrs: []string{"198.18.1.1"},
			accept: func(p string) error {
				if p != "dual" {
					return fmt.Errorf("is not compatible with requested address pool dual")
				}
				return nil
			},
			reason: ReasonPoolNotAllowed, msg: `pool "other", which this service may not use: is not compatible with requested address pool dual`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAllocator(t, pools...)
			got, err := a.Assign(tt.svc, ips(tt.addrs...), tt.accept)
			if tt.reason != "" {
				wantErr(t, err, tt.reason, tt.msg)
				if len(a.Assignments()) != 0 {
					t.Error("a failed Assign left an allocation")
				}
				return
			}
			wantAlloc(t, got, err, tt.pool, tt.addrs...)
		})
	}
}

func TestSharingRules(t *testing.T) {
	const x = "198.18.0.5"
	tcp := func(ports ...int32) []Port {
		var out []Port
		for _, p := range ports {
			out = append(out, Port{"TCP", p})
		}
		return out
	}
	tests := []struct {
		name          string
		holder, other Service
		reason        Reason // "" = may share
		msg           string
	}{
		{"no keys", Service{Key: "ns/h", Ports: tcp(80)}, Service{Key: "ns/o", Ports: tcp(443)}, ReasonAddressInUse, `address 198.18.0.5 is already in use by "ns/h", which does not allow sharing`},
		{"holder has no key", Service{Key: "ns/h", Ports: tcp(80)}, Service{Key: "ns/o", SharingKey: "k", Ports: tcp(443)}, ReasonAddressInUse, "does not allow sharing"},
		{"newcomer has no key", Service{Key: "ns/h", SharingKey: "k", Ports: tcp(80)}, Service{Key: "ns/o", Ports: tcp(443)}, ReasonAddressInUse, `under sharing key "k", and this service has no sharing key`},
		{"different keys", Service{Key: "ns/h", SharingKey: "k", Ports: tcp(80)}, Service{Key: "ns/o", SharingKey: "j", Ports: tcp(443)}, ReasonAddressInUse, `under sharing key "k", not "j"`},
		{"same key, Cluster and Cluster", Service{Key: "ns/h", SharingKey: "k", Ports: tcp(80)}, Service{Key: "ns/o", SharingKey: "k", Ports: tcp(443)}, "", ""},
		{"same key, Cluster and Local", Service{Key: "ns/h", SharingKey: "k", Ports: tcp(80)}, Service{Key: "ns/o", SharingKey: "k", BackendKey: "app=web", Ports: tcp(443)}, ReasonBackendConflict, "externalTrafficPolicy Cluster, but this service has externalTrafficPolicy Local"},
		{"same key, Local with the same selector", Service{Key: "ns/h", SharingKey: "k", BackendKey: "app=web", Ports: tcp(80)}, Service{Key: "ns/o", SharingKey: "k", BackendKey: "app=web", Ports: tcp(443)}, "", ""},
		{"same key, Local with different selectors", Service{Key: "ns/h", SharingKey: "k", BackendKey: "app=web", Ports: tcp(80)}, Service{Key: "ns/o", SharingKey: "k", BackendKey: "app=db", Ports: tcp(443)}, ReasonBackendConflict, `selector "app=web"`},
		{"port clash", Service{Key: "ns/h", SharingKey: "k", Ports: tcp(80, 443)}, Service{Key: "ns/o", SharingKey: "k", Ports: tcp(8080, 443)}, ReasonPortConflict, `port TCP/443 is already in use on "198.18.0.5" by "ns/h"`},
		{"same number, other protocol", Service{Key: "ns/h", SharingKey: "k", Ports: []Port{{"TCP", 53}}}, Service{Key: "ns/o", SharingKey: "k", Ports: []Port{{"UDP", 53}}}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAllocator(t, mkPool(t, "p", true, "198.18.0.0/24"))
			if _, err := a.Assign(tt.holder, ips(x), nil); err != nil {
				t.Fatal(err)
			}
			_, err := a.Assign(tt.other, ips(x), nil)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("sharing refused: %v", err)
				}
				if got := a.Holders(ip(x)); !slices.Equal(got, []string{"ns/h", "ns/o"}) {
					t.Errorf("holders %v", got)
				}
				if s, _ := a.Stats("p"); s.IPv4.InUse != 1 {
					t.Errorf("a shared address counted %d times", s.IPv4.InUse)
				}
				return
			}
			wantErr(t, err, tt.reason, tt.msg)
		})
	}
}

func TestSharingKeyChange(t *testing.T) {
	a := newAllocator(t, mkPool(t, "p", true, "198.18.0.0/24"))
	all := unpinned("p")
	h := Service{Key: "ns/h", SharingKey: "k1", Ports: []Port{{"TCP", 80}}}
	got, err := a.Allocate(h, all)
	wantAlloc(t, got, err, "p", "198.18.0.0")

	// Alone on its address, it may change its key in place.
	h.SharingKey = "k2"
	got, err = a.Assign(h, ips("198.18.0.0"), nil)
	wantAlloc(t, got, err, "p", "198.18.0.0")
	got, err = a.Allocate(h, all)
	wantAlloc(t, got, err, "p", "198.18.0.0")

	o := Service{Key: "ns/o", SharingKey: "k2", Ports: []Port{{"TCP", 443}}}
	got, err = a.Allocate(o, all)
	wantAlloc(t, got, err, "p", "198.18.0.0")

	// Now shared, it may not.
	h.SharingKey = "k3"
	_, err = a.Assign(h, ips("198.18.0.0"), nil)
	wantErr(t, err, ReasonSharingKeyConflict, `can't change sharing key for "ns/h", address 198.18.0.0 also in use by "ns/o"`)
	if got, _ := a.Get("ns/h"); got.Addrs[0] != ip("198.18.0.0") {
		t.Fatalf("failed Assign changed the allocation: %v", got)
	}
	// Automatic allocation moves it instead: the key change is the cause.
	got, err = a.Allocate(h, all)
	wantAlloc(t, got, err, "p", "198.18.0.1")
	if got := a.Holders(ip("198.18.0.0")); !slices.Equal(got, []string{"ns/o"}) {
		t.Errorf("holders of .0: %v", got)
	}
}

func TestSharingPacking(t *testing.T) {
	a := newAllocator(t, mkPool(t, "p", true, "198.18.0.0/24"))
	all := unpinned("p")
	k := func(key string, port int32) Service {
		return Service{Key: key, SharingKey: "k", Ports: []Port{{"TCP", port}}}
	}
	steps := []struct {
		svc  Service
		want string
	}{
		{k("ns/a", 80), "198.18.0.0"},
		{k("ns/b", 443), "198.18.0.0"},   // joins
		{k("ns/c", 80), "198.18.0.1"},    // port 80 taken on .0
		{svc4("ns/plain"), "198.18.0.2"}, // no key: lowest free
		{k("ns/d", 8080), "198.18.0.0"},  // lowest shared address with the port free
		{k("ns/e", 443), "198.18.0.1"},   // .0 has 443, .1 does not
		{Service{Key: "ns/f", SharingKey: "k", BackendKey: "app=x", Ports: []Port{{"TCP", 9}}}, "198.18.0.3"}, // other backend
	}
	for _, s := range steps {
		got, err := a.Allocate(s.svc, all)
		wantAlloc(t, got, err, "p", s.want)
	}
	// After .0's holders leave, a newcomer with the key joins .1 (shared)
	// rather than the now-free, lower .0.
	for _, key := range []string{"ns/a", "ns/b", "ns/d"} {
		a.Release(key)
	}
	got, err := a.Allocate(k("ns/g", 22), all)
	wantAlloc(t, got, err, "p", "198.18.0.1")
	got, err = a.Allocate(svc4("ns/h"), all)
	wantAlloc(t, got, err, "p", "198.18.0.0")
	if s, _ := a.Stats("p"); s.IPv4.InUse != 4 {
		t.Errorf("in use %d, want 4 distinct addresses", s.IPv4.InUse)
	}
}

func TestIdempotentAndStable(t *testing.T) {
	a := newAllocator(t, mkPool(t, "p", true, "198.18.0.0/24"), mkPool(t, "q", false, "198.18.1.0/24"))
	all := unpinned("p", "q")
	got, err := a.Allocate(svc4("ns/a"), all)
	wantAlloc(t, got, err, "p", "198.18.0.0")
	got, err = a.Allocate(svc4("ns/b"), all)
	wantAlloc(t, got, err, "p", "198.18.0.1")
	a.Release("ns/a")
	// b keeps .1 although .0 is free and lower.
	for i := 0; i < 3; i++ {
		got, err = a.Allocate(svc4("ns/b"), all)
		wantAlloc(t, got, err, "p", "198.18.0.1")
	}
	// Ports changing does not move it.
	got, err = a.Allocate(Service{Key: "ns/b", Ports: []Port{{"TCP", 1}}}, all)
	wantAlloc(t, got, err, "p", "198.18.0.1")
	// An address from a non-autoAssign pool or an explicit request is kept
	// by automatic allocation while the pool is offered.
	got, err = a.Assign(svc4("ns/c"), ips("198.18.1.77"), nil)
	wantAlloc(t, got, err, "q", "198.18.1.77")
	got, err = a.Allocate(svc4("ns/c"), all)
	wantAlloc(t, got, err, "q", "198.18.1.77")
	// It moves once its pool is no longer offered.
	got, err = a.Allocate(svc4("ns/c"), unpinned("p"))
	wantAlloc(t, got, err, "p", "198.18.0.0")
	// A failed re-allocation leaves the old one in place.
	_, err = a.Allocate(svc6("ns/c"), unpinned("p"))
	wantErr(t, err, ReasonNoPoolMatches, `pool "p" has no IPv6 addresses`)
	if got, ok := a.Get("ns/c"); !ok || got.Addrs[0] != ip("198.18.0.0") {
		t.Errorf("failed Allocate changed the allocation: %v", got)
	}
}

func TestDualStack(t *testing.T) {
	v4only := mkPool(t, "a-v4", true, "198.18.0.0/24")
	dual := mkPool(t, "b-dual", true, "198.18.1.0/24", "2001:db8::/64")
	v6only := mkPool(t, "c-v6", true, "2001:db8:1::/64")
	smallDual := mkPool(t, "d-small", true, "198.18.2.0/32", "2001:db8:2::/128")
	all := unpinned("a-v4", "b-dual", "c-v6", "d-small")
	require := func(key string, primary Family) Service {
		return Service{Key: key, Families: Families{RequireDualStack, primary}}
	}
	prefer := func(key string, primary Family) Service {
		return Service{Key: key, Families: Families{PreferDualStack, primary}}
	}

	t.Run("require picks the first pool with both", func(t *testing.T) {
		a := newAllocator(t, v4only, dual, v6only)
		got, err := a.Allocate(require("ns/s", IPv4), all)
		wantAlloc(t, got, err, "b-dual", "198.18.1.0", "2001:db8::")
		got, err = a.Allocate(require("ns/t", IPv6), all)
		wantAlloc(t, got, err, "b-dual", "2001:db8::1", "198.18.1.1")
	})
	t.Run("require fails naming each pool", func(t *testing.T) {
		a := newAllocator(t, v4only, v6only, smallDual)
		got, err := a.Allocate(require("ns/s", IPv4), all)
		wantAlloc(t, got, err, "d-small", "198.18.2.0", "2001:db8:2::")
		_, err = a.Allocate(require("ns/t", IPv4), all)
		wantErr(t, err, ReasonPoolExhausted, `pool "a-v4" has no IPv6 addresses`, `pool "c-v6" has no IPv4 addresses`,
			`pool "d-small" exhausted (1 of 1 IPv4 in use) and exhausted (1 of 1 IPv6 in use)`)
	})
	t.Run("prefer takes a dual pool over an earlier single-family one", func(t *testing.T) {
		a := newAllocator(t, v4only, dual, v6only)
		got, err := a.Allocate(prefer("ns/s", IPv4), all)
		wantAlloc(t, got, err, "b-dual", "198.18.1.0", "2001:db8::")
	})
	t.Run("prefer falls back to the primary family, then the other", func(t *testing.T) {
		a := newAllocator(t, v4only, v6only)
		got, err := a.Allocate(prefer("ns/s", IPv6), all)
		wantAlloc(t, got, err, "c-v6", "2001:db8:1::")
		a = newAllocator(t, v4only)
		got, err = a.Allocate(prefer("ns/s", IPv6), all)
		wantAlloc(t, got, err, "a-v4", "198.18.0.0")
	})
	t.Run("prefer gains the other family when its pool does", func(t *testing.T) {
		a := newAllocator(t, v4only)
		got, err := a.Allocate(prefer("ns/s", IPv4), all)
		wantAlloc(t, got, err, "a-v4", "198.18.0.0")
		grown := mkPool(t, "a-v4", true, "198.18.0.0/24", "2001:db8:9::/64")
		if d, err := a.SetPools([]Pool{grown}); err != nil || len(d) != 0 {
			t.Fatalf("SetPools: %v %v", d, err)
		}
		got, err = a.Allocate(prefer("ns/s", IPv4), all)
		wantAlloc(t, got, err, "a-v4", "198.18.0.0", "2001:db8:9::")
	})
	t.Run("single stack keeps its primary address of a dual allocation", func(t *testing.T) {
		a := newAllocator(t, dual)
		got, err := a.Allocate(require("ns/s", IPv4), all)
		wantAlloc(t, got, err, "b-dual", "198.18.1.0", "2001:db8::")
		got, err = a.Allocate(svc6("ns/s"), all)
		wantAlloc(t, got, err, "b-dual", "2001:db8::")
		if s, _ := a.Stats("b-dual"); s.IPv4.InUse != 0 || s.IPv6.InUse != 1 {
			t.Errorf("stats %+v", s)
		}
	})
	t.Run("require completes a single allocation in place", func(t *testing.T) {
		a := newAllocator(t, dual)
		a.Allocate(svc4("ns/x"), all)
		got, err := a.Allocate(svc4("ns/s"), all)
		wantAlloc(t, got, err, "b-dual", "198.18.1.1")
		got, err = a.Allocate(require("ns/s", IPv4), all)
		wantAlloc(t, got, err, "b-dual", "198.18.1.1", "2001:db8::")
	})
}

func TestSetPools(t *testing.T) {
	base := []Pool{
		mkPool(t, "p", true, "198.18.0.0/24"),
		mkPool(t, "q", true, "198.18.1.0/24", "2001:db8::/64"),
	}
	setup := func(t *testing.T) *Allocator {
		a := newAllocator(t, base...)
		for _, s := range []struct {
			key, addr string
		}{{"ns/p0", "198.18.0.0"}, {"ns/p200", "198.18.0.200"}, {"ns/q5", "198.18.1.5"}} {
			if _, err := a.Assign(svc4(s.key), ips(s.addr), nil); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := a.Assign(Service{Key: "ns/dual", Families: Families{Policy: RequireDualStack}}, ips("198.18.1.9", "2001:db8::9"), nil); err != nil {
			t.Fatal(err)
		}
		return a
	}
	keys := func(ds []Displaced) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.Key)
		}
		return out
	}
	t.Run("shrinking displaces only what left", func(t *testing.T) {
		a := setup(t)
		ds, err := a.SetPools([]Pool{mkPool(t, "p", true, "198.18.0.0/25"), base[1]})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(keys(ds), []string{"ns/p200"}) {
			t.Fatalf("displaced %v", keys(ds))
		}
		wantErr(t, ds[0].Err, ReasonNotInAnyPool, "198.18.0.200")
		if ds[0].Previous.Pool != "p" || ds[0].Previous.Addrs[0] != ip("198.18.0.200") {
			t.Errorf("previous %v", ds[0].Previous)
		}
		got, ok := a.Get("ns/p0")
		wantAlloc(t, got, nil, "p", "198.18.0.0")
		if !ok {
			t.Error("ns/p0 lost")
		}
		if s, _ := a.Stats("p"); s.IPv4.InUse != 1 || s.IPv4.Capacity.Int64() != 128 {
			t.Errorf("stats %+v", s)
		}
	})
	t.Run("autoAssign and priority changes keep everything", func(t *testing.T) {
		a := setup(t)
		before := a.pools["p"]
		p := base[0]
		p.AutoAssign, p.Priority = false, 5
		ds, err := a.SetPools([]Pool{p, base[1]})
		if err != nil || len(ds) != 0 {
			t.Fatalf("%v %v", ds, err)
		}
		if a.pools["p"] != before || a.pools["p"].cfg.AutoAssign || a.pools["p"].cfg.Priority != 5 {
			t.Error("pool state was rebuilt or not updated")
		}
	})
	t.Run("rename re-homes with the same addresses", func(t *testing.T) {
		a := setup(t)
		renamed := base[1]
		renamed.Name = "q2"
		ds, err := a.SetPools([]Pool{base[0], renamed})
		if err != nil || len(ds) != 0 {
			t.Fatalf("%v %v", ds, err)
		}
		got, _ := a.Get("ns/dual")
		wantAlloc(t, got, nil, "q2", "198.18.1.9", "2001:db8::9")
		if s, _ := a.Stats("q2"); s.IPv4.InUse != 2 || s.IPv6.InUse != 1 {
			t.Errorf("stats %+v", s)
		}
		// The addresses are still taken.
		got, err = a.Allocate(svc4("ns/new"), unpinned("q2"))
		wantAlloc(t, got, err, "q2", "198.18.1.0")
	})
	t.Run("removal displaces the pool's services", func(t *testing.T) {
		a := setup(t)
		ds, err := a.SetPools(base[:1])
		if err != nil || !slices.Equal(keys(ds), []string{"ns/dual", "ns/q5"}) {
			t.Fatalf("%v %v", keys(ds), err)
		}
		if len(a.Assignments()) != 2 {
			t.Errorf("assignments %v", a.Assignments())
		}
		got, err := a.Assign(svc4("ns/back"), ips("198.18.1.5"), nil)
		wantErr(t, err, ReasonNotInAnyPool)
		_ = got
	})
	t.Run("turning on avoidBuggyIPs displaces .0", func(t *testing.T) {
		a := setup(t)
		p := base[0]
		p.AvoidBuggyIPs = true
		ds, err := a.SetPools([]Pool{p, base[1]})
		if err != nil || !slices.Equal(keys(ds), []string{"ns/p0"}) {
			t.Fatalf("%v %v", keys(ds), err)
		}
		wantErr(t, ds[0].Err, ReasonNotInAnyPool, "avoidBuggyIPs")
	})
	t.Run("a dual-stack allocation split over two pools is displaced", func(t *testing.T) {
		a := setup(t)
		ds, err := a.SetPools([]Pool{base[0], mkPool(t, "q", true, "198.18.1.0/24"), mkPool(t, "six", true, "2001:db8::/64")})
		if err != nil || !slices.Equal(keys(ds), []string{"ns/dual"}) {
			t.Fatalf("%v %v", keys(ds), err)
		}
		wantErr(t, ds[0].Err, ReasonPoolMismatch)
		if got, _ := a.Get("ns/q5"); got.Pool != "q" {
			t.Errorf("ns/q5 in %v", got)
		}
	})
	t.Run("invalid pools change nothing", func(t *testing.T) {
		a := setup(t)
		before := a.Assignments()
		_, err := a.SetPools([]Pool{base[0], mkPool(t, "q", true, "198.18.0.128/25")})
		if err == nil || !strings.Contains(err.Error(), `overlaps pool "p"`) {
			t.Fatalf("err %v", err)
		}
		if fmt.Sprint(a.Assignments()) != fmt.Sprint(before) || a.pools["q"].cfg.Ranges[0].String() != "198.18.1.0/24" {
			t.Error("state changed")
		}
	})
	t.Run("removing every pool displaces every service", func(t *testing.T) {
		a := setup(t)
		ds, err := a.SetPools(nil)
		if err != nil || len(ds) != 4 || len(a.Assignments()) != 0 {
			t.Fatalf("%v %v", keys(ds), err)
		}
	})
}

func TestCounts(t *testing.T) {
	two64 := new(big.Int).Lsh(big.NewInt(1), 64)
	a := newAllocator(t,
		mkPool(t, "one64", true, "2001:db8::/64"),
		mkPool(t, "three64", true, "2001:db8:1::/64", "2001:db8:2::/64", "2001:db8:3::/64", "198.18.0.0/30"),
		mkPool(t, "all", false, "::/0"[:0]+"4000::/2"),
	)
	s, _ := a.Stats("one64")
	if s.IPv6.Capacity.Cmp(two64) != 0 || s.IPv4.Capacity.Sign() != 0 {
		t.Errorf("one64 capacity %s/%s", s.IPv4.Capacity, s.IPv6.Capacity)
	}
	if st := s.Status(); st.AvailableIPv6 != math.MaxInt64 || st.AvailableIPv4 != 0 {
		t.Errorf("saturating view %+v", st)
	}
	s, _ = a.Stats("three64")
	if want := new(big.Int).Mul(two64, big.NewInt(3)); s.IPv6.Capacity.Cmp(want) != 0 {
		t.Errorf("three64 capacity %s, want %s", s.IPv6.Capacity, want)
	}
	for i := 0; i < 3; i++ {
		a.Allocate(Service{Key: fmt.Sprintf("ns/six%d", i), Families: Families{Primary: IPv6}, SharingKey: "k", Ports: []Port{{"TCP", int32(i)}}}, unpinned("three64"))
		a.Allocate(svc4(fmt.Sprintf("ns/four%d", i)), unpinned("three64"))
	}
	s, _ = a.Stats("three64")
	want := new(big.Int).Sub(new(big.Int).Mul(two64, big.NewInt(3)), big.NewInt(1))
	if s.IPv6.InUse != 1 || s.IPv6.Free().Cmp(want) != 0 || s.IPv4.InUse != 3 || s.IPv4.Free().Int64() != 1 {
		t.Errorf("three64 stats %+v free6 %s", s, s.IPv6.Free())
	}
	if st := s.Status(); st != (PoolStatus{AssignedIPv4: 3, AssignedIPv6: 1, AvailableIPv4: 1, AvailableIPv6: math.MaxInt64}) {
		t.Errorf("status %+v", st)
	}
	s, _ = a.Stats("all")
	if want := new(big.Int).Lsh(big.NewInt(1), 126); s.IPv6.Capacity.Cmp(want) != 0 {
		t.Errorf("capacity of a /2 is %s", s.IPv6.Capacity)
	}
	full := newAllocator(t, mkPool(t, "everything", true, "::/0"))
	s, _ = full.Stats("everything")
	if want := new(big.Int).Lsh(big.NewInt(1), 128); s.IPv6.Capacity.Cmp(want) != 0 {
		t.Errorf("capacity of ::/0 is %s", s.IPv6.Capacity)
	}
	if names := a.AllStats(); len(names) != 3 || names[0].Pool != "all" || names[2].Pool != "three64" {
		t.Errorf("AllStats %v", names)
	}
}

// TestHugePools allocates at the bottom and across the 64-bit carry of IPv6
// pools; with a scan from the start of the pool these would take forever.
func TestHugePools(t *testing.T) {
	a := newAllocator(t,
		mkPool(t, "v4", true, "10.0.0.0/8"),
		mkPool(t, "v6", true, "2001:db8::/64"),
		mkPool(t, "carry", true, "2001:db8:0:1:ffff:ffff:ffff:fffe-2001:db8:0:2::1"),
		mkPool(t, "top", true, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127"),
	)
	for i := 0; i < 5000; i++ {
		got, err := a.Allocate(svc4(fmt.Sprintf("ns/v4-%d", i)), unpinned("v4"))
		if err != nil || got.Addrs[0] != u128Addr(u64(0x0A000000+uint64(i)), true) {
			t.Fatalf("v4 allocation %d: %v %v", i, got, err)
		}
		got, err = a.Allocate(svc6(fmt.Sprintf("ns/v6-%d", i)), unpinned("v6"))
		if err != nil || got.Addrs[0] != u128Addr(addrU128(ip("2001:db8::")).add(u64(uint64(i))), false) {
			t.Fatalf("v6 allocation %d: %v %v", i, got, err)
		}
	}
	a.Release("ns/v4-2500")
	got, err := a.Allocate(svc4("ns/again"), unpinned("v4"))
	wantAlloc(t, got, err, "v4", "10.0.9.196")
	for i, want := range []string{"2001:db8:0:1:ffff:ffff:ffff:fffe", "2001:db8:0:1:ffff:ffff:ffff:ffff", "2001:db8:0:2::", "2001:db8:0:2::1"} {
		got, err := a.Allocate(svc6(fmt.Sprintf("ns/c%d", i)), unpinned("carry"))
		wantAlloc(t, got, err, "carry", want)
	}
	for i, want := range []string{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"} {
		got, err := a.Allocate(svc6(fmt.Sprintf("ns/t%d", i)), unpinned("top"))
		wantAlloc(t, got, err, "top", want)
	}
	_, err = a.Allocate(svc6("ns/t9"), unpinned("top"))
	wantErr(t, err, ReasonPoolExhausted, "2 of 2 IPv6 in use")
	// Explicit requests anywhere in the pool.
	got, err = a.Assign(svc6("ns/far"), ips("2001:db8::ffff:ffff:ffff:ffff"), nil)
	wantAlloc(t, got, err, "v6", "2001:db8::ffff:ffff:ffff:ffff")
	if s, _ := a.Stats("v6"); s.IPv6.InUse != 5001 {
		t.Errorf("v6 in use %d", s.IPv6.InUse)
	}
}

func TestPoolOf(t *testing.T) {
	p := mkPool(t, "p", true, "198.18.0.0/24")
	p.AvoidBuggyIPs = true
	a := newAllocator(t, p, mkPool(t, "q", true, "2001:db8::/64"))
	for _, tt := range []struct {
		addr, pool string
		ok         bool
	}{{"198.18.0.1", "p", true}, {"198.18.0.0", "", false}, {"2001:db8::5", "q", true}, {"203.0.113.1", "", false}} {
		if got, ok := a.PoolOf(ip(tt.addr)); got != tt.pool || ok != tt.ok {
			t.Errorf("PoolOf(%s) = %q %v", tt.addr, got, ok)
		}
	}
}

func TestReasonOf(t *testing.T) {
	a := newAllocator(t)
	_, err := a.AllocateFromPool(svc4("ns/a"), "x")
	if ReasonOf(fmt.Errorf("wrapped: %w", err)) != ReasonUnknownPool || ReasonOf(errors.New("other")) != "" {
		t.Error("ReasonOf does not see through wrapping")
	}
	if _, ok := a.Release("ns/none"); ok {
		t.Error("Release of an unknown service reported success")
	}
	inner := errors.New("incompatible")
	a = newAllocator(t, mkPool(t, "p", true, "198.18.0.0/24"))
	_, err = a.Assign(svc4("ns/a"), ips("198.18.0.1"), func(string) error { return inner })
	if !errors.Is(err, inner) {
		t.Error("the accept error is not wrapped")
	}
}

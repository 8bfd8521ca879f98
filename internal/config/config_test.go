package config

import (
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/api/v1alpha1"
	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/api/v1beta2"
)

func TestDefaults(t *testing.T) {
	cfg := mustBuild(t, Resources{
		Pools:             []v1beta1.IPAddressPool{pool("p", "192.0.2.0/24")},
		L2Advertisements:  []v1beta1.L2Advertisement{l2("l", v1beta1.L2AdvertisementSpec{})},
		BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("b", v1beta1.BGPAdvertisementSpec{})},
		BGPPeers:          []v1beta2.BGPPeer{peer("q", ebgp("192.0.2.1"))},
		BFDProfiles:       []v1beta1.BFDProfile{bfd("f", v1beta1.BFDProfileSpec{})},
	})
	p := cfg.Pool("p")
	if !p.AutoAssign || p.AvoidBuggyIPs || p.Pinned() || p.Priority != 0 {
		t.Errorf("pool defaults: autoAssign=%v avoidBuggyIPs=%v pinned=%v priority=%d; want true false false 0",
			p.AutoAssign, p.AvoidBuggyIPs, p.Pinned(), p.Priority)
	}
	if got := cfg.L2Advertisements[0].Pools; !slices.Equal(got, []string{"p"}) {
		t.Errorf("L2 pools = %v, want [p] (empty selection means every pool)", got)
	}
	b := cfg.BGPAdvertisements[0]
	if b.AggregationLength != 32 || b.AggregationLengthV6 != 128 || b.LocalPref != 0 {
		t.Errorf("BGP defaults: %d %d %d; want 32 128 0", b.AggregationLength, b.AggregationLengthV6, b.LocalPref)
	}
	q := cfg.Peer("q")
	if q.Port != 179 || q.HoldTime != 90*time.Second || q.KeepaliveTime != 30*time.Second || q.ConnectTime != 0 {
		t.Errorf("peer defaults: port %d hold %s keepalive %s connect %s; want 179 1m30s 30s 0s", q.Port, q.HoldTime, q.KeepaliveTime, q.ConnectTime)
	}
	if q.IBGP() {
		t.Error("64500 to 64501 reported as iBGP")
	}
	want := &BFDProfile{Name: "f", ReceiveInterval: 300 * time.Millisecond, TransmitInterval: 300 * time.Millisecond,
		EchoInterval: 50 * time.Millisecond, DetectMultiplier: 3, MinimumTTL: 254}
	if got := cfg.BFDProfile("f"); !reflect.DeepEqual(got, want) {
		t.Errorf("BFD defaults = %+v, want %+v", got, want)
	}
}

// TestHoldTimeZeroWarned: GoBGP fills a zero hold time with its default,
// so Herald says so instead of accepting a 0 it cannot honour.
func TestHoldTimeZeroWarned(t *testing.T) {
	in := func(hold string) Resources {
		r := onePeer(func(s *v1beta2.BGPPeerSpec) { s.HoldTime = dur(hold) })
		r.Namespace = testNS
		return r
	}
	res := Validate(in("0s"))
	if len(res.Problems) > 0 || len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0].String(), "BGPPeer/q: spec.holdTime: holdTime 0 asks for no hold timer") {
		t.Errorf("problems %v, warnings %v; want one holdTime warning", res.Problems, res.Warnings)
	}
	res = Validate(in("500ms"))
	if len(res.Problems) != 1 || !strings.Contains(res.Problems[0].Message, "at least 3s") {
		t.Errorf("500ms: problems %v, want one: at least 3s", res.Problems)
	}
}

func TestTimers(t *testing.T) {
	tests := []struct {
		name            string
		hold, keepalive *metav1.Duration
		wantHold        time.Duration
		wantKeep        time.Duration
	}{
		{"neither", nil, nil, 90 * time.Second, 30 * time.Second},
		{"hold only", dur("9s"), nil, 9 * time.Second, 3 * time.Second},
		{"hold only, not divisible", dur("10s"), nil, 10 * time.Second, 3 * time.Second},
		{"keepalive only", nil, dur("10s"), 30 * time.Second, 10 * time.Second},
		{"both", dur("30s"), dur("5s"), 30 * time.Second, 5 * time.Second},
		{"hold 0 as unset (GoBGP has no hold-timer-less session)", dur("0s"), nil, 90 * time.Second, 30 * time.Second},
		{"hold 0 with keepalive", dur("0s"), dur("10s"), 30 * time.Second, 10 * time.Second},
		{"truncated to seconds", dur("3500ms"), nil, 3 * time.Second, time.Second},
		{"largest hold", dur("65535s"), nil, 65535 * time.Second, 21845 * time.Second},
		{"largest keepalive alone", nil, dur("21845s"), 65535 * time.Second, 21845 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := ebgp("192.0.2.1")
			s.HoldTime, s.KeepaliveTime = tc.hold, tc.keepalive
			q := mustBuild(t, Resources{BGPPeers: []v1beta2.BGPPeer{peer("q", s)}}).Peer("q")
			if q.HoldTime != tc.wantHold || q.KeepaliveTime != tc.wantKeep {
				t.Errorf("hold %s keepalive %s, want %s %s", q.HoldTime, q.KeepaliveTime, tc.wantHold, tc.wantKeep)
			}
		})
	}
}

func TestPeerFields(t *testing.T) {
	s := v1beta2.BGPPeerSpec{
		MyASN: 64500, ASN: 64500, LocalASN: 64999, Address: "2001:db8::1", SrcAddress: "2001:db8::2",
		Port: 1179, ConnectTime: dur("10s"), RouterID: "192.0.2.9", NodeSelectors: []metav1.LabelSelector{sel("rack", "a")},
		PasswordSecret: corev1.SecretReference{Name: "pw"}, BFDProfile: "f", EnableGracefulRestart: true, DualStackAddressFamily: true,
	}
	cfg := mustBuild(t, Resources{
		BGPPeers:    []v1beta2.BGPPeer{peer("q", s)},
		BFDProfiles: []v1beta1.BFDProfile{bfd("f", v1beta1.BFDProfileSpec{})},
		Secrets:     []corev1.Secret{secret("pw", corev1.SecretTypeBasicAuth, map[string]string{"password": "s3cret"})},
	})
	q := cfg.Peer("q")
	if q.Address != netip.MustParseAddr("2001:db8::1") || q.SourceAddress != netip.MustParseAddr("2001:db8::2") ||
		q.RouterID != netip.MustParseAddr("192.0.2.9") || q.Port != 1179 || q.ConnectTime != 10*time.Second ||
		q.Password != "s3cret" || q.PasswordSecret != "pw" || q.BFDProfile != "f" || !q.EnableGracefulRestart ||
		!q.DualStackAddressFamily || q.LocalASN != 64999 || q.ASN != 64500 || !q.IBGP() {
		t.Errorf("peer not carried over: %+v", q)
	}
	if !q.MatchesNode(map[string]string{"rack": "a"}) || q.MatchesNode(map[string]string{"rack": "b"}) {
		t.Error("nodeSelectors not applied")
	}
	if u := mustBuild(t, Resources{BGPPeers: []v1beta2.BGPPeer{peer("u", v1beta2.BGPPeerSpec{MyASN: 64500, DynamicASN: "external", Interface: "eth1"})}}).Peer("u"); u == nil || u.Interface != "eth1" || u.Address.IsValid() {
		t.Errorf("unnumbered peer: %+v", u)
	}
	for _, mode := range []v1beta2.DynamicASNMode{v1beta2.InternalASNMode, v1beta2.ExternalASNMode} {
		d := mustBuild(t, Resources{BGPPeers: []v1beta2.BGPPeer{peer("d", v1beta2.BGPPeerSpec{MyASN: 64500, DynamicASN: mode, Address: "192.0.2.1"})}}).Peer("d")
		if d == nil || d.ASN != 0 || d.DynamicASN != string(mode) || d.IBGP() != (mode == v1beta2.InternalASNMode) {
			t.Errorf("dynamicASN %s: %+v", mode, d)
		}
	}
}

func TestCommunities(t *testing.T) {
	cfg := mustBuild(t, Resources{
		Pools:       []v1beta1.IPAddressPool{pool("p", "192.0.2.0/24")},
		Communities: []v1beta1.Community{community("aliases", "no-export", "65535:65281", "big", "large:64500:1:2")},
		BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("b", v1beta1.BGPAdvertisementSpec{
			Communities: []string{"big", "65535:65282", "no-export", "65535:65281"}})},
	})
	var got []string
	for _, c := range cfg.BGPAdvertisements[0].Communities {
		got = append(got, c.String())
	}
	// Sorted, standard before large, the alias and its literal merged.
	if want := []string{"65535:65281", "65535:65282", "large:64500:1:2"}; !slices.Equal(got, want) {
		t.Errorf("communities = %v, want %v", got, want)
	}
	if c := cfg.BGPAdvertisements[0].Communities[0]; c.Large || c.Standard != 65535<<16|65281 {
		t.Errorf("no-export parsed as %+v", c)
	}
	if len(cfg.Communities) != 2 || cfg.Communities[0].Name != "big" || !cfg.Communities[0].Value.Large {
		t.Errorf("aliases = %+v", cfg.Communities)
	}
}

func TestParseCommunity(t *testing.T) {
	for in, ok := range map[string]bool{
		"0:0": true, "65535:65535": true, "large:0:0:0": true, "large:4294967295:4294967295:4294967295": true,
		"65536:0": false, "1:-1": false, "1:": false, ":1": false, "1:2:3": false, "large:1:2:4294967296": false,
		"large:1:2": false, " 1:2": false, "+1:2": false, "no-export": false,
	} {
		_, err := ParseCommunity(in)
		if (err == nil) != ok {
			t.Errorf("ParseCommunity(%q) error = %v, want ok=%v", in, err, ok)
		}
	}
}

func TestAdvertisementPools(t *testing.T) {
	pools := []v1beta1.IPAddressPool{pool("a", "192.0.2.0/26"), pool("b", "192.0.2.64/26"), pool("c", "192.0.2.128/26")}
	pools[1].Labels = map[string]string{"tier": "web"}
	pools[2].Labels = map[string]string{"tier": "web"}
	res := Validate(Resources{Namespace: testNS, Pools: pools,
		L2Advertisements: []v1beta1.L2Advertisement{
			l2("all", v1beta1.L2AdvertisementSpec{}),
			l2("union", v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"a"}, IPAddressPoolSelectors: []metav1.LabelSelector{sel("tier", "web")}}),
			l2("missing", v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"gone"}}),
		},
		BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("to-x", v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"c"}, Peers: []string{"x"}})},
	})
	if res.Config == nil {
		t.Fatalf("problems: %v", res.Problems)
	}
	want := map[string][]string{"all": {"a", "b", "c"}, "union": {"a", "b", "c"}, "missing": nil}
	for _, a := range res.Config.L2Advertisements {
		if !slices.Equal(a.Pools, want[a.Name]) {
			t.Errorf("%s: pools %v, want %v", a.Name, a.Pools, want[a.Name])
		}
	}
	// A missing pool or peer is a warning, not a problem: MetalLB treats
	// the reference as a no-op too.
	if !hasProblem(res.Warnings, KindL2Advertisement, "missing", "spec.ipAddressPools[0]", `IPAddressPool "gone" does not exist`) {
		t.Errorf("no warning for the missing pool: %v", res.Warnings)
	}
	if !hasProblem(res.Warnings, KindBGPAdvertisement, "to-x", "spec.peers[0]", `BGPPeer "x" does not exist`) {
		t.Errorf("no warning for the missing peer: %v", res.Warnings)
	}
	b := res.Config.BGPAdvertisements[0]
	if !b.MatchesPeer("x") || b.MatchesPeer("y") || !b.HasPool("c") || b.HasPool("a") {
		t.Errorf("advertisement matching wrong: %+v", b)
	}
}

func TestAdmits(t *testing.T) {
	alloc := func(a v1beta1.ServiceAllocation) v1beta1.IPAddressPool {
		p := pool("p", "192.0.2.0/24")
		p.Spec.AllocateTo = &a
		return p
	}
	team := map[string]string{"team": "a"}
	web := map[string]string{"app": "web"}
	tests := []struct {
		name      string
		pool      v1beta1.IPAddressPool
		ns        string
		nsLabels  map[string]string
		svcLabels map[string]string
		want      bool
		why       string
	}{
		{name: "no serviceAllocation admits all", pool: pool("p", "192.0.2.0/24"), ns: "x", want: true},
		{name: "empty serviceAllocation admits all", pool: alloc(v1beta1.ServiceAllocation{Priority: 5}), ns: "x", want: true},
		{name: "listed namespace", pool: alloc(v1beta1.ServiceAllocation{Namespaces: []string{"x"}}), ns: "x", want: true},
		{name: "unlisted namespace", pool: alloc(v1beta1.ServiceAllocation{Namespaces: []string{"x"}}), ns: "y", why: `namespace "y" is not one of them`},
		{name: "namespace selector, labels given", pool: alloc(v1beta1.ServiceAllocation{NamespaceSelectors: []metav1.LabelSelector{sel("team", "a")}}),
			ns: "other", nsLabels: team, want: true},
		{name: "namespace selector, labels known at build", pool: alloc(v1beta1.ServiceAllocation{NamespaceSelectors: []metav1.LabelSelector{sel("team", "a")}}),
			ns: "team-a", want: true},
		// MetalLB's quirk: a selector that matches no namespace leaves the
		// pool unrestricted there. Here it admits nobody.
		{name: "namespace selector matching nothing", pool: alloc(v1beta1.ServiceAllocation{NamespaceSelectors: []metav1.LabelSelector{sel("team", "nobody")}}),
			ns: "team-a", why: "namespaces labelled"},
		{name: "service selector", pool: alloc(v1beta1.ServiceAllocation{ServiceSelectors: []metav1.LabelSelector{sel("app", "web")}}),
			ns: "x", svcLabels: web, want: true},
		{name: "service selector, no match", pool: alloc(v1beta1.ServiceAllocation{ServiceSelectors: []metav1.LabelSelector{sel("app", "web")}}),
			ns: "x", svcLabels: map[string]string{"app": "db"}, why: "Service's labels match none"},
		{name: "both set, both match", pool: alloc(v1beta1.ServiceAllocation{Namespaces: []string{"x"}, ServiceSelectors: []metav1.LabelSelector{sel("app", "web")}}),
			ns: "x", svcLabels: web, want: true},
		{name: "both set, only the namespace matches", pool: alloc(v1beta1.ServiceAllocation{Namespaces: []string{"x"}, ServiceSelectors: []metav1.LabelSelector{sel("app", "web")}}),
			ns: "x", why: "Service's labels match none"},
		{name: "both set, only the Service matches", pool: alloc(v1beta1.ServiceAllocation{Namespaces: []string{"x"}, ServiceSelectors: []metav1.LabelSelector{sel("app", "web")}}),
			ns: "y", svcLabels: web, why: `namespace "y"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustBuild(t, Resources{Pools: []v1beta1.IPAddressPool{tc.pool},
				Namespaces: []corev1.Namespace{namespace("team-a", team), namespace("x", nil)}})
			p := cfg.Pool("p")
			got, why := p.Admits(tc.ns, tc.nsLabels, tc.svcLabels)
			if got != tc.want || !strings.Contains(why, tc.why) || (got && why != "") {
				t.Errorf("Admits = %v, %q; want %v, containing %q", got, why, tc.want, tc.why)
			}
			if p.Pinned() != (tc.pool.Spec.AllocateTo != nil) {
				t.Errorf("Pinned = %v", p.Pinned())
			}
		})
	}
}

func TestResolvedNamespaces(t *testing.T) {
	p := pool("p", "192.0.2.0/24")
	p.Spec.AllocateTo = &v1beta1.ServiceAllocation{Priority: 2, Namespaces: []string{"z"},
		NamespaceSelectors: []metav1.LabelSelector{sel("team", "a")}}
	cfg := mustBuild(t, Resources{Pools: []v1beta1.IPAddressPool{p}, Namespaces: []corev1.Namespace{
		namespace("b", map[string]string{"team": "a"}), namespace("a", map[string]string{"team": "a"}), namespace("c", nil)}})
	got := cfg.Pool("p")
	if !slices.Equal(got.Allocation.Namespaces, []string{"a", "b", "z"}) || got.Priority != 2 {
		t.Errorf("namespaces %v priority %d; want [a b z] 2", got.Allocation.Namespaces, got.Priority)
	}
}

// TestNodeOverlap checks that rules between objects follow the nodes: two
// peers to the same address on disjoint nodes are fine.
func TestNodeOverlap(t *testing.T) {
	a := ebgp("192.0.2.1")
	a.NodeSelectors = []metav1.LabelSelector{sel("rack", "a")}
	b := ebgp("192.0.2.1")
	b.NodeSelectors = []metav1.LabelSelector{sel("rack", "b")}
	nodes := []corev1.Node{node("n1", map[string]string{"rack": "a"}), node("n2", map[string]string{"rack": "b"})}
	mustBuild(t, Resources{BGPPeers: []v1beta2.BGPPeer{peer("a", a), peer("b", b)}, Nodes: nodes})

	// A node in both racks makes them collide.
	nodes = append(nodes, node("n3", map[string]string{"rack": "a", "zone": "z"}))
	b.NodeSelectors = []metav1.LabelSelector{sel("zone", "z")}
	res := Validate(Resources{Namespace: testNS, BGPPeers: []v1beta2.BGPPeer{peer("a", a), peer("b", b)}, Nodes: nodes})
	if !hasProblem(res.Problems, KindBGPPeer, "b", "spec.peerAddress", "already opens") {
		t.Errorf("overlap on node n3 not found: %v", res.Problems)
	}
}

// TestAllProblemsAtOnce checks that validation does not stop at the first
// problem.
func TestAllProblemsAtOnce(t *testing.T) {
	res := Validate(Resources{Namespace: testNS,
		Pools:    []v1beta1.IPAddressPool{pool("a", "192.0.2.300/24"), pool("b")},
		BGPPeers: []v1beta2.BGPPeer{peer("q", v1beta2.BGPPeerSpec{})},
	})
	for _, want := range []struct{ kind, name, field string }{
		{KindIPAddressPool, "a", "spec.addresses[0]"},
		{KindIPAddressPool, "b", "spec.addresses"},
		{KindBGPPeer, "q", "spec.myASN"},
		{KindBGPPeer, "q", "spec.peerASN"},
		{KindBGPPeer, "q", "spec.peerAddress"},
	} {
		if !hasProblem(res.Problems, want.kind, want.name, want.field) {
			t.Errorf("missing problem %v in:\n%v", want, res.Problems)
		}
	}
}

func TestTransientAndPermanent(t *testing.T) {
	s := ebgp("192.0.2.1")
	s.BFDProfile = "later"
	res := Validate(Resources{Namespace: testNS, BGPPeers: []v1beta2.BGPPeer{peer("q", s)}})
	if !res.Problems.Transient() || len(res.Problems.Permanent()) != 0 {
		t.Fatalf("a missing BFD profile alone must be transient: %v", res.Problems)
	}
	s.MyASN = 0
	res = Validate(Resources{Namespace: testNS, BGPPeers: []v1beta2.BGPPeer{peer("q", s)}})
	if res.Problems.Transient() || len(res.Problems.Permanent()) != 1 {
		t.Fatalf("a permanent problem next to a transient one: %v", res.Problems)
	}
	if _, err := Build(Resources{Namespace: testNS, BGPPeers: []v1beta2.BGPPeer{peer("q", s)}}); err == nil {
		t.Fatal("Build accepted an invalid configuration")
	}
}

func TestValidateBFDProfileDeletion(t *testing.T) {
	prof := bfd("fast", v1beta1.BFDProfileSpec{})
	user := ebgp("192.0.2.1")
	user.BFDProfile = "fast"
	peers := []v1beta2.BGPPeer{peer("other", ebgp("192.0.2.2")), peer("q", user)}
	ps := ValidateBFDProfileDeletion(prof, peers)
	if len(ps) != 1 || !strings.Contains(ps[0].Message, "BGPPeer q") {
		t.Fatalf("deletion of a used profile: %v", ps)
	}
	if ps := ValidateBFDProfileDeletion(prof, peers[:1]); len(ps) != 0 {
		t.Fatalf("deletion of an unused profile refused: %v", ps)
	}
}

func TestEmptyNamespaceMeansConfigNamespace(t *testing.T) {
	p := pool("p", "192.0.2.0/24")
	p.Namespace = ""
	mustBuild(t, Resources{Pools: []v1beta1.IPAddressPool{p}})
}

// TestDeterministic builds the same resources in shuffled orders and expects
// the same configuration, problems and warnings every time.
func TestDeterministic(t *testing.T) {
	base := func() Resources {
		ps := []v1beta1.IPAddressPool{pool("c", "192.0.2.128/25"), pool("a", "192.0.2.0/26"), pool("b", "192.0.2.64/26", "2001:db8::/120")}
		ps[0].Labels = map[string]string{"tier": "web"}
		ps[1].Spec.AllocateTo = &v1beta1.ServiceAllocation{NamespaceSelectors: []metav1.LabelSelector{sel("team", "a")}}
		return Resources{Namespace: testNS, Pools: ps,
			L2Advertisements: []v1beta1.L2Advertisement{l2("z", v1beta1.L2AdvertisementSpec{Interfaces: []string{"eth1", "eth0"}}),
				l2("y", v1beta1.L2AdvertisementSpec{IPAddressPoolSelectors: []metav1.LabelSelector{sel("tier", "web")}, IPAddressPools: []string{"b", "a"}})},
			BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("m", v1beta1.BGPAdvertisementSpec{Communities: []string{"65000:2", "65000:1"}, Peers: []string{"q2", "q1"}}),
				bgpAdv("k", v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"c"}, LocalPref: 50, Peers: []string{"nope"}})},
			BGPPeers:    []v1beta2.BGPPeer{peer("q2", ebgp("192.0.2.2")), peer("q1", ebgp("192.0.2.1"))},
			BFDProfiles: []v1beta1.BFDProfile{bfd("f2", v1beta1.BFDProfileSpec{}), bfd("f1", v1beta1.BFDProfileSpec{})},
			Communities: []v1beta1.Community{community("y", "b", "1:2"), community("x", "a", "1:1")},
			Namespaces:  []corev1.Namespace{namespace("n2", map[string]string{"team": "a"}), namespace("n1", map[string]string{"team": "a"})},
		}
	}
	broken := func() Resources {
		r := base()
		r.Pools = append(r.Pools, pool("d", "192.0.2.0/24"), pool("e", "bad"))
		r.BGPPeers = append(r.BGPPeers, peer("q0", v1beta2.BGPPeerSpec{}))
		// Both clash with the L2Advertisements, which take every pool.
		r.CloudAdvertisements = []v1alpha1.CloudAdvertisement{cloudAdv("c2", nil, "c", "b"),
			cloudAdv("c1", func(s *v1alpha1.CloudAdvertisementSpec) { s.Provider = "x" }, "a")}
		return r
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, mk := range []func() Resources{base, broken} {
		want := Validate(mk())
		for range 20 {
			r := mk()
			shuffle(rng, r.Pools)
			shuffle(rng, r.L2Advertisements)
			shuffle(rng, r.BGPAdvertisements)
			shuffle(rng, r.BGPPeers)
			shuffle(rng, r.BFDProfiles)
			shuffle(rng, r.Communities)
			shuffle(rng, r.Namespaces)
			shuffle(rng, r.CloudAdvertisements)
			if got := Validate(r); !reflect.DeepEqual(got, want) {
				t.Fatalf("result depends on input order:\n got %+v\nwant %+v", got, want)
			}
		}
	}
	cfg := Validate(base()).Config
	if cfg == nil {
		t.Fatal("base configuration refused")
	}
	var names []string
	for _, p := range cfg.Pools {
		names = append(names, p.Name)
	}
	if !slices.Equal(names, []string{"a", "b", "c"}) {
		t.Errorf("pools not sorted: %v", names)
	}
	if !slices.Equal(cfg.Pool("a").Allocation.Namespaces, []string{"n1", "n2"}) {
		t.Errorf("resolved namespaces not sorted: %v", cfg.Pool("a").Allocation.Namespaces)
	}
}

func shuffle[T any](rng *rand.Rand, s []T) {
	rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
}

func TestMatching(t *testing.T) {
	cfg := mustBuild(t, Resources{
		Pools: []v1beta1.IPAddressPool{pool("p", "192.0.2.0/24"), pool("q", "198.51.100.0/24")},
		L2Advertisements: []v1beta1.L2Advertisement{l2("l", v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"q"},
			NodeSelectors: []metav1.LabelSelector{sel("rack", "a"), sel("rack", "b")}, ServiceSelectors: []metav1.LabelSelector{sel("app", "web")}})},
		BGPAdvertisements: []v1beta1.BGPAdvertisement{bgpAdv("b", v1beta1.BGPAdvertisementSpec{NodeSelectors: []metav1.LabelSelector{sel("bgp", "yes")}})},
	})
	l := cfg.L2Advertisements[0]
	for _, c := range []struct {
		got, want bool
		what      string
	}{
		{l.HasPool("q"), true, "L2 has q"},
		{l.HasPool("p"), false, "L2 has p"},
		{l.MatchesNode(map[string]string{"rack": "b"}), true, "L2 node in rack b (selectors are ORed)"},
		{l.MatchesNode(map[string]string{"rack": "c"}), false, "L2 node in rack c"},
		{l.MatchesService(map[string]string{"app": "web"}), true, "L2 web Service"},
		{l.MatchesService(nil), false, "L2 unlabelled Service"},
		{cfg.BGPAdvertisements[0].MatchesNode(map[string]string{"bgp": "yes"}), true, "BGP node"},
		{cfg.BGPAdvertisements[0].MatchesNode(nil), false, "BGP unlabelled node"},
		{cfg.BGPAdvertisements[0].MatchesService(nil), true, "BGP without serviceSelectors"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
	if ip := cfg.IPAMPools(); len(ip) != 2 || ip[0].Name != "p" || ip[1].Ranges[0].String() != "198.51.100.0/24" {
		t.Errorf("IPAMPools = %+v", ip)
	}
	if cfg.Pool("missing") != nil || cfg.Peer("missing") != nil {
		t.Error("lookup of a missing name returned something")
	}
}

func TestProblemFormat(t *testing.T) {
	ps := Problems{
		{Kind: KindL2Advertisement, Name: "x", Field: "spec.interfaces[0]", Message: "bad"},
		{Kind: KindBGPPeer, Name: "y", Message: "worse"},
	}
	if got, want := ps.Error(), "L2Advertisement/x: spec.interfaces[0]: bad\nBGPPeer/y: worse"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got := ps.About(KindBGPPeer, "y"); len(got) != 1 || got[0].Message != "worse" {
		t.Errorf("About = %v", got)
	}
}

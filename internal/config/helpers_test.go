package config

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/api/v1beta2"
)

const testNS = "metallb-system"

func meta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: testNS}
}

func pool(name string, addrs ...string) v1beta1.IPAddressPool {
	return v1beta1.IPAddressPool{ObjectMeta: meta(name), Spec: v1beta1.IPAddressPoolSpec{Addresses: addrs}}
}

func l2(name string, spec v1beta1.L2AdvertisementSpec) v1beta1.L2Advertisement {
	return v1beta1.L2Advertisement{ObjectMeta: meta(name), Spec: spec}
}

func bgpAdv(name string, spec v1beta1.BGPAdvertisementSpec) v1beta1.BGPAdvertisement {
	return v1beta1.BGPAdvertisement{ObjectMeta: meta(name), Spec: spec}
}

func peer(name string, spec v1beta2.BGPPeerSpec) v1beta2.BGPPeer {
	return v1beta2.BGPPeer{ObjectMeta: meta(name), Spec: spec}
}

// ebgp is a valid eBGP peer spec to start from.
func ebgp(addr string) v1beta2.BGPPeerSpec {
	return v1beta2.BGPPeerSpec{MyASN: 64500, ASN: 64501, Address: addr}
}

// onePeer is a configuration of one valid eBGP peer "q" to 192.0.2.1,
// changed by mod.
func onePeer(mod func(*v1beta2.BGPPeerSpec)) Resources {
	s := ebgp("192.0.2.1")
	mod(&s)
	return Resources{BGPPeers: []v1beta2.BGPPeer{peer("q", s)}}
}

func bfd(name string, spec v1beta1.BFDProfileSpec) v1beta1.BFDProfile {
	return v1beta1.BFDProfile{ObjectMeta: meta(name), Spec: spec}
}

func community(name string, kv ...string) v1beta1.Community {
	c := v1beta1.Community{ObjectMeta: meta(name)}
	for i := 0; i+1 < len(kv); i += 2 {
		c.Spec.Communities = append(c.Spec.Communities, v1beta1.CommunityAlias{Name: kv[i], Value: kv[i+1]})
	}
	return c
}

func namespace(name string, labels map[string]string) corev1.Namespace {
	return corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func node(name string, labels map[string]string) corev1.Node {
	return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func secret(name string, typ corev1.SecretType, data map[string]string) corev1.Secret {
	s := corev1.Secret{ObjectMeta: meta(name), Type: typ, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func sel(kv ...string) metav1.LabelSelector {
	s := metav1.LabelSelector{MatchLabels: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		s.MatchLabels[kv[i]] = kv[i+1]
	}
	return s
}

func i32(v int32) *int32   { return &v }
func u32(v uint32) *uint32 { return &v }
func boolp(v bool) *bool   { return &v }
func dur(s string) *metav1.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		panic(err)
	}
	return &metav1.Duration{Duration: d}
}

// mustBuild builds r and fails the test on any problem.
func mustBuild(t *testing.T, r Resources) *Config {
	t.Helper()
	if r.Namespace == "" {
		r.Namespace = testNS
	}
	cfg, err := Build(r)
	if err != nil {
		t.Fatalf("Build: unexpected problems:\n%v", err)
	}
	return cfg
}

// hasProblem reports whether ps holds a problem about kind/name at field
// whose message contains every fragment.
func hasProblem(ps Problems, kind, name, field string, fragments ...string) bool {
	for _, p := range ps {
		if p.Kind != kind || p.Name != name || p.Field != field {
			continue
		}
		ok := true
		for _, f := range fragments {
			if !strings.Contains(p.Message, f) {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// ruleCase is a configuration that breaks one rule, and the problem (or,
// with warning set, only the warning) it must produce.
type ruleCase struct {
	name      string
	res       Resources
	kind      string
	obj       string
	field     string
	fragments []string
	transient bool
	warning   bool
}

func (tc ruleCase) check(t *testing.T) {
	tc.res.Namespace = testNS
	res := Validate(tc.res)
	if tc.warning {
		if res.Config == nil {
			t.Fatalf("refused; want only a warning. Problems:\n%v", res.Problems)
		}
		if !hasProblem(res.Warnings, tc.kind, tc.obj, tc.field, tc.fragments...) {
			t.Fatalf("no warning at %s/%s %q containing %q; got:\n%v", tc.kind, tc.obj, tc.field, tc.fragments, res.Warnings)
		}
		return
	}
	if res.Config != nil {
		t.Fatalf("configuration accepted; want a problem at %s/%s %s", tc.kind, tc.obj, tc.field)
	}
	if !hasProblem(res.Problems, tc.kind, tc.obj, tc.field, tc.fragments...) {
		t.Fatalf("no problem at %s/%s %q containing %q; got:\n%v", tc.kind, tc.obj, tc.field, tc.fragments, res.Problems)
	}
	for _, p := range res.Problems.About(tc.kind, tc.obj) {
		if p.Field == tc.field && p.Transient != tc.transient {
			t.Errorf("problem %q: transient = %v, want %v", p, p.Transient, tc.transient)
		}
	}
	if got := res.Problems.Transient(); got != tc.transient {
		t.Errorf("Problems.Transient() = %v, want %v; problems:\n%v", got, tc.transient, res.Problems)
	}
}

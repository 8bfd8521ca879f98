package config

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/api/v1beta1"
	"github.com/herald-lb/herald/api/v1beta2"
)

func TestBuildUsable(t *testing.T) {
	withSecret := func(name string) v1beta2.BGPPeer {
		s := ebgp("192.0.2.1")
		s.PasswordSecret = corev1.SecretReference{Name: name}
		return peer("q", s)
	}
	pw := secret("pw", corev1.SecretTypeBasicAuth, map[string]string{"password": "x"})
	p := pool("p", "192.0.2.0/28")
	zzOverlap := pool("zz", "198.51.100.0/28", "192.0.2.8/29")
	zzGood := pool("zz", "198.51.100.0/28")
	l2All := l2("l", v1beta1.L2AdvertisementSpec{})

	tests := []struct {
		name      string
		in, last  Resources
		wantNil   bool
		wantPools []string
		wantPeers []string
		wantKept  []string
		wantLeft  []string
	}{{
		name:      "valid: all of it",
		in:        Resources{Pools: []v1beta1.IPAddressPool{p, zzGood}, BGPPeers: []v1beta2.BGPPeer{withSecret("pw")}, Secrets: []corev1.Secret{pw}},
		wantPools: []string{"p", "zz"}, wantPeers: []string{"q"},
	}, {
		name:      "peer waiting for its Secret, after a restart: left out, the pools serve",
		in:        Resources{Pools: []v1beta1.IPAddressPool{p}, L2Advertisements: []v1beta1.L2Advertisement{l2All}, BGPPeers: []v1beta2.BGPPeer{withSecret("later")}},
		wantPools: []string{"p"}, wantLeft: []string{"BGPPeer/q"},
	}, {
		name:      "peer changed to a missing Secret: its last version stays",
		in:        Resources{Pools: []v1beta1.IPAddressPool{p}, BGPPeers: []v1beta2.BGPPeer{withSecret("later")}, Secrets: []corev1.Secret{pw}},
		last:      Resources{Pools: []v1beta1.IPAddressPool{p}, BGPPeers: []v1beta2.BGPPeer{withSecret("pw")}, Secrets: []corev1.Secret{pw}},
		wantPools: []string{"p"}, wantPeers: []string{"q"}, wantKept: []string{"BGPPeer/q"},
	}, {
		name:      "last version no longer valid either: left out",
		in:        Resources{Pools: []v1beta1.IPAddressPool{p}, BGPPeers: []v1beta2.BGPPeer{withSecret("later")}},
		last:      Resources{Pools: []v1beta1.IPAddressPool{p}, BGPPeers: []v1beta2.BGPPeer{withSecret("pw")}, Secrets: []corev1.Secret{pw}},
		wantPools: []string{"p"}, wantLeft: []string{"BGPPeer/q"},
	}, {
		name:      "overlapping pool after a restart: left out, the other pool serves",
		in:        Resources{Pools: []v1beta1.IPAddressPool{p, zzOverlap}},
		wantPools: []string{"p"}, wantLeft: []string{"IPAddressPool/zz"},
	}, {
		name:      "pool edited to overlap: its last version stays",
		in:        Resources{Pools: []v1beta1.IPAddressPool{p, zzOverlap}},
		last:      Resources{Pools: []v1beta1.IPAddressPool{p, zzGood}},
		wantPools: []string{"p", "zz"}, wantKept: []string{"IPAddressPool/zz"},
	}, {
		name:      "object in the wrong namespace: left out alone",
		in:        Resources{Pools: []v1beta1.IPAddressPool{p, func() v1beta1.IPAddressPool { o := zzGood; o.Namespace = "other"; return o }()}},
		wantPools: []string{"p"}, wantLeft: []string{"IPAddressPool/zz"},
	}, {
		name:    "a problem tied to no object: nothing is trusted",
		in:      Resources{Namespace: "-", Pools: []v1beta1.IPAddressPool{p}},
		wantNil: true,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.in.Namespace == "" {
				tc.in.Namespace = testNS
			} else if tc.in.Namespace == "-" {
				tc.in.Namespace = ""
			}
			tc.last.Namespace = testNS
			u := BuildUsable(tc.in, tc.last)
			if tc.wantNil {
				if u.Config != nil {
					t.Fatalf("got a configuration, want none")
				}
				return
			}
			checkUsable(t, u, tc.wantKept, tc.wantLeft)
			if want := len(tc.wantKept)+len(tc.wantLeft) > 0; want != (len(u.Problems) > 0) {
				t.Errorf("problems %v", u.Problems)
			}
			var pools, peers []string
			for _, p := range u.Config.Pools {
				pools = append(pools, p.Name)
			}
			for _, p := range u.Config.Peers {
				peers = append(peers, p.Name)
			}
			if !slices.Equal(pools, tc.wantPools) || !slices.Equal(peers, tc.wantPeers) {
				t.Errorf("in force: pools %v peers %v; want %v %v", pools, peers, tc.wantPools, tc.wantPeers)
			}
		})
	}
}

// checkUsable checks what every BuildUsable result must be: a
// configuration, the objects kept and left out, and From valid (it is the
// next call's last).
func checkUsable(t *testing.T, u Usable, wantKept, wantLeft []string) {
	t.Helper()
	if u.Config == nil {
		t.Fatalf("no configuration; problems %v", u.Problems)
	}
	if got := refNames(u.Kept); !slices.Equal(got, wantKept) {
		t.Errorf("kept %v, want %v", got, wantKept)
	}
	if got := refNames(u.Left); !slices.Equal(got, wantLeft) {
		t.Errorf("left %v, want %v", got, wantLeft)
	}
	if again := Validate(u.From); len(again.Problems) > 0 {
		t.Errorf("From has problems: %v", again.Problems)
	}
}

func refNames(rs []ObjectRef) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.String())
	}
	return out
}
